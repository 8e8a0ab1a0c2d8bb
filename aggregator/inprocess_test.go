package aggregator

import (
	"context"
	"fmt"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
)

// A card whose every answer is in the in-process cache, and whose history
// is the memory store's, is complete before anything could be told: a
// progressive build tells nothing and returns the whole card, with the
// cache's metrics counted as for any cached answer.
func TestCardFromMemoryAtOnce(t *testing.T) {
	store, err := history.NewMemory(history.Config{}, history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := store.RecordCall(ctx, history.Call{ID: "earlier", Phone: knownPhone, CustomerID: "C-1", Agent: "1001",
		Outcome: screenpop.OutcomeAnswered, RingAt: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	dir := count(directoryOf(Record{"id": "C-1", "name": "ACME", "phone": knownPhone}))
	credit := count(byCustomer(map[string][]Record{"C-1": {{"limit": 5000}}}))
	f := newFixture(t, Config{
		Region:    "DE",
		Deadline:  MaxDeadline, // the first card's answers are cached, however busy the machine
		Directory: &SourceSpec{Name: "directory", CacheTTL: time.Minute, Source: dir},
		Sources:   []SourceSpec{{Name: "credit", CacheTTL: time.Minute, Source: credit}},
	}, Options{Cache: NewMemoryCache(10), History: store})
	f.agg.Build(ctx, ringing(knownPhone)) // fills the cache

	told := 0
	card := f.agg.BuildProgressive(ctx, ringing(knownPhone), "", func(screenpop.CardUpdate) { told++ })
	if told != 0 {
		t.Errorf("told %d steps of a card answered from memory, want none", told)
	}
	if dir.calls.Load() != 1 || credit.calls.Load() != 1 {
		t.Errorf("directory asked %d times, credit %d: want once each", dir.calls.Load(), credit.calls.Load())
	}
	if card.Resolution != screenpop.ResolvedCustomer || card.Customer.ID != "C-1" {
		t.Errorf("resolution %s, customer %+v", card.Resolution, card.Customer)
	}
	if s := section(t, card, "credit"); s.Status != screenpop.SectionOK || !s.Cached || fmt.Sprint(fieldValue(t, s, "limit")) != "5000" {
		t.Errorf("credit section %+v", s)
	}
	if len(card.History) != 1 || card.History[0].CallID != "earlier" || card.CallsLast30Days == nil || *card.CallsLast30Days != 1 {
		t.Errorf("history %+v, %v in 30 days", card.History, card.CallsLast30Days)
	}
	for _, source := range []string{"directory", "credit"} {
		if v := mustMetric(t, f.reg, "screenpop_cache_requests_total", map[string]string{"source": source, "result": "hit"}); v != 1 {
			t.Errorf("%s: %v cache hits, want 1", source, v)
		}
		if v := mustMetric(t, f.reg, "screenpop_aggregator_source_duration_seconds", map[string]string{"source": source, "outcome": "cached"}); v != 1 {
			t.Errorf("%s: %v cached outcomes, want 1", source, v)
		}
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_cache_requests_total", map[string]string{"result": "miss"}); v != 2 {
		t.Errorf("%v cache misses, want 2 (the first card's)", v)
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_resolutions_total", map[string]string{"result": "customer"}); v != 2 {
		t.Errorf("%v cards resolved to a customer, want 2", v)
	}
}

// Answers from memory and sources asked in goroutines mix: the cached
// sections are settled on the first step, the source that does not answer
// still times out at the card's deadline, and a source whose cache missed
// is asked once, the miss counted once.
func TestCardFromMemoryAndSources(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	dir := count(directoryOf(Record{"id": "C-1", "name": "ACME", "phone": knownPhone}))
	credit := count(byCustomer(map[string][]Record{"C-1": {{"limit": 5000}}}))
	directory := &SourceSpec{Name: "directory", CacheTTL: time.Minute, Source: dir}
	cached := SourceSpec{Name: "credit", CacheTTL: time.Minute, Source: credit}
	cache := NewMemoryCache(10)
	ctx := context.Background()
	// Filled with no deadline to speak of, however busy the machine.
	fill := newFixture(t, Config{Region: "DE", Deadline: MaxDeadline, Directory: directory, Sources: []SourceSpec{cached}}, Options{Cache: cache})
	fill.agg.Build(ctx, ringing(knownPhone))
	if v := mustMetric(t, fill.reg, "screenpop_cache_requests_total", map[string]string{"source": "credit", "result": "miss"}); v != 1 {
		t.Errorf("credit: %v cache misses, want 1", v)
	}
	f := newFixture(t, Config{
		Region:    "DE",
		Deadline:  MinDeadline,
		Directory: directory,
		Sources:   []SourceSpec{cached, {Name: "hung", Source: blockUntil(release, Record{"x": 1}), Breaker: BreakerSpec{Disabled: true}}},
	}, Options{Cache: cache})

	var steps []screenpop.CardUpdate
	card := f.agg.BuildProgressive(ctx, ringing(knownPhone), "", func(u screenpop.CardUpdate) { steps = append(steps, u) })
	if len(steps) != 1 || steps[0].Card == nil {
		t.Fatalf("steps %+v, want the first card only", steps)
	}
	first := *steps[0].Card
	if s := section(t, first, "credit"); s.Status != screenpop.SectionOK || !s.Cached {
		t.Errorf("first step's credit section %+v", s)
	}
	if s := section(t, first, "hung"); s.Status != screenpop.SectionLoading {
		t.Errorf("first step's hung section %+v", s)
	}
	if s := section(t, card, "hung"); s.Status != screenpop.SectionTimeout {
		t.Errorf("hung section %+v, want timeout", s)
	}
	if s := section(t, card, "credit"); s.Status != screenpop.SectionOK || !s.Cached {
		t.Errorf("credit section %+v", s)
	}
	if dir.calls.Load() != 1 || credit.calls.Load() != 1 {
		t.Errorf("directory asked %d times, credit %d: want once each", dir.calls.Load(), credit.calls.Load())
	}
}

// The memo of the callers' numbers gives what classify and phoneDisplay
// give, however often asked, and stays bounded.
func TestNumberMemo(t *testing.T) {
	m := numberMemo{max: 8}
	callers := []screenpop.Caller{
		{Number: "+4930123456"}, {Number: "030 123456"}, {Number: "sip:+48601234567@pbx"}, {Number: "1001"},
		{Number: "anonymous"}, {Number: ""}, {Number: "+4930123456", Withheld: true}, {Number: "+49 30 123456 ext. 12"},
	}
	for range 2 {
		for _, c := range callers {
			for _, region := range []string{"DE", "PL", ""} {
				n, kind, display := m.classify(c, region)
				wantN, wantKind := classify(c, region)
				if n != wantN || kind != wantKind || display != phoneDisplay(c, wantN, wantKind, region) {
					t.Errorf("%+v in %q: %+v %v %q, want %+v %v %q", c, region, n, kind, display, wantN, wantKind, phoneDisplay(c, wantN, wantKind, region))
				}
			}
		}
	}
	for i := range 20 {
		m.classify(screenpop.Caller{Number: fmt.Sprintf("+49301%06d", i)}, "DE")
		if n := len(m.entries); n > 8 {
			t.Fatalf("%d numbers remembered, at most 8", n)
		}
	}
}
