package testkit

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	dc "github.com/ory/dockertest/v3/docker"
)

// ErrNoHostBinary is wrapped by the error of an image that needs a binary
// (or one of its shared libraries) the host does not have.
var ErrNoHostBinary = errors.New("testkit: host binary not found")

// imageContext is the build context of a FROM scratch image, written as a
// tar file whose SHA-256 names the image, so that an unchanged context
// reuses the image built before.
type imageContext struct {
	f    *os.File
	tw   *tar.Writer
	sum  hash.Hash
	dirs map[string]bool
	err  error
}

// epoch returns the modification time of every context entry, so that
// contexts of equal content hash equally.
func epoch() time.Time { return time.Unix(0, 0) }

func newImageContext() (*imageContext, error) {
	f, err := os.CreateTemp("", "fleetkit-testkit-context-*.tar")
	if err != nil {
		return nil, err
	}
	c := &imageContext{f: f, sum: sha256.New(), dirs: map[string]bool{}}
	c.tw = tar.NewWriter(io.MultiWriter(f, c.sum))
	return c, nil
}

// close removes the context's file.
func (c *imageContext) close() {
	c.f.Close()
	os.Remove(c.f.Name())
}

func (c *imageContext) header(h *tar.Header) {
	if c.err != nil {
		return
	}
	h.ModTime, h.Format = epoch(), tar.FormatPAX
	c.err = c.tw.WriteHeader(h)
}

// parents adds the directories above name that were not added yet.
func (c *imageContext) parents(name string) {
	dir := path.Dir(name)
	if dir == "." || dir == "/" || c.dirs[dir] {
		return
	}
	c.parents(dir)
	c.dirs[dir] = true
	c.header(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755})
}

// dir adds a directory with mode (0o1777 for a writable /tmp, say).
func (c *imageContext) dir(name string, mode int64) {
	c.parents(name)
	c.dirs[name] = true
	c.header(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode})
}

// bytes adds a file holding data.
func (c *imageContext) bytes(name string, mode int64, data []byte) {
	c.parents(name)
	c.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))})
	if c.err == nil {
		_, c.err = c.tw.Write(data)
	}
}

// file adds the host file src (following symlinks) as name, keeping its
// permission bits.
func (c *imageContext) file(name, src string) {
	if c.err != nil {
		return
	}
	f, err := os.Open(src)
	if err != nil {
		c.err = err
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		c.err = err
		return
	}
	c.parents(name)
	c.header(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: int64(st.Mode().Perm()), Size: st.Size()})
	if c.err == nil {
		_, c.err = io.Copy(c.tw, f)
	}
}

// tree adds the host directory src as name: files, directories and
// symbolic links (kept as links), in lexical order.
func (c *imageContext) tree(name, src string, skip func(rel string) bool) {
	if c.err != nil {
		return
	}
	c.err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if skip != nil && rel != "." && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := path.Join(name, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			c.dir(dst, int64(info.Mode().Perm()))
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			c.parents(dst)
			c.header(&tar.Header{Typeflag: tar.TypeSymlink, Name: dst, Linkname: target, Mode: 0o777})
		case info.Mode().IsRegular():
			c.file(dst, p)
		}
		return c.err
	})
}

// key returns the hash of what was written so far, to tag the image by.
func (c *imageContext) key() (string, error) {
	if c.err != nil {
		return "", c.err
	}
	if err := c.tw.Flush(); err != nil {
		return "", err
	}
	return hex.EncodeToString(c.sum.Sum(nil))[:12], nil
}

// image is the recipe of an image built from a context.
type image struct {
	// repo is the image's repository; the tag is the context's hash.
	repo string
	// variant tells apart recipes of one repo within a process, such as
	// a binary given by the user rather than built.
	variant string
	// fill writes the context: the Dockerfile and what it copies.
	fill func(c *imageContext) error
	// late, if set, adds entries that do not count in the hash because
	// they differ between builds of the same inputs (a database cluster
	// initialised on the host, say); it runs only when the image is built.
	late func(ctx context.Context, c *imageContext) error
}

// ensureImage returns the reference of the image recipe describes,
// building it unless an image of that content exists. It runs once per
// recipe and process: concurrent and later callers share the result.
func (p *Pool) ensureImage(ctx context.Context, recipe image) (string, error) {
	return p.do(p.images, recipe.repo+"\x00"+recipe.variant, func() (string, error) {
		c, err := newImageContext()
		if err != nil {
			return "", err
		}
		defer c.close()
		if err := recipe.fill(c); err != nil {
			return "", fmt.Errorf("image %s: %w", recipe.repo, err)
		}
		key, err := c.key()
		if err != nil {
			return "", fmt.Errorf("image %s: context: %w", recipe.repo, err)
		}
		ref := recipe.repo + ":" + key
		if _, err := p.docker.Client.InspectImage(ref); err == nil {
			return ref, nil
		} else if !errors.Is(err, dc.ErrNoSuchImage) {
			return "", fmt.Errorf("image %s: %w", ref, err)
		}
		if recipe.late != nil {
			if err := recipe.late(ctx, c); err != nil {
				return "", fmt.Errorf("image %s: %w", ref, err)
			}
		}
		if c.err == nil {
			c.err = c.tw.Close()
		}
		if c.err != nil {
			return "", fmt.Errorf("image %s: context: %w", ref, c.err)
		}
		if _, err := c.f.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		var out bytes.Buffer
		err = p.docker.Client.BuildImage(dc.BuildImageOptions{
			Context:             ctx,
			Name:                ref,
			InputStream:         bufio.NewReader(c.f),
			OutputStream:        &out,
			RmTmpContainer:      true,
			ForceRmTmpContainer: true,
			Labels:              map[string]string{LabelImage: "1"},
		})
		if err != nil {
			return "", fmt.Errorf("building image %s: %w\n%s", ref, err, tail(out.String(), 40))
		}
		p.pruneImages(recipe.repo, ref)
		return ref, nil
	})
}

