package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	screenpop "github.com/screenpop/screenpop"
)

// recordingCache is a MemoryCache that remembers every key it was asked
// for, or fails every call when broken.
type recordingCache struct {
	*MemoryCache
	mu     sync.Mutex
	keys   []string
	broken bool
}

func (c *recordingCache) note(key string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = append(c.keys, key)
	if c.broken {
		return errors.New("redis: connection refused")
	}
	return nil
}

func (c *recordingCache) Get(ctx context.Context, key string) ([]byte, error) {
	if err := c.note(key); err != nil {
		return nil, err
	}
	return c.MemoryCache.Get(ctx, key)
}

func (c *recordingCache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := c.note(key); err != nil {
		return err
	}
	return c.MemoryCache.Set(ctx, key, value, ttl)
}

func TestCacheServesSecondCard(t *testing.T) {
	cache := &recordingCache{MemoryCache: NewMemoryCache(100)}
	dir := count(directoryOf(brandt))
	credit := count(byCustomer(map[string][]Record{"C-1": {{"limit": int64(9007199254740993), "since": time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC)}}}))
	tickets := count(static(Record{"open": 3}))
	flaky := count(func(context.Context, Key) ([]Record, error) { return nil, errors.New("down") })
	f := newFixture(t, Config{
		Region:    "DE",
		Directory: &SourceSpec{Name: "directory", CacheTTL: time.Minute, Source: dir},
		Sources: []SourceSpec{
			{Name: "credit", CacheTTL: time.Minute, Source: credit},
			{Name: "tickets", Needs: "national", CacheTTL: time.Minute, Source: tickets},
			{Name: "flaky", Needs: "phone", CacheTTL: time.Minute, Source: flaky, Breaker: BreakerSpec{Disabled: true}},
		},
	}, Options{Cache: cache})
	first := f.agg.Build(context.Background(), ringing(knownPhone))
	second := f.agg.Build(context.Background(), ringing("030 123456"))
	for _, c := range []*counted{dir, credit, tickets} {
		if n := c.calls.Load(); n != 1 {
			t.Errorf("a cached source was called %d times, want 1", n)
		}
	}
	if n := flaky.calls.Load(); n != 2 {
		t.Errorf("errors must not be cached: flaky called %d times, want 2", n)
	}
	if second.Resolution != screenpop.ResolvedCustomer || second.Customer.ID != "C-1" {
		t.Errorf("second card resolution %s %+v", second.Resolution, second.Customer)
	}
	for _, name := range []string{"credit", "tickets"} {
		a, b := section(t, first, name), section(t, second, name)
		if a.Cached || !b.Cached || b.Status != screenpop.SectionOK {
			t.Errorf("%s: first cached=%v, second cached=%v status %s", name, a.Cached, b.Cached, b.Status)
		}
		// What the browser gets must not depend on where the data came from.
		ja, _ := json.Marshal(a.Fields)
		jb, _ := json.Marshal(b.Fields)
		if string(ja) != string(jb) {
			t.Errorf("%s: fresh %s, cached %s", name, ja, jb)
		}
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_cache_requests_total", map[string]string{"result": "hit"}); v != 3 {
		t.Errorf("cache hits = %v, want 3", v)
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_source_duration_seconds", map[string]string{"source": "credit", "outcome": "cached"}); v != 1 {
		t.Errorf("credit cached outcomes = %v, want 1", v)
	}

	// No key holds the caller's number in any form.
	cache.mu.Lock()
	defer cache.mu.Unlock()
	if len(cache.keys) == 0 {
		t.Fatal("the cache was not used")
	}
	for _, k := range cache.keys {
		if !strings.HasPrefix(k, "screenpop:src:") {
			t.Errorf("key %q lacks the prefix", k)
		}
		for _, digits := range []string{"4930123456", "30123456", "123456"} {
			if strings.Contains(k, digits) {
				t.Errorf("key %q holds the phone number", k)
			}
		}
	}
	if want := cacheKey("credit", "customer_id", "C-1"); !strings.HasPrefix(want, "screenpop:src:credit:") || !containsString(cache.keys, want) {
		t.Errorf("no key %q in %v", want, cache.keys)
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestCacheKeysDifferByValueAndParam(t *testing.T) {
	a := cacheKey("s", "phone", "+4930123456")
	for _, other := range []string{cacheKey("s", "phone", "+4930123457"), cacheKey("s", "national", "+4930123456"), cacheKey("t", "phone", "+4930123456")} {
		if a == other {
			t.Errorf("keys collide: %s", a)
		}
	}
	if a != cacheKey("s", "phone", "+4930123456") {
		t.Error("keys are not stable")
	}
}

func TestBrokenCacheIsIgnored(t *testing.T) {
	cache := &recordingCache{MemoryCache: NewMemoryCache(10), broken: true}
	src := count(static(Record{"v": 1}))
	f := newFixture(t, Config{Region: "DE", Sources: []SourceSpec{{Name: "s", Needs: "phone", CacheTTL: time.Minute, Source: src}}}, Options{Cache: cache})
	for range 3 {
		if s := section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "s"); s.Status != screenpop.SectionOK || s.Cached {
			t.Fatalf("status %s cached %v", s.Status, s.Cached)
		}
	}
	if n := src.calls.Load(); n != 3 {
		t.Errorf("calls %d, want 3", n)
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_cache_requests_total", map[string]string{"result": "error"}); v != 3 {
		t.Errorf("cache errors = %v, want 3", v)
	}
	// Logged, but not on every call.
	if n := strings.Count(f.logs.String(), "connection refused"); n != 1 {
		t.Errorf("cache error logged %d times, want 1:\n%s", n, f.logs.String())
	}
}

