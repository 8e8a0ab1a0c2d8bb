package httpsource

import (
	"fmt"
	"slices"
	"strings"

	"github.com/screenpop/screenpop/aggregator"
)

// template is a text with {name} placeholders for lookup parameters, split
// once at construction so a lookup only concatenates.
type template struct {
	parts []part
}

type part struct {
	text  string
	param string // set for a placeholder; text is then empty
}

// parseTemplate splits s at {name} placeholders. Only {identifier} is a
// placeholder, so JSON's own braces ({"a": 1}) stay text; an identifier
// that is not a lookup parameter is an error, because a misspelt
// {custmer_id} would otherwise go out to the server literally.
func parseTemplate(s string) (template, error) {
	return parseTemplateWith(s, aggregator.ParamNames)
}

// parseTemplateWith is parseTemplate for a template whose placeholders are
// known: a search's (SearchParams) rather than a lookup's.
func parseTemplateWith(s string, known []string) (template, error) {
	var t template
	for len(s) > 0 {
		open := indexPlaceholder(s)
		if open < 0 {
			t.parts = append(t.parts, part{text: s})
			break
		}
		if open > 0 {
			t.parts = append(t.parts, part{text: s[:open]})
		}
		end := strings.IndexByte(s[open:], '}') + open
		name := s[open+1 : end]
		if !slices.Contains(known, name) {
			return template{}, fmt.Errorf("unknown parameter {%s} (%s)", name, knownList(known))
		}
		t.parts = append(t.parts, part{param: name})
		s = s[end+1:]
	}
	return t, nil
}

// indexPlaceholder finds the first "{identifier}" in s.
func indexPlaceholder(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] != '{' {
			continue
		}
		j := i + 1
		for j < len(s) && isNameChar(s[j], j == i+1) {
			j++
		}
		if j > i+1 && j < len(s) && s[j] == '}' {
			return i
		}
	}
	return -1
}

func isNameChar(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || (!first && c >= '0' && c <= '9')
}

// params lists the parameters the template uses.
func (t template) params() []string {
	var out []string
	for _, p := range t.parts {
		if p.param != "" && !slices.Contains(out, p.param) {
			out = append(out, p.param)
		}
	}
	return out
}

// render fills the placeholders with escape(value). ok is false when the
// key has no value for one of them: there is nothing to look up.
func (t template) render(key aggregator.Key, escape func(part int, value string) string) (string, bool) {
	return t.renderWith(key.Param, escape)
}

// renderWith is render with the values value gives.
func (t template) renderWith(value func(name string) (string, bool), escape func(part int, value string) string) (string, bool) {
	var b strings.Builder
	for i, p := range t.parts {
		if p.param == "" {
			b.WriteString(p.text)
			continue
		}
		v, ok := value(p.param)
		if !ok {
			return "", false
		}
		b.WriteString(escape(i, v))
	}
	return b.String(), true
}

// withAll renders with the same value for every parameter, to validate the
// result at construction.
func (t template) withAll(value string) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.param == "" {
			b.WriteString(p.text)
		} else {
			b.WriteString(value)
		}
	}
	return b.String()
}

func knownList(known []string) string {
	names := make([]string, len(known))
	for i, n := range known {
		names[i] = "{" + n + "}"
	}
	return "known parameters: " + strings.Join(names, ", ")
}
