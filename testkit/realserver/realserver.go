package realserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing server into
// a test failure instead of a skip; CI sets it to 1.
const RequireEnv = "FLEETKIT_REQUIRE_DOCKER"

// StartTimeout bounds how long a server may take to become ready.
const StartTimeout = 30 * time.Second

// missing skips t, or fails it when RequireEnv is 1, because a server's
// binary is not installed.
func missing(t testing.TB, what, install string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("realserver: %s not found and %s=1 (install it: %s)", what, RequireEnv, install)
	}
	t.Skipf("realserver: %s not found (install it: %s; set %s=1 to fail instead)", what, install, RequireEnv)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("realserver: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// logBuffer keeps the tail of a server's output for failure messages.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 64<<10 {
		b.buf = slices.Clone(b.buf[len(b.buf)-32<<10:])
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := string(b.buf)
	if len(s) > 4096 {
		s = "..." + s[len(s)-4096:]
	}
	return s
}

// process is a server started by a test, stopped by its cleanup.
type process struct {
	cmd  *exec.Cmd
	logs *logBuffer
	done chan struct{}
	err  error
}

// start runs cmd until the test ends: the cleanup asks it to stop with
// stopSig, waits up to 10 s and kills it after that.
func start(t testing.TB, cmd *exec.Cmd, stopSig os.Signal) *process {
	t.Helper()
	p := &process{cmd: cmd, logs: &logBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("realserver: starting %s: %v", cmd.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			return
		default:
		}
		_ = cmd.Process.Signal(stopSig)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: status %d", url, resp.StatusCode)
	}
	return nil
}

// PrometheusBinary returns the path of the prometheus binary: on PATH, or
// where Debian's package installs it.
func PrometheusBinary() (string, error) {
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus", nil
	}
	return "", errors.New("prometheus: not on PATH nor /usr/bin/prometheus")
}

// Prometheus starts a real Prometheus server for the rest of the test,
// with configYAML as its prometheus.yml and a throwaway TSDB, listening on
// a free port of 127.0.0.1, and returns its address ("127.0.0.1:port")
// once /-/ready answers. It does not use a system Prometheus service.
//
// Without a prometheus binary (Debian package prometheus) the test is
// skipped, or fails when FLEETKIT_REQUIRE_DOCKER=1.
func Prometheus(t testing.TB, configYAML string) string {
	t.Helper()
	bin, err := PrometheusBinary()
	if err != nil {
		missing(t, "prometheus", "apt-get install -y prometheus")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o644); err != nil {
		t.Fatalf("realserver: %v", err)
	}
	var lastLogs string
	for attempt := 0; attempt < 3; attempt++ {
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		cmd := exec.Command(bin,
			"--config.file="+cfg,
			"--storage.tsdb.path="+filepath.Join(dir, "data"+strconv.Itoa(attempt)),
			"--web.listen-address="+addr,
		)
		p := start(t, cmd, os.Interrupt)
		// A port taken between freePort and the bind makes Prometheus exit:
		// try another.
		if ok := p.waitReadyOrExit(t, "prometheus", func(ctx context.Context) error {
			return httpOK(ctx, "http://"+addr+"/-/ready")
		}); ok {
			return addr
		}
		lastLogs = p.logs.String()
		if !strings.Contains(lastLogs, "address already in use") {
			break
		}
	}
	t.Fatalf("realserver: prometheus did not start:\n%s", lastLogs)
	return ""
}

// waitReadyOrExit polls ready every 100 ms until it succeeds (true), the
// process exits (false) or StartTimeout passes (the test fails).
func (p *process) waitReadyOrExit(t testing.TB, what string, ready func(ctx context.Context) error) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		err := ready(rctx)
		rcancel()
		if err == nil {
			return true
		}
		select {
		case <-p.done:
			return false
		case <-ctx.Done():
			t.Fatalf("realserver: %s not ready after %s: %v\n%s", what, StartTimeout, err, p.logs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