func TestGarbageInCacheIsAMiss(t *testing.T) {
	cache := NewMemoryCache(10)
	_ = cache.Set(context.Background(), cacheKey("s", "phone", knownPhone), []byte("not json"), time.Minute)
	src := count(static(Record{"v": 1}))
	f := newFixture(t, Config{Region: "DE", Sources: []SourceSpec{{Name: "s", Needs: "phone", CacheTTL: time.Minute, Source: src}}}, Options{Cache: cache})
	if s := section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "s"); s.Status != screenpop.SectionOK || s.Cached || src.calls.Load() != 1 {
		t.Errorf("status %s cached %v calls %d", s.Status, s.Cached, src.calls.Load())
	}
	if s := section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "s"); !s.Cached {
		t.Error("the fresh answer should have replaced the garbage")
	}
}

func TestMapping(t *testing.T) {
	invoices := make([]Record, 25)
	for i := range invoices {
		invoices[i] = Record{"invoice": fmt.Sprintf("INV-%02d", i), "amount": float64(i), "internal_note": "do not show"}
	}
	f := newFixture(t, Config{
		Region: "DE",
		Sources: []SourceSpec{
			{Name: "balance", Section: "accounting", Needs: "phone", Source: static(
				Record{"balance": 120.5, "overdue_total": 20.0, "currency": "EUR", "ratio": math.NaN(), "blob": []byte("text")},
				Record{"balance": 999.0},
			), Mapping: Mapping{Fields: []FieldMap{
				{From: "overdue_total", Format: "money"},
				{From: "balance", Label: "Balance", Format: "money"},
				{From: "ratio", Format: "percent"},
				{From: "blob"},
				{From: "missing"},
			}}},
			{Name: "overdue-invoices", Section: "accounting", Needs: "phone", Source: static(invoices...), Mapping: Mapping{
				Mode: ModeList, MaxRows: 10,
				Fields: []FieldMap{{From: "invoice", Label: "Invoice"}, {From: "amount", Format: "money"}},
			}},
			{Name: "raw", Needs: "phone", Source: static(Record{"b_col": 1, "a_col": "x"}, Record{"c_col": 2}), Mapping: Mapping{Mode: ModeList}},
			{Name: "all-fields", Needs: "phone", Source: static(Record{"zeta": 1, "alpha_beta": "x"})},
		},
	}, Options{})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	acc := section(t, card, "accounting")
	got, _ := json.Marshal(acc.Fields)
	want := `[{"key":"overdue_total","label":"Overdue total","value":20,"format":"money"},` +
		`{"key":"balance","label":"Balance","value":120.5,"format":"money"},` +
		`{"key":"ratio","label":"Ratio","value":null,"format":"percent"},` +
		`{"key":"blob","label":"Blob","value":"text"},` +
		`{"key":"missing","label":"Missing","value":null}]`
	if string(got) != want {
		t.Errorf("fields\n got %s\nwant %s", got, want)
	}
	if len(acc.Lists) != 1 {
		t.Fatalf("lists %+v", acc.Lists)
	}
	l := acc.Lists[0]
	if l.Key != "overdue-invoices" || l.Label != "Overdue invoices" || !l.Truncated || len(l.Rows) != 10 {
		t.Errorf("list %s %q truncated=%v rows=%d", l.Key, l.Label, l.Truncated, len(l.Rows))
	}
	cols, _ := json.Marshal(l.Columns)
	if string(cols) != `[{"key":"invoice","label":"Invoice"},{"key":"amount","label":"Amount","format":"money"}]` {
		t.Errorf("columns %s", cols)
	}
	if row, _ := json.Marshal(l.Rows[3]); string(row) != `{"amount":3,"invoice":"INV-03"}` {
		t.Errorf("row %s: only mapped columns reach the card", row)
	}

	raw := section(t, card, "raw").Lists[0]
	if cols, _ := json.Marshal(raw.Columns); string(cols) != `[{"key":"a_col","label":"A col"},{"key":"b_col","label":"B col"},{"key":"c_col","label":"C col"}]` {
		t.Errorf("unmapped list columns %s", cols)
	}
	if raw.Truncated || len(raw.Rows) != 2 {
		t.Errorf("raw list %+v", raw)
	}
	if fields, _ := json.Marshal(section(t, card, "all-fields").Fields); string(fields) != `[{"key":"alpha_beta","label":"Alpha beta","value":"x"},{"key":"zeta","label":"Zeta","value":1}]` {
		t.Errorf("unmapped fields %s", fields)
	}
	if _, err := json.Marshal(card); err != nil {
		t.Errorf("card does not encode: %v", err)
	}
}

