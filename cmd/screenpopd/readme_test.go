package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/configs"
)

// fragmentMarker, on the line before a README's ```yaml fence, says the
// block is part of a configuration that does not stand on its own (it
// leaves out what it needs to pass), so TestReadmeExamples skips it.
const fragmentMarker = "<!-- fragment -->"

// readmeBlock is one ```yaml block of a README.
type readmeBlock struct {
	file string // relative to the repository
	line int    // of the fence
	text string
}

// readmeYAML returns every ```yaml block of every README.md in the
// repository, those marked as fragments left out.
func readmeYAML(t *testing.T, root string) []readmeBlock {
	t.Helper()
	var blocks []readmeBlock
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || d.Name() != "README.md" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		lines := strings.Split(string(data), "\n")
		for i := 0; i < len(lines); i++ {
			if strings.TrimSpace(lines[i]) != "```yaml" {
				continue
			}
			start := i
			var body []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
				body = append(body, lines[i])
			}
			if start > 0 && strings.TrimSpace(lines[start-1]) == fragmentMarker {
				continue
			}
			blocks = append(blocks, readmeBlock{file: rel, line: start + 1, text: strings.Join(body, "\n") + "\n"})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return blocks
}

// readmeEnv has a value for every variable an example names: a DSN of the
// test database, tokens and secrets long enough to be accepted.
func readmeEnv(name string) string {
	switch {
	case strings.Contains(name, "DSN"):
		return "postgres://postgres@127.0.0.1:5432/test"
	case strings.Contains(name, "ENCRYPTION_KEY"), strings.Contains(name, "CACHE_KEY"):
		return "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	}
	return "readme-secret-0123456789"
}

// layeredFS serves files first, then base: the files README examples name
// (lists/vip.csv) beside the configs folder's demo data.
type layeredFS struct {
	files fstest.MapFS
	base  fs.FS
}

func (l layeredFS) Open(name string) (fs.File, error) {
	if f, err := l.files.Open(name); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	return l.base.Open(name)
}

// Every yaml example of every README passes `config check` as IT would
// paste it: a whole configuration, or a `telephony:`, `sources:`, `auth:`
// or other top-level block that the test completes with a demo telephony
// entry, two agents and the demo's sign-in links when it has none (config
// check reports a file without a way to sign in, as the daemon refuses it). Its relative paths resolve in configs/ (demo/...). A block
// that cannot stand alone carries fragmentMarker on the line above.
func TestReadmeExamples(t *testing.T) {
	blocks := readmeYAML(t, filepath.Join("..", ".."))
	if len(blocks) == 0 {
		t.Fatal("no yaml example found in any README")
	}
	files := layeredFS{
		files: fstest.MapFS{"lists/vip.csv": {Data: []byte("phone;tier;account_manager\n+4930123456;gold;Eva Roth\n")}},
		base:  os.DirFS(filepath.Join("..", "..", "configs")),
	}
	for _, b := range blocks {
		t.Run(b.file+":"+strconv.Itoa(b.line), func(t *testing.T) {
			var top map[string]yaml.Node
			if err := yaml.Unmarshal([]byte(b.text), &top); err != nil {
				t.Fatalf("%s:%d: not a YAML mapping: %v\n%s", b.file, b.line, err, b.text)
			}
			// A block in a list item is indented: the completions below
			// go at the top level, so the block goes there first.
			text := dedent(b.text)
			if _, ok := top["telephony"]; !ok {
				text += "telephony: [{name: readme, type: demo, agents: ['1001']}]\n"
			}
			if _, ok := top["agents"]; !ok {
				text += "agents: {names: {'1001': Alice Agent, '1002': Bob Agent}}\n"
			}
			if _, ok := top["auth"]; !ok {
				text += "auth: {demo_links: true}\n"
			}
			cfg, errs := configs.ParsePartial(b.file, []byte(text), files)
			if cfg != nil {
				errs = append(errs, checkBuild(cfg, readmeEnv)...)
			}
			if len(errs) > 0 {
				t.Errorf("%s:%d: the example fails config check (mark it %s if it is not meant to stand alone):\n%v\n%s",
					b.file, b.line, fragmentMarker, errs.Sorted(), b.text)
			}
		})
	}
}

// dedent removes the indentation of text's first line from every line.
func dedent(text string) string {
	first := strings.TrimLeft(text, "\n")
	indent := first[:len(first)-len(strings.TrimLeft(first, " "))]
	if indent == "" {
		return text
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, indent)
	}
	return strings.Join(lines, "\n")
}
