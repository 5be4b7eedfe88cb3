package fleet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/fleetkit/fleetkit/disposition"
)

// WriteJSON writes f.Nodes as a JSON array, one node per line, each as
// disposition.Node marshals.
func (f *Fleet) WriteJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	bw.WriteString("[")
	for i, n := range f.Nodes {
		buf.Reset()
		if err := enc.Encode(n); err != nil {
			return fmt.Errorf("fleet: node %q: %w", n.ID, err)
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteByte('\n')
		bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	bw.WriteString("\n]\n")
	return bw.Flush()
}

// ReadJSON reads a JSON array of nodes, as WriteJSON writes it. Every
// node must be valid (disposition.Node.Validate) and have a unique ID;
// enumerations must hold known values. Errors name the line and column
// (in bytes, from 1) of the offending node or token.
func ReadJSON(r io.Reader) ([]*disposition.Node, error) {
	pr := &posReader{r: r}
	dec := json.NewDecoder(pr)
	fail := func(off int64, format string, args ...any) error {
		line, col := pr.pos(off)
		return fmt.Errorf("fleet: JSON line %d, column %d: %w", line, col, fmt.Errorf(format, args...))
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, pr.streamError(dec, err, "")
	}
	if tok != json.Delim('[') {
		return nil, fail(dec.InputOffset()-1, "want an array of nodes, got %v", tok)
	}
	var (
		nodes  []*disposition.Node
		seen   = make(map[string]int64) // ID -> offset of its node
		intern = make(interner)
	)
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, pr.streamError(dec, err, fmt.Sprintf("node %d: ", len(nodes)+1))
		}
		start := dec.InputOffset() - int64(len(raw))
		if bytes.Equal(raw, []byte("null")) {
			return nil, fail(start, "node %d: null", len(nodes)+1)
		}
		n := new(disposition.Node)
		if err := json.Unmarshal(raw, n); err != nil {
			off := start
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				off += te.Offset
			}
			return nil, fail(off, "node %d: %w", len(nodes)+1, err)
		}
		if err := n.Validate(); err != nil {
			return nil, fail(start, "node %d: %w", len(nodes)+1, err)
		}
		if first, dup := seen[n.ID]; dup {
			line, _ := pr.pos(first)
			return nil, fail(start, "node %d: duplicate id %q (first on line %d)", len(nodes)+1, n.ID, line)
		}
		seen[n.ID] = start
		intern.node(n)
		nodes = append(nodes, n)
	}
	if _, err := dec.Token(); err != nil { // the closing ]
		return nil, pr.streamError(dec, err, "")
	}
	if tok, err := dec.Token(); err != io.EOF {
		if err != nil {
			return nil, pr.streamError(dec, err, "after the array: ")
		}
		return nil, fail(dec.InputOffset()-1, "unexpected %v after the array", tok)
	}
	return nodes, nil
}

// streamError positions an error of the decoder's token stream. Syntax
// errors inside a value carry an offset the decoder counts from an
// unreliable base, so the value is scanned again on its own.
func (p *posReader) streamError(dec *json.Decoder, err error, what string) error {
	off := dec.InputOffset()
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		off = p.n
		err = io.ErrUnexpectedEOF
	case errors.As(err, &se):
		rest, _ := io.ReadAll(dec.Buffered())
		var raw json.RawMessage
		var again *json.SyntaxError
		if errors.As(json.NewDecoder(bytes.NewReader(rest)).Decode(&raw), &again) && again.Offset > 0 {
			off += again.Offset - 1
		}
	default:
		off = p.n
	}
	line, col := p.pos(off)
	return fmt.Errorf("fleet: JSON line %d, column %d: %s%w", line, col, what, err)
}

// posReader counts what it reads so that byte offsets can be turned into
// lines and columns.
type posReader struct {
	r        io.Reader
	n        int64   // bytes read
	newlines []int64 // offsets of '\n'
}

func (p *posReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	for i := 0; i < n; {
		j := bytes.IndexByte(b[i:n], '\n')
		if j < 0 {
			break
		}
		p.newlines = append(p.newlines, p.n+int64(i+j))
		i += j + 1
	}
	p.n += int64(n)
	return n, err
}

// pos returns the line and column, both from 1, of byte offset off.
func (p *posReader) pos(off int64) (line, col int) {
	off = max(0, min(off, p.n))
	k := sort.Search(len(p.newlines), func(i int) bool { return p.newlines[i] >= off })
	start := int64(0)
	if k > 0 {
		start = p.newlines[k-1] + 1
	}
	return k + 1, int(off-start) + 1
}

// interner makes the nodes a reader returns share their repeated strings.
// It copies a string the first time it sees it, so that a value cut from
// a larger buffer (a CSV line) does not keep that buffer alive.
type interner map[string]string

func (in interner) str(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := in[s]; ok {
		return c
	}
	c := strings.Clone(s)
	in[c] = c
	return c
}

func (in interner) node(n *disposition.Node) {
	for _, p := range [...]*string{&n.Region, &n.Metro, &n.Site, &n.Cluster, &n.Rack,
		&n.Timezone, &n.Role, &n.Platform, &n.ReleaseState} {
		*p = in.str(*p)
	}
	for _, m := range [...]map[string]string{n.Versions, n.Labels} {
		for k, v := range m {
			m[k] = in.str(v)
		}
	}
}
