package file

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fleetkit/fleetkit/disposition"
	"github.com/fleetkit/fleetkit/sources"
)

// ParseYAML parses a YAML inventory: a list of mappings keyed like
// disposition.Node's JSON (see the package documentation). name is used
// in errors only.
func ParseYAML(name string, data []byte) ([]sources.Observation, error) {
	fail := func(n *yaml.Node, field string, err error) error {
		return &ParseError{File: name, Line: n.Line, Column: n.Column, Field: field, Err: err}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlSyntaxError(name, err)
	}
	if len(doc.Content) == 0 {
		return nil, nil // an empty file lists no node
	}
	root := doc.Content[0]
	if root.Kind != yaml.SequenceNode {
		return nil, fail(root, "", errors.New("want a list of nodes"))
	}
	in := interner{}
	obs := make([]sources.Observation, 0, len(root.Content))
	firstLine := map[string]int{}
	for i, item := range root.Content {
		item = resolve(item)
		if item.Kind != yaml.MappingNode {
			return nil, fail(item, "", fmt.Errorf("node %d: want a mapping", i+1))
		}
		var o sources.Observation
		var idNode *yaml.Node
		seen := map[string]bool{}
		for k := 0; k+1 < len(item.Content); k += 2 {
			kn, vn := item.Content[k], resolve(item.Content[k+1])
			key := kn.Value
			if seen[key] {
				return nil, fail(kn, key, errors.New("duplicate key"))
			}
			seen[key] = true
			null := vn.Kind == yaml.ScalarNode && vn.ShortTag() == "!!null"
			switch key {
			case "id":
				if vn.Kind != yaml.ScalarNode || null {
					return nil, fail(vn, key, errors.New("want a host name"))
				}
				o.ID, idNode = strings.Clone(vn.Value), vn
			case "provenance":
			case "versions", "labels":
				if null {
					continue
				}
				if vn.Kind != yaml.MappingNode {
					return nil, fail(vn, key, errors.New("want a mapping of strings"))
				}
				f := disposition.FieldLabels
				if key == "versions" {
					f = disposition.FieldVersions
				}
				o.Known = o.Known.With(f)
				for m := 0; m+1 < len(vn.Content); m += 2 {
					mk, mv := vn.Content[m], resolve(vn.Content[m+1])
					if mk.Kind != yaml.ScalarNode || mv.Kind != yaml.ScalarNode {
						return nil, fail(mk, key, errors.New("want a mapping of strings"))
					}
					v := mv.Value
					if mv.ShortTag() == "!!null" {
						v = ""
					}
					if err := o.Set(f, in.str(mk.Value), in.str(v)); err != nil {
						return nil, fail(mk, key+"."+mk.Value, err)
					}
				}
			default:
				f, _, err := sources.ParseFieldName(key)
				if err != nil || f == disposition.FieldLabels || f == disposition.FieldVersions {
					return nil, fail(kn, key, errors.New("unknown key"))
				}
				if null {
					continue
				}
				if vn.Kind != yaml.ScalarNode {
					return nil, fail(vn, key, errors.New("want a scalar"))
				}
				if err := o.Set(f, "", in.str(vn.Value)); err != nil {
					return nil, fail(vn, key, err)
				}
			}
		}
		if o.ID == "" {
			return nil, fail(item, "id", fmt.Errorf("node %d has no id", i+1))
		}
		if first, dup := firstLine[o.ID]; dup {
			return nil, fail(idNode, "id", fmt.Errorf("%q already on line %d", o.ID, first))
		}
		firstLine[o.ID] = idNode.Line
		obs = append(obs, o)
	}
	return obs, nil
}

// resolve follows an alias; the parser rejects aliases to nothing.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// yamlSyntaxError positions a parser error ("yaml: line 3: ...").
func yamlSyntaxError(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, perr := strconv.Atoi(num); perr == nil {
				return &ParseError{File: name, Line: line, Err: errors.New(text)}
			}
		}
	}
	return &ParseError{File: name, Err: errors.New(msg)}
}
