package aggregator

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
)

// waitMetric waits until a counter reaches want: the way to know that
// goroutines got somewhere without sleeping a guessed time.
func waitMetric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string, want float64) {
	t.Helper()
	give := time.Now().Add(20 * time.Second) // only bounds a hung test
	for {
		if v, _ := metric(t, reg, name, labels); v >= want {
			return
		}
		if time.Now().After(give) {
			v, _ := metric(t, reg, name, labels)
			t.Fatalf("%s%v = %v, want %v", name, labels, v, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitCalls waits until a source was asked at least n times.
func waitCalls(t *testing.T, calls interface{ Load() int64 }, n int64) {
	t.Helper()
	give := time.Now().Add(20 * time.Second) // only bounds a hung test
	for calls.Load() < n {
		if time.Now().After(give) {
			t.Fatalf("the source was asked %d times, want %d", calls.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBurstFromOneNumberSharesOneFanOut: 100 calls from one number while
// its first card is being built ask each source once, and each call still
// gets a complete card of its own.
func TestBurstFromOneNumberSharesOneFanOut(t *testing.T) {
	release := make(chan struct{})
	dir := count(func(context.Context, Key) ([]Record, error) {
		<-release
		return []Record{brandt}, nil
	})
	credit := count(byCustomer(map[string][]Record{"C-1": {{"limit": 5000}}}))
	tickets := count(func(context.Context, Key) ([]Record, error) {
		<-release
		return []Record{{"open": 2}}, nil
	})
	hist := NewMemoryHistory(10)
	ctx := context.Background()
	_ = hist.Record(ctx, screenpop.PastCall{CallID: "old", Phone: knownPhone, At: time.Now().Add(-time.Hour)})
	_ = hist.Record(ctx, screenpop.PastCall{CallID: "call-7", Phone: knownPhone, At: time.Now()})
	f := newFixture(t, Config{
		Region: "DE", Deadline: 30 * time.Second,
		Directory: &SourceSpec{Name: "directory", Timeout: 30 * time.Second, Source: dir},
		Sources: []SourceSpec{
			{Name: "credit", Timeout: 30 * time.Second, Source: credit},
			{Name: "tickets", Needs: "phone", Timeout: 30 * time.Second, Source: tickets},
		},
	}, Options{History: hist})

	const calls = 100
	cards := make(chan screenpop.Card, calls)
	for i := range calls {
		go func() {
			number := knownPhone
			if i%2 == 1 {
				number = "030 123456" // the same caller, presented nationally
			}
			call := ringing(number)
			call.CallID = fmt.Sprintf("call-%d", i)
			cards <- f.agg.Build(ctx, call)
		}()
	}
	waitMetric(t, f.reg, "screenpop_aggregator_coalesced_total", nil, calls-1)
	close(release)

	seen := map[string]bool{}
	for range calls {
		card := <-cards
		if seen[card.CallID] {
			t.Errorf("call id %s on two cards", card.CallID)
		}
		seen[card.CallID] = true
		var i int
		fmt.Sscanf(card.CallID, "call-%d", &i)
		if want := map[bool]string{false: knownPhone, true: "030 123456"}[i%2 == 1]; card.Caller.Number != want {
			t.Errorf("%s: caller %q, want %q", card.CallID, card.Caller.Number, want)
		}
		if card.Resolution != screenpop.ResolvedCustomer || card.Customer == nil || card.Customer.ID != "C-1" {
			t.Fatalf("%s: resolution %s customer %+v", card.CallID, card.Resolution, card.Customer)
		}
		if v := fieldValue(t, section(t, card, "credit"), "limit"); v != 5000 {
			t.Errorf("%s: credit limit %v", card.CallID, v)
		}
		if v := fieldValue(t, section(t, card, "tickets"), "open"); v != 2 {
			t.Errorf("%s: open tickets %v", card.CallID, v)
		}
		wantHistory := []string{"call-7", "old"}
		if card.CallID == "call-7" {
			wantHistory = []string{"old"} // not itself
		}
		var got []string
		for _, h := range card.History {
			got = append(got, h.CallID)
		}
		if fmt.Sprint(got) != fmt.Sprint(wantHistory) {
			t.Errorf("%s: history %v, want %v", card.CallID, got, wantHistory)
		}
	}
	for name, src := range map[string]*counted{"directory": dir, "credit": credit, "tickets": tickets} {
		if n := src.calls.Load(); n != 1 {
			t.Errorf("%s asked %d times, want 1", name, n)
		}
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_resolutions_total", map[string]string{"result": "customer"}); v != 1 {
		t.Errorf("fan-outs = %v, want 1", v)
	}
}

// TestCoalescedCardsAreCopies: a card handed to one caller can be changed
// without touching another caller's.
func TestCoalescedCardsAreCopies(t *testing.T) {
	release := make(chan struct{})
	f := newFixture(t, Config{
		Region: "DE", Deadline: 30 * time.Second,
		Directory: &SourceSpec{Name: "directory", Timeout: 30 * time.Second, Source: blockUntil(release, brandt)},
		Sources:   []SourceSpec{{Name: "credit", Source: static(Record{"limit": 1})}},
	}, Options{})
	cards := make(chan screenpop.Card, 2)
	for range 2 {
		go func() { cards <- f.agg.Build(context.Background(), ringing(knownPhone)) }()
	}
	waitMetric(t, f.reg, "screenpop_aggregator_coalesced_total", nil, 1)
	close(release)
	a, b := <-cards, <-cards
	a.Sections[0].Status = screenpop.SectionError
	a.Customer.Name = "changed"
	if b.Sections[0].Status == screenpop.SectionError || b.Customer.Name == "changed" {
		t.Errorf("the two callers share one card's memory")
	}
}

// TestCancelledSharerLeavesOthersTheirCard: a call that ends while its card
// is shared returns at once; the fan-out goes on for the other call.
func TestCancelledSharerLeavesOthersTheirCard(t *testing.T) {
	release := make(chan struct{})
	src := count(func(ctx context.Context, _ Key) ([]Record, error) {
		select {
		case <-release:
			return []Record{{"v": 1}}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	f := newFixture(t, Config{
		Region: "DE", Deadline: 30 * time.Second,
		Sources: []SourceSpec{{Name: "s", Needs: "phone", Timeout: 30 * time.Second, Source: src, Breaker: BreakerSpec{Failures: 1}}},
	}, Options{})
	first := make(chan screenpop.Card, 1)
	go func() { first <- f.agg.Build(context.Background(), ringing(knownPhone)) }()
	waitCalls(t, &src.calls, 1)
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan screenpop.Card, 1)
	go func() {
		call := ringing(knownPhone)
		call.CallID = "call-2"
		second <- f.agg.Build(ctx, call)
	}()
	waitMetric(t, f.reg, "screenpop_aggregator_coalesced_total", nil, 1)
	cancel()
	card := <-second // returns while the source still blocks
	if s := section(t, card, "s"); s.Status != screenpop.SectionTimeout || card.CallID != "call-2" {
		t.Errorf("abandoned sharer: %s %s", card.CallID, s.Status)
	}
	close(release)
	if s := section(t, <-first, "s"); s.Status != screenpop.SectionOK {
		t.Errorf("first card: %s %q", s.Status, s.Error)
	}
	if n := src.calls.Load(); n != 1 {
		t.Errorf("source asked %d times", n)
	}
}

// TestShorterDeadlineDoesNotJoin: a card that must be ready before the
// running fan-out ends builds its own, and returns by its deadline.
func TestShorterDeadlineDoesNotJoin(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	src := count(blockUntil(release, Record{"v": 1}))
	f := newFixture(t, Config{
		Region: "DE", Deadline: 30 * time.Second,
		Sources: []SourceSpec{{Name: "s", Needs: "phone", Timeout: 30 * time.Second, Source: src, Breaker: BreakerSpec{Disabled: true}}},
	}, Options{})
	go f.agg.Build(context.Background(), ringing(knownPhone))
	waitCalls(t, &src.calls, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	card := f.agg.Build(ctx, ringing(knownPhone))
	if s := section(t, card, "s"); s.Status != screenpop.SectionTimeout {
		t.Errorf("status %s", s.Status)
	}
	if n := src.calls.Load(); n != 2 {
		t.Errorf("source asked %d times, want 2 (no sharing)", n)
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_coalesced_total", nil); v != 0 {
		t.Errorf("coalesced = %v", v)
	}
}

// TestSequentialCardsAreNotShared: coalescing is for concurrent calls
// only; a later call asks again (or reads the cache).
func TestSequentialCardsAreNotShared(t *testing.T) {
	src := count(static(Record{"v": 1}))
	f := newFixture(t, Config{Region: "DE", Sources: []SourceSpec{{Name: "s", Needs: "phone", Source: src}}}, Options{})
	for range 3 {
		f.agg.Build(context.Background(), ringing(knownPhone))
	}
	if n := src.calls.Load(); n != 3 {
		t.Errorf("source asked %d times, want 3", n)
	}
}
