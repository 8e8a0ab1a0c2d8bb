package configs

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DecodeStrict decodes a YAML mapping node into v (a pointer to a struct)
// and refuses keys the struct does not declare, naming the line and the
// closest known key. yaml.v3's Node.Decode has no KnownFields, and re-encoding
// the node would lose the line numbers IT needs, so the check walks the node.
//
// Adapters call it on the options of their source; what prefix identifies
// the source in the error ("sources[2] (accounting)") is added by the caller.
func DecodeStrict(node *yaml.Node, v any) error {
	if node == nil {
		return nil
	}
	if err := checkKnown(node, reflect.TypeOf(v)); err != nil {
		return err
	}
	if err := node.Decode(v); err != nil {
		return cleanYAMLError(err)
	}
	return nil
}

// LineError is an error tied to one line of a configuration file.
type LineError struct {
	Line int
	Msg  string
}

func (e *LineError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// KeyLine is the line of key in a mapping node (a source's options), or
// the node's own line when the key is absent: what a kind's error points
// at.
func KeyLine(node *yaml.Node, key string) int {
	if node == nil {
		return 0
	}
	for i := 0; i+1 < len(node.Content); i += 2 {
		if node.Content[i].Value == key {
			return node.Content[i].Line
		}
	}
	return node.Line
}

func checkKnown(node *yaml.Node, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if _, custom := reflect.New(t).Interface().(yaml.Unmarshaler); custom {
			return nil
		}
		if node.Kind != yaml.MappingNode {
			if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
				return nil
			}
			return &LineError{node.Line, fmt.Sprintf("expected a mapping of options, got %s", describe(node))}
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, val := node.Content[i], node.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				return &LineError{k.Line, unknownKeyMsg(k.Value, fields)}
			}
			if err := checkKnown(val, ft); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if node.Kind == yaml.SequenceNode {
			for _, item := range node.Content {
				if err := checkKnown(item, t.Elem()); err != nil {
					return err
				}
			}
		}
	case reflect.Map:
		if node.Kind == yaml.MappingNode {
			for i := 1; i < len(node.Content); i += 2 {
				if err := checkKnown(node.Content[i], t.Elem()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fieldNames lists the YAML keys of struct value v.
func fieldNames(v any) []string {
	var out []string
	for k := range yamlFields(reflect.TypeOf(v)) {
		out = append(out, k)
	}
	return out
}

// yamlFields maps each YAML key of struct t (following ",inline") to its type.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(opts, "inline") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range yamlFields(ft) {
					out[k] = v
				}
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

func unknownKeyMsg(key string, fields map[string]reflect.Type) string {
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	sort.Strings(known)
	if s := closest(key, known); s != "" {
		return fmt.Sprintf("unknown option %q (did you mean %q?)", key, s)
	}
	return fmt.Sprintf("unknown option %q (known: %s)", key, strings.Join(known, ", "))
}

// closest returns the known key within edit distance 2 of key, if any.
func closest(key string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

// cleanYAMLError strips yaml.v3's "yaml: unmarshal errors:\n  " preamble so
// the message reads "line 7: cannot unmarshal ...".
func cleanYAMLError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	return fmt.Errorf("%s", msg)
}

var unknownOptionRE = regexp.MustCompile(`unknown option "([^"]+)" \(known: [^)]*\)`)

// SuggestCommon improves a kind's "unknown option" error when the key is a
// misspelt option common to every source ("sectoin" for "section"): the kind
// only knows its own options, so it cannot suggest that.
func SuggestCommon(err error) error {
	var le *LineError
	if !errors.As(err, &le) {
		return err
	}
	m := unknownOptionRE.FindStringSubmatch(le.Msg)
	if m == nil {
		return err
	}
	common := make([]string, 0, len(commonSourceKeys))
	for k := range commonSourceKeys {
		common = append(common, k)
	}
	sort.Strings(common)
	if s := closest(m[1], common); s != "" {
		return &LineError{le.Line, fmt.Sprintf("unknown option %q (did you mean %q?)", m[1], s)}
	}
	return err
}
