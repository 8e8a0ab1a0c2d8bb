package configs

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Pos is where something starts in a configuration file; the zero Pos is
// nowhere in particular (the file as a whole).
type Pos struct {
	Line   int
	Column int
}

func posOf(n *yaml.Node) Pos {
	if n == nil {
		return Pos{}
	}
	return Pos{n.Line, n.Column}
}

// segment is one step of an option's path: a key, or an index into a list.
type segment struct {
	key     string
	index   int
	isIndex bool
}

// parsePath reads a path as messages write it: `sources[2].mapping.fields[1].format`,
// `lines["100"]`. It returns nil for a path it cannot read.
func parsePath(path string) []segment {
	var out []segment
	for i := 0; i < len(path); {
		switch {
		case path[i] == '.':
			i++
		case strings.HasPrefix(path[i:], `["`):
			j := i + 2
			for j < len(path) && path[j] != '"' {
				if path[j] == '\\' {
					j++
				}
				j++
			}
			if j+1 >= len(path) || path[j+1] != ']' {
				return nil
			}
			key, err := strconv.Unquote(path[i+1 : j+1])
			if err != nil {
				return nil
			}
			out = append(out, segment{key: key})
			i = j + 2
		case path[i] == '[':
			end := strings.IndexByte(path[i:], ']')
			if end < 0 {
				return nil
			}
			n, err := strconv.Atoi(path[i+1 : i+end])
			if err != nil {
				return nil
			}
			out = append(out, segment{index: n, isIndex: true})
			i += end + 1
		default:
			end := strings.IndexAny(path[i:], ".[")
			if end < 0 {
				end = len(path) - i
			}
			out = append(out, segment{key: path[i : i+end]})
			i += end
		}
	}
	return out
}

// lookup finds the key path names under root: the key's node for a key,
// the item for a list index. An option that is not written (a default,
// a missing key) is placed at the deepest part of its path that is: a
// source without section: at the source. at is nil when not even the
// first step is in the file; exact says the whole path is written.
func lookup(root *yaml.Node, path string) (at *yaml.Node, exact bool) {
	node := root
	segs := parsePath(path)
	for n, seg := range segs {
		if node.Kind == yaml.AliasNode && node.Alias != nil {
			node = node.Alias
		}
		var next *yaml.Node
		switch {
		case !seg.isIndex && node.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(node.Content); i += 2 {
				if k := node.Content[i]; k.Value == seg.key || strings.TrimSpace(k.Value) == seg.key {
					at, next = k, node.Content[i+1]
					break
				}
			}
		case seg.isIndex && node.Kind == yaml.SequenceNode && seg.index < len(node.Content):
			next = node.Content[seg.index]
			at = next
		}
		if next == nil {
			break
		}
		node, exact = next, n == len(segs)-1
	}
	return at, exact
}

var plainKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// joinKey appends a mapping's key to path as lookup reads it back.
func joinKey(path, key string) string {
	if !plainKeyRE.MatchString(key) {
		return fmt.Sprintf("%s[%q]", path, key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// findValue finds, under node, the innermost value that starts on line and
// satisfies match, the first in the file of those, and returns the path to
// it from node and its key (the item itself in a list). What yaml.v3 reports of a value of the wrong
// type is its line: this finds the key at fault, so that IT reads its
// name and column.
func findValue(node *yaml.Node, path string, line int, match func(*yaml.Node) bool) (string, *yaml.Node) {
	if node == nil {
		return "", nil
	}
	switch node.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, v := node.Content[i], node.Content[i+1]
			p := joinKey(path, k.Value)
			if found, at := findValue(v, p, line, match); at != nil {
				return found, at
			}
			if v.Line == line && match(v) {
				return p, k
			}
		}
	case yaml.SequenceNode:
		for i, item := range node.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			if found, at := findValue(item, p, line, match); at != nil {
				return found, at
			}
			if item.Line == line && match(item) {
				return p, item
			}
		}
	}
	return "", nil
}
