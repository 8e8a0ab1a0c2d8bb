// Package promqlnames lists the metric names a PromQL expression reads, so
// that a test can check a dashboard's and a rule file's expressions against
// a scrape of the daemon. It is a lexer with just enough grammar to tell a
// metric name from a function, a keyword, a label or a duration; whether
// the expression is valid PromQL is promtool's to say (promtool check
// rules), not this package's.
package promqlnames

import (
	"fmt"
	"slices"
	"strings"
)

// Names returns the metric names expr selects, sorted, each once: every
// identifier that is not a function or aggregation (followed by "("), a
// keyword, a label name (inside {...}, by (...), on (...) and the like)
// or part of a duration ([5m], offset 1h); plus the name of a
// {__name__="..."} matcher. A name matched by a regular expression cannot
// be checked and is an error, as is anything the lexer does not know (a
// Grafana variable left in place: substitute them first).
func Names(expr string) ([]string, error) {
	toks, err := lex(expr)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		switch t.kind {
		case tokPunct:
			switch t.text {
			case "{":
				end, name, err := matchers(toks, i)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", expr, err)
				}
				if name != "" {
					seen[name] = true
				}
				i = end
			case "[":
				end := closing(toks, i, "[", "]")
				if end < 0 {
					return nil, fmt.Errorf("%s: unbalanced [", expr)
				}
				i = end
			}
		case tokIdent:
			next := peek(toks, i+1)
			switch {
			case labelListKeywords[t.text]:
				// by (a, b), on (a), group_left (c): a list of labels;
				// group_left and group_right may come without one.
				if next.text == "(" {
					end := closing(toks, i+1, "(", ")")
					if end < 0 {
						return nil, fmt.Errorf("%s: unbalanced ( after %s", expr, t.text)
					}
					i = end
				}
			case t.text == "offset":
				// offset 5m, offset -1h
				if next.text == "-" {
					i++
				}
				i++
			case operatorKeywords[t.text]:
			case next.text == "(" || next.text == "by" || next.text == "without":
				// a function or an aggregation (sum by (a) (...)): its
				// arguments follow
			default:
				seen[t.text] = true
			}
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}

// labelListKeywords are followed by a list of label names in parentheses.
var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// operatorKeywords are words of the language that are neither metrics nor
// functions (inf and nan are numbers).
var operatorKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "atan2": true,
	"inf": true, "nan": true, "Inf": true, "NaN": true,
}

// matchers reads the label matchers from toks[open] ("{") to their "}",
// and returns the index of the "}" and the metric name an exact
// __name__="..." matcher gives.
func matchers(toks []token, open int) (end int, name string, err error) {
	end = closing(toks, open, "{", "}")
	if end < 0 {
		return 0, "", fmt.Errorf("unbalanced {")
	}
	for i := open + 1; i+2 < end; i++ {
		if toks[i].kind != tokIdent || toks[i].text != "__name__" {
			continue
		}
		op, val := toks[i+1], toks[i+2]
		if op.text != "=" || val.kind != tokString {
			return 0, "", fmt.Errorf("__name__%s%s: a metric name matched other than by = cannot be checked", op.text, val.text)
		}
		name = val.text
	}
	return end, name, nil
}

// closing is the index of the token closing toks[open], counting nested
// pairs of the same kind; -1 when there is none.
func closing(toks []token, open int, left, right string) int {
	depth := 0
	for i := open; i < len(toks); i++ {
		if toks[i].kind != tokPunct {
			continue
		}
		switch toks[i].text {
		case left:
			depth++
		case right:
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func peek(toks []token, i int) token {
	if i < len(toks) {
		return toks[i]
	}
	return token{}
}

type tokenKind int

const (
	tokPunct  tokenKind = iota + 1 // operators and brackets
	tokIdent                       // metric, label, function or keyword
	tokString                      // a string literal, unquoted
	tokNumber                      // a number or a duration
)

type token struct {
	kind tokenKind
	text string
}

// lex splits expr into tokens, dropping white space and comments.
func lex(expr string) ([]token, error) {
	var toks []token
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '#':
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			s, n, err := lexString(expr[i:])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", expr, err)
			}
			toks = append(toks, token{tokString, s})
			i += n
		case isDigit(c) || (c == '.' && i+1 < len(expr) && isDigit(expr[i+1])):
			// 0.99, 1e-3, 0x1f, and durations: 5m, 1h30m, 500ms
			j := i + 1
			for j < len(expr) && (isIdentChar(expr[j]) || expr[j] == '.' ||
				((expr[j] == '-' || expr[j] == '+') && (expr[j-1] == 'e' || expr[j-1] == 'E') && !strings.HasPrefix(expr[i:], "0x"))) {
				j++
			}
			toks = append(toks, token{tokNumber, expr[i:j]})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(expr) && isIdentChar(expr[j]) {
				j++
			}
			toks = append(toks, token{tokIdent, expr[i:j]})
			i = j
		default:
			op := punct(expr[i:])
			if op == "" {
				return nil, fmt.Errorf("%s: unexpected %q at offset %d", expr, c, i)
			}
			toks = append(toks, token{tokPunct, op})
			i += len(op)
		}
	}
	return toks, nil
}

// punct is the operator or bracket s starts with, "" when none.
func punct(s string) string {
	for _, op := range []string{"==", "!=", "<=", ">=", "=~", "!~", "(", ")", "{", "}", "[", "]", ",", "+", "-", "*", "/", "%", "^", "<", ">", "=", "@"} {
		if strings.HasPrefix(s, op) {
			return op
		}
	}
	return ""
}

// lexString reads the string literal s starts with: its value (escapes
// kept as written: only names are compared) and its length in s.
func lexString(s string) (string, int, error) {
	q := s[0]
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q != '`':
			i++
		case s[i] == q:
			return s[1:i], i + 1, nil
		}
	}
	return "", 0, fmt.Errorf("unterminated string %s", s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }
