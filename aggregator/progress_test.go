package aggregator

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// gated answers records once its gate is opened, or gives up with ctx.
func gated(gate <-chan struct{}, records ...Record) sourceFunc {
	return func(ctx context.Context, _ Key) ([]Record, error) {
		select {
		case <-gate:
			return records, nil
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// gatedHistory reads the earlier calls of a MemoryHistory once its gate
// is opened.
type gatedHistory struct {
	*MemoryHistory
	gate <-chan struct{}
}

func (h gatedHistory) Recent(ctx context.Context, phone string, limit int) ([]screenpop.PastCall, error) {
	select {
	case <-h.gate:
		return h.MemoryHistory.Recent(ctx, phone, limit)
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// progressive runs BuildProgressive in a goroutine: its steps come on
// steps, its card on card; after the card, nothing more may come.
type progressive struct {
	steps chan screenpop.CardUpdate
	card  chan screenpop.Card
}

func buildProgressive(f *fixture, call screenpop.CallEvent, customerID string) *progressive {
	p := &progressive{steps: make(chan screenpop.CardUpdate, 64), card: make(chan screenpop.Card, 1)}
	go func() {
		card := f.agg.BuildProgressive(context.Background(), call, customerID, func(u screenpop.CardUpdate) { p.steps <- u })
		close(p.steps)
		p.card <- card
	}()
	return p
}

// next is the next step, which must come before the card.
func (p *progressive) next(t *testing.T) screenpop.CardUpdate {
	t.Helper()
	select {
	case u, ok := <-p.steps:
		if !ok {
			t.Fatal("the card came; a step was expected")
		}
		return u
	case <-time.After(20 * time.Second): // only bounds a hung test
		t.Fatal("no step")
	}
	return screenpop.CardUpdate{}
}

// done is the complete card, which must come with no step before it.
func (p *progressive) done(t *testing.T) screenpop.Card {
	t.Helper()
	for u := range p.steps {
		t.Errorf("a step came after the last one awaited: %s", describeStep(u))
	}
	select {
	case c := <-p.card:
		return c
	case <-time.After(20 * time.Second): // only bounds a hung test
		t.Fatal("no card")
	}
	return screenpop.Card{}
}

func describeStep(u screenpop.CardUpdate) string {
	switch {
	case u.Card != nil:
		s := "card"
		for _, sec := range u.Card.Sections {
			s += fmt.Sprintf(" %s:%s", sec.Name, sec.Status)
		}
		if u.Card.HistoryLoading {
			s += " history:loading"
		}
		return s
	case u.Section != nil:
		return fmt.Sprintf("section %s:%s", u.Section.Name, u.Section.Status)
	case u.History != nil:
		return fmt.Sprintf("history of %d calls", len(u.History.Calls))
	}
	return "empty step"
}

// statuses lists a card's sections as name:status.
func statuses(c screenpop.Card) map[string]screenpop.SectionStatus {
	out := map[string]screenpop.SectionStatus{}
	for _, s := range c.Sections {
		out[s.Name] = s.Status
	}
	return out
}

// The card is told as soon as the directory named the customer, every
// section loading; each section comes as its source answers, the earlier
// calls as they are read, and what answers last only with the card.
func TestBuildProgressiveTellsEachSectionAsItSettles(t *testing.T) {
	accountingGate, creditGate, ticketsGate, historyGate := make(chan struct{}), make(chan struct{}), make(chan struct{}), make(chan struct{})
	mem := NewMemoryHistory(10)
	if err := mem.Record(context.Background(), screenpop.PastCall{CallID: "old", Phone: knownPhone, At: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Config{
		Region: "DE", Deadline: 30 * time.Second,
		Sections:  []SectionSpec{{Name: "accounting"}, {Name: "credit", Roles: []string{"credit"}}, {Name: "tickets"}},
		Directory: &SourceSpec{Name: "directory", Source: directoryOf(brandt)},
		Sources: []SourceSpec{
			{Name: "accounting", Timeout: 30 * time.Second, Source: gated(accountingGate, Record{"balance": 120.5})},
			{Name: "credit", Timeout: 30 * time.Second, Source: gated(creditGate, Record{"limit": 5000})},
			{Name: "tickets", Needs: "phone", Timeout: 30 * time.Second, Source: gated(ticketsGate)},
		},
		Lines: map[string]string{"100": "Support DE"},
	}, Options{History: gatedHistory{MemoryHistory: mem, gate: historyGate}})
	call := ringing(knownPhone)
	call.DID = "100"
	p := buildProgressive(f, call, "")

	first := p.next(t)
	if first.Card == nil {
		t.Fatalf("first step: %s, want the card", describeStep(first))
	}
	card := *first.Card
	if card.Resolution != screenpop.ResolvedCustomer || card.Customer == nil || card.Customer.Name != "Brandt Metallbau GmbH" {
		t.Errorf("the card told: resolution %s, customer %+v", card.Resolution, card.Customer)
	}
	if card.CallID != "call-1" || card.Phone != knownPhone || card.Line == nil || card.Line.Label != "Support DE" || card.PhoneDisplay == "" {
		t.Errorf("the card told: call %q, phone %q, display %q, line %+v", card.CallID, card.Phone, card.PhoneDisplay, card.Line)
	}
	want := map[string]screenpop.SectionStatus{"accounting": screenpop.SectionLoading, "credit": screenpop.SectionLoading, "tickets": screenpop.SectionLoading}
	if got := statuses(card); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sections told %v, want %v", got, want)
	}
	if s := section(t, card, "credit"); len(s.Roles) != 1 || s.Roles[0] != "credit" || s.Title != "Credit" {
		t.Errorf("a loading section keeps its title and roles: %+v", s)
	}
	if !card.HistoryLoading || card.History != nil {
		t.Errorf("history loading %v, history %v: want loading, none", card.HistoryLoading, card.History)
	}

	close(creditGate)
	if u := p.next(t); u.Section == nil || u.Section.Name != "credit" || u.Section.Status != screenpop.SectionOK ||
		fieldValue(t, *u.Section, "limit") != 5000 || len(u.Section.Roles) != 1 {
		t.Fatalf("after credit answered: %s %+v", describeStep(u), u.Section)
	}
	close(ticketsGate)
	if u := p.next(t); u.Section == nil || u.Section.Name != "tickets" || u.Section.Status != screenpop.SectionEmpty {
		t.Fatalf("after tickets answered: %s", describeStep(u))
	}
	close(historyGate)
	if u := p.next(t); u.History == nil || len(u.History.Calls) != 1 || u.History.Calls[0].CallID != "old" {
		t.Fatalf("after the history was read: %s", describeStep(u))
	}
	// The last: not told by itself, the card holds it.
	close(accountingGate)
	final := p.done(t)
	want = map[string]screenpop.SectionStatus{"accounting": screenpop.SectionOK, "credit": screenpop.SectionOK, "tickets": screenpop.SectionEmpty}
	if got := statuses(final); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the card's sections %v, want %v", got, want)
	}
	if final.HistoryLoading || len(final.History) != 1 || final.Line == nil || final.PhoneDisplay == "" {
		t.Errorf("the card: history loading %v, history %d calls, line %+v, display %q", final.HistoryLoading, len(final.History), final.Line, final.PhoneDisplay)
	}
}

// A card that is complete once the caller is known is not told in steps;
// neither is a withheld caller's, nothing being asked.
func TestBuildProgressiveTellsNothingOfACompleteCard(t *testing.T) {
	f := newFixture(t, Config{
		Region: "DE",
		Sources: []SourceSpec{
			{Name: "credit", Source: static(Record{"limit": 5000})},
			{Name: "tickets", Needs: "phone", Source: static()},
		},
	}, Options{History: NewMemoryHistory(10)})
	call := ringing("")
	call.Caller.Withheld = true
	card := buildProgressive(f, call, "").done(t)
	if card.Resolution != screenpop.ResolvedWithheld || len(card.Sections) != 2 {
		t.Errorf("withheld caller: resolution %s, sections %v", card.Resolution, statuses(card))
	}
	for _, s := range card.Sections {
		if s.Status != screenpop.SectionSkipped {
			t.Errorf("section %s: %s, want skipped", s.Name, s.Status)
		}
	}
}

// A section still unanswered at the card's deadline is not told by
// itself: the card says it timed out.
func TestBuildProgressiveStopsAtTheDeadline(t *testing.T) {
	never := make(chan struct{})
	f := newFixture(t, Config{
		Region: "DE", Deadline: 200 * time.Millisecond,
		Directory: &SourceSpec{Name: "directory", Source: directoryOf(brandt)},
		Sources: []SourceSpec{
			{Name: "credit", Source: static(Record{"limit": 5000})},
			{Name: "slow", Source: blockUntil(never)},
		},
	}, Options{})
	t.Cleanup(func() { close(never) })
	p := buildProgressive(f, ringing(knownPhone), "")
	u := p.next(t)
	if u.Card == nil {
		t.Fatalf("first step %s, want the card", describeStep(u))
	}
	var card screenpop.Card
	for card.CallID == "" {
		select {
		case u, ok := <-p.steps:
			if !ok {
				card = <-p.card
				break
			}
			// credit may be told, if it answered after the card was.
			if u.Section == nil || u.Section.Name != "credit" {
				t.Errorf("unexpected step %s", describeStep(u))
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no card")
		}
	}
	if got := statuses(card); got["slow"] != screenpop.SectionTimeout || got["credit"] != screenpop.SectionOK {
		t.Errorf("sections %v, want slow timeout and credit ok", got)
	}
}

// A pick is told once the directory gave the customer's details, its
// sections loading.
func TestBuildProgressiveForAPick(t *testing.T) {
	dirGate, creditGate, ticketsGate := make(chan struct{}), make(chan struct{}), make(chan struct{})
	other := Record{"id": "C-2", "phone": knownPhone, "name": "Brandt Logistik"}
	f := newFixture(t, Config{
		Region: "DE", Deadline: 30 * time.Second,
		Directory: &SourceSpec{Name: "directory", Timeout: 30 * time.Second, Source: sourceFunc(func(ctx context.Context, k Key) ([]Record, error) {
			<-dirGate
			return directoryOf(brandt, other)(ctx, k)
		})},
		Sources: []SourceSpec{
			{Name: "credit", Timeout: 30 * time.Second, Source: gated(creditGate, Record{"limit": 5000})},
			{Name: "tickets", Needs: "phone", Timeout: 30 * time.Second, Source: gated(ticketsGate, Record{"open": 1})},
		},
	}, Options{})
	p := buildProgressive(f, ringing(knownPhone), "C-2")
	close(dirGate)
	u := p.next(t)
	if u.Card == nil || u.Card.Customer == nil || u.Card.Customer.ID != "C-2" || u.Card.Customer.Name != "Brandt Logistik" || len(u.Card.Candidates) != 2 {
		t.Fatalf("first step %s, customer %+v", describeStep(u), u.Card)
	}
	if got := statuses(*u.Card); got["credit"] != screenpop.SectionLoading || got["tickets"] != screenpop.SectionLoading {
		t.Errorf("sections %v, want both loading", got)
	}
	close(creditGate)
	if u := p.next(t); u.Section == nil || u.Section.Name != "credit" {
		t.Fatalf("after credit: %s", describeStep(u))
	}
	close(ticketsGate)
	if card := p.done(t); card.Customer.ID != "C-2" || statuses(card)["tickets"] != screenpop.SectionOK {
		t.Errorf("card for %+v, sections %v", card.Customer, statuses(card))
	}
}

// Calls from one number share one fan-out, and each is told its steps as
// its own: its call id, its sections, the earlier calls without itself.
func TestBuildProgressiveSharedFanOut(t *testing.T) {
	creditGate, accountingGate, historyGate := make(chan struct{}), make(chan struct{}), make(chan struct{})
	credit := count(gated(creditGate, Record{"limit": 5000}))
	mem := NewMemoryHistory(10)
	ctx := context.Background()
	for _, c := range []screenpop.PastCall{
		{CallID: "old", Phone: knownPhone, At: time.Now().Add(-time.Hour)},
		{CallID: "call-b", Phone: knownPhone, At: time.Now()}, // recorded early: a rebuilt card
	} {
		if err := mem.Record(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixture(t, Config{
		Region: "DE", Deadline: 30 * time.Second,
		Directory: &SourceSpec{Name: "directory", Source: directoryOf(brandt)},
		Sources: []SourceSpec{
			{Name: "credit", Timeout: 30 * time.Second, Source: credit},
			{Name: "accounting", Timeout: 30 * time.Second, Source: gated(accountingGate, Record{"balance": 1})},
		},
	}, Options{History: gatedHistory{MemoryHistory: mem, gate: historyGate}})
	a := ringing(knownPhone)
	a.CallID = "call-a"
	pa := buildProgressive(f, a, "")
	if u := pa.next(t); u.Card == nil || u.Card.CallID != "call-a" {
		t.Fatalf("call-a: first step %s", describeStep(u))
	}
	b := ringing("030 123456")
	b.CallID = "call-b"
	pb := buildProgressive(f, b, "")
	// Joining late, call-b is told the card from the start.
	if u := pb.next(t); u.Card == nil || u.Card.CallID != "call-b" || statuses(*u.Card)["credit"] != screenpop.SectionLoading {
		t.Fatalf("call-b: first step %s", describeStep(u))
	}
	close(creditGate)
	for _, p := range []*progressive{pa, pb} {
		if u := p.next(t); u.Section == nil || u.Section.Name != "credit" || u.Section.Status != screenpop.SectionOK {
			t.Fatalf("after credit: %s", describeStep(u))
		}
	}
	close(historyGate)
	ua, ub := pa.next(t), pb.next(t)
	if ua.History == nil || len(ua.History.Calls) != 2 {
		t.Errorf("call-a's history: %s, want call-b and old", describeStep(ua))
	}
	if ub.History == nil || len(ub.History.Calls) != 1 || ub.History.Calls[0].CallID != "old" {
		t.Errorf("call-b's history: %s, want old only (not itself)", describeStep(ub))
	}
	if n := credit.calls.Load(); n != 1 {
		t.Errorf("credit asked %d times, want once", n)
	}
	close(accountingGate)
	for _, p := range []*progressive{pa, pb} {
		if card := p.done(t); statuses(card)["accounting"] != screenpop.SectionOK {
			t.Errorf("sections %v", statuses(card))
		}
	}
}

// A section served from the cache says when its answer was fetched.
func TestCachedSectionSaysItsAge(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFixture(t, Config{
		Region: "DE",
		Sources: []SourceSpec{
			{Name: "credit", Needs: "phone", CacheTTL: time.Hour, FreshFor: time.Hour, Source: static(Record{"limit": 5000})},
			{Name: "tickets", Needs: "phone", Source: static(Record{"open": 1})},
		},
	}, Options{Cache: NewMemoryCache(10), Now: clock})
	first := f.agg.Build(context.Background(), ringing(knownPhone))
	if s := section(t, first, "credit"); s.Cached || !s.CachedAt.IsZero() {
		t.Errorf("fresh answer: cached %v at %v", s.Cached, s.CachedAt)
	}
	mu.Lock()
	fetched := now
	now = now.Add(12 * time.Minute)
	mu.Unlock()
	second := f.agg.Build(context.Background(), ringing(knownPhone))
	if s := section(t, second, "credit"); !s.Cached || !s.CachedAt.Equal(fetched) {
		t.Errorf("cached answer: cached %v at %v, want at %v", s.Cached, s.CachedAt, fetched)
	}
	if s := section(t, second, "tickets"); s.Cached || !s.CachedAt.IsZero() {
		t.Errorf("uncached section: cached %v at %v", s.Cached, s.CachedAt)
	}
}
