package configs

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/screenpop/screenpop/aggregator"
)

// A search: block is split between the aggregator's bounds and the
// kind's options: both see theirs, at their own lines, with the defaults
// of the ones left out.
func TestSearchBlockIsSplit(t *testing.T) {
	withKnown(t, Kinds{Telephony: []string{"demo"}, Sources: []string{"file"}})
	yaml := `telephony: [{name: demo, type: demo}]
directory:
  name: directory
  type: file
  path: customers.csv
  search:
    timeout: 1500ms
    contains: [name, email]
`
	cfg, err := Parse("x.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Directory.Search
	if got == nil || *got != (aggregator.SearchSpec{MinLength: aggregator.DefaultSearchMinLength, MaxResults: aggregator.DefaultSearchResults, Timeout: 1500 * time.Millisecond}) {
		t.Fatalf("search: %+v", got)
	}
	var kind struct {
		Path   string `yaml:"path"`
		Search struct {
			Contains []string `yaml:"contains"`
		} `yaml:"search"`
	}
	if err := DecodeStrict(cfg.Directory.Options, &kind); err != nil {
		t.Fatalf("the kind's options: %v", err)
	}
	if !slices.Equal(kind.Search.Contains, []string{"name", "email"}) || kind.Path != "customers.csv" {
		t.Fatalf("the kind's options: %+v", kind)
	}
	// Only the kind's keys: the search is still configured, with defaults.
	cfg, err = Parse("x.yaml", []byte(yaml[:len(yaml)-len("    timeout: 1500ms\n    contains: [name, email]\n")]+"    contains: [name]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Directory.Search == nil || cfg.Directory.Search.Timeout != aggregator.DefaultSearchTimeout {
		t.Fatalf("search with the kind's keys only: %+v", cfg.Directory.Search)
	}
	// Not a mapping: reported where it is written.
	_, err = Parse("x.yaml", []byte("telephony: [{name: demo, type: demo}]\ndirectory:\n  name: directory\n  type: file\n  search: name\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "x.yaml:5:3: directory (directory): search: expected") {
		t.Fatalf("search: name: %v", err)
	}
}
