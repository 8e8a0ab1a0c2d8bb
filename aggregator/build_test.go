package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

var brandt = Record{"id": "C-1", "phone": knownPhone, "name": "Brandt Metallbau GmbH", "kind": "company",
	"contact": "Jörg Brandt", "role": "Managing Director", "email": "j.brandt@example.com",
	"city": "Berlin", "country": "DE", "tags": "key-account, vip"}

// TestSourcesRunInParallel: every source waits until all have started. Run
// one after the other, the first would wait for the others until its
// timeout and every section would time out.
func TestSourcesRunInParallel(t *testing.T) {
	const n = 6
	var started sync.WaitGroup
	started.Add(n)
	all := make(chan struct{})
	go func() { started.Wait(); close(all) }()
	barrier := func(i int) sourceFunc {
		return func(ctx context.Context, _ Key) ([]Record, error) {
			started.Done()
			select {
			case <-all:
				return []Record{{"n": i}}, nil
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		}
	}
	cfg := Config{Region: "DE", Deadline: 10 * time.Second}
	for i := range n {
		cfg.Sources = append(cfg.Sources, SourceSpec{
			Name: fmt.Sprintf("s%d", i), Needs: "phone", Timeout: 5 * time.Second, Source: barrier(i),
		})
	}
	f := newFixture(t, cfg, Options{})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	if len(card.Sections) != n {
		t.Fatalf("got %d sections, want %d", len(card.Sections), n)
	}
	for i, s := range card.Sections {
		if s.Status != screenpop.SectionOK {
			t.Errorf("section %s: status %s (%s), want ok: the sources did not run in parallel", s.Name, s.Status, s.Error)
			continue
		}
		if got := fieldValue(t, s, "n"); got != i {
			t.Errorf("section %s: n = %v, want %d", s.Name, got, i)
		}
	}
}

// TestHangingSourceTimesOut: a source that ignores its context costs its
// own section; Build returns with the others.
func TestHangingSourceTimesOut(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f := newFixture(t, Config{
		Region: "DE", Deadline: 200 * time.Millisecond,
		Sources: []SourceSpec{
			{Name: "fast", Needs: "phone", Source: static(Record{"balance": 12.5})},
			{Name: "stuck", Needs: "phone", Source: blockUntil(release, Record{"x": 1})},
		},
	}, Options{})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	if s := section(t, card, "fast"); s.Status != screenpop.SectionOK || fieldValue(t, s, "balance") != 12.5 {
		t.Errorf("fast: %+v", s)
	}
	s := section(t, card, "stuck")
	if s.Status != screenpop.SectionTimeout {
		t.Fatalf("stuck: status %s, want timeout", s.Status)
	}
	if !strings.Contains(s.Error, "stuck") || !strings.Contains(s.Error, "did not answer within") {
		t.Errorf("stuck: error %q should name the source and the timeout", s.Error)
	}
}

// TestSourceTimeoutCause: a source's own timeout shorter than the deadline
// ends it first, and its context says which source ran out of time.
func TestSourceTimeoutCause(t *testing.T) {
	causes := make(chan error, 1)
	f := newFixture(t, Config{
		Region: "DE", Deadline: 5 * time.Second,
		Sources: []SourceSpec{{Name: "slow", Needs: "phone", Timeout: 50 * time.Millisecond,
			Source: sourceFunc(func(ctx context.Context, _ Key) ([]Record, error) {
				<-ctx.Done()
				causes <- context.Cause(ctx)
				return nil, ctx.Err()
			})}},
	}, Options{})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	s := section(t, card, "slow")
	if s.Status != screenpop.SectionTimeout || s.Error != "slow did not answer within 50ms" {
		t.Errorf("slow: %s %q", s.Status, s.Error)
	}
	if cause := <-causes; cause == nil || !strings.Contains(cause.Error(), `source "slow": no answer within 50ms`) {
		t.Errorf("cause = %v", cause)
	}
}

func TestContextDeadlineShorterThanConfig(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	f := newFixture(t, Config{
		Region: "DE", Deadline: MaxDeadline,
		Sources: []SourceSpec{{Name: "stuck", Needs: "phone", Timeout: MaxTimeout, Source: blockUntil(release)}},
	}, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	card := f.agg.Build(ctx, ringing(knownPhone))
	if s := section(t, card, "stuck"); s.Status != screenpop.SectionTimeout {
		t.Errorf("stuck: %s", s.Status)
	}
}

func TestPanickingSource(t *testing.T) {
	f := newFixture(t, Config{
		Region: "DE",
		Sources: []SourceSpec{
			{Name: "ok", Needs: "phone", Source: static(Record{"a": "b"})},
			{Name: "bad", Needs: "phone", Source: sourceFunc(func(context.Context, Key) ([]Record, error) {
				panic("index out of range in adapter")
			})},
		},
	}, Options{})
	for range 2 {
		card := f.agg.Build(context.Background(), ringing(knownPhone))
		if s := section(t, card, "ok"); s.Status != screenpop.SectionOK {
			t.Errorf("ok: %s", s.Status)
		}
		s := section(t, card, "bad")
		if s.Status != screenpop.SectionError || s.Error != "bad failed unexpectedly" {
			t.Errorf("bad: %s %q", s.Status, s.Error)
		}
	}
	logs := f.logs.String()
	if n := strings.Count(logs, "index out of range in adapter"); n != 2 {
		t.Errorf("the panic is logged %d times, want once per panic:\n%s", n, logs)
	}
	if n := strings.Count(logs, "stack="); n != 1 {
		t.Errorf("the stack is logged %d times, want once:\n%s", n, logs)
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_source_errors_total", map[string]string{"source": "bad", "reason": "panic"}); v != 2 {
		t.Errorf("panic errors = %v, want 2", v)
	}
}

// TestFailingSourceKeepsTheRest: the section takes the failing status,
// keeps what the other source of it answered, and its error names the
// source in words without the adapter's message.
func TestFailingSourceKeepsTheRest(t *testing.T) {
	secret := errors.New(`query "SELECT balance FROM ledger WHERE phone = $1" failed on postgres://app:hunter2@db.internal/erp`)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	f := newFixture(t, Config{
		Region: "DE",
		Sources: []SourceSpec{
			{Name: "balance", Section: "accounting", Needs: "phone", Source: static(Record{"balance": 10.0})},
			{Name: "ledger", Section: "accounting", Needs: "phone", Source: sourceFunc(func(context.Context, Key) ([]Record, error) { return nil, secret })},
			{Name: "crm", Needs: "phone", Source: sourceFunc(func(context.Context, Key) ([]Record, error) { return nil, fmt.Errorf("crm: %w", refused) })},
		},
	}, Options{})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	s := section(t, card, "accounting")
	if s.Status != screenpop.SectionError {
		t.Fatalf("accounting: status %s, want error", s.Status)
	}
	if got := fieldValue(t, s, "balance"); got != 10.0 {
		t.Errorf("the answering source's data is lost: balance = %v", got)
	}
	if s.Error != "ledger reported an error" {
		t.Errorf("accounting error = %q", s.Error)
	}
	if s := section(t, card, "crm"); s.Error != "crm cannot be reached" {
		t.Errorf("crm error = %q", s.Error)
	}
	b, _ := json.Marshal(card)
	for _, leak := range []string{"SELECT", "hunter2", "db.internal"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("the card holds %q: %s", leak, b)
		}
	}
	if !strings.Contains(f.logs.String(), "SELECT balance") {
		t.Errorf("the adapter's error should reach the log for IT:\n%s", f.logs.String())
	}
}

func TestEmptyAndMixedSections(t *testing.T) {
	f := newFixture(t, Config{
		Region: "DE",
		Sources: []SourceSpec{
			{Name: "nothing", Needs: "phone", Source: static()},
			{Name: "a", Section: "mixed", Needs: "phone", Source: static()},
			{Name: "b", Section: "mixed", Needs: "phone", Source: static(Record{"v": "x"})},
		},
	}, Options{})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	if s := section(t, card, "nothing"); s.Status != screenpop.SectionEmpty || s.Error != "" {
		t.Errorf("nothing: %+v", s)
	}
	if s := section(t, card, "mixed"); s.Status != screenpop.SectionOK || fieldValue(t, s, "v") != "x" {
		t.Errorf("mixed: %+v", s)
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	var healthy sync.Mutex // held while the source fails
	failing := true
	src := count(func(context.Context, Key) ([]Record, error) {
		healthy.Lock()
		defer healthy.Unlock()
		if failing {
			return nil, errors.New("boom")
		}
		return []Record{{"ok": true}}, nil
	})
	f := newFixture(t, Config{
		Region: "DE",
		Sources: []SourceSpec{{Name: "flaky", Needs: "phone", Source: src,
			Breaker: BreakerSpec{Failures: 3, OpenFor: 100 * time.Millisecond}}},
	}, Options{})
	build := func() screenpop.CardSection {
		return section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "flaky")
	}
	for i := range 3 {
		if s := build(); s.Status != screenpop.SectionError {
			t.Fatalf("build %d: %s", i, s.Status)
		}
	}
	for range 3 {
		s := build()
		if s.Status != screenpop.SectionUnavailable || s.Error != "flaky is paused after repeated failures" {
			t.Fatalf("open breaker: %s %q", s.Status, s.Error)
		}
	}
	if n := src.calls.Load(); n != 3 {
		t.Fatalf("the source was called %d times, want 3: an open breaker must not call it", n)
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_source_errors_total", map[string]string{"source": "flaky", "reason": "unavailable"}); v != 3 {
		t.Errorf("unavailable errors = %v, want 3", v)
	}

	healthy.Lock()
	failing = false
	healthy.Unlock()
	// After OpenFor the breaker lets one probe through.
	for give := time.Now().Add(10 * time.Second); ; {
		s := build()
		if s.Status == screenpop.SectionOK {
			break
		}
		if s.Status != screenpop.SectionUnavailable || time.Now().After(give) {
			t.Fatalf("the breaker did not close again: %s %q", s.Status, s.Error)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := src.calls.Load(); n != 4 {
		t.Errorf("calls = %d, want 4 (one probe)", n)
	}
}

// TestBreakerCountsTimeouts: a lookup that never returns counts as a
// failure when it times out, so a hung system trips the breaker too.
func TestBreakerCountsTimeouts(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	src := count(blockUntil(release))
	f := newFixture(t, Config{
		// The source's own timeout ends it well before the card's deadline,
		// so the breaker has heard of the timeout when Build returns.
		Region: "DE", Deadline: 10 * time.Second,
		Sources: []SourceSpec{{Name: "hung", Needs: "phone", Timeout: 30 * time.Millisecond, Source: src, Breaker: BreakerSpec{Failures: 2, OpenFor: time.Hour}}},
	}, Options{})
	var statuses []screenpop.SectionStatus
	for range 4 {
		statuses = append(statuses, section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "hung").Status)
	}
	want := []screenpop.SectionStatus{"timeout", "timeout", "unavailable", "unavailable"}
	if fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	if n := src.calls.Load(); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
}

func TestBreakerDisabled(t *testing.T) {
	src := count(func(context.Context, Key) ([]Record, error) { return nil, errors.New("boom") })
	f := newFixture(t, Config{
		Region:  "DE",
		Sources: []SourceSpec{{Name: "x", Needs: "phone", Source: src, Breaker: BreakerSpec{Failures: 1, Disabled: true}}},
	}, Options{})
	for range 4 {
		if s := section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "x"); s.Status != screenpop.SectionError {
			t.Fatalf("status %s", s.Status)
		}
	}
	if n := src.calls.Load(); n != 4 {
		t.Errorf("calls = %d, want 4", n)
	}
}

// TestConcurrencyLimit: with the limit reached a card does not queue for
// the source; it gets "unavailable" while the first lookup still runs.
func TestConcurrencyLimit(t *testing.T) {
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	src := count(func(ctx context.Context, _ Key) ([]Record, error) {
		entered <- struct{}{}
		<-release
		return []Record{{"v": 1}}, nil
	})
	f := newFixture(t, Config{
		Region: "DE", Deadline: 10 * time.Second,
		Sources: []SourceSpec{{Name: "narrow", Needs: "phone", Timeout: 10 * time.Second, MaxConcurrent: 1, Source: src}},
	}, Options{})
	first := make(chan screenpop.Card)
	go func() { first <- f.agg.Build(context.Background(), ringing(knownPhone)) }()
	<-entered
	// Another caller: a second call from the same number would share the
	// first one's lookup (coalescing) instead of competing for the slot.
	s := section(t, f.agg.Build(context.Background(), ringing(otherPhone)), "narrow")
	if s.Status != screenpop.SectionUnavailable || s.Error != "narrow is busy (too many lookups at once)" {
		t.Errorf("second card: %s %q", s.Status, s.Error)
	}
	close(release)
	if s := section(t, <-first, "narrow"); s.Status != screenpop.SectionOK {
		t.Errorf("first card: %s", s.Status)
	}
	// The slot is free again.
	if s := section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "narrow"); s.Status != screenpop.SectionOK {
		t.Errorf("third card: %s %q", s.Status, s.Error)
	}
	if n := src.calls.Load(); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
}

