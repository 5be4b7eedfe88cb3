package testkit

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/fleetkit/fleetkit/testkit/internal/serveruser"
	"github.com/fleetkit/fleetkit/testkit/realserver"
)

// The layout of the PostgreSQL image, that of the upstream postgres
// image where the fixture relies on it (PGDATA, port, user postgres), so
// that WithImage can point at it.
const (
	postgresPort    = "5432/tcp"
	postgresPGData  = "/var/lib/postgresql/data"
	postgresUID     = "999" // the postgres user's uid and gid in the image
	postgresSockets = "/var/run/postgresql"
)

// PostgresContainer is a running PostgreSQL server with a superuser
// postgres that needs no password (trust authentication: a test server).
type PostgresContainer struct {
	*Container
	// DSN is the connection string from the test process,
	// "postgres://postgres@127.0.0.1:<port>/postgres?sslmode=disable".
	DSN string
	// InternalDSN is the connection string from other testkit containers.
	InternalDSN string
}

// postgresImage builds (or finds) a FROM scratch image of the host's
// PostgreSQL server (Debian package postgresql): postgres, its modules,
// share files and time zones, their shared libraries, and a database
// cluster initialised on the host when the image is built, so that the
// container needs no shell and starts in a second.
func (p *Pool) postgresImage(ctx context.Context) (string, error) {
	bin, err := realserver.PostgresBinDir()
	if err != nil {
		return "", fmt.Errorf("%w: %v (install it: apt-get install -y postgresql)", ErrNoHostBinary, err)
	}
	verDir := filepath.Dir(bin)                                            // /usr/lib/postgresql/15
	share := filepath.Join("/usr/share/postgresql", filepath.Base(verDir)) // Debian's
	if _, err := os.Stat(share); err != nil {
		// A source build keeps share beside bin.
		share = filepath.Join(verDir, "share")
	}
	return p.ensureImage(ctx, image{
		repo: "fleetkit-testkit/postgres",
		fill: func(c *imageContext) error {
			postgres := filepath.Join(bin, "postgres")
			mods, _ := filepath.Glob(filepath.Join(verDir, "lib", "*.so"))
			// JIT pulls in LLVM (over 100 MB) for nothing in tests.
			mods = slices.DeleteFunc(mods, func(m string) bool { return strings.HasPrefix(filepath.Base(m), "llvmjit") })
			libs, err := sharedLibraries(ctx, append([]string{postgres}, mods...)...)
			if err != nil {
				return err
			}
			var libDirs []string
			for _, l := range libs {
				if d := path.Dir(l); !slices.Contains(libDirs, d) {
					libDirs = append(libDirs, d)
				}
			}
			c.bytes("Dockerfile", 0o644, scratchDockerfile(
				"COPY --chown="+postgresUID+":"+postgresUID+" pg/ /var/lib/postgresql/",
				"ENV PATH="+bin+":/usr/bin:/bin PGDATA="+postgresPGData+" TZ=UTC LD_LIBRARY_PATH="+strings.Join(libDirs, ":"),
				"USER "+postgresUID+":"+postgresUID,
				"EXPOSE 5432",
				`CMD ["postgres"]`,
			))
			c.file("rootfs"+postgres, postgres)
			for _, f := range append(mods, libs...) {
				c.file("rootfs"+f, f)
			}
			c.tree("rootfs"+share, share, nil)
			if _, err := os.Stat("/usr/share/zoneinfo"); err == nil {
				c.tree("rootfs/usr/share/zoneinfo", "/usr/share/zoneinfo", nil)
			}
			c.bytes("rootfs/etc/passwd", 0o644, []byte("postgres:x:"+postgresUID+":"+postgresUID+":PostgreSQL:/var/lib/postgresql:/sbin/nologin\n"))
			c.bytes("rootfs/etc/group", 0o644, []byte("postgres:x:"+postgresUID+":\n"))
			c.dir("rootfs/tmp", 0o1777)
			c.dir("rootfs"+postgresSockets, 0o1777)
			return nil
		},
		late: func(ctx context.Context, c *imageContext) error {
			dir, err := os.MkdirTemp("", "fleetkit-testkit-initdb-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			as, err := serveruser.Prepare(dir)
			if err != nil {
				return err
			}
			data := filepath.Join(dir, "data")
			cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
				"-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync", "--wal-segsize=1")
			cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
			as(cmd)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("initdb: %w\n%s", err, out)
			}
			// Connections come through the engine's port mapping and the
			// container network, not from the container's loopback.
			hba, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			_, err = hba.WriteString("host all all 0.0.0.0/0 trust\nhost all all ::/0 trust\n")
			if cerr := hba.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			c.tree("pg/data", data, nil)
			return c.err
		},
	})
}

// Postgres starts a PostgreSQL server and returns it once it accepts
// connections. The image is built from the host's PostgreSQL (Debian
// package postgresql) FROM scratch and cached by content hash; without
// it the test is skipped (or fails under FLEETKIT_REQUIRE_DOCKER=1).
// WithImage("postgres:16") runs the upstream image instead (with
// POSTGRES_HOST_AUTH_METHOD=trust). The server runs without fsync: it is
// for tests.
func Postgres(t testing.TB, opts ...Option) *PostgresContainer {
	t.Helper()
	s := apply(t, "Postgres", opts)
	p := Docker(t)
	ref := s.image
	if ref == "" {
		var err error
		if ref, err = p.postgresImage(context.Background()); err != nil {
			unavailableOrFatal(t, "postgres", err)
		}
	}
	dsn := func(addr string) string {
		return "postgres://postgres@" + addr + "/postgres?sslmode=disable"
	}
	c := Run(t, ContainerSpec{
		Kind: "postgres", Image: ref, Pull: s.pull, Ports: []string{postgresPort},
		Cmd: []string{"postgres", "-c", "listen_addresses=*", "-c", "fsync=off", "-c", "synchronous_commit=off",
			"-c", "full_page_writes=off", "-c", "jit=off"},
		Env:   append([]string{"POSTGRES_HOST_AUTH_METHOD=trust"}, s.env...),
		Files: s.files, StartTimeout: s.timeout,
		Ready: func(ctx context.Context, c *Container) error {
			conn, err := pgx.Connect(ctx, dsn(c.HostAddr(postgresPort)))
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			return conn.Ping(ctx)
		},
	})
	return &PostgresContainer{
		Container:   c,
		DSN:         dsn(c.HostAddr(postgresPort)),
		InternalDSN: dsn(c.InternalAddr(postgresPort)),
	}
}
