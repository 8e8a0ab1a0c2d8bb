package configs

import (
	"cmp"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/aggregator"
)

// DecodeStrict decodes a YAML mapping node into v (a pointer to a struct)
// and refuses keys the struct does not declare, naming the line, the column
// and the closest known key. yaml.v3's Node.Decode has no KnownFields, and re-encoding
// the node would lose the line numbers IT needs, so the check walks the node.
//
// Adapters call it on the options of their source; what prefix identifies
// the source in the error ("sources[2] (accounting)") is added by the caller.
//
// It reports every problem in one pass: each unknown key, and each value of
// the wrong type with its path from node and the expected type in words
// ("breaker.open_for: expected a duration such as 800ms, 2s or 5m, got
// \"soon\""), at the line and column of its key. One problem comes back as a
// *LineError, several as Problems.
func DecodeStrict(node *yaml.Node, v any) error {
	if node == nil {
		return nil
	}
	var probs Problems
	checkKnown(node, "", reflect.TypeOf(v), &probs)
	if err := node.Decode(v); err != nil {
		probs = append(probs, decodeProblems(node, err)...)
	}
	switch len(probs) {
	case 0:
		return nil
	case 1:
		return probs[0]
	}
	slices.SortStableFunc(probs, func(a, b *LineError) int { return cmp.Or(a.Line-b.Line, a.Column-b.Column) })
	return probs
}

// Problems are several problems of one part of a configuration, in file
// order. errors.As finds the first *LineError.
type Problems []*LineError