func TestReloadSwapsSources(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	oldSrc := sourceFunc(func(context.Context, Key) ([]Record, error) {
		once.Do(func() { close(entered) })
		<-release
		return []Record{{"from": "old"}}, nil
	})
	cfg := Config{Region: "DE", Deadline: MaxDeadline, Sources: []SourceSpec{{Name: "data", Needs: "phone", Timeout: MaxTimeout, Source: oldSrc}}}
	f := newFixture(t, cfg, Options{})

	inflight := make(chan screenpop.Card)
	go func() { inflight <- f.agg.Build(context.Background(), ringing(knownPhone)) }()
	<-entered

	next := Config{Region: "PL", Sources: []SourceSpec{
		{Name: "data", Needs: "phone", Source: static(Record{"from": "new"})},
		{Name: "added", Needs: "phone", Source: static(Record{"n": 1})},
	}}
	if err := f.agg.Reload(next); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	card := f.agg.Build(context.Background(), ringing("601 234 567")) // national in the new region
	if card.Phone != otherPhone {
		t.Errorf("the new region is not used: phone %q", card.Phone)
	}
	if got := fieldValue(t, section(t, card, "data"), "from"); got != "new" {
		t.Errorf("after reload: from = %v", got)
	}
	if s := section(t, card, "added"); s.Status != screenpop.SectionOK {
		t.Errorf("added: %s", s.Status)
	}
	close(release)
	old := <-inflight
	if got := fieldValue(t, section(t, old, "data"), "from"); got != "old" || len(old.Sections) != 1 {
		t.Errorf("the card in flight should finish on the old configuration: %+v", old.Sections)
	}
	if _, ok := metric(t, f.reg, "screenpop_aggregator_source_errors_total", map[string]string{"source": "added", "reason": "timeout"}); !ok {
		t.Error("the new source's series were not pre-created")
	}

	// A bad configuration is refused and the running one stays.
	err := f.agg.Reload(Config{Sources: []SourceSpec{{Name: "broken", Mapping: Mapping{Mode: "table"}}}})
	if err == nil || !strings.Contains(err.Error(), "sources[0] (broken)") {
		t.Fatalf("Reload of a bad config: %v", err)
	}
	if s := section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "added"); s.Status != screenpop.SectionOK {
		t.Errorf("after a refused reload: %s", s.Status)
	}
	if err := f.agg.Reload(Config{Region: "DE", Sources: []SourceSpec{{Name: "data", Needs: "phone", Source: static()}}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := metric(t, f.reg, "screenpop_aggregator_source_errors_total", map[string]string{"source": "added", "reason": "timeout"}); ok {
		t.Error("the series of a removed source remain")
	}
}

// TestReloadKeepsOpenBreaker: a source whose breaker settings did not
// change stays paused across a reload.
func TestReloadKeepsOpenBreaker(t *testing.T) {
	src := count(func(context.Context, Key) ([]Record, error) { return nil, errors.New("down") })
	spec := SourceSpec{Name: "x", Needs: "phone", Source: src, Breaker: BreakerSpec{Failures: 1, OpenFor: time.Hour}}
	f := newFixture(t, Config{Region: "DE", Sources: []SourceSpec{spec}}, Options{})
	f.agg.Build(context.Background(), ringing(knownPhone))
	if err := f.agg.Reload(Config{Region: "DE", Deadline: time.Second, Sources: []SourceSpec{spec}}); err != nil {
		t.Fatal(err)
	}
	if s := section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "x"); s.Status != screenpop.SectionUnavailable {
		t.Errorf("status %s, want unavailable", s.Status)
	}
	spec.Breaker.OpenFor = 2 * time.Hour
	if err := f.agg.Reload(Config{Region: "DE", Sources: []SourceSpec{spec}}); err != nil {
		t.Fatal(err)
	}
	if s := section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "x"); s.Status != screenpop.SectionError {
		t.Errorf("new breaker settings: status %s, want error", s.Status)
	}
}