// TestCustomerResolution: one directory match resolves the customer, and
// sources keyed by customer id get it.
func TestCustomerResolution(t *testing.T) {
	f := newFixture(t, Config{
		Region:    "DE",
		Directory: &SourceSpec{Name: "directory", Source: directoryOf(brandt)},
		Sources: []SourceSpec{
			{Name: "credit", Source: byCustomer(map[string][]Record{"C-1": {{"limit": 5000}}})},
		},
	}, Options{})
	card := f.agg.Build(context.Background(), ringing("030 123456"))
	if card.Resolution != screenpop.ResolvedCustomer || card.Phone != knownPhone {
		t.Fatalf("resolution %s phone %q", card.Resolution, card.Phone)
	}
	want := screenpop.Customer{ID: "C-1", Name: "Brandt Metallbau GmbH", Kind: "company", Contact: "Jörg Brandt",
		Role: "Managing Director", Email: "j.brandt@example.com", City: "Berlin", Country: "DE", Tags: []string{"key-account", "vip"}}
	if fmt.Sprintf("%+v", *card.Customer) != fmt.Sprintf("%+v", want) {
		t.Errorf("customer %+v, want %+v", *card.Customer, want)
	}
	if s := section(t, card, "credit"); s.Status != screenpop.SectionOK || fieldValue(t, s, "limit") != 5000 {
		t.Errorf("credit: %+v", s)
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_resolutions_total", map[string]string{"result": "customer"}); v != 1 {
		t.Errorf("resolutions{customer} = %v", v)
	}
}

