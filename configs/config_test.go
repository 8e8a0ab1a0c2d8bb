package configs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/aggregator"
)

// Each invalid file maps to the exact messages IT would read: every
// problem in one pass, each at the line and column of the key at fault,
// naming the option, what it expects and how to fix it. What the kinds
// find in their own options (invalid-kind-options.yaml) is added by the
// wiring: cmd/screenpopd's TestConfigCheckInvalidFiles reads the same files.
func TestInvalidConfigs(t *testing.T) {
	withKnown(t, Kinds{Telephony: []string{"ari", "demo", "http"}, Sources: []string{"file", "http", "postgres"}})
	cases := map[string][]string{
		// An unknown key, with the known key it is closest to.
		"invalid-unknown-key.yaml": {
			`testdata/invalid-unknown-key.yaml:2:1: unknown option "regoin" (did you mean "region"?)`,
		},
		// Values out of range, an unknown lookup parameter in needs, a
		// bad mapping format: the card's and the sources' options are
		// checked by the aggregator's own Validate, placed here at their
		// keys; a key that is not written (from:) at its entry.
		"invalid-many.yaml": {
			`testdata/invalid-many.yaml:2:1: region: "Germany" is not an ISO 3166 region code with a numbering plan (fix: write the country's two letters, e.g. region: DE)`,
			`testdata/invalid-many.yaml:3:1: deadline: 1m30s is outside 50ms..30s (fix: a pop must appear while the phone rings: 1s-3s is usual)`,
			`testdata/invalid-many.yaml:4:1: telephony: no telephony source: nothing would ever ring (fix: add one, e.g. telephony: [{name: demo, type: demo}] or an ari source (see configs/asterisk/README.md))`,
			`testdata/invalid-many.yaml:6:6: sections[0]: name: "Accounting" is not a valid section name (fix: lower-case letters, digits, - and _, e.g. accounting)`,
			`testdata/invalid-many.yaml:10:5: sources[0] (balance): timeout: 45s is outside 0..30s (fix: e.g. timeout: 800ms)`,
			`testdata/invalid-many.yaml:11:5: sources[0] (balance): needs: "email" is not a lookup parameter (fix: one of: customer_id, national, phone, region)`,
			`testdata/invalid-many.yaml:13:7: sources[0] (balance): mapping.mode: "table" is unknown (fix: fields (one record as labelled values) or list (all records as a table))`,
			`testdata/invalid-many.yaml:15:11: sources[0] (balance): mapping.fields[0].from: missing (fix: name the column or JSON field, e.g. from: balance)`,
			`testdata/invalid-many.yaml:15:28: sources[0] (balance): mapping.fields[0].format: "euros" is unknown (fix: one of: text, money, number, date, datetime, percent)`,
			`testdata/invalid-many.yaml:16:5: sources[1] (balance): type: missing (fix: one of the adapter kinds: file, http, postgres)`,
			`testdata/invalid-many.yaml:16:5: sources[1] (balance): name: "balance" is already the name of sources[0] (fix: each source needs its own name (it labels metrics and cache keys))`,
		},
		"invalid-types.yaml": {
			`testdata/invalid-types.yaml:2:5: telephony[0] (pbx): type: missing (fix: one of: ari, demo, http)`,
			`testdata/invalid-types.yaml:5:5: sources[0] (balance): type: missing (fix: one of the adapter kinds: file, http, postgres)`,
		},
		"invalid-lines.yaml": {
			`testdata/invalid-lines.yaml:6:3: lines["200"]: the label is empty (fix: write what agents should read, e.g. "100": Support DE, or leave the line out (the card then shows the number))`,
			`testdata/invalid-lines.yaml:7:3: lines["300"]: the label has 84 characters, more than 80 (fix: agents read it while the phone rings: a few words, e.g. "100": Support DE)`,
			`testdata/invalid-lines.yaml:8:3: lines[""]: an entry has no number (fix: write the number customers dial as the PBX reports it, e.g. "100": Support DE)`,
		},
		// needs: region is a lookup parameter (the aggregator has it); a
		// section: nobody declared is an error, also when the source's
		// name stands for it (then at the source, section: is not written).
		"invalid-sections.yaml": {
			`testdata/invalid-sections.yaml:14:5: sources[0] (balance): section: "acounting" is not declared in sections (fix: set section: to one of: accounting, or add it to sections (- {name: acounting, title: ...}))`,
			`testdata/invalid-sections.yaml:17:5: sources[1] (credit): section: "credit" (the source's name, when section: is left out) is not declared in sections (fix: set section: to one of: accounting, or add it to sections (- {name: credit, title: ...}))`,
		},
		// Telephony names namespace call IDs (<name>/<PBX call ID>) and end
		// the URL of an http source: unique, no '/', no white space.
		"invalid-telephony-names.yaml": {
			`testdata/invalid-telephony-names.yaml:3:6: telephony[1] (pbx-a): name: "pbx-a" is used twice (fix: names must be unique)`,
			`testdata/invalid-telephony-names.yaml:4:5: telephony[2] (berlin/pbx): name: "berlin/pbx" contains '/' (fix: call IDs become <name>/<the PBX's call ID>: use letters, digits, - and _, e.g. name: pbx-berlin)`,
			`testdata/invalid-telephony-names.yaml:7:6: telephony[3] (call center): name: "call center" contains white space (fix: the name ends the URL /api/v1/call-events/<name>: use letters, digits, - and _, e.g. name: pbx-berlin)`,
		},
		// Every problem in one pass: unknown keys and values of the wrong
		// type, each at its key with its path and the type expected in
		// words, also inside a source.
		"invalid-every-problem.yaml": {
			`testdata/invalid-every-problem.yaml:1:1: deadline: expected a duration such as 800ms, 2s or 5m, got "fast"`,
			`testdata/invalid-every-problem.yaml:2:1: unknown option "regoin" (did you mean "region"?)`,
			`testdata/invalid-every-problem.yaml:3:1: history_limit: expected a whole number, got "many"`,
			`testdata/invalid-every-problem.yaml:6:3: agents: unknown option "tabel" (did you mean "table"?)`,
			`testdata/invalid-every-problem.yaml:12:5: sources[0] (balance): timeout: expected a duration such as 800ms, 2s or 5m, got "soon"`,
			`testdata/invalid-every-problem.yaml:13:5: sources[0] (balance): cache_ttl: expected a duration such as 800ms, 2s or 5m, got a list`,
			`testdata/invalid-every-problem.yaml:14:5: sources[0] (balance): required: expected true or false, got "maybe"`,
			`testdata/invalid-every-problem.yaml:17:27: sources[0] (balance): mapping.fields[0].format: expected text, got a list`,
			`testdata/invalid-every-problem.yaml:18:11: sources[0] (balance): mapping.fields[1].from: expected text, got a mapping`,
			`testdata/invalid-every-problem.yaml:19:7: sources[0] (balance): mapping.max_rows: expected a whole number, got "lots"`,
			`testdata/invalid-every-problem.yaml:20:7: sources[0] (balance): mapping: unknown option "mdoe" (did you mean "mode"?)`,
			`testdata/invalid-every-problem.yaml:22:5: redis.card_ttl: expected a duration such as 800ms, 2s or 5m, got "1 hour"`,
		},
		"invalid-lines-list.yaml": {
			`testdata/invalid-lines-list.yaml:4:1: lines: expected numbers mapped to labels ("100": Support DE), got a list`,
		},
		// The common options are checked here, the kinds' by each kind.
		"invalid-kind-options.yaml": {
			`testdata/invalid-kind-options.yaml:16:5: sources[0] (vip): timeout: expected a duration such as 800ms, 2s or 5m, got "fast"`,
		},
		// The history's own rules (history.Config.Validate), each at its
		// key under history:; a key that is not written (dsn_env) at the
		// block.
		"invalid-history.yaml": {
			`testdata/invalid-history.yaml:4:1: history.dsn_env: dsn_env is required for type: postgres: name the environment variable holding the connection string, e.g. dsn_env: SCREENPOP_HISTORY_DSN (or dsn_file: a file holding it)`,
			`testdata/invalid-history.yaml:6:3: history.retention: 1h0m0s is shorter than 24h: calls and notes are purged hourly, and the card counts the calls of the last 30 days (e.g. retention: 8760h for a year)`,
			`testdata/invalid-history.yaml:8:8: history.dispositions[0].code: code "Order Placed" must be 1-32 lower-case letters, digits, '-' or '_', e.g. code: order-placed`,
			`testdata/invalid-history.yaml:9:18: history.dispositions[1].label: label is required: what the agent sees, e.g. label: Order placed`,
			`testdata/invalid-history.yaml:10:8: history.dispositions[2].code: code "ok" is also dispositions[1]; codes must be unique`,
			`testdata/invalid-history.yaml:11:3: history.wrapup_time: 2h0m0s is outside 0..1h`,
			`testdata/invalid-history.yaml:12:3: history.buffer_size: expected a whole number, got "lots"`,
			`testdata/invalid-history.yaml:13:3: history: unknown option "max_cons" (did you mean "max_conns"?)`,
		},
		// The floor view's own rules, at their keys under floor:.
		"invalid-floor.yaml": {
			`testdata/invalid-floor.yaml:5:3: floor.service_level_seconds: 7200 is outside 1..3600 seconds (fix: e.g. service_level_seconds: 20 (answered within 20 seconds of the first ring))`,
			`testdata/invalid-floor.yaml:6:3: floor.time_zone: "Europe/Atlantis" is not a time zone (fix: an IANA zone name such as Europe/Berlin or America/New_York; leave it out for the daemon's local zone)`,
			`testdata/invalid-floor.yaml:7:3: floor: unknown option "service_level" (known: service_level_seconds, time_zone)`,
		},
		// Sign-in: the auth package's rules at each option (one not
		// written at its section), the client secret never in the file,
		// agents' roles for listed agents only, sections' roles.
		"invalid-auth.yaml": {
			`testdata/invalid-auth.yaml:4:3: auth.oidc.client_secret_env: client_secret_env or client_secret_file is required (the secret never goes in this file)`,
			`testdata/invalid-auth.yaml:4:3: auth.oidc.agent_claim: agent_claim or users is required: which account is which agent`,
			`testdata/invalid-auth.yaml:5:5: auth.oidc.issuer: "http://idp.example.com/realms/callcenter": http is accepted on localhost only; tokens and codes travel over this`,
			`testdata/invalid-auth.yaml:7:5: auth.oidc: unknown option "client_secret" (known: agent_claim, algorithms, client_id, client_secret_env, client_secret_file, clock_skew, issuer, jwks_max_age, jwks_refresh_interval, name_claim, post_logout_redirect_url, redirect_url, role_map, roles_claim, scopes, session_lifetime, user_claim, users)`,
			`testdata/invalid-auth.yaml:8:5: auth.oidc.redirect_url: "https://screenpop.example.com/callback" must end with /auth/callback, where screenpopd answers the identity provider`,
			`testdata/invalid-auth.yaml:9:5: auth.oidc.algorithms: "HS256" is not an asymmetric signature algorithm; use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA`,
			`testdata/invalid-auth.yaml:10:5: auth.oidc.session_lifetime: 30s is shorter than a minute: agents would sign in all day`,
			`testdata/invalid-auth.yaml:11:3: auth.jwt.issuer: is required: tokens whose iss differs are refused`,
			`testdata/invalid-auth.yaml:11:3: auth.jwt.audience: is required: without it a token the provider issued for any other application would be accepted`,
			`testdata/invalid-auth.yaml:19:5: agents.roles["1009"]: agent "1009" is not in agents.names (fix: add the agent to agents.names, or correct the agent ID)`,
			`testdata/invalid-auth.yaml:19:14: agents.roles["1009"][0]: "credit card" contains white space (fix: roles are single words, e.g. credit or credit-team)`,
			`testdata/invalid-auth.yaml:21:51: sections[0]: roles[1]: is empty (fix: name a role agents hold, e.g. roles: [credit, supervisor])`,
		},
		// The directory's search bounds, a search on a source that is not
		// the directory, and the card's links (TestSearchBlockIsSplit:
		// how a search: block is divided between the aggregator and the kind).
		"invalid-search-links.yaml": {
			`testdata/invalid-search-links.yaml:7:5: directory (directory): search.min_length: 50 is outside 1..20 (fix: leave it out for 3: shorter texts match too much)`,
			`testdata/invalid-search-links.yaml:8:5: directory (directory): search.max_results: 500 is outside 1..50 (fix: leave it out for 10: an agent reads a short list while the caller waits)`,
			`testdata/invalid-search-links.yaml:14:5: sources[0] (balance): search: only the directory is searched (fix: move search: to the directory, or remove it)`,
			`testdata/invalid-search-links.yaml:17:5: links[0]: url: must start with https:// or http:// (fix: e.g. url: https://crm.example.com/customers/{customer_id}?caller={number})`,
			`testdata/invalid-search-links.yaml:19:5: links[1]: label: missing (fix: write what agents read on the button, e.g. label: Open in CRM)`,
			`testdata/invalid-search-links.yaml:19:5: links[1]: url: a placeholder in the host could send agents to another site: placeholders go in the path, the query or the fragment (fix: e.g. url: https://crm.example.com/customers/{customer_id}?caller={number})`,
			`testdata/invalid-search-links.yaml:20:14: links[1]: labels.Polish: "Polish" is not a language code (fix: the page's language, e.g. labels: {pl: Otwórz w CRM})`,
			`testdata/invalid-search-links.yaml:22:5: links[2]: url: unknown placeholder {numer} (known: {customer_id}, {number}, {call_id}, {agent}) (fix: e.g. url: https://crm.example.com/customers/{customer_id}?caller={number})`,
			`testdata/invalid-search-links.yaml:23:5: links[2]: open_on_answer: links[0] opens on answer already (fix: one link opens by itself: set open_on_answer on one only)`,
			`testdata/invalid-search-links.yaml:24:20: links[2]: roles[1]: "agent" is listed twice (fix: list each role once)`,
		},
		// yaml.v3 names the line of the block it gave up in (3), without a
		// column; the mistake is at the first line the file stops being
		// valid.
		"invalid-syntax.yaml": {
			`testdata/invalid-syntax.yaml:5: not valid YAML: did not find expected '-' indicator (in the block that starts at line 3) (fix: check the indentation of this line against the lines above it)`,
		},
	}
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		if _, ok := cases[filepath.Base(path)]; !ok {
			t.Errorf("%s has no expected messages", path)
		}
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
	want := "x.yaml:1:13: telephony[0] (pbx): type: missing (fix: `screenpopd sample` lists the kinds)"
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
	if s.Pos != (Pos{Line: 6, Column: 5}) {
		t.Errorf("source at %+v, want line 6, column 5", s.Pos)
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
	if err == nil || err.Error() != `line 10, column 5: unknown option "dsn_env" (known: query)` {
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

// A kind's problems land at the key they are about: DecodeStrict's and
// KeyError's at the option, any other error at the source; an
// aggregator's problem (aggregator.New refusing what the wiring built) at
// the key its path names.
func TestErrorsInPlacesEachProblem(t *testing.T) {
	data := []byte(`telephony: [{name: demo, type: demo}]
sources:
  - name: accounting
    type: postgres
    timeout: 800ms
    mapping:
      fields:
        - {from: balance, format: money}
    querry: SELECT 1
    dsn_env: ACCOUNTING_DSN
`)
	cfg, err := Parse("x.yaml", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	var opts struct {
		Query  string `yaml:"query"`
		DSNEnv string `yaml:"dsn_env"`
	}
	s := &cfg.Sources[0]
	kindErr := errors.Join(DecodeStrict(s.Options, &opts),
		KeyError(s.Options, "dsn_env", "environment variable %s is not set", opts.DSNEnv),
		KeyError(s.Options, "query", "query is required"),
		errors.New("no such kind of thing"))
	got := cfg.ErrorsIn("sources[0]", kindErr).Error()
	want := strings.Join([]string{
		`x.yaml:9:5: sources[0] (accounting): unknown option "querry" (did you mean "query"?)`,
		`x.yaml:10:5: sources[0] (accounting): environment variable ACCOUNTING_DSN is not set`,
		`x.yaml:3:5: sources[0] (accounting): query is required`,
		`x.yaml:3:5: sources[0] (accounting): no such kind of thing`,
	}, "\n")
	if got != want {
		t.Errorf("kind errors:\n%s\nwant:\n%s", got, want)
	}

	ac := cfg.Aggregator()
	ac.Sources[0].Mapping.Fields[0].Format = "euros"
	_, err = aggregator.New(ac, aggregator.Options{})
	got = cfg.ErrorsIn("", err).Error()
	want = `x.yaml:8:27: sources[0] (accounting): mapping.fields[0].format: "euros" is unknown (fix: one of: text, money, number, date, datetime, percent)` + "\n" +
		`x.yaml:3:5: sources[0] (accounting): no source implementation (Source is nil)`
	if got != want {
		t.Errorf("aggregator errors:\n%s\nwant:\n%s", got, want)
	}
	if cfg.Sources[0].Mapping.Fields[0].Format != "money" {
		t.Error("Aggregator shares its sources' mapping with the configuration")
	}
}

// The model configs returns is the one that runs: the aggregator's
// defaults are applied to it, and Aggregator hands them on as they are.
func TestTheModelHasTheAggregatorsDefaults(t *testing.T) {
	cfg, err := Parse("x.yaml", []byte(`telephony: [{name: demo, type: demo}]
directory: {name: people, type: file, path: people.csv}
sources:
  - {name: credit-check, type: file, path: credit.csv, cache_ttl: 1m}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Sources[0].SourceSpec
	if cfg.Deadline != aggregator.DefaultDeadline || cfg.HistoryLimit != aggregator.DefaultHistoryLimit ||
		s.Timeout != aggregator.DefaultTimeout || s.Section != "credit-check" || s.Needs != "customer_id" || s.FreshFor != 30*time.Second ||
		s.Mapping.Mode != aggregator.ModeFields || s.Mapping.Label != "Credit check" || s.Breaker.Failures != aggregator.DefaultBreakerFailures ||
		cfg.Directory.Needs != "phone" {
		t.Errorf("defaults not applied: %+v, %+v", cfg.Config, s)
	}
	ac := cfg.Aggregator()
	if ac.Deadline != cfg.Deadline || len(ac.Sources) != 1 || ac.Sources[0].Name != "credit-check" || ac.Directory.Name != "people" ||
		ac.Sources[0].Source != nil || ac.Sources[0].Timeout != s.Timeout {
		t.Errorf("Aggregator() = %+v", ac)
	}
	if cfg.Config.Sources != nil || cfg.Config.Directory != nil {
		t.Error("the embedded aggregator.Config holds sources of its own")
	}
}

// Paths as messages write them find their key; an option that is not
// written is placed at the closest part of its path that is.
func TestLookup(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(`lines:
  "a.b": Dotted
  "": No number
sources:
  - name: one
  - name: two
    mapping:
      fields:
        - {from: x, format: euros}
`), &doc); err != nil {
		t.Fatal(err)
	}
	root := doc.Content[0]
	for _, tc := range []struct {
		path  string
		at    Pos
		exact bool
	}{
		{`lines["a.b"]`, Pos{2, 3}, true},
		{`lines[""]`, Pos{3, 3}, true},
		{"sources[1].mapping.fields[0].format", Pos{9, 21}, true},
		{"sources[1]", Pos{6, 5}, true},
		{"sources[0].section", Pos{5, 5}, false},
		{"sources[7].name", Pos{4, 1}, false},
		{"redis.address", Pos{}, false},
	} {
		node, exact := lookup(root, tc.path)
		if got := posOf(node); got != tc.at || exact != tc.exact {
			t.Errorf("lookup(%s) = %+v, %v; want %+v, %v", tc.path, got, exact, tc.at, tc.exact)
		}
	}
}

// A YAML mistake is reported at its line, not at the block yaml.v3 was
// reading; where it cannot be told (something left open, which fails only
// at the end), at the line yaml.v3 names.
func TestYAMLSyntaxErrorLine(t *testing.T) {
	cases := []struct {
		name, doc string
		want      string
	}{
		{"item indented one space too far, far below its list",
			"sources:\n  - name: a\n    type: file\n\n  # b\n  - name: b\n    type: file\n   path: x\n",
			"x.yaml:8: not valid YAML: did not find expected '-' indicator (in the block that starts at line 1)"},
		{"key at the list's level",
			"telephony:\n  - name: a\n    type: demo\n  foo: 1\n",
			"x.yaml:4: not valid YAML: did not find expected '-' indicator (in the block that starts at line 1)"},
		{"flow list never closed",
			"listen: [\nregion: DE\n",
			"x.yaml:2: not valid YAML: did not find expected ',' or ']'"},
		{"quote never closed",
			"listen: \"abc\nregion: DE\n",
			"x.yaml:3: not valid YAML: found unexpected end of stream"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errs := ParsePartial("x.yaml", []byte(c.doc), nil)
			if len(errs) != 1 {
				t.Fatalf("%d errors: %v; want 1", len(errs), errs)
			}
			if got := errs[0].Error(); !strings.HasPrefix(got, c.want+" (fix: ") {
				t.Errorf("got  %s\nwant %s (fix: ...)", got, c.want)
			}
		})
	}
}
