package testkit

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/client"
	"github.com/fleetkit/fleetkit/refd"
)

// RefdPackage is the main package the refd image is built from.
const RefdPackage = "github.com/fleetkit/fleetkit/cmd/refd"

// DefaultRefdDemoSize is the fleet size of a demo refd fixture: large
// enough to plan over, small enough to start in a second.
const DefaultRefdDemoSize = 1000

// The paths of the refd image, those of cmd/refd/Dockerfile.
const (
	refdPort       = "8080/tcp"
	refdStateDir   = "/var/lib/refd"
	refdConfigFile = "/etc/refd/refd.yaml"
)

// refdOwnKeys returns the keys of refd.yaml the fixture writes itself.
func refdOwnKeys() []string { return []string{"listen", "store", "tokens"} }

// RefdContainer is a running refd.
type RefdContainer struct {
	*Container
	// URL is the API's base URL from the test process,
	// "http://127.0.0.1:<port>".
	URL string
	// InternalURL is the base URL from other testkit containers.
	InternalURL string
	// Token is a bearer token with the admin scope.
	Token string
	// ReadToken is a token with the read scope only, for checks of 403
	// answers; "" for a demo refd, which has only its admin token.
	ReadToken string
	// Client is an API client authenticated with Token.
	Client *client.Client
}

// RefdDemo runs refd serve --demo over a generated fleet of size servers
// (the default, with DefaultRefdDemoSize). Refd only.
func RefdDemo(size int) Option {
	return func(s *settings) {
		s.refdDemoSize, s.refdConfig = size, ""
		s.restrict("RefdDemo", "Refd")
	}
}

// RefdConfig runs refd serve -config with configYAML: a refd.yaml without
// the keys the fixture writes (listen, store and tokens), such as
//
//	sources:
//	  - name: netbox
//	    type: netbox
//	    authoritative: true
//	    interval: 5s
//	    options: {url: "http://<fakes container>:8080/netbox", token: "..."}
//
// Sources reach other testkit containers by their InternalURL. Refd only.
func RefdConfig(configYAML string) Option {
	return func(s *settings) {
		s.refdConfig, s.refdDemoSize = configYAML, 0
		s.restrict("RefdConfig", "Refd")
	}
}

// Refd starts refd in a container and returns it once /readyz answers
// 200, that is once its authoritative sources have been read. The image
// is built from cmd/refd with the go command of the test (CGO_ENABLED=0,
// FROM scratch) unless WithImage or WithBinary says otherwise; it is
// cached by content hash, so only the first run of a changed refd builds
// it. By default refd runs its demo (RefdDemo); RefdConfig gives it a
// configuration instead.
func Refd(t testing.TB, opts ...Option) *RefdContainer {
	t.Helper()
	s := apply(t, "Refd", opts)
	p := Docker(t)
	ref := s.image
	if ref == "" {
		var err error
		if ref, err = p.goImage(context.Background(), "refd", RefdPackage, s.binary); err != nil {
			t.Fatalf("testkit: refd: %v", err)
		}
	}
	token, err := refd.NewTokenSecret()
	if err != nil {
		t.Fatalf("testkit: refd: %v", err)
	}
	rc := &RefdContainer{Token: token}
	spec := ContainerSpec{
		Kind: "refd", Image: ref, Pull: s.pull, Ports: []string{refdPort},
		Env: s.env, Files: s.files, StartTimeout: s.timeout,
		Ready: func(ctx context.Context, c *Container) error {
			return httpStatus(ctx, "http://"+c.HostAddr(refdPort)+"/readyz", "", http.StatusOK)
		},
	}
	if s.refdConfig == "" {
		size := s.refdDemoSize
		if size <= 0 {
			size = DefaultRefdDemoSize
		}
		data := refdStateDir + "/demo"
		spec.Cmd = []string{"serve", "--demo", "-listen", "0.0.0.0:8080", "-data", data, "-size", strconv.Itoa(size)}
		// A demo keeps the admin token of its data directory: put the
		// hash of ours there.
		spec.Files = append(spec.Files, File{
			Path: data + "/" + refd.DemoTokenFile, Data: []byte(refd.HashToken(token) + "\n"), Mode: 0o644,
			Dirs: []string{data},
		})
	} else {
		read, err := refd.NewTokenSecret()
		if err != nil {
			t.Fatalf("testkit: refd: %v", err)
		}
		rc.ReadToken = read
		cfg, err := composeRefdConfig(s.refdConfig, token, read)
		if err != nil {
			t.Fatalf("testkit: refd: RefdConfig: %v", err)
		}
		spec.Cmd = []string{"serve", "-config", refdConfigFile, "-listen", "0.0.0.0:8080"}
		spec.Files = append(spec.Files, File{Path: refdConfigFile, Data: cfg})
	}
	rc.Container = Run(t, spec)
	rc.URL = "http://" + rc.HostAddr(refdPort)
	rc.InternalURL = "http://" + rc.InternalAddr(refdPort)
	rc.Client, err = client.New(rc.URL, token)
	if err != nil {
		t.Fatalf("testkit: refd: %v", err)
	}
	return rc
}

// composeRefdConfig returns the user's configuration with the store and
// the two tokens added.
func composeRefdConfig(user, admin, read string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(user), &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 1 {
		root := doc.Content[0]
		if root.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("line %d: want a mapping of settings", root.Line)
		}
		for i := 0; i+1 < len(root.Content); i += 2 {
			if k := root.Content[i]; slices.Contains(refdOwnKeys(), k.Value) {
				return nil, fmt.Errorf("line %d: %s: the fixture sets it; leave out %s", k.Line, k.Value, strings.Join(refdOwnKeys(), ", "))
			}
		}
	}
	var b strings.Builder
	b.WriteString(strings.TrimRight(user, "\n"))
	fmt.Fprintf(&b, "\nstore: %s/refd.db\ntokens:\n", refdStateDir)
	fmt.Fprintf(&b, "  - {name: testkit-admin, hash: %q, scopes: [admin]}\n", refd.HashToken(admin))
	fmt.Fprintf(&b, "  - {name: testkit-read, hash: %q, scopes: [read]}\n", refd.HashToken(read))
	return []byte(b.String()), nil
}

// httpStatus checks that a GET of url answers want.
func httpStatus(ctx context.Context, url, token string, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