func TestAmbiguousThenBuildFor(t *testing.T) {
	shared := "+493412345670"
	dir := count(directoryOf(
		Record{"id": "C-7", "phone": shared, "name": "Lindner Druck", "tags": []any{"print"}},
		Record{"id": "C-8", "phone": shared, "name": "Saxonia Verpackung"},
		Record{"id": "C-7", "phone": shared, "name": "Lindner Druck", "contact": "second contact, same customer"},
	))
	credit := count(byCustomer(map[string][]Record{"C-8": {{"limit": 100}}}))
	f := newFixture(t, Config{
		Region:    "DE",
		Directory: &SourceSpec{Name: "directory", Source: dir},
		Sources: []SourceSpec{
			{Name: "credit", Source: credit},
			{Name: "calls", Needs: "phone", Source: static(Record{"open_tickets": 2})},
		},
	}, Options{})
	call := ringing("0341 2345670")
	card := f.agg.Build(context.Background(), call)
	if card.Resolution != screenpop.ResolvedAmbiguous || card.Customer != nil {
		t.Fatalf("resolution %s customer %+v", card.Resolution, card.Customer)
	}
	if len(card.Candidates) != 2 || card.Candidates[0].ID != "C-7" || card.Candidates[1].ID != "C-8" ||
		fmt.Sprint(card.Candidates[0].Tags) != "[print]" {
		t.Fatalf("candidates %+v", card.Candidates)
	}
	if s := section(t, card, "credit"); s.Status != screenpop.SectionSkipped || !strings.Contains(s.Error, "pick") {
		t.Errorf("credit before the pick: %s %q", s.Status, s.Error)
	}
	if s := section(t, card, "calls"); s.Status != screenpop.SectionOK {
		t.Errorf("phone-keyed source: %s", s.Status)
	}
	if n := credit.calls.Load(); n != 0 {
		t.Errorf("credit asked %d times before the pick", n)
	}

	card = f.agg.BuildFor(context.Background(), call, "C-8")
	if card.Resolution != screenpop.ResolvedCustomer || card.Customer == nil || card.Customer.ID != "C-8" || card.Customer.Name != "Saxonia Verpackung" {
		t.Fatalf("after the pick: %s %+v", card.Resolution, card.Customer)
	}
	if len(card.Candidates) != 2 {
		t.Errorf("the other candidates should stay to correct a wrong pick: %+v", card.Candidates)
	}
	if s := section(t, card, "credit"); s.Status != screenpop.SectionOK || fieldValue(t, s, "limit") != 100 {
		t.Errorf("credit after the pick: %+v", s)
	}
}

