package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Each invalid file maps to the exact messages IT would read.
func TestInvalidConfigs(t *testing.T) {
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
			`testdata/invalid-many.yaml:8: sources[0] (balance): needs "email" is not a lookup parameter (fix: one of: customer_id, phone, national)`,
			`testdata/invalid-many.yaml:8: sources[0] (balance): mapping.mode "table" is unknown (fix: fields (one record as labelled values) or list (all records as a table))`,
			`testdata/invalid-many.yaml:8: sources[0] (balance): mapping.fields[0]: from is required (fix: name the column or JSON field, e.g. from: balance)`,
			`testdata/invalid-many.yaml:8: sources[0] (balance): mapping.fields[0]: format "euros" is unknown (fix: one of: text, money, number, date, datetime, percent)`,
			`testdata/invalid-many.yaml:16: sources[1] (balance): source name "balance" is used twice (fix: each source needs its own name (it labels metrics and cache keys))`,
			`testdata/invalid-many.yaml:16: sources[1] (balance): type is required (fix: one of the adapter kinds: postgres, http, file)`,
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