func TestMetricsPreCreatedAndLinted(t *testing.T) {
	f := newFixture(t, Config{
		Region:    "DE",
		Directory: &SourceSpec{Name: "directory", Source: static()},
		Sources:   []SourceSpec{{Name: "credit", Source: static()}},
	}, Options{})
	for _, source := range []string{"directory", "credit"} {
		for _, o := range sourceOutcomes {
			if _, ok := metric(t, f.reg, "screenpop_aggregator_source_duration_seconds", map[string]string{"source": source, "outcome": o}); !ok {
				t.Errorf("no duration series for %s/%s", source, o)
			}
		}
		for _, r := range []string{"timeout", "error", "panic", "unavailable"} {
			if _, ok := metric(t, f.reg, "screenpop_aggregator_source_errors_total", map[string]string{"source": source, "reason": r}); !ok {
				t.Errorf("no error series for %s/%s", source, r)
			}
		}
	}
	for _, r := range []string{"hit", "miss", "error"} {
		mustMetric(t, f.reg, "screenpop_aggregator_cache_requests_total", map[string]string{"result": r})
	}
	for _, r := range []string{"customer", "ambiguous", "unknown", "withheld", "failed"} {
		mustMetric(t, f.reg, "screenpop_aggregator_resolutions_total", map[string]string{"result": r})
	}
	f.agg.Build(context.Background(), ringing(knownPhone))
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	// A second aggregator on the same registry shares the collectors.
	second, err := New(Config{Region: "DE", Sources: []SourceSpec{{Name: "other", Source: static()}}}, Options{Registerer: f.reg})
	if err != nil {
		t.Fatalf("second New on one registry: %v", err)
	}
	second.Build(context.Background(), ringing(knownPhone))
	if v := mustMetric(t, f.reg, "screenpop_aggregator_card_duration_seconds", nil); v != 2 {
		t.Errorf("card duration samples = %v, want 2 (shared)", v)
	}
}