func TestUnknownCallerGetsHistory(t *testing.T) {
	hist := NewMemoryHistory(10)
	ctx := context.Background()
	earlier := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	for i, id := range []string{"old-1", "old-2", "call-1"} {
		if err := hist.Record(ctx, screenpop.PastCall{CallID: id, Phone: otherPhone, At: earlier.Add(time.Duration(i) * time.Hour), Outcome: screenpop.OutcomeAnswered}); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixture(t, Config{
		Region:       "DE",
		HistoryLimit: 5,
		Directory:    &SourceSpec{Name: "directory", Source: directoryOf(brandt)},
		Sources:      []SourceSpec{{Name: "credit", Source: static(Record{"limit": 1})}},
	}, Options{History: hist})
	card := f.agg.Build(ctx, ringing("+48 601-234-567"))
	if card.Resolution != screenpop.ResolvedUnknown || card.Phone != otherPhone {
		t.Fatalf("resolution %s phone %q", card.Resolution, card.Phone)
	}
	// The call being built ("call-1") is not an earlier call.
	if len(card.History) != 2 || card.History[0].CallID != "old-2" || card.History[1].CallID != "old-1" {
		t.Errorf("history %+v", card.History)
	}
	if s := section(t, card, "credit"); s.Status != screenpop.SectionSkipped || s.Error != "the number belongs to no known customer" {
		t.Errorf("credit: %s %q", s.Status, s.Error)
	}
}

func TestWithheldCaller(t *testing.T) {
	hist := NewMemoryHistory(10)
	_ = hist.Record(context.Background(), screenpop.PastCall{CallID: "x", Phone: knownPhone})
	dir := count(directoryOf(brandt))
	phoneSrc := count(static(Record{"a": 1}))
	f := newFixture(t, Config{
		Region:    "DE",
		Directory: &SourceSpec{Name: "directory", Source: dir},
		Sources:   []SourceSpec{{Name: "byphone", Needs: "phone", Source: phoneSrc}, {Name: "credit", Source: static()}},
	}, Options{History: hist})
	// Only the telephony source's flag makes a caller withheld: one it let
	// through with no number or a marker in place of one is not a phone.
	for _, caller := range []screenpop.Caller{{Withheld: true}, {Withheld: true, Number: "+4930123456"}, {Number: ""}, {Number: "Anonymous"}, {Number: "restricted"}, {Number: " PRIVATE "}, {Number: "unknown"}} {
		card := f.agg.Build(context.Background(), screenpop.CallEvent{CallID: "c", Caller: caller})
		resolution, reason := screenpop.ResolvedWithheld, "the caller withheld their number"
		if !caller.Withheld {
			resolution, reason = screenpop.ResolvedUnknown, "the caller's number is not a phone number"
		}
		if card.Resolution != resolution || card.Phone != "" || card.History != nil {
			t.Errorf("%+v: resolution %s phone %q history %v", caller, card.Resolution, card.Phone, card.History)
		}
		for _, name := range []string{"byphone", "credit"} {
			if s := section(t, card, name); s.Status != screenpop.SectionSkipped || s.Error != reason {
				t.Errorf("%+v: %s: %s %q", caller, name, s.Status, s.Error)
			}
		}
	}
	if dir.calls.Load() != 0 || phoneSrc.calls.Load() != 0 {
		t.Errorf("sources asked for a withheld caller: directory %d, byphone %d", dir.calls.Load(), phoneSrc.calls.Load())
	}
}

// TestInternalCaller: an extension such as 1001 calling the queue is no
// phone number; nothing is looked up by it.
func TestInternalCaller(t *testing.T) {
	dir := count(directoryOf(brandt))
	f := newFixture(t, Config{
		Region:    "DE",
		Directory: &SourceSpec{Name: "directory", Source: dir},
		Sources:   []SourceSpec{{Name: "byphone", Needs: "phone", Source: static()}},
	}, Options{History: NewMemoryHistory(1)})
	card := f.agg.Build(context.Background(), ringing("1001"))
	if card.Resolution != screenpop.ResolvedUnknown || card.Phone != "" || dir.calls.Load() != 0 {
		t.Errorf("resolution %s phone %q directory calls %d", card.Resolution, card.Phone, dir.calls.Load())
	}
	if s := section(t, card, "byphone"); s.Status != screenpop.SectionSkipped {
		t.Errorf("byphone: %s", s.Status)
	}
}

func TestDirectoryFailure(t *testing.T) {
	hist := NewMemoryHistory(10)
	_ = hist.Record(context.Background(), screenpop.PastCall{CallID: "earlier", Phone: knownPhone})
	f := newFixture(t, Config{
		Region: "DE",
		Directory: &SourceSpec{Name: "directory", Required: true, Source: sourceFunc(func(context.Context, Key) ([]Record, error) {
			return nil, errors.New("directory down")
		})},
		Sources: []SourceSpec{
			{Name: "tickets", Needs: "phone", Source: static(Record{"open": 1})},
			{Name: "credit", Source: static(Record{"limit": 1})},
		},
	}, Options{History: hist})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	if card.Resolution != screenpop.ResolvedFailed {
		t.Fatalf("resolution %s", card.Resolution)
	}
	if s := section(t, card, "tickets"); s.Status != screenpop.SectionOK {
		t.Errorf("tickets: %s", s.Status)
	}
	if s := section(t, card, "credit"); s.Status != screenpop.SectionSkipped || !strings.Contains(s.Error, "could not be identified") {
		t.Errorf("credit: %s %q", s.Status, s.Error)
	}
	if len(card.History) != 1 {
		t.Errorf("history %+v", card.History)
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_incomplete_cards_total", nil); v != 1 {
		t.Errorf("incomplete cards = %v (the directory is required)", v)
	}
	if !slices.Equal(card.Incomplete, []string{"directory"}) {
		t.Errorf("card.Incomplete = %v, want [directory]", card.Incomplete)
	}
}

// A required source that fails is named on the card, so the agent knows
// the card is not whole; an optional one that fails is not.
func TestRequiredSourceMarksCardIncomplete(t *testing.T) {
	broken := sourceFunc(func(context.Context, Key) ([]Record, error) { return nil, errors.New("ledger down") })
	f := newFixture(t, Config{
		Region: "DE",
		Sources: []SourceSpec{
			{Name: "ledger", Section: "accounting", Needs: "phone", Required: true, Source: broken},
			{Name: "offers", Section: "sales", Needs: "phone", Source: broken},
			{Name: "tickets", Needs: "phone", Required: true, Source: static(Record{"open": 1})},
		},
	}, Options{})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	if !slices.Equal(card.Incomplete, []string{"accounting"}) {
		t.Errorf("card.Incomplete = %v, want [accounting]", card.Incomplete)
	}
}

func TestDirectoryTimeout(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	credit := count(static(Record{"limit": 1}))
	f := newFixture(t, Config{
		Region: "DE", Deadline: 100 * time.Millisecond,
		Directory: &SourceSpec{Name: "directory", Source: blockUntil(release, brandt)},
		Sources:   []SourceSpec{{Name: "credit", Source: credit}, {Name: "tickets", Needs: "phone", Source: static(Record{"n": 1})}},
	}, Options{})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	if card.Resolution != screenpop.ResolvedFailed {
		t.Errorf("resolution %s", card.Resolution)
	}
	if s := section(t, card, "credit"); s.Status != screenpop.SectionSkipped || credit.calls.Load() != 0 {
		t.Errorf("credit: %s, calls %d", s.Status, credit.calls.Load())
	}
	if s := section(t, card, "tickets"); s.Status != screenpop.SectionOK {
		t.Errorf("tickets: %s", s.Status)
	}
}

// TestPhoneSourcesStartWithDirectory: the directory answers only once a
// phone-keyed source has started, so they must run side by side.
func TestPhoneSourcesStartWithDirectory(t *testing.T) {
	phoneStarted := make(chan struct{})
	f := newFixture(t, Config{
		Region: "DE", Deadline: 10 * time.Second,
		Directory: &SourceSpec{Name: "directory", Timeout: 5 * time.Second, Source: sourceFunc(func(ctx context.Context, key Key) ([]Record, error) {
			select {
			case <-phoneStarted:
				return directoryOf(brandt)(ctx, key)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})},
		Sources: []SourceSpec{
			{Name: "tickets", Needs: "phone", Source: sourceFunc(func(context.Context, Key) ([]Record, error) {
				close(phoneStarted)
				return []Record{{"n": 1}}, nil
			})},
			{Name: "credit", Source: static(Record{"limit": 1})},
		},
	}, Options{})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	if card.Resolution != screenpop.ResolvedCustomer {
		t.Fatalf("resolution %s: the phone-keyed source did not start beside the directory", card.Resolution)
	}
	for _, name := range []string{"tickets", "credit"} {
		if s := section(t, card, name); s.Status != screenpop.SectionOK {
			t.Errorf("%s: %s", name, s.Status)
		}
	}
}

func TestNoDirectory(t *testing.T) {
	f := newFixture(t, Config{Region: "DE", Sources: []SourceSpec{{Name: "credit", Source: static(Record{"a": 1})}}}, Options{})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	if card.Resolution != screenpop.ResolvedUnknown || card.Phone != knownPhone {
		t.Errorf("resolution %s phone %q", card.Resolution, card.Phone)
	}
	if s := section(t, card, "credit"); s.Status != screenpop.SectionSkipped {
		t.Errorf("credit: %s", s.Status)
	}
}

func TestCardBasics(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	f := newFixture(t, Config{
		Region: "DE",
		Sections: []SectionSpec{
			{Name: "sales", Title: "Sales & orders"},
			{Name: "accounting", Title: "Accounting"},
			{Name: "unused", Title: "Nobody fills this"},
			{Name: "extra-info"}, // titled from its name
		},
		Sources: []SourceSpec{
			{Name: "balance", Section: "accounting", Needs: "phone", Source: static(Record{"x": 1})},
			{Name: "extra-info", Needs: "phone", Source: static(Record{"y": 1})},
			{Name: "orders", Section: "sales", Needs: "phone", Source: static(Record{"z": 1})},
		},
	}, Options{Now: func() time.Time { return at }})
	call := ringing(knownPhone)
	call.CallID = "abc"
	card := f.agg.Build(context.Background(), call)
	var order []string
	for _, s := range card.Sections {
		order = append(order, s.Name+"/"+s.Title)
	}
	if got := strings.Join(order, ","); got != "sales/Sales & orders,accounting/Accounting,extra-info/Extra info" {
		t.Errorf("sections %s", got)
	}
	if card.CallID != "abc" || !card.BuiltAt.Equal(at) || card.Caller.Number != knownPhone {
		t.Errorf("card %+v", card)
	}
	if _, err := json.Marshal(card); err != nil {
		t.Errorf("card does not encode: %v", err)
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_card_duration_seconds", nil); v != 1 {
		t.Errorf("card duration samples = %v", v)
	}
}

// A section's roles travel with every card, so that the dispatcher can cut
// the section out for agents who may not see it; each card has its own
// copy, and an abandoned card is as restricted as a built one.
func TestSectionRolesOnCards(t *testing.T) {
	release := make(chan struct{})
	f := newFixture(t, Config{
		Region: "DE",
		Sections: []SectionSpec{
			{Name: "accounting"},
			{Name: "credit", Roles: []string{"credit", "supervisor"}},
		},
		Sources: []SourceSpec{
			{Name: "balance", Section: "accounting", Needs: "phone", Source: static(Record{"x": 1})},
			{Name: "limit", Section: "credit", Needs: "phone", Timeout: 30 * time.Second, Source: blockUntil(release, Record{"y": 1})},
		},
	}, Options{})
	// The second call gives up while the first call's fan-out, which it
	// shares, still waits for the credit source: it gets an abandoned card.
	first := make(chan screenpop.Card, 1)
	go func() { first <- f.agg.Build(context.Background(), ringing(knownPhone)) }()
	ctx, cancel := context.WithCancel(context.Background())
	second := make(chan screenpop.Card, 1)
	go func() { second <- f.agg.Build(ctx, ringing(knownPhone)) }()
	waitMetric(t, f.reg, "screenpop_aggregator_coalesced_total", nil, 1)
	cancel()
	abandoned := <-second
	close(release)
	a := <-first
	b := f.agg.Build(context.Background(), ringing(knownPhone))
	for name, card := range map[string]screenpop.Card{"built": a, "abandoned": abandoned} {
		if got := section(t, card, "accounting").Roles; len(got) != 0 {
			t.Errorf("%s: accounting has roles %v, want none", name, got)
		}
		if got := section(t, card, "credit").Roles; !slices.Equal(got, []string{"credit", "supervisor"}) {
			t.Errorf("%s: credit has roles %v", name, got)
		}
	}
	section(t, a, "credit").Roles[0] = "changed"
	if got := section(t, b, "credit").Roles; got[0] != "credit" {
		t.Errorf("two cards share the roles' memory: %v", got)
	}
	if got := f.agg.Config().Sections[1].Roles; got[0] != "credit" {
		t.Errorf("a card shares the configuration's roles: %v", got)
	}
}

func TestAbandonedCard(t *testing.T) {
	entered := make(chan struct{})
	var once sync.Once
	src := count(func(ctx context.Context, _ Key) ([]Record, error) {
		once.Do(func() { close(entered) })
		<-ctx.Done()
		return nil, ctx.Err()
	})
	f := newFixture(t, Config{
		Region:  "DE",
		Sources: []SourceSpec{{Name: "slow", Needs: "phone", Timeout: 100 * time.Millisecond, Source: src, Breaker: BreakerSpec{Failures: 1, OpenFor: time.Hour}}},
	}, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-entered; cancel() }()
	card := f.agg.Build(ctx, ringing(knownPhone))
	if s := section(t, card, "slow"); s.Status != screenpop.SectionTimeout {
		t.Errorf("slow: %s", s.Status)
	}
	// A card nobody waits for any more is not the source's failure: the
	// breaker (one failure trips it) stays closed.
	if s := section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "slow"); s.Status == screenpop.SectionUnavailable {
		t.Errorf("the breaker opened on an abandoned card")
	}
}
