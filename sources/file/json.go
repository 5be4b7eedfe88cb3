package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// jsonReader walks a JSON inventory token by token, so that errors can
// name the line and column of the offending value.
type jsonReader struct {
	name string
	data []byte
	dec  *json.Decoder
	in   interner
}

// ParseJSON parses a JSON inventory: an array of objects keyed like
// disposition.Node's JSON (see the package documentation). name is used
// in errors only.
func ParseJSON(name string, data []byte) ([]sources.Observation, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	j := &jsonReader{name: name, data: data, dec: json.NewDecoder(bytes.NewReader(data)), in: interner{}}
	j.dec.UseNumber()

	start := j.offset()
	tok, err := j.token()
	if err != nil {
		return nil, err
	}
	if tok != json.Delim('[') {
		return nil, j.fail(start, "", fmt.Errorf("want an array of nodes, got %s", describe(tok)))
	}
	var obs []sources.Observation
	firstAt := map[string]int64{}
	for j.dec.More() {
		at := j.offset()
		o, err := j.node(len(obs) + 1)
		if err != nil {
			return nil, err
		}
		if first, dup := firstAt[o.ID]; dup {
			line, _ := position(data, first)
			return nil, j.fail(at, "id", fmt.Errorf("%q already on line %d", o.ID, line))
		}
		firstAt[o.ID] = at
		obs = append(obs, o)
	}
	if _, err := j.token(); err != nil { // ]
		return nil, err
	}
	at := j.offset()
	if tok, err := j.dec.Token(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("unexpected %s after the array", describe(tok))
		}
		return nil, j.fail(at, "", err)
	}
	return obs, nil
}

// node reads one object.
func (j *jsonReader) node(index int) (sources.Observation, error) {
	var o sources.Observation
	start := j.offset()
	tok, err := j.token()
	if err != nil {
		return o, err
	}
	if tok != json.Delim('{') {
		return o, j.fail(start, "", fmt.Errorf("node %d: want an object, got %s", index, describe(tok)))
	}
	seen := map[string]bool{}
	for j.dec.More() {
		kat := j.offset()
		tok, err := j.token()
		if err != nil {
			return o, err
		}
		key, _ := tok.(string) // object keys are always strings
		if seen[key] {
			return o, j.fail(kat, key, errors.New("duplicate key"))
		}
		seen[key] = true
		vat := j.offset()
		switch key {
		case "id":
			s, err := j.string(key)
			if err != nil {
				return o, err
			}
			o.ID = strings.Clone(s)
		case "provenance":
			var skip json.RawMessage
			if err := j.dec.Decode(&skip); err != nil {
				return o, j.fail(vat, key, err)
			}
		case "versions", "labels":
			if err := j.stringMap(&o, key); err != nil {
				return o, err
			}
		default:
			f, _, err := sources.ParseFieldName(key)
			if err != nil || f == disposition.FieldLabels || f == disposition.FieldVersions {
				return o, j.fail(kat, key, errors.New("unknown key"))
			}
			tok, err := j.token()
			if err != nil {
				return o, err
			}
			var v string
			switch t := tok.(type) {
			case nil:
				continue // null: unknown
			case json.Number:
				if f != disposition.FieldTraffic && f != disposition.FieldCapacity {
					return o, j.fail(vat, key, fmt.Errorf("want a string, got %s", t))
				}
				v = t.String()
			case string:
				if f == disposition.FieldTraffic || f == disposition.FieldCapacity {
					return o, j.fail(vat, key, fmt.Errorf("want a number, got %q", t))
				}
				v = j.in.str(t)
			default:
				return o, j.fail(vat, key, fmt.Errorf("want a value, got %s", describe(tok)))
			}
			if err := o.Set(f, "", v); err != nil {
				return o, j.fail(vat, key, err)
			}
		}
	}
	if _, err := j.token(); err != nil { // }
		return o, err
	}
	if o.ID == "" {
		return o, j.fail(start, "id", fmt.Errorf("node %d has no id", index))
	}
	return o, nil
}

// stringMap reads a "versions" or "labels" object of strings into o.
func (j *jsonReader) stringMap(o *sources.Observation, key string) error {
	f := disposition.FieldLabels
	if key == "versions" {
		f = disposition.FieldVersions
	}
	at := j.offset()
	tok, err := j.token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if tok != json.Delim('{') {
		return j.fail(at, key, fmt.Errorf("want an object of strings, got %s", describe(tok)))
	}
	o.Known = o.Known.With(f) // present, even if empty
	for j.dec.More() {
		kat := j.offset()
		tok, err := j.token()
		if err != nil {
			return err
		}
		k, _ := tok.(string)
		v, err := j.string(key + "." + k)
		if err != nil {
			return err
		}
		if err := o.Set(f, j.in.str(k), j.in.str(v)); err != nil {
			return j.fail(kat, key+"."+k, err)
		}
	}
	_, err = j.token() // }
	return err
}

// string reads a string value.
func (j *jsonReader) string(field string) (string, error) {
	at := j.offset()
	tok, err := j.token()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", j.fail(at, field, fmt.Errorf("want a string, got %s", describe(tok)))
	}
	return s, nil
}

// token reads the next token, turning errors into positioned ones.
func (j *jsonReader) token() (json.Token, error) {
	at := j.offset()
	tok, err := j.dec.Token()
	if err == io.EOF {
		return nil, j.fail(int64(len(j.data)), "", io.ErrUnexpectedEOF)
	}
	if err != nil {
		return nil, j.fail(at, "", err)
	}
	return tok, nil
}

// offset returns where the next token starts: past the whitespace and
// separators after the decoder's position.
func (j *jsonReader) offset() int64 {
	off := j.dec.InputOffset()
	for off < int64(len(j.data)) {
		switch j.data[off] {
		case ' ', '\t', '\r', '\n', ',', ':':
			off++
			continue
		}
		break
	}
	return off
}

func (j *jsonReader) fail(off int64, field string, err error) error {
	line, col := position(j.data, off)
	return &ParseError{File: j.name, Line: line, Column: col, Field: field, Err: err}
}

// position turns a byte offset into a line and column, both from 1.
func position(data []byte, off int64) (line, col int) {
	off = max(0, min(off, int64(len(data))))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

func describe(tok json.Token) string {
	switch t := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		switch t {
		case '{', '}':
			return "an object"
		}
		return "an array"
	case string:
		return fmt.Sprintf("the string %q", t)
	case json.Number:
		return "the number " + t.String()
	case bool:
		return fmt.Sprint(t)
	}
	return fmt.Sprint(tok)
}
