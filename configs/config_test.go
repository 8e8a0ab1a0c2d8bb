package configs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Each invalid file maps to the exact messages IT would read.
func TestInvalidConfigs(t *testing.T) {
	withKnown(t, Kinds{Telephony: []string{"ari", "demo", "http"}, Sources: []string{"file", "http", "postgres"}})
	cases := map[string][]string{
		"invalid-unknown-key.yaml": {
			`testdata/invalid-unknown-key.yaml:2: unknown option "regoin" (did you mean "region"?)`,
		},
		"invalid-many.yaml": {
			`testdata/invalid-many.yaml:2: region: "Germany" is not an ISO 3166 region code (fix: write two capital letters, e.g. region: DE)`,
			`testdata/invalid-many.yaml:3: deadline: 1m30s is outside 50ms..30s (fix: a pop must appear while the phone rings: 1s-3s is usual)`,
			`testdata/invalid-many.yaml:4: telephony: no telephony source: nothing would ever ring (fix: add one, e.g. telephony: [{name: demo, type: demo}] or an ari source (see configs/asterisk/README.md))`,
			`testdata/invalid-many.yaml:5: sections[0]: name "Accounting" is not a valid section name (fix: lower-case letters, digits, - and _, e.g. accounting)`,
			`testdata/invalid-many.yaml:8: sources[0] (balance): timeout 45s is outside 0..30s (fix: e.g. timeout: 800ms)`,
			`testdata/invalid-many.yaml:8: sources[0] (balance): needs "email" is not a lookup parameter (fix: one of: customer_id, national, phone, region)`,
			`testdata/invalid-many.yaml:8: sources[0] (balance): mapping.mode "table" is unknown (fix: fields (one record as labelled values) or list (all records as a table))`,
			`testdata/invalid-many.yaml:8: sources[0] (balance): mapping.fields[0]: from is required (fix: name the column or JSON field, e.g. from: balance)`,
			`testdata/invalid-many.yaml:8: sources[0] (balance): mapping.fields[0]: format "euros" is unknown (fix: one of: text, money, number, date, datetime, percent)`,
			`testdata/invalid-many.yaml:16: sources[1] (balance): source name "balance" is used twice (fix: each source needs its own name (it labels metrics and cache keys))`,
			`testdata/invalid-many.yaml:16: sources[1] (balance): type is required (fix: one of the adapter kinds: file, http, postgres)`,
		},
		"invalid-types.yaml": {
			`testdata/invalid-types.yaml:2: telephony[0]: type is required (fix: one of: ari, demo, http)`,
			`testdata/invalid-types.yaml:5: sources[0] (balance): type is required (fix: one of the adapter kinds: file, http, postgres)`,
		},
		"invalid-lines.yaml": {
			`testdata/invalid-lines.yaml:6: lines["200"]: the label is empty (fix: write what agents should read, e.g. "100": Support DE, or leave the line out (the card then shows the number))`,
			`testdata/invalid-lines.yaml:7: lines["300"]: the label has 84 characters, more than 80 (fix: agents read it while the phone rings: a few words, e.g. "100": Support DE)`,
			`testdata/invalid-lines.yaml:8: lines: an entry has no number (fix: write the number customers dial as the PBX reports it, e.g. "100": Support DE)`,
		},
		// needs: region is a lookup parameter (the aggregator has it); a
		// section: nobody declared is an error, also when the source's
		// name stands for it.
		"invalid-sections.yaml": {
			`testdata/invalid-sections.yaml:12: sources[0] (balance): section "acounting" is not declared in sections (fix: set section: to one of: accounting, or add it to sections (- {name: acounting, title: ...}))`,
			`testdata/invalid-sections.yaml:17: sources[1] (credit): section "credit" (the source's name, when section: is left out) is not declared in sections (fix: set section: to one of: accounting, or add it to sections (- {name: credit, title: ...}))`,
		},
		// Telephony names namespace call IDs (<name>/<PBX call ID>) and end
		// the URL of an http source: unique, no '/', no white space.
		"invalid-telephony-names.yaml": {
			`testdata/invalid-telephony-names.yaml:3: telephony[1]: name "pbx-a" is used twice (fix: names must be unique)`,
			`testdata/invalid-telephony-names.yaml:4: telephony[2]: name "berlin/pbx" contains '/' (fix: call IDs become <name>/<the PBX's call ID>: use letters, digits, - and _, e.g. name: pbx-berlin)`,
			`testdata/invalid-telephony-names.yaml:7: telephony[3]: name "call center" contains white space (fix: the name ends the URL /api/v1/call-events/<name>: use letters, digits, - and _, e.g. name: pbx-berlin)`,
		},
		// Every problem in one pass: unknown keys and values of the wrong
		// type, each at its line with the key and the type expected in
		// words, also inside a source.
		"invalid-every-problem.yaml": {
			`testdata/invalid-every-problem.yaml:1: deadline: expected a duration such as 800ms, 2s or 5m, got "fast"`,
			`testdata/invalid-every-problem.yaml:2: unknown option "regoin" (did you mean "region"?)`,
			`testdata/invalid-every-problem.yaml:3: history_limit: expected a whole number, got "many"`,
			`testdata/invalid-every-problem.yaml:6: unknown option "tabel" (did you mean "table"?)`,
			`testdata/invalid-every-problem.yaml:12: sources[0] (balance): timeout: expected a duration such as 800ms, 2s or 5m, got "soon"`,
			`testdata/invalid-every-problem.yaml:13: sources[0] (balance): cache_ttl: expected a duration such as 800ms, 2s or 5m, got a list`,
			`testdata/invalid-every-problem.yaml:14: sources[0] (balance): required: expected true or false, got "maybe"`,
		},
		"invalid-lines-list.yaml": {
			`testdata/invalid-lines-list.yaml:5: lines: expected numbers mapped to labels ("100": Support DE), got a list`,
		},
	}
	for file, want := range cases {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join("testdata", file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(path, data, os.DirFS("testdata"))
			if err == nil {
				t.Fatal("expected errors, got none")
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// withKnown sets the kinds the wiring would register (cmd/screenpopd checks
// its own maps) for one test.
func withKnown(t *testing.T, k Kinds) {
	old := Known
	Known = k
	t.Cleanup(func() { Known = old })
}

// Without a wiring that registered its kinds, the hint of a missing type
// still says where to look instead of listing nothing.
func TestMissingTypeHintWithoutKinds(t *testing.T) {
	withKnown(t, Kinds{})
	_, err := Parse("x.yaml", []byte("telephony: [{name: pbx}]\n"), nil)
	want := "x.yaml:1: telephony[0]: type is required (fix: `screenpopd sample` lists the kinds)"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
}

func TestSourceOptionsKeepTheirLines(t *testing.T) {
	data := []byte(`telephony:
  - name: pbx
    type: ari
    url: http://pbx:8088
sources:
  - name: accounting
    type: postgres
    timeout: 800ms
    query: SELECT 1
    dsn_env: ACCOUNTING_DSN
`)
	cfg, err := Parse("x.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sources[0]
	if s.Name != "accounting" || s.Type != "postgres" || s.Timeout != 800*time.Millisecond || s.Section != "accounting" {
		t.Fatalf("common options: %+v", s)
	}
	if s.Line != 6 {
		t.Errorf("source line = %d, want 6", s.Line)
	}
	var opts struct {
		Query  string `yaml:"query"`
		DSNEnv string `yaml:"dsn_env"`
	}
	if err := DecodeStrict(s.Options, &opts); err != nil {
		t.Fatal(err)
	}
	if opts.Query != "SELECT 1" || opts.DSNEnv != "ACCOUNTING_DSN" {
		t.Errorf("kind options: %+v", opts)
	}
	var wrong struct {
		Query string `yaml:"query"`
	}
	err = DecodeStrict(s.Options, &wrong)
	if err == nil || err.Error() != `line 10: unknown option "dsn_env" (known: query)` {
		t.Errorf("unknown kind option: %v", err)
	}
	tel := cfg.Telephony[0]
	if tel.Line != 2 || tel.Type != "ari" || len(tel.Options.Content) != 2 {
		t.Errorf("telephony: %+v", tel)
	}
}

// TestLines: numbers as keys work quoted or not, as written (a leading
// zero or plus stays), so IT need not know YAML's number rules.
func TestLines(t *testing.T) {
	data := []byte(`telephony: [{name: demo, type: demo}]
lines:
  100: Support DE
  "200": Sales PL
  +493090182000: Service
  0800123: Free line
`)
	cfg, err := Parse("x.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"100": "Support DE", "200": "Sales PL", "+493090182000": "Service", "0800123": "Free line"}
	if fmt.Sprint(cfg.Lines) != fmt.Sprint(want) {
		t.Errorf("lines %q, want %q", cfg.Lines, want)
	}
	cfg, err = Parse("x.yaml", []byte("telephony: [{name: demo, type: demo}]\n"), nil)
	if err != nil || len(cfg.Lines) != 0 {
		t.Errorf("without lines: %v %v", cfg.Lines, err)
	}
}

func TestDemoConfigParses(t *testing.T) {
	cfg, err := Demo()
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Telephony) != 1 || cfg.Telephony[0].Type != "demo" {
		t.Errorf("demo telephony: %+v", cfg.Telephony)
	}
	if cfg.Directory == nil || len(cfg.Sources) < 4 {
		t.Errorf("demo sources: directory %v, %d sources", cfg.Directory, len(cfg.Sources))
	}
	// The demo generator's numbers (telephony/demo dids) have labels.
	for _, did := range []string{"+493090182000", "+493090182100"} {
		if cfg.Lines[did] == "" {
			t.Errorf("demo line %s has no label: %q", did, cfg.Lines)
		}
	}
	if _, err := cfg.Files.Open("demo/directory.json"); err != nil {
		t.Errorf("embedded demo data: %v", err)
	}
}

func TestEmptyFile(t *testing.T) {
	_, err := Parse("empty.yaml", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "empty.yaml: the file is empty") {
		t.Errorf("got %v", err)
	}
}
