package testkit

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	dc "github.com/ory/dockertest/v3/docker"
)

// DefaultStartTimeout bounds how long a container may take to become
// ready when ContainerSpec.StartTimeout (or WithStartTimeout) does not
// say.
const DefaultStartTimeout = 90 * time.Second

// File is a file written into a container before it starts.
type File struct {
	// Path is the absolute path in the container.
	Path string
	Data []byte
	// Mode is the permission bits; 0 means 0o644.
	Mode fs.FileMode
	// Dirs lists directories (absolute paths, parents of Path or not) to
	// create with mode 0o777 along with the file, for servers that run as
	// an unprivileged user and write there.
	Dirs []string
}

// ContainerSpec says how Run starts a container.
type ContainerSpec struct {
	// Kind names the container in its name (fleetkit-<kind>-<pid>-...)
	// and in messages, e.g. "refd".
	Kind string
	// Image is the image reference, which must exist in the engine: no
	// image is pulled unless Pull is set.
	Image string
	// Pull pulls Image when the engine does not have it (needs a
	// registry).
	Pull bool
	// Entrypoint and Cmd replace the image's when set.
	Entrypoint []string
	Cmd        []string
	// Env is KEY=value pairs.
	Env []string
	// User replaces the image's user when set.
	User string
	// Ports are the container ports to publish on 127.0.0.1, such as
	// "8080/tcp" (or "8080").
	Ports []string
	// Files are written into the container before it starts.
	Files []File
	// Ready reports whether the started container serves; Run polls it
	// with a growing pause (100 ms to 1 s) until it returns nil, the
	// container exits or StartTimeout passes. Nil means ready once
	// started.
	Ready func(ctx context.Context, c *Container) error
	// StartTimeout bounds the wait for Ready; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
}

// Container is a running container started for a test. Run removes it
// (with its anonymous volumes) when the test ends.
type Container struct {
	// ID and Name identify it to the engine. Other testkit containers of
	// the test binary reach it under Name, on the network they share.
	ID   string
	Name string
	// Image is the reference it runs.
	Image string

	pool   *Pool
	ports  map[string]string // "8080/tcp" -> "127.0.0.1:49153"
	logged bool              // its logs are in the test's failure already
}

// HostAddr returns the address ("127.0.0.1:49153") on which the test
// process reaches the container's port ("8080/tcp" or "8080"), or "" if
// the port is not published.
func (c *Container) HostAddr(port string) string { return c.ports[portKey(port)] }

// InternalAddr returns the address ("<name>:8080") on which other testkit
// containers reach the container's port.
func (c *Container) InternalAddr(port string) string {
	p, _, _ := strings.Cut(portKey(port), "/")
	return net.JoinHostPort(c.Name, p)
}

// Logs returns the container's output so far, stdout and stderr
// interleaved as the engine kept them, at most the last tail lines
// (0 means all).
func (c *Container) Logs(ctx context.Context, tail int) (string, error) {
	var buf bytes.Buffer
	opts := dc.LogsOptions{
		Context: ctx, Container: c.ID, OutputStream: &buf, ErrorStream: &buf,
		Stdout: true, Stderr: true, Tail: "all",
	}
	if tail > 0 {
		opts.Tail = fmt.Sprint(tail)
	}
	err := c.pool.docker.Client.Logs(opts)
	return buf.String(), err
}

// State returns the container's state as the engine reports it.
func (c *Container) State(ctx context.Context) (dc.State, error) {
	ci, err := c.pool.docker.Client.InspectContainerWithContext(c.ID, ctx)
	if err != nil {
		return dc.State{}, err
	}
	return ci.State, nil
}

func portKey(port string) string {
	if !strings.Contains(port, "/") {
		return port + "/tcp"
	}
	return port
}

// logTail is how many lines of a failed container's logs a test failure
// shows.
const logTail = 60

