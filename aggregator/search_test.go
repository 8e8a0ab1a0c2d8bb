package aggregator_test

// The directory's search and the numbers agents link (issue 13, item 6):
// configured as a file would be (decoded by configs, built by the kinds),
// searched by name, customer id and e-mail, bounded, and a linked number
// resolving on the next call before the directory is asked.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/adapters/file"
	"github.com/screenpop/screenpop/adapters/postgres"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/historytest"
	"github.com/screenpop/screenpop/internal/logbuf"
)

const searchDirectoryJSON = `[
  {"id": "C-1", "phone": "+4930111111", "name": "Brandt Metallbau GmbH", "kind": "company", "contact": "Jörg Brandt", "email": "j.brandt@brandt.example"},
  {"id": "C-1", "phone": "+4930111112", "name": "Brandt Metallbau GmbH", "kind": "company", "contact": "Sabine Kühn", "email": "s.kuehn@brandt.example"},
  {"id": "C-2", "phone": "+48123456789", "name": "Anna Kowalska", "kind": "person", "email": "anna.kowalska@poczta.example"},
  {"id": "C-3", "phone": "+48600000003", "name": "Łukasz Wiśniewski", "kind": "person", "email": "lw@poczta.example"},
  {"id": "C-4", "phone": "+4930444444", "name": "Müller Bau GmbH", "email": "info@mueller-bau.example"},
  {"id": "C-5", "phone": "+4930555555", "name": "Müller Transporte KG", "email": "info@mueller-transporte.example"},
  {"id": "C-6", "phone": "+4930666666", "name": "Bäckerei Müller", "email": "info@baeckerei-mueller.example"},
  {"id": "C-22", "phone": "+4930222222", "name": "C-2 Consulting", "email": "c2@consulting.example"}
]`

const searchBalanceJSON = `[
  {"customer_id": "C-2", "balance": 120.5},
  {"customer_id": "C-1", "balance": 99}
]`

// searchConfig is a directory with a search, as IT writes it: the common
// bounds and the file kind's fields in one search: block.
const searchConfig = `
telephony: [{name: demo, type: demo}]
region: DE
deadline: 2s
directory:
  name: directory
  type: file
  path: directory.json
  match: phone
  param: phone
  cache_ttl: 1m          # the directory's "unknown" answer is cached: a link must drop it
  search:
    min_length: 3
    max_results: 2
    contains: [name, contact, email]
    equals: [id]
sources:
  - name: balance
    type: file
    path: balance.json
    match: customer_id
`

type searchFixture struct {
	agg   *aggregator.Aggregator
	store history.Store
	reg   *prometheus.Registry
	logs  *logbuf.Buffer
}

