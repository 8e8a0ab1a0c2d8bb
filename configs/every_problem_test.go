package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// config check reports every problem of a file in one pass — unknown keys
// and values of the wrong type, each at its own line with the key and the
// type expected in words — not only the first one.
func TestEveryProblemInOnePass(t *testing.T) {
	path := filepath.Join("testdata", "invalid-every-problem.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(path, data, os.DirFS("testdata"))
	if err == nil {
		t.Fatal("expected errors, got none")
	}
	want := []string{
		path + `:1: deadline: expected a duration such as 800ms, 2s or 5m, got "fast"`,
		path + `:2: unknown option "regoin" (did you mean "region"?)`,
		path + `:3: history_limit: expected a whole number, got "many"`,
		path + `:6: unknown option "tabel" (did you mean "table"?)`,
		path + `:12: timeout: expected a duration such as 800ms, 2s or 5m, got "soon"`,
		path + `:13: cache_ttl: expected a duration such as 800ms, 2s or 5m, got a list`,
		path + `:14: required: expected true or false, got "maybe"`,
	}
	if got := err.Error(); got != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