// Run starts a container for the rest of the test and returns it once
// spec.Ready says it serves. The container joins the test binary's
// network, publishes spec.Ports on 127.0.0.1 only, carries testkit's
// labels and is removed by t.Cleanup; when the test has failed, its last
// logs are logged first. If it does not become ready, the test fails with
// its state and logs. Without a Docker engine the test is skipped (or
// fails under FLEETKIT_REQUIRE_DOCKER=1).
func Run(t testing.TB, spec ContainerSpec) *Container {
	t.Helper()
	p := Docker(t)
	if spec.Kind == "" {
		spec.Kind = "container"
	}
	if spec.StartTimeout <= 0 {
		spec.StartTimeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), spec.StartTimeout+time.Minute)
	defer cancel()
	cl := p.docker.Client

	if _, err := cl.InspectImage(spec.Image); err != nil {
		if !errors.Is(err, dc.ErrNoSuchImage) || !spec.Pull {
			t.Fatalf("testkit: %s: image %s: %v", spec.Kind, spec.Image, err)
		}
		repo, tag, _ := strings.Cut(spec.Image, ":")
		if err := cl.PullImage(dc.PullImageOptions{Repository: repo, Tag: tag, Context: ctx}, dc.AuthConfiguration{}); err != nil {
			t.Fatalf("testkit: %s: pulling %s: %v", spec.Kind, spec.Image, err)
		}
	}

	network, release, err := p.acquireNetwork()
	if err != nil {
		t.Fatalf("testkit: %s: %v", spec.Kind, err)
	}
	t.Cleanup(release) // runs after the container's removal below

	name := p.nextName(spec.Kind)
	exposed := map[dc.Port]struct{}{}
	bindings := map[dc.Port][]dc.PortBinding{}
	for _, port := range spec.Ports {
		k := dc.Port(portKey(port))
		exposed[k] = struct{}{}
		bindings[k] = []dc.PortBinding{{HostIP: "127.0.0.1"}}
	}
	created, err := cl.CreateContainer(dc.CreateContainerOptions{
		Context: ctx,
		Name:    name,
		Config: &dc.Config{
			Image: spec.Image, Entrypoint: spec.Entrypoint, Cmd: spec.Cmd, Env: spec.Env,
			User: spec.User, ExposedPorts: exposed, Labels: p.labels(),
		},
		HostConfig: &dc.HostConfig{PortBindings: bindings, NetworkMode: network},
	})
	if err != nil {
		t.Fatalf("testkit: %s: creating container from %s: %v", spec.Kind, spec.Image, err)
	}
	c := &Container{ID: created.ID, Name: name, Image: spec.Image, pool: p, ports: map[string]string{}}
	t.Cleanup(func() {
		if t.Failed() && !c.logged {
			lctx, lcancel := context.WithTimeout(context.Background(), 10*time.Second)
			logs, _ := c.Logs(lctx, logTail)
			lcancel()
			t.Logf("testkit: logs of %s (%s), last %d lines:\n%s", c.Name, spec.Kind, logTail, logs)
		}
		err := cl.RemoveContainer(dc.RemoveContainerOptions{ID: c.ID, Force: true, RemoveVolumes: true})
		var nsc *dc.NoSuchContainer
		if err != nil && !errors.As(err, &nsc) {
			t.Errorf("testkit: removing %s: %v", c.Name, err)
		}
	})

	if len(spec.Files) > 0 {
		archive, err := tarFiles(spec.Files)
		if err != nil {
			t.Fatalf("testkit: %s: %v", spec.Kind, err)
		}
		if err := cl.UploadToContainer(c.ID, dc.UploadToContainerOptions{Context: ctx, InputStream: archive, Path: "/"}); err != nil {
			t.Fatalf("testkit: %s: writing files into the container: %v", spec.Kind, err)
		}
	}
	if err := cl.StartContainerWithContext(c.ID, nil, ctx); err != nil {
		t.Fatalf("testkit: %s: starting %s: %v", spec.Kind, c.Name, err)
	}
	if err := c.waitPorts(ctx, spec.Ports); err != nil {
		c.fail(t, spec.Kind, err)
	}
	if spec.Ready != nil {
		if err := c.waitReady(ctx, spec.StartTimeout, spec.Ready); err != nil {
			c.fail(t, spec.Kind, err)
		}
	}
	return c
}