// pruneImages removes the images of repo other than keep that testkit
// built, so that images of earlier versions do not pile up, and the
// untagged ones that two processes building the same tag at once leave.
// An image a container still uses stays (the removal is not forced).
func (p *Pool) pruneImages(repo, keep string) {
	dangling, err := p.docker.Client.ListImages(dc.ListImagesOptions{
		Filters: map[string][]string{"label": {LabelImage + "=1"}, "dangling": {"true"}},
	})
	if err == nil {
		for _, img := range dangling {
			_ = p.docker.Client.RemoveImageExtended(img.ID, dc.RemoveImageOptions{})
		}
	}
	imgs, err := p.docker.Client.ListImages(dc.ListImagesOptions{
		Filters: map[string][]string{"label": {LabelImage + "=1"}, "reference": {repo}},
	})
	if err != nil {
		return
	}
	for _, img := range imgs {
		for _, tag := range img.RepoTags {
			if tag != keep && strings.HasPrefix(tag, repo+":") {
				_ = p.docker.Client.RemoveImageExtended(tag, dc.RemoveImageOptions{})
			}
		}
	}
}

// scratchDockerfile is the Dockerfile of an image holding rootfs/ and
// nothing else.
func scratchDockerfile(lines ...string) []byte {
	return []byte("FROM scratch\nCOPY rootfs/ /\n" + strings.Join(lines, "\n") + "\n")
}

// goBinary builds the main package pkg (an import path the current
// module can build, such as github.com/fleetkit/fleetkit/cmd/refd) as a
// static linux binary for the engine's architecture and returns its path,
// in dir. The go command runs in the current directory, so it builds the
// version of pkg the test's module requires.
func (p *Pool) goBinary(ctx context.Context, pkg, out string) error {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("building %s: the go command: %w", pkg, err)
	}
	cmd := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	arch := p.arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS="+withoutRace(os.Getenv("GOFLAGS")))
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// withoutRace drops -race from GOFLAGS: a CGO_ENABLED=0 build cannot
// have it.
func withoutRace(flags string) string {
	fs := strings.Fields(flags)
	fs = slices.DeleteFunc(fs, func(f string) bool { return f == "-race" || f == "--race" })
	return strings.Join(fs, " ")
}

// goImage builds (or finds) a FROM scratch image holding the static
// binary of main package pkg at /name, or the given binary when it is not
// "", with a state directory /var/lib/<name> owned by nobody, run as
// nobody: the layout of cmd/refd/Dockerfile.
func (p *Pool) goImage(ctx context.Context, name, pkg, binary string) (string, error) {
	return p.ensureImage(ctx, image{
		repo:    "fleetkit-testkit/" + name,
		variant: binary,
		fill: func(c *imageContext) error {
			bin := binary
			if bin == "" {
				dir, err := os.MkdirTemp("", "fleetkit-testkit-bin-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				bin = filepath.Join(dir, name)
				if err := p.goBinary(ctx, pkg, bin); err != nil {
					return err
				}
			}
			c.bytes("Dockerfile", 0o644, scratchDockerfile(
				"COPY --chown=65534:65534 state/ /var/lib/"+name+"/",
				"WORKDIR /var/lib/"+name,
				"USER 65534:65534",
				`ENTRYPOINT ["/`+name+`"]`,
			))
			c.file("rootfs/"+name, bin)
			c.dir("rootfs/tmp", 0o1777)
			c.dir("state", 0o755)
			return nil
		},
	})
}

// sharedLibraries returns the shared libraries (and the dynamic loader)
// that the ELF files need, as ldd lists them, sorted. A dependency ldd
// cannot find is an error naming it.
func sharedLibraries(ctx context.Context, files ...string) ([]string, error) {
	seen := map[string]bool{}
	for _, f := range files {
		out, err := exec.CommandContext(ctx, "ldd", f).CombinedOutput()
		if err != nil {
			// "not a dynamic executable": static, nothing to add.
			if bytes.Contains(out, []byte("not a dynamic executable")) {
				continue
			}
			return nil, fmt.Errorf("ldd %s: %w: %s", f, err, bytes.TrimSpace(out))
		}
		for line := range strings.SplitSeq(string(out), "\n") {
			fields := strings.Fields(line)
			switch {
			case len(fields) >= 3 && fields[1] == "=>":
				if fields[2] == "not" {
					return nil, fmt.Errorf("%w: %s needs %s, which ldd does not find", ErrNoHostBinary, f, fields[0])
				}
				if strings.HasPrefix(fields[2], "/") {
					seen[fields[2]] = true
				}
			case len(fields) >= 1 && strings.HasPrefix(fields[0], "/"):
				seen[fields[0]] = true // the dynamic loader
			}
		}
	}
	libs := make([]string, 0, len(seen))
	for l := range seen {
		libs = append(libs, l)
	}
	slices.Sort(libs)
	return libs, nil
}

// hostFiles adds the host's files at their own paths under rootfs/, with
// the shared libraries they need.
func hostFiles(ctx context.Context, c *imageContext, files ...string) error {
	libs, err := sharedLibraries(ctx, files...)
	if err != nil {
		return err
	}
	for _, f := range append(slices.Clone(files), libs...) {
		c.file("rootfs"+f, f)
	}
	return nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
