package file

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// column is what one CSV column holds.
type column struct {
	id    bool
	field disposition.Field
	key   string // label key or version component
}

// ParseCSV parses a CSV inventory (see the package documentation). name
// is used in errors only.
func ParseCSV(name string, data []byte) ([]sources.Observation, error) {
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	r := csv.NewReader(bytes.NewReader(data))
	r.ReuseRecord = true
	fail := func(line, col int, field string, err error) error {
		return &ParseError{File: name, Line: line, Column: col, Field: field, Err: err}
	}
	readErr := func(err error) error {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return fail(pe.Line, pe.Column, "", pe.Err)
		}
		return fail(0, 0, "", err)
	}

	header, err := r.Read()
	if err == io.EOF {
		return nil, fail(1, 0, "", errors.New("empty file: want a header row naming the columns"))
	}
	if err != nil {
		return nil, readErr(err)
	}
	names := make([]string, len(header))
	cols := make([]column, len(header))
	seen := map[string]int{}
	idCol := -1
	for i, h := range header {
		h = strings.TrimSpace(h)
		names[i] = h
		line, col := r.FieldPos(i)
		if j, dup := seen[h]; dup {
			return nil, fail(line, col, h, fmt.Errorf("duplicate column (also column %d)", j+1))
		}
		seen[h] = i
		if h == "id" {
			cols[i].id, idCol = true, i
			continue
		}
		f, key, err := sources.ParseFieldName(h)
		if err != nil {
			return nil, fail(line, col, h, fmt.Errorf("unknown column: %v", err))
		}
		cols[i] = column{field: f, key: key}
	}
	if idCol < 0 {
		line, _ := r.FieldPos(0)
		return nil, fail(line, 0, "", errors.New(`no "id" column`))
	}

	var obs []sources.Observation
	firstLine := map[string]int{}
	in := interner{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, readErr(err)
		}
		line, _ := r.FieldPos(0)
		id := rec[idCol]
		if id == "" {
			_, col := r.FieldPos(idCol)
			return nil, fail(line, col, "id", errors.New("empty"))
		}
		if first, dup := firstLine[id]; dup {
			_, col := r.FieldPos(idCol)
			return nil, fail(line, col, "id", fmt.Errorf("%q already on line %d", id, first))
		}
		firstLine[strings.Clone(id)] = line
		o := sources.Observation{ID: strings.Clone(id)}
		for i, v := range rec {
			if cols[i].id || v == "" {
				continue
			}
			if err := o.Set(cols[i].field, cols[i].key, in.str(v)); err != nil {
				l, c := r.FieldPos(i)
				return nil, fail(l, c, names[i], err)
			}
		}
		obs = append(obs, o)
	}
	return obs, nil
}

// interner shares repeated values, and copies each the first time so
// that a value does not keep the buffer it was cut from alive.
type interner map[string]string

func (in interner) str(s string) string {
	if c, ok := in[s]; ok {
		return c
	}
	c := strings.Clone(s)
	in[c] = c
	return c
}