// fail ends the test with err, the container's state and its last logs.
func (c *Container) fail(t testing.TB, kind string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	state := "unknown"
	if st, serr := c.State(ctx); serr == nil {
		state = st.String()
		if !st.Running {
			state = fmt.Sprintf("%s, exit code %d", st.Status, st.ExitCode)
		}
	}
	logs, lerr := c.Logs(ctx, logTail)
	c.logged = true
	if lerr != nil {
		logs = "(no logs: " + lerr.Error() + ")"
	}
	t.Fatalf("testkit: %s (%s, image %s, %s): %v\n--- last %d lines of its logs ---\n%s",
		kind, c.Name, c.Image, state, err, logTail, logs)
}

// waitPorts waits until the engine reports the host ports of every
// published port.
func (c *Container) waitPorts(ctx context.Context, ports []string) error {
	for pause := 20 * time.Millisecond; ; pause = min(2*pause, 500*time.Millisecond) {
		ci, err := c.pool.docker.Client.InspectContainerWithContext(c.ID, ctx)
		if err != nil {
			return err
		}
		if !ci.State.Running {
			return fmt.Errorf("exited at start")
		}
		all := true
		for _, port := range ports {
			k := portKey(port)
			var bs []dc.PortBinding
			if ci.NetworkSettings != nil {
				bs = ci.NetworkSettings.Ports[dc.Port(k)]
			}
			i := slices.IndexFunc(bs, func(b dc.PortBinding) bool { return b.HostPort != "" })
			if i < 0 {
				all = false
				break
			}
			c.ports[k] = net.JoinHostPort("127.0.0.1", bs[i].HostPort)
		}
		if all {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ports %v not published: %w", ports, ctx.Err())
		case <-time.After(pause):
		}
	}
}

// waitReady polls ready with a growing pause until it succeeds, the
// container stops running or timeout passes.
func (c *Container) waitReady(ctx context.Context, timeout time.Duration, ready func(context.Context, *Container) error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for pause, tries := 100*time.Millisecond, 1; ; pause, tries = min(pause*3/2, time.Second), tries+1 {
		rctx, cancel := context.WithTimeout(ctx, min(5*time.Second, time.Until(deadline)+time.Millisecond))
		last = ready(rctx, c)
		cancel()
		if last == nil {
			return nil
		}
		if st, err := c.State(ctx); err == nil && !st.Running {
			return fmt.Errorf("exited before it was ready (last check: %v)", last)
		}
		if time.Now().Add(pause).After(deadline) {
			return fmt.Errorf("not ready after %v (%d checks): %w", timeout, tries, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last check: %v)", ctx.Err(), last)
		case <-time.After(pause):
		}
	}
}

// tarFiles packs files for UploadToContainer, relative to "/".
func tarFiles(files []File) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		if !path.IsAbs(f.Path) {
			return nil, fmt.Errorf("file %q: want an absolute path", f.Path)
		}
		for _, d := range f.Dirs {
			if !path.IsAbs(d) {
				return nil, fmt.Errorf("directory %q: want an absolute path", d)
			}
			d = strings.TrimPrefix(path.Clean(d), "/")
			if d == "" || dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o777, ModTime: epoch()}); err != nil {
				return nil, err
			}
		}
		mode := int64(f.Mode.Perm())
		if mode == 0 {
			mode = 0o644
		}
		name := strings.TrimPrefix(path.Clean(f.Path), "/")
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(f.Data)), ModTime: epoch()}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
}
