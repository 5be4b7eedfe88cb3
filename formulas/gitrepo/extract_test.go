package gitrepo

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

type entry struct {
	name, link, body string
	typ              byte
}

func tarOf(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body))}
		if e.typ == tar.TypeXGlobalHeader {
			hdr = &tar.Header{Typeflag: e.typ, PAXRecords: map[string]string{"comment": "0123abc"}}
		} else if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		require.NoError(t, tw.WriteHeader(hdr))
		if e.typ == tar.TypeReg {
			_, err := tw.Write([]byte(e.body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return &buf
}

func TestExtractRejectsEscapes(t *testing.T) {
	tests := []struct {
		name  string
		entry entry
		msg   string
	}{
		{"parent path", entry{name: "../evil", typ: tar.TypeReg, body: "x"}, `archive entry "../evil" is outside the tree`},
		{"absolute path", entry{name: "/etc/evil", typ: tar.TypeReg, body: "x"}, `archive entry "/etc/evil" is outside the tree`},
		{"absolute symlink", entry{name: "a", link: "/etc/passwd", typ: tar.TypeSymlink}, `symlink "a" points to an absolute path "/etc/passwd"`},
		{"escaping symlink", entry{name: "d/a", link: "../../x", typ: tar.TypeSymlink}, `symlink "d/a" points outside the tree ("../../x")`},
		{"device", entry{name: "dev", typ: tar.TypeChar}, `archive entry "dev" has unsupported type '3'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := t.TempDir()
			err := extract(tarOf(t, tt.entry), dst)
			require.EqualError(t, err, tt.msg)
		})
	}

	dst := t.TempDir()
	require.NoError(t, extract(tarOf(t,
		entry{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
		entry{name: "d/", typ: tar.TypeDir},
		entry{name: "d/f", typ: tar.TypeReg, body: "hello"},
		entry{name: "d/l", link: "f", typ: tar.TypeSymlink},
		entry{name: "up", link: "d/../d/f", typ: tar.TypeSymlink},
	), dst))
	data, err := os.ReadFile(filepath.Join(dst, "up"))
	require.NoError(t, err)
	require.Equal(t, "hello", string(data))
}
