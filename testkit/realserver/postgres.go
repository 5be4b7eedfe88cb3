package realserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fleetkit/fleetkit/testkit/internal/serveruser"
)

// PostgresDSNEnv names an environment variable holding the connection
// string of a PostgreSQL server to use instead of starting one. Tests
// sharing such a server must use tables or schemas of their own.
const PostgresDSNEnv = "FLEETKIT_PG_DSN"

// PostgresBinDir returns the directory holding initdb and postgres: the
// one of a postgres on PATH, or the newest /usr/lib/postgresql/<version>/bin
// (Debian's layout, which keeps them off PATH).
func PostgresBinDir() (string, error) {
	if p, err := exec.LookPath("postgres"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgVersion(dirs[i]) > pgVersion(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "postgres")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
				return d, nil
			}
		}
	}
	return "", errors.New("postgres: no initdb and postgres on PATH nor under /usr/lib/postgresql")
}

func pgVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// Postgres returns the connection string of a real PostgreSQL server for
// the rest of the test. With FLEETKIT_PG_DSN set it returns that;
// otherwise it creates a throwaway cluster (initdb, trust auth, no fsync)
// in a temporary directory and starts postgres on a free port of
// 127.0.0.1, as user postgres when running as root (PostgreSQL refuses to
// run as root), and returns once it accepts connections. The server is
// stopped and its files removed when the test ends.
//
// Without the binaries (Debian package postgresql) the test is skipped,
// or fails when FLEETKIT_REQUIRE_DOCKER=1.
func Postgres(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv(PostgresDSNEnv); dsn != "" {
		return dsn
	}
	bin, err := PostgresBinDir()
	if err != nil {
		missing(t, "postgres", "apt-get install -y postgresql")
	}
	dir, err := os.MkdirTemp("", "fleetkit-pg-")
	if err != nil {
		t.Fatalf("realserver: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	owner, err := serveruser.Prepare(dir)
	if err != nil {
		t.Fatalf("realserver: postgres: %v", err)
	}
	data := filepath.Join(dir, "data")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")
	owner(initdb)
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("realserver: initdb: %v\n%s", err, out)
	}

	var lastLogs string
	for attempt := 0; attempt < 3; attempt++ {
		port := freePort(t)
		cmd := exec.Command(filepath.Join(bin, "postgres"),
			"-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-F")
		owner(cmd)
		p := start(t, cmd, os.Interrupt) // SIGINT: fast shutdown
		dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
		if p.waitReadyOrExit(t, "postgres", func(ctx context.Context) error {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			return conn.Ping(ctx)
		}) {
			return dsn
		}
		lastLogs = p.logs.String()
		if !strings.Contains(lastLogs, "already in use") {
			break
		}
	}
	t.Fatalf("realserver: postgres did not start:\n%s", lastLogs)
	return ""
}
