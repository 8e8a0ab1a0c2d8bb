package postgres

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/screenpop/screenpop/aggregator"
)

// namedQuery is a query whose :name parameters have been rewritten to the
// $1..$n placeholders PostgreSQL understands.
type namedQuery struct {
	sql string
	// params[i] is the lookup parameter bound to $(i+1). A name used twice
	// in the query is bound once, so "$1" appears twice.
	params []string
}

// parseNamed rewrites :name parameters to $n. It walks the SQL the way the
// PostgreSQL lexer does for the parts that matter: inside string literals
// ('...', E'...', $tag$...$tag$), quoted identifiers and comments a colon is
// text, and "::" is a cast, so neither is mistaken for a parameter.
//
// Positional $1 placeholders are refused: the source decides what $1 means,
// not the person writing the query, and mixing both styles would bind the
// wrong value without an error.
func parseNamed(query string) (namedQuery, error) {
	return parseNamedWith(query, aggregator.ParamNames)
}

// parseNamedWith is parseNamed for a query whose parameters are known:
// a search's (SearchParams) rather than a lookup's.
func parseNamedWith(query string, known []string) (namedQuery, error) {
	if strings.TrimSpace(query) == "" {
		return namedQuery{}, fmt.Errorf("query is empty")
	}
	var (
		out      strings.Builder
		params   []string
		index    = map[string]int{}
		i        int
		n        = len(query)
		sawEnd   bool // a top-level ';' was seen
		endsAt   int
		afterEnd bool // something other than blanks/comments follows it
	)
	out.Grow(n)
	for i < n {
		c := query[i]
		if sawEnd && !isSpace(c) && !(c == '-' && i+1 < n && query[i+1] == '-') && !(c == '/' && i+1 < n && query[i+1] == '*') && c != ';' {
			afterEnd = true
		}
		switch {
		case c == '\'':
			// An E'...' string lets a backslash escape the quote.
			backslash := i > 0 && (query[i-1] == 'e' || query[i-1] == 'E') && (i < 2 || !isIdent(query[i-2]))
			j := skipQuoted(query, i, '\'', backslash)
			if j < 0 {
				return namedQuery{}, fmt.Errorf("query has a string literal that is never closed (opened at %s)", position(query, i))
			}
			out.WriteString(query[i:j])
			i = j
		case c == '"':
			j := skipQuoted(query, i, '"', false)
			if j < 0 {
				return namedQuery{}, fmt.Errorf("query has a quoted identifier that is never closed (opened at %s)", position(query, i))
			}
			out.WriteString(query[i:j])
			i = j
		case c == '-' && i+1 < n && query[i+1] == '-':
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = n - i
			}
			out.WriteString(query[i : i+j])
			i += j
		case c == '/' && i+1 < n && query[i+1] == '*':
			j := skipBlockComment(query, i)
			if j < 0 {
				return namedQuery{}, fmt.Errorf("query has a /* comment that is never closed (opened at %s)", position(query, i))
			}
			out.WriteString(query[i:j])
			i = j
		case c == '$':
			if i+1 < n && isDigit(query[i+1]) && (i == 0 || !isIdent(query[i-1])) {
				j := i + 1
				for j < n && isDigit(query[j]) {
					j++
				}
				return namedQuery{}, fmt.Errorf("query uses the positional parameter %s at %s: write a named parameter instead (%s)", query[i:j], position(query, i), knownList(known))
			}
			if tag, ok := dollarTag(query, i); ok && (i == 0 || !isIdent(query[i-1])) {
				end := strings.Index(query[i+len(tag):], tag)
				if end < 0 {
					return namedQuery{}, fmt.Errorf("query has a %s-quoted string that is never closed (opened at %s)", tag, position(query, i))
				}
				j := i + len(tag) + end + len(tag)
				out.WriteString(query[i:j])
				i = j
				continue
			}
			out.WriteByte(c)
			i++
		case c == ':' && i+1 < n && query[i+1] == ':':
			out.WriteString("::")
			i += 2
		case c == ':' && i+1 < n && isIdentStart(query[i+1]):
			j := i + 1
			for j < n && (isIdentStart(query[j]) || isDigit(query[j])) {
				j++
			}
			name := query[i+1 : j]
			if !slices.Contains(known, name) {
				return namedQuery{}, fmt.Errorf("query uses the unknown parameter :%s at %s (%s)", name, position(query, i), knownList(known))
			}
			k, seen := index[name]
			if !seen {
				params = append(params, name)
				k = len(params)
				index[name] = k
			}
			out.WriteString("$" + strconv.Itoa(k))
			i = j
		case c == ';':
			if !sawEnd {
				sawEnd, endsAt = true, i
			}
			out.WriteByte(c)
			i++
		default:
			out.WriteByte(c)
			i++
		}
	}
	if afterEnd {
		return namedQuery{}, fmt.Errorf("query holds more than one statement (the first ends at %s): a source runs exactly one SELECT", position(query, endsAt))
	}
	return namedQuery{sql: out.String(), params: params}, nil
}

// skipQuoted returns the index just past the literal that opens at i, or -1.
// A doubled quote is an escaped quote; with backslash, so is \'.
func skipQuoted(s string, i int, quote byte, backslash bool) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '\\':
			if backslash {
				j++
			}
		case quote:
			if j+1 < len(s) && s[j+1] == quote {
				j++
				continue
			}
			return j + 1
		}
	}
	return -1
}

// skipBlockComment returns the index just past the comment opening at i, or
// -1. PostgreSQL block comments nest.
func skipBlockComment(s string, i int) int {
	depth := 0
	for j := i; j+1 < len(s); j++ {
		switch {
		case s[j] == '/' && s[j+1] == '*':
			depth++
			j++
		case s[j] == '*' && s[j+1] == '/':
			depth--
			j++
			if depth == 0 {
				return j + 1
			}
		}
	}
	return -1
}

// dollarTag returns "$tag$" or "$$" when a dollar-quoted string opens at i.
func dollarTag(s string, i int) (string, bool) {
	j := i + 1
	if j < len(s) && s[j] == '$' {
		return "$$", true
	}
	if j >= len(s) || !isIdentStart(s[j]) {
		return "", false
	}
	for j < len(s) && (isIdentStart(s[j]) || isDigit(s[j])) {
		j++
	}
	if j < len(s) && s[j] == '$' {
		return s[i : j+1], true
	}
	return "", false
}

// position says where offset i is in a multi-line query, in the words of
// someone reading the YAML block: "query line 3, column 7".
func position(s string, i int) string {
	line := 1 + strings.Count(s[:i], "\n")
	col := i - strings.LastIndexByte(s[:i], '\n')
	return fmt.Sprintf("query line %d, column %d", line, col)
}

func knownList(known []string) string {
	names := make([]string, len(known))
	for i, n := range known {
		names[i] = ":" + n
	}
	return "known parameters: " + strings.Join(names, ", ")
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
func isIdent(c byte) bool { return isIdentStart(c) || isDigit(c) || c == '$' }