func TestConcurrentBuilds(t *testing.T) {
	hist := NewMemoryHistory(5)
	cache := NewMemoryCache(50)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	cfg := Config{
		Region: "DE", Deadline: 300 * time.Millisecond,
		Directory: &SourceSpec{Name: "directory", CacheTTL: time.Minute, Source: directoryOf(brandt,
			Record{"id": "C-2", "phone": otherPhone, "name": "Nowak"})},
		Sources: []SourceSpec{
			{Name: "credit", CacheTTL: time.Minute, Source: byCustomer(map[string][]Record{"C-1": {{"l": 1}}, "C-2": {{"l": 2}}})},
			{Name: "tickets", Needs: "phone", MaxConcurrent: 3, Source: static(Record{"n": 1})},
			{Name: "flaky", Needs: "phone", Breaker: BreakerSpec{Failures: 2, OpenFor: 10 * time.Millisecond}, Source: sourceFunc(func(_ context.Context, k Key) ([]Record, error) {
				if strings.HasSuffix(k.Phone, "7") {
					return nil, errors.New("odd")
				}
				return nil, nil
			})},
			{Name: "stuck", Needs: "phone", Timeout: 20 * time.Millisecond, Breaker: BreakerSpec{Disabled: true}, Source: blockUntil(release)},
			{Name: "boom", Needs: "phone", Source: sourceFunc(func(context.Context, Key) ([]Record, error) { panic("boom") })},
		},
	}
	f := newFixture(t, cfg, Options{Cache: cache, History: hist})
	numbers := []string{knownPhone, otherPhone, "+4989998877", "anonymous", "1001", "0341 2345670"}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			call := ringing(numbers[i%len(numbers)])
			call.CallID = fmt.Sprintf("call-%d", i)
			var card screenpop.Card
			if i%7 == 0 {
				card = f.agg.BuildFor(context.Background(), call, "C-1")
			} else {
				card = f.agg.Build(context.Background(), call)
			}
			if card.Phone != "" {
				_ = hist.Record(context.Background(), screenpop.PastCall{CallID: call.CallID, Phone: card.Phone, At: time.Now()})
				_ = hist.AddNote(context.Background(), card.Phone, call.CallID, screenpop.Note{Text: "n"})
			}
			if _, err := json.Marshal(card); err != nil {
				t.Errorf("card does not encode: %v", err)
			}
			if s := section(t, card, "stuck"); card.Phone != "" && s.Status != screenpop.SectionTimeout {
				t.Errorf("stuck: %s", s.Status)
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			if err := f.agg.Reload(cfg); err != nil {
				t.Errorf("Reload: %v", err)
			}
		}
	})
	wg.Wait()
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		raw, region string
		want        Number
		err         error
	}{
		{"+48 601-234-567", "DE", Number{E164: "+48601234567", National: "601234567", Region: "PL"}, nil},
		{"0048 601 234 567", "DE", Number{E164: "+48601234567", National: "601234567", Region: "PL"}, nil},
		{"0048 601 234 567", "PL", Number{E164: "+48601234567", National: "601234567", Region: "PL"}, nil},
		{"601 234 567", "PL", Number{E164: "+48601234567", National: "601234567", Region: "PL"}, nil},
		{"030 123456", "DE", Number{E164: "+4930123456", National: "30123456", Region: "DE"}, nil},
		{"(040) 345 67 89", "DE", Number{E164: "+49403456789", National: "403456789", Region: "DE"}, nil},
		{"+49 30 123456 ext. 12", "DE", Number{E164: "+4930123456", National: "30123456", Region: "DE", Extension: "12"}, nil},
		{"+49 30 123456 x12", "DE", Number{E164: "+4930123456", National: "30123456", Region: "DE", Extension: "12"}, nil},
		{"sip:+4930123456@pbx.example;user=phone", "DE", Number{E164: "+4930123456", National: "30123456", Region: "DE"}, nil},
		{"tel:+1-415-555-0134", "DE", Number{E164: "+14155550134", National: "4155550134", Region: "US"}, nil},
		{"+4930123456", "", Number{E164: "+4930123456", National: "30123456", Region: "DE"}, nil},
		{"030 123456", "", Number{}, ErrNotAPhone},
		{"1001", "DE", Number{}, ErrNotAPhone},
		{"+491001", "DE", Number{}, ErrNotAPhone},
		{"110", "DE", Number{}, ErrNotAPhone},
		{"junk", "DE", Number{}, ErrNotAPhone},
		{"", "DE", Number{}, ErrWithheld},
		{"anonymous", "DE", Number{}, ErrWithheld},
		{"Restricted", "DE", Number{}, ErrWithheld},
		{"sip:anonymous@anonymous.invalid", "DE", Number{}, ErrWithheld},
		// Placeholders and junk are never a key (issue 8).
		{"0000000", "DE", Number{}, ErrNotAPhone},
		{"0000000000", "DE", Number{}, ErrNotAPhone},
		{"+490000000", "DE", Number{}, ErrNotAPhone},
		{"00490000000000", "DE", Number{}, ErrNotAPhone},
		{"00000000000000000000", "DE", Number{}, ErrNotAPhone},
		{"1111111", "DE", Number{}, ErrNotAPhone},
		{"+49 9999999999", "DE", Number{}, ErrNotAPhone},
		{"123456789", "DE", Number{}, ErrNotAPhone},
		{"123456789", "PL", Number{}, ErrNotAPhone}, // a Kraków number, but in national form a placeholder
		{"+48 12 345 67 89", "DE", Number{E164: "+48123456789", National: "123456789", Region: "PL"}, nil},
		{"1234567890", "DE", Number{}, ErrNotAPhone},
		{"1234567890", "US", Number{}, ErrNotAPhone},
		{"0123456789", "DE", Number{}, ErrNotAPhone},
		{"+49123456789", "DE", Number{}, ErrNotAPhone},
		{"+491234567", "DE", Number{}, ErrNotAPhone},
		{"ABC123", "DE", Number{}, ErrNotAPhone},
		{"+49 30 CALL ME", "DE", Number{}, ErrNotAPhone},
		{"0800 FLOWERS", "DE", Number{}, ErrNotAPhone},
		{"+49 30 123456 x", "DE", Number{}, ErrNotAPhone},
		{"+49 30 1234567890123", "DE", Number{}, ErrNotAPhone},  // libphonenumber calls it valid: 17 digits
		{"0049 30 1234567890123", "DE", Number{}, ErrNotAPhone}, // the same with the 00 prefix
		{"+4930123456789012345", "DE", Number{}, ErrNotAPhone},
		{"tel:+4930123456;ext=12", "DE", Number{E164: "+4930123456", National: "30123456", Region: "DE", Extension: "12"}, nil},
		{"tel:30123456;phone-context=+49", "PL", Number{E164: "+4930123456", National: "30123456", Region: "DE"}, nil},
		{"+4930123456", "DE", Number{E164: "+4930123456", National: "30123456", Region: "DE"}, nil},
		{"0341 555 01313", "DE", Number{E164: "+4934155501313", National: "34155501313", Region: "DE"}, nil},
		{"+1 555 555 5555", "DE", Number{}, ErrNotAPhone},
	} {
		got, err := normalize(tc.raw, tc.region)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("normalize(%q, %q) = %+v, %v; want %+v, %v", tc.raw, tc.region, got, err, tc.want, tc.err)
		}
	}
	f := newFixture(t, Config{Region: "de"}, Options{})
	if n, err := f.agg.Normalize("030 123456"); err != nil || n.E164 != knownPhone {
		t.Errorf("Normalize: %+v %v", n, err)
	}
}