func (p Problems) Error() string {
	lines := make([]string, len(p))
	for i, e := range p {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (p Problems) Unwrap() []error {
	out := make([]error, len(p))
	for i, e := range p {
		out[i] = e
	}
	return out
}

// Each returns every problem err holds: those of errors.Join and Problems,
// one *LineError, an aggregator's problems, yaml.v3's collected type
// errors, or err itself.
func Each(err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, Each(e)...)
		}
		return out
	}
	var probs Problems
	if errors.As(err, &probs) {
		return probs.Unwrap()
	}
	var agg aggregator.Problems
	if errors.As(err, &agg) {
		out := make([]error, len(agg))
		for i, p := range agg {
			out[i] = p
		}
		return out
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out := make([]error, len(te.Errors))
		for i, m := range te.Errors {
			out[i] = errors.New(m)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// asTypeError hands problems found inside an UnmarshalYAML to yaml.v3 in the
// form it collects, so that decoding goes on and every problem of the file
// is reported, not only the first.
func asTypeError(err error) error {
	if err == nil {
		return nil
	}
	te := &yaml.TypeError{}
	for _, e := range Each(err) {
		te.Errors = append(te.Errors, e.Error())
	}
	return te
}

var unmarshalRE = regexp.MustCompile("^cannot unmarshal !!(\\w+)(?: `(.*)`)? into (.+)$")

// typeHints are the words for options whose Go type says too little.
var typeHints = map[string]string{
	"lines": `numbers mapped to labels ("100": Support DE)`,
}

// decodeProblems turns yaml.v3's decode errors, which know a line, into
// problems IT can act on: the key at fault, its column and the type
// expected, in words.
func decodeProblems(node *yaml.Node, err error) Problems {
	var out Problems
	for _, e := range Each(err) {
		var le *LineError
		if errors.As(e, &le) {
			out = append(out, le)
			continue
		}
		msg := strings.TrimPrefix(strings.TrimSpace(e.Error()), "yaml: unmarshal errors:\n")
		for _, m := range strings.Split(msg, "\n") {
			if m = strings.TrimSpace(m); m != "" {
				out = append(out, placeProblem(node, m))
			}
		}
	}
	return out
}

// placeProblem reads one of yaml.v3's messages ("line 3: cannot unmarshal
// !!str `fast` into time.Duration") or a message of an UnmarshalYAML (in
// LineError's words) and finds the key it is about.
func placeProblem(node *yaml.Node, m string) *LineError {
	var at Pos
	m = stripPosition(m, &at)
	if at.Column > 0 {
		return &LineError{Line: at.Line, Column: at.Column, Msg: m}
	}
	match := func(*yaml.Node) bool { return true }
	sub := unmarshalRE.FindStringSubmatch(m)
	if sub != nil {
		match = valueMatcher(sub[1], sub[2])
	}
	path, key := findValue(node, "", at.Line, match)
	if sub != nil {
		got := map[string]string{"seq": "a list", "map": "a mapping", "null": "nothing"}[sub[1]]
		if got == "" {
			got = fmt.Sprintf("%q", sub[2])
		}
		want := typeHints[path]
		if want == "" {
			want = typeInWords(sub[3])
		}
		m = fmt.Sprintf("expected %s, got %s", want, got)
	}
	if key == nil {
		return &LineError{Line: at.Line, Msg: m}
	}
	return &LineError{Line: key.Line, Column: key.Column, Msg: path + ": " + m}
}

// valueMatcher matches the value yaml.v3 named by its tag and its text,
// which yaml.v3 cuts after 7 bytes ("1234567...").
func valueMatcher(tag, text string) func(*yaml.Node) bool {
	return func(v *yaml.Node) bool {
		switch {
		case tag == "seq":
			return v.Kind == yaml.SequenceNode
		case tag == "map":
			return v.Kind == yaml.MappingNode
		case v.Kind != yaml.ScalarNode:
			return false
		case tag == "null":
			return v.Tag == "!!null"
		}
		if cut, ok := strings.CutSuffix(text, "..."); ok && len(cut) == 7 {
			return strings.HasPrefix(v.Value, cut)
		}
		return v.Value == text
	}
}

// typeInWords says what a Go type expects, as IT would write it.
func typeInWords(goType string) string {
	switch {
	case goType == "time.Duration":
		return "a duration such as 800ms, 2s or 5m"
	case goType == "bool":
		return "true or false"
	case goType == "string":
		return "text"
	case strings.HasPrefix(goType, "int") || strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case strings.HasPrefix(goType, "float"):
		return "a number"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping (key: value)"
	}
	return "a value of type " + goType
}

// LineError is an error tied to one place in a configuration file.
type LineError struct {
	Line   int
	Column int // 0: unknown
	Msg    string
	err    error // what Msg was written from, for errors.Is and As
}

func (e *LineError) Error() string {
	switch {
	case e.Line > 0 && e.Column > 0:
		return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

func (e *LineError) Unwrap() error { return e.err }

// KeyError is a kind's error about one of its options (a source's, a
// telephony entry's), at the line and column of key in options, or at the
// entry when key is not written. format and args are fmt.Errorf's: %w
// keeps an error reachable with errors.Is.
func KeyError(options *yaml.Node, key, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	at := posOf(options)
	if options != nil {
		for i := 0; i+1 < len(options.Content); i += 2 {
			if k := options.Content[i]; k.Value == key {
				at = posOf(k)
				break
			}
		}
	}
	return &LineError{Line: at.Line, Column: at.Column, Msg: err.Error(), err: err}
}

func checkKnown(node *yaml.Node, path string, t reflect.Type, probs *Problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	switch t.Kind() {
	case reflect.Struct:
		if _, custom := reflect.New(t).Interface().(yaml.Unmarshaler); custom {
			return
		}
		if node.Kind != yaml.MappingNode {
			// Decode reports it, with the type expected.
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, val := node.Content[i], node.Content[i+1]
			ft, ok := fields[k.Value]
			if !ok {
				msg := unknownKeyMsg(k.Value, fields)
				if path != "" {
					msg = path + ": " + msg
				}
				*probs = append(*probs, &LineError{Line: k.Line, Column: k.Column, Msg: msg})
				continue
			}
			checkKnown(val, joinKey(path, k.Value), ft, probs)
		}
	case reflect.Slice:
		if node.Kind == yaml.SequenceNode {
			for i, item := range node.Content {
				checkKnown(item, fmt.Sprintf("%s[%d]", path, i), t.Elem(), probs)
			}
		}
	case reflect.Map:
		if node.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(node.Content); i += 2 {
				checkKnown(node.Content[i+1], joinKey(path, node.Content[i].Value), t.Elem(), probs)
			}
		}
	}
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

var unknownOptionRE = regexp.MustCompile(`^unknown option "([^"]+)" \(known: [^)]*\)$`)

// SuggestCommon improves a kind's "unknown option" error when the key is a
// misspelt option common to every source ("sectoin" for "section"): the kind
// only knows its own options, so it cannot suggest that.
func SuggestCommon(err error) error {
	var probs Problems
	if errors.As(err, &probs) {
		out := make(Problems, len(probs))
		for i, p := range probs {
			out[i] = p
			if le, ok := SuggestCommon(p).(*LineError); ok {
				out[i] = le
			}
		}
		return out
	}
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
		return &LineError{Line: le.Line, Column: le.Column, Msg: fmt.Sprintf("unknown option %q (did you mean %q?)", m[1], s)}
	}
	return err
}
