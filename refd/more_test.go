package refd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fleetkit/fleetkit/disposition"
)

// fakeFormulas answers with what it was asked.
type fakeFormulas struct{}

func (fakeFormulas) Resolve(ctx context.Context, role, state string) (any, error) {
	if role == "nope" {
		return nil, fmt.Errorf("%w: formulas.yaml:3: roles: unknown role %q", ErrFormulaRequest, role)
	}
	return map[string]string{"name": role + "-" + state}, nil
}

func (fakeFormulas) Diff(ctx context.Context, name string, control []byte, snap *disposition.Snapshot) (any, error) {
	return map[string]any{"bytes": len(control), "nodes": snap.Len()}, nil
}

func (fakeFormulas) Build(ctx context.Context, role, state string) (any, error) {
	return []string{role + "-" + state}, nil
}

func TestFormulasRoutes(t *testing.T) {
	e := newTestEnv(t, 30, func(c *Config) { c.Formulas = fakeFormulas{} })
	n := e.nodes[4]

	r := e.do("GET", "/v1/formulas/resolve?node="+n.ID, ScopeRead, "")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.JSONEq(t, fmt.Sprintf(`{"name":%q}`, n.Role+"-"+n.ReleaseState), string(r.body))
	r = e.do("GET", "/v1/formulas/resolve?role=edge&release_state=trial", ScopeRead, "")
	require.JSONEq(t, `{"name":"edge-trial"}`, string(r.body))

	for _, tt := range []struct {
		query, field string
		status       int
	}{
		{"role=edge", "release_state", 400},
		{"release_state=ga", "role", 400},
		{"node=" + n.ID + "&role=edge", "node", 400},
		{"node=ghost", "node", 404},
	} {
		r := e.do("GET", "/v1/formulas/resolve?"+tt.query, ScopeRead, "")
		require.Equal(t, tt.status, r.status, tt.query)
		require.Equal(t, tt.field, r.apiError(t).Field, tt.query)
	}
	r = e.do("GET", "/v1/formulas/resolve?role=nope&release_state=ga", ScopeRead, "")
	require.Equal(t, http.StatusUnprocessableEntity, r.status)
	require.Contains(t, r.apiError(t).Message, "formulas.yaml:3")

	r = e.do("POST", "/v1/formulas/diff", ScopeRead, "formulas: {}\n")
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, `{"bytes":13,"nodes":30}`, string(r.body))
	require.Equal(t, http.StatusBadRequest, e.do("POST", "/v1/formulas/diff", ScopeRead, "").status)

	r = e.do("POST", "/v1/formulas/build?role=edge&release_state=ga", ScopeRollout, "")
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, `["edge-ga"]`, string(r.body))
	require.Equal(t, http.StatusBadRequest, e.do("POST", "/v1/formulas/build?role=edge", ScopeRollout, "").status)

	entries, err := e.store.Audit(context.Background(), 10, 0)
	require.NoError(t, err)
	require.Len(t, entries, 2, "builds are audited, reads are not")
	require.Equal(t, "rollout-token", entries[0].Who)
	require.Equal(t, "POST /v1/formulas/build", entries[0].Action)
}

// writeSelfSigned writes a certificate for 127.0.0.1 and its key.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "refd-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestServeTLS(t *testing.T) {
	certFile, keyFile, pool := writeSelfSigned(t, t.TempDir())
	e := newTestEnv(t, 10, func(c *Config) { c.TLSCertFile, c.TLSKeyFile = certFile, keyFile })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", "https://"+ln.Addr().String()+"/v1/nodes?fields=id", nil)
	req.Header.Set("Authorization", "Bearer "+testSecrets[ScopeRead])
	res, err := c.Do(req)
	require.NoError(t, err)
	var p NodesPage
	require.NoError(t, json.NewDecoder(res.Body).Decode(&p))
	res.Body.Close()
	require.Equal(t, 10, p.Count)
	require.NotNil(t, res.TLS, "served over TLS")

	// Plain HTTP to the TLS port is refused.
	res, err = http.Get("http://" + ln.Addr().String() + "/healthz")
	if err == nil {
		res.Body.Close()
		require.Equal(t, http.StatusBadRequest, res.StatusCode)
	}
}

func TestCloseStopsServe(t *testing.T) {
	e := newTestEnv(t, 10, func(c *Config) { c.Updater = &fakeUpdater{ready: true} })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- e.srv.Serve(context.Background(), ln) }()
	require.Eventually(t, func() bool { return e.srv.Addr() != nil }, 10*time.Second, 5*time.Millisecond)
	require.True(t, e.srv.Ready())
	require.NoError(t, e.srv.Close())
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
	require.False(t, e.srv.Ready(), "a closed server is not ready")
}

func TestUpdaterFailureEndsServe(t *testing.T) {
	e := newTestEnv(t, 10, func(c *Config) { c.Updater = &failingUpdater{} })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	err = e.srv.Serve(context.Background(), ln)
	require.ErrorContains(t, err, "updater: broken")
}

type failingUpdater struct{ fakeUpdater }

func (*failingUpdater) Run(ctx context.Context) error { return fmt.Errorf("broken") }