// newSearchFixture decodes yaml as the daemon does, builds its file
// sources and an aggregator on store (nil: no history).
func newSearchFixture(t *testing.T, yaml string, store aggregator.History) *searchFixture {
	t.Helper()
	files := fstest.MapFS{
		"directory.json": {Data: []byte(searchDirectoryJSON)},
		"balance.json":   {Data: []byte(searchBalanceJSON)},
	}
	cfg, err := configs.Parse("screenpop.yaml", []byte(yaml), files)
	if err != nil {
		t.Fatalf("configuration:\n%v", err)
	}
	build := func(s *configs.Source) aggregator.Source {
		t.Helper()
		src, err := file.New(adapters.Spec{Name: s.Name, Options: s.Options, Files: files})
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		return src
	}
	ac := cfg.Aggregator()
	ac.Directory.Source = build(cfg.Directory)
	for i := range cfg.Sources {
		ac.Sources[i].Source = build(&cfg.Sources[i])
	}
	f := &searchFixture{reg: prometheus.NewRegistry(), logs: &logbuf.Buffer{}}
	if s, ok := store.(history.Store); ok {
		f.store = s
	}
	f.agg, err = aggregator.New(ac, aggregator.Options{
		Cache:      aggregator.NewMemoryCache(100),
		History:    store,
		Registerer: f.reg,
		Logger:     slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func memoryStore(t *testing.T) history.Store {
	t.Helper()
	s, err := history.NewMemory(history.Config{}, history.Options{Daemon: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func customerIDs(cs []screenpop.Customer) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

func counter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

func matches(m *dto.Metric, labels map[string]string) bool {
	if len(m.GetLabel()) != len(labels) {
		return false
	}
	for _, l := range m.GetLabel() {
		if labels[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

// An agent finds a customer by name (case and accents aside), by contact
// person, by e-mail and by exact customer id (which comes first); too
// short a text is refused without asking; a long list is cut with More;
// and nothing of what was typed reaches the log.
func TestSearchFileDirectory(t *testing.T) {
	f := newSearchFixture(t, searchConfig, memoryStore(t))
	ctx := context.Background()
	limits, ok := f.agg.SearchLimits()
	if !ok || limits != (screenpop.SearchLimits{MinLength: 3, MaxLength: aggregator.MaxSearchLength, MaxResults: 2}) {
		t.Fatalf("SearchLimits = %+v, %v", limits, ok)
	}
	for _, tc := range []struct {
		text string
		want []string
		more bool
	}{
		{"Kowalska", []string{"C-2"}, false},
		{"  anna   KOWALSKA ", []string{"C-2"}, false},
		{"kuhn", []string{"C-1"}, false},              // contact Sabine Kühn: the company, once
		{"brandt", []string{"C-1"}, false},            // two contacts, one customer
		{"lukasz wisniewski", []string{"C-3"}, false}, // Ł and ś
		{"anna.kowalska@poczta.example", []string{"C-2"}, false},
		{"C-2", []string{"C-2", "C-22"}, false},  // the exact id first, then the name containing it
		{"müller", []string{"C-4", "C-5"}, true}, // three match, two are listed
		{"nobody at all", nil, false},
	} {
		res, err := f.agg.Search(ctx, tc.text)
		if err != nil {
			t.Errorf("Search(%q): %v", tc.text, err)
			continue
		}
		if got := customerIDs(res.Customers); !slices.Equal(got, tc.want) || res.More != tc.more {
			t.Errorf("Search(%q) = %v more=%v, want %v more=%v", tc.text, got, res.More, tc.want, tc.more)
		}
	}
	res, _ := f.agg.Search(ctx, "kuhn")
	if c := res.Customers[0]; c.Name != "Brandt Metallbau GmbH" || c.Contact != "Sabine Kühn" || c.Email != "s.kuehn@brandt.example" || c.Kind != "company" {
		t.Errorf("the customer found: %+v", c)
	}
	for _, text := range []string{"ab", "  a  ", strings.Repeat("x", aggregator.MaxSearchLength+1)} {
		if _, err := f.agg.Search(ctx, text); !errors.Is(err, screenpop.ErrSearchText) {
			t.Errorf("Search(%q) = %v, want ErrSearchText", text, err)
		}
	}
	if got := counter(t, f.reg, "screenpop_aggregator_searches_total", map[string]string{"outcome": "refused"}); got != 3 {
		t.Errorf("refused searches counted: %v, want 3", got)
	}
	if got := counter(t, f.reg, "screenpop_aggregator_searches_total", map[string]string{"outcome": "empty"}); got != 1 {
		t.Errorf("empty searches counted: %v, want 1", got)
	}
	logs := strings.ToLower(f.logs.String())
	for _, typed := range []string{"kowalska", "kuhn", "müller", "nobody", "lukasz"} {
		if strings.Contains(logs, typed) {
			t.Errorf("the log holds the search text %q:\n%s", typed, logs)
		}
	}
}

// A directory without search: configured, nobody can search or link.
func TestSearchNotConfigured(t *testing.T) {
	yaml := strings.Replace(searchConfig, "  search:\n    min_length: 3\n    max_results: 2\n    contains: [name, contact, email]\n    equals: [id]\n", "", 1)
	f := newSearchFixture(t, yaml, memoryStore(t))
	if _, ok := f.agg.SearchLimits(); ok {
		t.Error("SearchLimits ok without a search")
	}
	if _, err := f.agg.Search(context.Background(), "Kowalska"); !errors.Is(err, screenpop.ErrNoSearch) {
		t.Errorf("Search without a search: %v", err)
	}
	// A search without a history that keeps links: nothing could be linked.
	f = newSearchFixture(t, searchConfig, aggregator.NewMemoryHistory(5))
	if _, ok := f.agg.SearchLimits(); ok {
		t.Error("SearchLimits ok without links")
	}
	if err := f.agg.Link(context.Background(), history.Link{Phone: "+4930999999", CustomerID: "C-2", Agent: "1001"}); !errors.Is(err, screenpop.ErrNoSearch) {
		t.Errorf("Link without links: %v", err)
	}
}

// failingSearcher is a directory whose search fails with the text in its
// error, as a careless system does: the log must not hold it.
type failingSearcher struct{ aggregator.Source }

func (failingSearcher) Search(_ context.Context, q aggregator.SearchQuery) ([]aggregator.Record, error) {
	return nil, fmt.Errorf("GET https://crm.example/search?q=%s: HTTP 500 for %q", strings.ReplaceAll(q.Text, " ", "+"), q.Text)
}

func TestSearchFailureKeepsTheTextOutOfTheLog(t *testing.T) {
	f := newSearchFixture(t, searchConfig, memoryStore(t))
	cfg := f.agg.Config()
	cfg.Directory.Source = failingSearcher{cfg.Directory.Source}
	if err := f.agg.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	_, err := f.agg.Search(context.Background(), "Anna Kowalska")
	if err == nil || strings.Contains(err.Error(), "Kowalska") {
		t.Fatalf("Search's error = %v; want one without the text", err)
	}
	if logs := f.logs.String(); strings.Contains(logs, "Kowalska") || !strings.Contains(logs, "directory search failed") {
		t.Errorf("log:\n%s", logs)
	}
}

// A number nobody knows is linked to a customer: the directory's cached
// "unknown" is dropped, the next card resolves to the customer with the
// directory's details (found by searching for the id) and the customer's
// sections, and so does a card built for them (BuildFor, the current
// call's); the access log says who linked which number to whom.
func TestLinkResolvesTheNextCall(t *testing.T) {
	store := memoryStore(t)
	f := newSearchFixture(t, searchConfig, store)
	ctx := context.Background()
	const unknown = "+49 30 9999999"
	call := screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/1", Caller: screenpop.Caller{Number: unknown}, At: time.Now()}
	card := f.agg.Build(ctx, call)
	if card.Resolution != screenpop.ResolvedUnknown || card.Phone != "+49309999999" {
		t.Fatalf("before the link: %s %q", card.Resolution, card.Phone)
	}
	if err := f.agg.Link(ctx, history.Link{Phone: card.Phone, CustomerID: "C-2", Agent: "1001", AgentName: "Alice", CallID: "pbx/1"}); err != nil {
		t.Fatal(err)
	}
	for name, card := range map[string]screenpop.Card{
		"BuildFor":        f.agg.BuildFor(ctx, call, "C-2"),
		"the next call's": f.agg.Build(ctx, screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/2", Caller: screenpop.Caller{Number: "030 9999999"}, At: time.Now()}),
	} {
		if card.Resolution != screenpop.ResolvedCustomer || card.Customer == nil || card.Customer.ID != "C-2" || card.Customer.Name != "Anna Kowalska" || card.Customer.Email != "anna.kowalska@poczta.example" {
			t.Errorf("%s card: %s %+v", name, card.Resolution, card.Customer)
			continue
		}
		if s := card.Sections[0]; s.Status != screenpop.SectionOK || s.Fields[0].Value != 120.5 {
			t.Errorf("%s card's balance: %+v", name, s)
		}
	}
	entries, err := store.AccessLog(ctx, history.AccessQuery{Phone: "+49309999999"})
	if err != nil || len(entries) != 1 || entries[0].Action != history.ActionLink || entries[0].Agent != "1001" || entries[0].CustomerID != "C-2" || entries[0].CallID != "pbx/1" || entries[0].PhoneHash != history.HashPhone("+49309999999") {
		t.Fatalf("access log: %+v, %v", entries, err)
	}
	// The first card after the link read it, and its answer was cached
	// as the directory's: the second came from the cache.
	if got := counter(t, f.reg, "screenpop_aggregator_link_lookups_total", map[string]string{"result": "linked"}); got != 1 {
		t.Errorf("linked lookups: %v, want 1", got)
	}
	// A number the directory knows, and nobody linked, still resolves by it.
	if card := f.agg.Build(ctx, screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/3", Caller: screenpop.Caller{Number: "+4930111111"}}); card.Customer == nil || card.Customer.ID != "C-1" {
		t.Errorf("a known number: %+v", card.Customer)
	}
	// Linked again, to someone else: the link wins over the first.
	if err := f.agg.Link(ctx, history.Link{Phone: "+49309999999", CustomerID: "C-3", Agent: "1002"}); err != nil {
		t.Fatal(err)
	}
	if card := f.agg.Build(ctx, call); card.Customer == nil || card.Customer.Name != "Łukasz Wiśniewski" {
		t.Errorf("after linking again: %+v", card.Customer)
	}
}

// brokenLinks is a history whose links cannot be read.
type brokenLinks struct{ history.Store }

func (brokenLinks) LinkOf(context.Context, string) (history.Link, error) {
	return history.Link{}, errors.New("connection refused")
}

// A history that cannot say which numbers are linked costs nothing but
// the links: the directory answers, and the trouble is logged once.
func TestLinkLookupFailureAsksTheDirectory(t *testing.T) {
	f := newSearchFixture(t, searchConfig, brokenLinks{memoryStore(t)})
	for i := range 3 {
		card := f.agg.Build(context.Background(), screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: fmt.Sprint("pbx/", i), Caller: screenpop.Caller{Number: "+48123456789"}})
		if card.Customer == nil || card.Customer.ID != "C-2" {
			t.Fatalf("card %d: %s %+v", i, card.Resolution, card.Customer)
		}
	}
	if n := strings.Count(f.logs.String(), "cannot read the numbers agents linked"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, f.logs.String())
	}
}

// The postgres kind's search: :text, :pattern (the text's own % and _
// match themselves) and :limit, on a real PostgreSQL.
func TestSearchPostgresDirectory(t *testing.T) {
	dsn := historytest.PostgresSchema(t, historytest.TestDSN)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `
CREATE TABLE customers (id text PRIMARY KEY, name text NOT NULL, email text, phone text);
INSERT INTO customers VALUES
  ('C-1', 'Brandt Metallbau GmbH', 'j.brandt@brandt.example', '+4930111111'),
  ('C-2', 'Anna Kowalska', 'anna.kowalska@poczta.example', '+48123456789'),
  ('C-3', '50% Rabatt GmbH', 'info@rabatt.example', '+4930333333'),
  ('C-4', '500 Teile AG', 'info@teile.example', '+4930444444'),
  ('C-5', 'Kowalski Serwis', 'biuro@kowalski.example', '+48120000005'),
  ('C-6', 'Kowalczyk i Syn', 'kontakt@kowalczyk.example', '+48120000006');`); err != nil {
		t.Fatal(err)
	}
	yaml := `
telephony: [{name: demo, type: demo}]
directory:
  name: directory
  type: postgres
  dsn_env: TEST_DSN
  query: SELECT id, name, email FROM customers WHERE phone = :phone
  search:
    max_results: 2
    query: |
      SELECT id, name, email FROM customers
       WHERE id = :text OR name ILIKE :pattern OR email ILIKE :pattern
       ORDER BY id = :text DESC, name
       LIMIT :limit
`
	cfg, err := configs.Parse("screenpop.yaml", []byte(yaml), fstest.MapFS{})
	if err != nil {
		t.Fatal(err)
	}
	pools := postgres.NewPools(nil)
	defer pools.Close()
	src, err := postgres.NewFactory(pools)(adapters.Spec{Name: "directory", Options: cfg.Directory.Options, Env: func(string) string { return dsn }})
	if err != nil {
		t.Fatal(err)
	}
	ac := cfg.Aggregator()
	ac.Directory.Source = src
	agg, err := aggregator.New(ac, aggregator.Options{History: memoryStore(t), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		text string
		want []string
		more bool
	}{
		{"kowalska", []string{"C-2"}, false},
		{"POCZTA.example", []string{"C-2"}, false},
		{"C-4", []string{"C-4"}, false},
		{"50%", []string{"C-3"}, false},         // not "500 Teile": % is the text's own
		{"kowal", []string{"C-2", "C-6"}, true}, // three match, two are listed, by name
		{"no_such", nil, false},                 // _ is the text's own too
	} {
		res, err := agg.Search(ctx, tc.text)
		if err != nil {
			t.Errorf("Search(%q): %v", tc.text, err)
			continue
		}
		if got := customerIDs(res.Customers); !slices.Equal(got, tc.want) || res.More != tc.more {
			t.Errorf("Search(%q) = %v more=%v, want %v more=%v", tc.text, got, res.More, tc.want, tc.more)
		}
	}
	// A link resolves through the postgres directory's search too.
	if err := agg.Link(ctx, history.Link{Phone: "+4930999999", CustomerID: "C-4", Agent: "1001"}); err != nil {
		t.Fatal(err)
	}
	card := agg.Build(ctx, screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/1", Caller: screenpop.Caller{Number: "+4930999999"}})
	if card.Customer == nil || card.Customer.Name != "500 Teile AG" {
		t.Errorf("linked card: %s %+v", card.Resolution, card.Customer)
	}
}
