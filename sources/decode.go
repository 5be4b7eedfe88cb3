package sources

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ErrUnknownKey is wrapped by configuration errors about a key that the
// configuration does not define, usually a typo.
var ErrUnknownKey = errors.New("unknown key")

// ConfigError reports a bad configuration value: the file, the line and
// the path of the field, e.g.
//
//	refd.yaml:7: sources[1].interval: "15" is not a duration
type ConfigError struct {
	// File is the configuration file's name; empty when not known.
	File string
	// Line is the 1-based line of the offending value; 0 when not known.
	Line int
	// Path names the field, e.g. "sources[1].options.url".
	Path string
	// Err says what is wrong.
	Err error
}

// Error implements the error interface.
func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the underlying error, for errors.Is and errors.As.
func (e *ConfigError) Unwrap() error { return e.Err }

// DecodeOptions decodes a YAML node, such as a source's options, into v,
// a pointer to a struct whose fields carry `yaml:"name"` tags. Unlike
// yaml.Node.Decode it treats keys that v does not define as errors, and
// every error is a *ConfigError naming the line and the path of the field
// relative to n (e.g. "pagination.type"). A nil or null node leaves v
// unchanged.
//
// It handles structs, strings, booleans, integers, floats, time.Duration
// (written as "30s"), slices, maps with string keys, pointers,
// yaml.Node (kept as is) and types implementing encoding.TextUnmarshaler
// (such as disposition.State).
func DecodeOptions(n *yaml.Node, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("sources: DecodeOptions needs a non-nil pointer, got %T", v)
	}
	if n == nil {
		return nil
	}
	return decodeNode(n, "", rv.Elem(), 0)
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	yamlNodeType  = reflect.TypeFor[yaml.Node]()
	unmarshalText = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// maxDecodeDepth bounds nesting, which also stops alias cycles.
const maxDecodeDepth = 64

func decodeNode(n *yaml.Node, path string, v reflect.Value, depth int) error {
	bad := func(format string, args ...any) error {
		return &ConfigError{Line: n.Line, Path: path, Err: fmt.Errorf(format, args...)}
	}
	if depth > maxDecodeDepth {
		return bad("nested too deeply")
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil
		}
		return decodeNode(n.Content[0], path, v, depth+1)
	case yaml.AliasNode:
		if n.Alias == nil {
			return bad("alias to nothing")
		}
		return decodeNode(n.Alias, path, v, depth+1)
	}
	if v.Type() == yamlNodeType {
		v.Set(reflect.ValueOf(*n))
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return decodeNode(n, path, v.Elem(), depth+1)
	}
	if v.Type() == durationType {
		if n.Kind != yaml.ScalarNode {
			return bad("expected a duration such as 30s, got %s", kindName(n))
		}
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return bad("%q is not a duration", n.Value)
		}
		v.SetInt(int64(d))
		return nil
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalText) {
		if n.Kind != yaml.ScalarNode {
			return bad("expected a scalar, got %s", kindName(n))
		}
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(n.Value)); err != nil {
			return bad("%v", err)
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Struct:
		return decodeStruct(n, path, v, depth)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return bad("expected a mapping, got %s", kindName(n))
		}
		if v.Type().Key().Kind() != reflect.String {
			return bad("cannot decode into %s", v.Type())
		}
		if v.IsNil() {
			v.Set(reflect.MakeMapWithSize(v.Type(), len(n.Content)/2))
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				return &ConfigError{Line: k.Line, Path: path, Err: errors.New("keys must be scalars")}
			}
			if seen[k.Value] {
				return &ConfigError{Line: k.Line, Path: joinPath(path, k.Value), Err: errors.New("duplicate key")}
			}
			seen[k.Value] = true
			e := reflect.New(v.Type().Elem()).Elem()
			if err := decodeNode(val, joinPath(path, k.Value), e, depth+1); err != nil {
				return err
			}
			v.SetMapIndex(reflect.ValueOf(k.Value).Convert(v.Type().Key()), e)
		}
		return nil
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return bad("expected a list, got %s", kindName(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := decodeNode(c, fmt.Sprintf("%s[%d]", path, i), s.Index(i), depth+1); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Interface:
		if v.NumMethod() != 0 {
			return bad("cannot decode into %s", v.Type())
		}
		var x any
		if err := n.Decode(&x); err != nil {
			return bad("%v", err)
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return bad("expected a scalar, got %s", kindName(n))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(n.Value)
	case reflect.Bool:
		b, err := strconv.ParseBool(n.Value)
		if err != nil || n.ShortTag() != "!!bool" {
			return bad("%q is not true or false", n.Value)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, err := strconv.ParseInt(n.Value, 0, v.Type().Bits())
		if err != nil {
			return bad("%q is not an integer", n.Value)
		}
		v.SetInt(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u, err := strconv.ParseUint(n.Value, 0, v.Type().Bits())
		if err != nil {
			return bad("%q is not a non-negative integer", n.Value)
		}
		v.SetUint(u)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(n.Value, v.Type().Bits())
		if err != nil {
			return bad("%q is not a number", n.Value)
		}
		v.SetFloat(f)
	default:
		return bad("cannot decode into %s", v.Type())
	}
	return nil
}

func decodeStruct(n *yaml.Node, path string, v reflect.Value, depth int) error {
	if n.Kind != yaml.MappingNode {
		return &ConfigError{Line: n.Line, Path: path, Err: fmt.Errorf("expected a mapping, got %s", kindName(n))}
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "-" || name == "" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		fi, ok := fields[k.Value]
		if !ok || k.Kind != yaml.ScalarNode {
			return &ConfigError{Line: k.Line, Path: joinPath(path, k.Value),
				Err: fmt.Errorf("%w (valid: %s)", ErrUnknownKey, strings.Join(names, ", "))}
		}
		if seen[k.Value] {
			return &ConfigError{Line: k.Line, Path: joinPath(path, k.Value), Err: errors.New("duplicate key")}
		}
		seen[k.Value] = true
		if err := decodeNode(val, joinPath(path, k.Value), v.Field(fi), depth+1); err != nil {
			return err
		}
	}
	return nil
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	if key == "" {
		return path
	}
	return path + "." + key
}

// syntaxError turns a YAML parser error ("yaml: line 3: did not find
// expected key") into a *ConfigError naming the file and line.
func syntaxError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if line, perr := strconv.Atoi(num); perr == nil {
				return &ConfigError{File: file, Line: line, Err: errors.New(text)}
			}
		}
	}
	return &ConfigError{File: file, Err: errors.New(msg)}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

// AtOption sets the line of a *ConfigError about a top-level adapter
// option to the line of that option in n, the source's options node, so
// that an adapter's Factory reports errors from its New at the right line.
// Other errors are returned unchanged.
func AtOption(n *yaml.Node, err error) error {
	var ce *ConfigError
	if n == nil || !errors.As(err, &ce) || ce.Line != 0 {
		return err
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	ce.Line = n.Line
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == ce.Path {
				ce.Line = n.Content[i].Line
			}
		}
	}
	return err
}

// Decode is the body of an adapter's Factory: it decodes options into the
// adapter's options struct O (unknown keys and wrong types are errors
// naming the line), calls newSource, and gives an error about one option
// that option's line.
func Decode[O any, S Source](name string, options *yaml.Node, newSource func(name string, opts O) (S, error)) (Source, error) {
	var opts O
	if err := DecodeOptions(options, &opts); err != nil {
		return nil, err
	}
	s, err := newSource(name, opts)
	if err != nil {
		return nil, AtOption(options, err)
	}
	return s, nil
}