// New checks what a configuration file can get wrong with the same
// validation the loader uses (Config.Validate): every problem at once, each
// at the option at fault.
func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"region", Config{Region: "XX"}, []string{
			`region: "XX" is not an ISO 3166 region code with a numbering plan (fix: write the country's two letters, e.g. region: DE)`,
		}},
		{"deadline", Config{Deadline: -time.Second}, []string{
			"deadline: -1s is outside 50ms..30s (fix: a pop must appear while the phone rings: 1s-3s is usual)",
		}},
		{"history", Config{HistoryLimit: -1}, []string{"history_limit: -1 must not be negative (fix: leave it out for 10)"}},
		{"source", Config{Sources: []SourceSpec{
			{Name: "a", Source: static(), Mapping: Mapping{Mode: "table", Fields: []FieldMap{{From: ""}, {From: "x", Format: "euro"}}}},
			{Name: "a", Source: static(), Needs: "email"},
			{Source: nil, Timeout: -1},
		}}, []string{
			`sources[0] (a): mapping.mode: "table" is unknown (fix: fields (one record as labelled values) or list (all records as a table))`,
			"sources[0] (a): mapping.fields[0].from: missing (fix: name the column or JSON field, e.g. from: balance)",
			`sources[0] (a): mapping.fields[1].format: "euro" is unknown (fix: one of: text, money, number, date, datetime, percent)`,
			`sources[1] (a): name: "a" is already the name of sources[0] (fix: each source needs its own name (it labels metrics and cache keys))`,
			`sources[1] (a): needs: "email" is not a lookup parameter (fix: one of: customer_id, national, phone, region)`,
			"sources[2]: name: missing (fix: name the source, e.g. name: accounting-balance (it labels metrics, logs and cache keys))",
			"sources[2]: timeout: -1ns is outside 0..30s (fix: e.g. timeout: 800ms)",
			"sources[2]: no source implementation (Source is nil)",
		}},
		{"directory", Config{Directory: &SourceSpec{Name: "dir", Needs: "customer_id", Source: static(), Mapping: Mapping{Mode: ModeList}},
			Sources: []SourceSpec{{Name: "dir", Source: static()}}}, []string{
			"directory (dir): needs: the directory finds the customer, so it cannot need customer_id (fix: needs: phone or needs: national)",
			"directory (dir): mapping: the directory has no mapping: its columns are id, name, kind, contact, role, email, city, country, tags (fix: remove mapping and alias the columns in the query instead)",
			`sources[0] (dir): name: "dir" is already the name of directory (fix: each source needs its own name (it labels metrics and cache keys))`,
		}},
		{"sections", Config{Sections: []SectionSpec{{Name: "a"}, {Name: "a"}, {}}, Sources: []SourceSpec{{Name: "a", Source: static()}}}, []string{
			`sections[1]: name: section "a" is listed twice (fix: list each section once)`,
			"sections[2]: name: missing (fix: name the section, e.g. name: accounting)",
		}},
		// A role nobody can hold would hide the section from everyone.
		{"section roles", Config{Sections: []SectionSpec{{Name: "a", Roles: []string{"credit", "", "credit team", "credit"}}}, Sources: []SourceSpec{{Name: "a", Source: static()}}}, []string{
			"sections[0]: roles[1]: is empty (fix: name a role agents hold, e.g. roles: [credit, supervisor])",
			`sections[0]: roles[2]: "credit team" contains white space (fix: roles are single words, e.g. credit or credit-team)`,
			`sections[0]: roles[3]: "credit" is listed twice (fix: list each role once)`,
		}},
		// A source may only fill a section the list declares, also when its
		// name stands for the section.
		{"undeclared section", Config{Sections: []SectionSpec{{Name: "accounting"}}, Sources: []SourceSpec{
			{Name: "balance", Section: "acounting", Source: static()},
			{Name: "credit", Source: static()},
		}}, []string{
			`sources[0] (balance): section: "acounting" is not declared in sections (fix: set section: to one of: accounting, or add it to sections (- {name: acounting, title: ...}))`,
			`sources[1] (credit): section: "credit" (the source's name, when section: is left out) is not declared in sections (fix: set section: to one of: accounting, or add it to sections (- {name: credit, title: ...}))`,
		}},
		{"limits", Config{Sources: []SourceSpec{{Name: "s", Source: static(), MaxConcurrent: -1, CacheTTL: -1, Breaker: BreakerSpec{Failures: -1}, Mapping: Mapping{MaxRows: -2}}}}, []string{
			"sources[0] (s): cache_ttl: -1ns is outside 0..24h (fix: customer data is personal data: keep it short, e.g. cache_ttl: 5m)",
			"sources[0] (s): max_concurrent: -1 must not be negative (fix: 0 means no limit)",
			"sources[0] (s): breaker.failures: -1 must not be negative (fix: leave it out for 5)",
			"sources[0] (s): mapping.max_rows: -2 must not be negative (fix: leave it out for 20)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, Options{})
			want := "aggregator: " + strings.Join(tc.want, "\n")
			if err == nil || err.Error() != want {
				t.Errorf("error:\n%v\nwant:\n%s", err, want)
			}
			var problems Problems
			if !errors.As(err, &problems) || len(problems) != len(tc.want) {
				t.Errorf("errors.As finds %d problems, want %d", len(problems), len(tc.want))
			}
		})
	}
	// What New refuses, Validate reports alone, with the path a loader
	// places at a key.
	err := Config{Deadline: time.Minute, Sources: []SourceSpec{{Name: "s", Timeout: time.Minute}}}.Validate()
	var problems Problems
	if !errors.As(err, &problems) || len(problems) != 2 || problems[0].Path != "deadline" || problems[1].Path != "sources[0].timeout" || problems[1].Name != "s" {
		t.Errorf("Validate = %#v", err)
	}
	agg, err := New(Config{Directory: &SourceSpec{Name: "d", Source: static()}, Sources: []SourceSpec{{Name: "s", Source: static()}}}, Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := agg.Config()
	s := cfg.Sources[0]
	if cfg.Deadline != DefaultDeadline || cfg.HistoryLimit != DefaultHistoryLimit || s.Timeout != DefaultTimeout || s.Needs != "customer_id" ||
		s.Section != "s" || s.Mapping.Mode != ModeFields || s.Mapping.MaxRows != DefaultMaxRows || s.Breaker.Failures != 5 || s.Breaker.OpenFor != 30*time.Second ||
		cfg.Directory.Needs != "phone" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
}
