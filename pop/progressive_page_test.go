package pop

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
)

// holdGate holds what asks it, once hold was called, until the test
// opens the gate hold returned: as slow as the test wants, with no clock.
type holdGate struct {
	slow atomic.Bool
	gate atomic.Pointer[chan struct{}]
}

func (h *holdGate) hold() chan struct{} {
	g := make(chan struct{})
	h.gate.Store(&g)
	h.slow.Store(true)
	return g
}

func (h *holdGate) wait(ctx context.Context) error {
	if !h.slow.Load() {
		return nil
	}
	select {
	case <-*h.gate.Load():
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// slowSource is a source held by its gate.
type slowSource struct {
	holdGate
	records []aggregator.Record
}

func (s *slowSource) Fetch(ctx context.Context, _ aggregator.Key) ([]aggregator.Record, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.records, nil
}

// slowHistory is a history held by its gate.
type slowHistory struct {
	holdGate
	*aggregator.MemoryHistory
}

func (h *slowHistory) Recent(ctx context.Context, phone string, limit int) ([]screenpop.PastCall, error) {
	if err := h.wait(ctx); err != nil {
		return nil, err
	}
	return h.MemoryHistory.Recent(ctx, phone, limit)
}

// failingSource fails while told to: its breaker opens.
type failingSource struct{ fail atomic.Bool }

func (s *failingSource) Fetch(context.Context, aggregator.Key) ([]aggregator.Record, error) {
	if s.fail.Load() {
		return nil, errors.New("connection refused")
	}
	return []aggregator.Record{{"order": "SO-1"}}, nil
}

// hangingSource answers only when its context ends: it times out.
type hangingSource struct{}

func (hangingSource) Fetch(ctx context.Context, _ aggregator.Key) ([]aggregator.Record, error) {
	<-ctx.Done()
	return nil, context.Cause(ctx)
}

// progressivePage is a daemon as the agent page meets it, with a real
// aggregator whose sources end in every state a section can be in.
type progressivePage struct {
	*pageServer
	agg    *aggregator.Aggregator
	credit *slowSource
	hist   *slowHistory
	orders *failingSource
	offset atomic.Int64 // the aggregator's clock runs this far behind
}

const progressiveCaller = "+49 30 901820"

func startProgressivePage(t *testing.T) *progressivePage {
	t.Helper()
	pp := &progressivePage{
		credit: &slowSource{records: []aggregator.Record{{"limit": 25000.0, "currency": "EUR", "rating": "A"}}},
		orders: &failingSource{},
	}
	pp.hist = &slowHistory{MemoryHistory: aggregator.NewMemoryHistory(10)}
	if err := pp.hist.Record(context.Background(), screenpop.PastCall{CallID: "earlier", Phone: "+4930901820", At: time.Now().Add(-26 * time.Hour),
		Agent: "bob", AgentName: "Bob", Outcome: screenpop.OutcomeAnswered, Duration: 4 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	directory := aggregator.SourceSpec{Name: "directory", Source: staticSource{{"id": "C-10002", "name": "Nordwind Spedition KG", "kind": "company",
		"contact": "Jana Weber", "role": "Dispatch", "city": "Hamburg", "country": "DE", "tags": "key-account"}}}
	agg, err := aggregator.New(aggregator.Config{
		Region: "DE", Deadline: 30 * time.Second,
		Sections: []aggregator.SectionSpec{
			{Name: "accounting", Title: "Accounting"}, {Name: "credit", Title: "Credit"}, {Name: "tickets", Title: "Service tickets"},
			{Name: "warranty", Title: "Warranty"}, {Name: "orders", Title: "Orders"}, {Name: "returns", Title: "Returns"},
		},
		Directory: &directory,
		Sources: []aggregator.SourceSpec{
			{Name: "accounting", Source: staticSource{{"balance": 1234.5, "currency": "EUR", "overdue": 2}},
				Mapping: aggregator.Mapping{Fields: []aggregator.FieldMap{{From: "balance", Label: "Open balance", Format: "money"}, {From: "currency"}, {From: "overdue", Label: "Overdue invoices", Format: "number"}}}},
			{Name: "credit", Timeout: 30 * time.Second, Source: pp.credit,
				Mapping: aggregator.Mapping{Fields: []aggregator.FieldMap{{From: "limit", Label: "Credit limit", Format: "money"}, {From: "currency"}, {From: "rating", Label: "Rating"}}}},
			{Name: "tickets", Needs: "phone", CacheTTL: time.Hour, FreshFor: time.Hour,
				Source:  staticSource{{"ticket": "T-5521", "subject": "Pallet wrapper stops", "status": "open"}},
				Mapping: aggregator.Mapping{Mode: aggregator.ModeList, Label: "Open tickets", Fields: []aggregator.FieldMap{{From: "ticket", Label: "Ticket"}, {From: "subject", Label: "Subject"}, {From: "status", Label: "Status"}}}},
			{Name: "warranty", Timeout: 300 * time.Millisecond, Source: hangingSource{}},
			{Name: "orders", Needs: "phone", Source: pp.orders, Breaker: aggregator.BreakerSpec{Failures: 1, OpenFor: time.Hour}},
			{Name: "returns", Source: staticSource{}},
		},
	}, aggregator.Options{Cache: aggregator.NewMemoryCache(100), History: pp.hist,
		Now: func() time.Time { return time.Now().Add(-time.Duration(pp.offset.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	pp.agg = agg

	e := startHubWith(t, nil, func(c *DispatcherConfig) { c.Builder = agg })
	s := &pageServer{hubEnv: e}
	hub := e.hub.Handler()
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if s.stripSince.Load() {
			r = r.Clone(r.Context())
			r.URL.RawQuery = ""
		}
		hub.ServeHTTP(&hijackRecorder{ResponseWriter: w, s: s}, r)
	})
	mux.Handle("/", hub)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	pp.pageServer = s
	return pp
}

// staticSource answers the same records to everyone at once.
type staticSource []aggregator.Record

func (s staticSource) Fetch(context.Context, aggregator.Key) ([]aggregator.Record, error) {
	return s, nil
}

// prime asks the sources once, seven minutes ago by the aggregator's
// clock: the tickets are cached from then, and the orders system fails,
// which opens its breaker.
func (pp *progressivePage) prime(t *testing.T) {
	t.Helper()
	pp.offset.Store(int64(7 * time.Minute))
	pp.orders.fail.Store(true)
	card := pp.agg.Build(context.Background(), screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "prime",
		Caller: screenpop.Caller{Number: progressiveCaller}, At: time.Now()})
	pp.offset.Store(0)
	for _, s := range card.Sections {
		if s.Name == "orders" && s.Status != screenpop.SectionError {
			t.Fatalf("priming: orders %s, want error", s.Status)
		}
	}
}

// sectionSel selects a section of a call's card.
func sectionSel(callID, name string) string {
	return fmt.Sprintf(`%s [data-section=%q]`, popCard(callID), name)
}

// visibleText is what a person reads of an element: innerText leaves out
// what is hidden, and a tooltip is no part of it.
func (p *pageTab) visibleText(selector string) string {
	p.t.Helper()
	return p.str(fmt.Sprintf(`(document.querySelector(%q) || {innerText: ''}).innerText`, selector))
}

// The pop shows as soon as the caller is known, a slow source's section
// loading while the others are filled; then it fills. Every final state
// is said in words on the card, not in a tooltip. A page reconnecting
// meanwhile shows what was filled so far, then the rest.
func TestPageProgressivePopInChromium(t *testing.T) {
	pp := startProgressivePage(t)
	p := newTab(t, startBrowser(t), "agent page")
	p.openAs(pp.pageServer, "alice")
	p.waitFor("the offer of ring alerts", `!document.querySelector('#alert-offer').hidden`)
	p.click("#offer-no")
	p.waitFor("the offer gone", `document.querySelector('#alert-offer').hidden`)
	pp.prime(t)
	gate, history := pp.credit.hold(), pp.hist.hold()

	pp.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "p1", Caller: screenpop.Caller{Number: progressiveCaller},
		DID: "100", Agents: []string{"alice"}, At: time.Now(), Source: "test"})
	p.waitFor("the pop, credit loading", fmt.Sprintf(`(() => { const s = document.querySelector(%q);
		return !!s && s.dataset.status === 'loading' && s.getAttribute('aria-busy') === 'true'; })()`, sectionSel("p1", "credit")))
	if got := p.visibleText(sectionSel("p1", "credit")); !strings.Contains(got, "Loading…") || strings.Contains(got, "ended") {
		t.Errorf("the loading section reads %q", got)
	}
	// Everything but credit settles while it loads.
	p.waitFor("the other sections settled", fmt.Sprintf(`[...document.querySelectorAll('%s [data-section]')]
		.every(s => s.dataset.section === 'credit' || s.dataset.status !== 'loading')`, popCard("p1")))
	want := map[string]struct{ status, reads string }{
		"accounting": {"ok", "Open balance"},
		"tickets":    {"ok", "minutes ago"}, // 7 when the pop came (below), more if the test is slow
		"warranty":   {"timeout", "Warranty: no answer in time"},
		"orders":     {"unavailable", "Orders: system unavailable right now"},
		"returns":    {"empty", "No records for this caller"},
		"credit":     {"loading", "Loading…"},
	}
	checkSections := func(when string) {
		t.Helper()
		for name, w := range want {
			sel := sectionSel("p1", name)
			if got := p.str(fmt.Sprintf(`(document.querySelector(%q) || {dataset: {}}).dataset.status || ''`, sel)); got != w.status {
				t.Errorf("%s: section %s is %q, want %s", when, name, got, w.status)
			}
			if got := p.visibleText(sel); !strings.Contains(got, w.reads) {
				t.Errorf("%s: section %s reads %q, want it to say %q", when, name, got, w.reads)
			}
		}
	}
	checkSections("credit loading")
	// Loading, cached, timed out: no serious or critical accessibility
	// violation in any of these states.
	p.axe(axeSource(t), "a card filling in")
	if got := p.visibleText(sectionSel("p1", "tickets") + " [data-role=cached]"); got != "Data from 7 minutes ago" {
		t.Errorf("the cached section's age reads %q", got)
	}
	if got := p.visibleText(sectionSel("p1", "tickets") + " [data-role=section-status]"); got != "From cache" {
		t.Errorf("the cached section's badge reads %q", got)
	}
	hsel := popCard("p1") + " [data-role=history]"
	if got := p.visibleText(hsel); !strings.Contains(got, "Loading earlier calls…") || p.str(fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-busy')`, hsel)) != "true" {
		t.Errorf("the earlier calls while they load: %q", got)
	}
	close(history)
	p.waitFor("the earlier calls", fmt.Sprintf(`!!document.querySelector('%s [data-history-call="earlier"]')
		&& !document.querySelector(%q).hasAttribute('aria-busy')`, popCard("p1"), hsel))
	for _, v := range []pageSize{pageSizes[0], pageSizes[2]} {
		p.resize(v)
		p.noSideScroll(v.name + ", credit loading")
		p.run(fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: 'center'})`, sectionSel("p1", "credit")))
		p.shot("progressive-" + v.name + "-loading")
	}
	p.resize(pageSizes[0])

	// The page loses its connection and comes back with a snapshot: the
	// sections filled so far stay filled, credit still loads.
	pp.stripSince.Store(true)
	p.run(`document.querySelector('[data-section="accounting"]').dataset.before = 'reconnect'`)
	pp.kick()
	p.waitFor("the card drawn again from the snapshot", fmt.Sprintf(`document.querySelector('#conn').dataset.connection === 'open'
		&& !!document.querySelector(%q) && !document.querySelector('[data-before]')`, sectionSel("p1", "accounting")))
	pp.stripSince.Store(false)
	checkSections("after a reconnect")

	// The slow source answers: its section fills in place.
	p.run(`document.querySelector('[data-section="accounting"]').dataset.before = 'fill'`)
	close(gate)
	p.waitFor("credit filled", fmt.Sprintf(`(() => { const s = document.querySelector(%q);
		return s.dataset.status === 'ok' && !s.hasAttribute('aria-busy') && !!s.querySelector('[data-key="limit"]'); })()`, sectionSel("p1", "credit")))
	want["credit"] = struct{ status, reads string }{"ok", "Credit limit"}
	p.waitFor("the complete card drawn", `!document.querySelector('[data-before]')`)
	checkSections("complete")
	if got := p.text(sectionSel("p1", "credit") + ` [data-key="limit"] dd`); !strings.Contains(got, "25,000.00") {
		t.Errorf("credit limit shown as %q", got)
	}
	for _, v := range []pageSize{pageSizes[0], pageSizes[2]} {
		p.resize(v)
		p.noSideScroll(v.name + ", complete")
		p.run(fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: 'center'})`, sectionSel("p1", "credit")))
		p.shot("progressive-" + v.name + "-complete")
	}
	p.resize(pageSizes[0])

	// A call that ends before its slow section answered: "not loaded".
	pp.credit.hold()
	now := time.Now()
	pp.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "p2", Caller: screenpop.Caller{Number: progressiveCaller},
		Agents: []string{"alice"}, At: now, Source: "test"})
	p.waitFor("the second pop, credit loading", fmt.Sprintf(`(document.querySelector(%q) || {dataset: {}}).dataset.status === 'loading'`, sectionSel("p2", "credit")))
	pp.d.HandleCall(answered("p2", "alice", now.Add(time.Second)))
	pp.d.HandleCall(ended("p2", "alice", screenpop.OutcomeAnswered, now.Add(2*time.Second)))
	p.waitFor("the call ended", fmt.Sprintf(`document.querySelector('%s').dataset.state === 'ended'`, popCard("p2")))
	sel := sectionSel("p2", "credit")
	if got := p.visibleText(sel); !strings.Contains(got, "Not loaded") || !strings.Contains(got, "The call ended before it answered.") || strings.Contains(got, "Loading") {
		t.Errorf("a section the call ended before reads %q", got)
	}
	if got := p.str(fmt.Sprintf(`document.querySelector(%q).getAttribute('aria-busy')`, sel)); got != "false" {
		t.Errorf("a section the call ended before is aria-busy=%q", got)
	}
	p.run(fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: 'center'})`, sel))
	p.shot("progressive-1366x768-ended-before-loaded")
}
