package configs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"go.yaml.in/yaml/v3"
)

// FuzzParse feeds arbitrary bytes to the configuration loader, as IT's
// editor or a broken deployment might: it must not panic, and every
// problem it reports must be an Error that names the file and the line
// (and, when known, the column) inside it where IT fixes it. Only two
// problems are about the file as a whole: an empty file, and a top-level
// option the file does not write. Seeds: every YAML file under configs
// (the demo, the samples, each invalid-*.yaml with its known mistakes)
// and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	more, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range append(seeds, more...) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("telephony: [{name: demo, type: demo}]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("\t- x\n"))
	f.Add([]byte("a: 1\nb: \"x\x01\"\n"))
	f.Add([]byte("---\n...\n"))
	old := Known
	Known = Kinds{Telephony: []string{"ari", "demo", "http"}, Sources: []string{"file", "http", "postgres"}}
	f.Cleanup(func() { Known = old })
	files := fstest.MapFS{"demo/directory.json": {Data: []byte(`[]`)}}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data, files)
		if err == nil {
			if cfg == nil {
				t.Fatal("no configuration and no error")
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error %T %q is not the Errors of a file", err, err)
		}
		written := topLevelKeys(data)
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, e := range errs {
			checkPlaced(t, e, lines, written)
		}
		// config check reads the same file past its problems.
		_, partial := ParsePartial("fuzz.yaml", data, files)
		for _, e := range partial {
			checkPlaced(t, e, lines, written)
		}
	})
}

// topLevelKeys are the options a YAML file writes at the top.
func topLevelKeys(data []byte) map[string]bool {
	var doc yaml.Node
	out := map[string]bool{}
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return out
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		out[root.Content[i].Value] = true
	}
	return out
}

// checkPlaced is what an Error of a file of lines lines must say: the
// file, and where in it, unless it is about the file as a whole.
func checkPlaced(t *testing.T, e Error, lines int, written map[string]bool) {
	t.Helper()
	text := e.Error()
	if e.File != "fuzz.yaml" || !strings.HasPrefix(text, "fuzz.yaml:") {
		t.Errorf("%q does not name the file", text)
	}
	if e.Msg == "" {
		t.Errorf("%q says nothing", text)
	}
	if e.Line == 0 {
		option, _, _ := strings.Cut(e.Msg, ":")
		if e.Msg != "the file is empty" && (e.Path != "" || written[option] || strings.Contains(option, " ")) {
			t.Errorf("%q is about no line of the file", text)
		}
		return
	}
	if e.Line > lines || e.Column < 0 {
		t.Errorf("%q is placed at line %d column %d of a file of %d lines", text, e.Line, e.Column, lines)
	}
	want := fmt.Sprintf("fuzz.yaml:%d: ", e.Line)
	if e.Column > 0 {
		want = fmt.Sprintf("fuzz.yaml:%d:%d: ", e.Line, e.Column)
	}
	if !strings.HasPrefix(text, want) {
		t.Errorf("%q does not start with %q", text, want)
	}
}

// TestYAMLMistakesHaveALine: yaml.v3 names no line for a mistake on the
// first line, nor for a character it cannot read; FuzzParse found both
// reported at the file as a whole. They are placed where they are.
func TestYAMLMistakesHaveALine(t *testing.T) {
	const fix = " (fix: check the indentation and the quotes on this line and the lines above it)"
	for in, want := range map[string]string{
		"\t- x\n":                       "x.yaml:1: not valid YAML: found character that cannot start any token" + fix,
		"region: DE\nname: \"a\x01\"\n": "x.yaml:2:9: not valid YAML: control characters are not allowed" + fix,
		"region: DE\nname: \xff\n":      "x.yaml:2:7: not valid YAML: invalid leading UTF-8 octet" + fix,
		"region: DE\nname: [\n":         "x.yaml:2: not valid YAML: did not find expected node content" + fix,
	} {
		_, err := Parse("x.yaml", []byte(in), nil)
		if err == nil || err.Error() != want {
			t.Errorf("Parse(%q):\n got %v\nwant %s", in, err, want)
		}
	}
}
