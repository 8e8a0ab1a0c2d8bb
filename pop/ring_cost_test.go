package pop

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/history"
)

// hitAggregator is the bench harness's configuration (bench/sources.go)
// with in-process sources: a directory by number and three sections by
// customer (credit only for the credit and supervisor roles), every answer
// cached for 10 minutes and never revalidated meanwhile; the history is
// a history.Memory holding a few earlier calls of the number. The cache
// is in process (a MemoryCache), or, shared, one the aggregator asks as
// it asks Redis: in a goroutine of its own.
func hitAggregator(t testing.TB, shared bool) (*aggregator.Aggregator, *history.Memory) {
	t.Helper()
	store, err := history.NewMemory(history.Config{}, history.Options{Daemon: "test"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		at := time.Now().Add(-time.Duration(i+1) * 24 * time.Hour)
		c := history.Call{ID: fmt.Sprintf("old-%d", i), Phone: "+4930123456", CustomerID: "C-1", RingAt: at, AnswerAt: at.Add(5 * time.Second),
			EndAt: at.Add(3 * time.Minute), Agent: "1001", AgentName: "Alice", AnsweredBy: "1001", Rung: []string{"1001"}, Outcome: screenpop.OutcomeAnswered}
		if err := store.RecordCall(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	const ttl = 10 * time.Minute
	var items []any
	for i := range 5 {
		items = append(items, map[string]any{"date": fmt.Sprintf("2026-0%d-1%d", i+1, i), "product": fmt.Sprintf("Pallet wrap %d", i), "quantity": 10 + i, "amount": 199.9 + float64(i)})
	}
	agg, err := aggregator.New(aggregator.Config{
		Region: "DE", Deadline: 1500 * time.Millisecond, HistoryLimit: 10,
		Sections: []aggregator.SectionSpec{
			{Name: "accounting", Title: "Accounting"},
			{Name: "sales", Title: "Sales"},
			{Name: "credit", Title: "Credit", Roles: []string{"credit", "supervisor"}},
		},
		Directory: &aggregator.SourceSpec{Name: "directory", Needs: "phone", CacheTTL: ttl, FreshFor: ttl, Timeout: 500 * time.Millisecond,
			Source: staticSource{{"id": "C-1", "name": "ACME Logistics GmbH", "kind": "company", "contact": "Jan Kowalski", "city": "Berlin", "country": "DE"}}},
		Sources: []aggregator.SourceSpec{
			{Name: "accounting", CacheTTL: ttl, FreshFor: ttl, Timeout: 500 * time.Millisecond,
				Source: staticSource{{"balance": 1234.5, "overdue_total": 200.0, "last_payment_date": "2026-02-01", "currency": "EUR"}},
				Mapping: aggregator.Mapping{Fields: []aggregator.FieldMap{
					{From: "balance", Label: "Balance", Format: "money"}, {From: "overdue_total", Label: "Overdue", Format: "money"},
					{From: "last_payment_date", Label: "Last payment", Format: "date"}, {From: "currency", Label: "Currency"}}}},
			{Name: "sales", CacheTTL: ttl, FreshFor: ttl, Timeout: 500 * time.Millisecond,
				Source: recordsSource{"items": items},
				Mapping: aggregator.Mapping{Mode: aggregator.ModeList, Label: "Recent purchases", Fields: []aggregator.FieldMap{
					{From: "date", Label: "Date", Format: "date"}, {From: "product", Label: "Product"},
					{From: "quantity", Label: "Qty", Format: "number"}, {From: "amount", Label: "Amount", Format: "money"}}}},
			{Name: "credit", CacheTTL: ttl, FreshFor: ttl, Timeout: 500 * time.Millisecond,
				Source: staticSource{{"credit_limit": 50000, "available": 12000, "offered_terms": "45 days net", "risk_class": "B"}},
				Mapping: aggregator.Mapping{Fields: []aggregator.FieldMap{
					{From: "credit_limit", Label: "Credit limit", Format: "money"}, {From: "available", Label: "Available", Format: "money"},
					{From: "offered_terms", Label: "Terms you may offer"}, {From: "risk_class", Label: "Risk class"}}}},
		},
	}, aggregator.Options{Cache: hitCache(shared), History: store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	// Warm the cache: every source answered once for the number.
	card := agg.Build(context.Background(), screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "warm", Caller: screenpop.Caller{Number: "+4930123456"}, At: time.Now()})
	for _, s := range card.Sections {
		if s.Status != screenpop.SectionOK || s.Cached {
			t.Fatalf("warming the cache: section %s %s (cached %v)", s.Name, s.Status, s.Cached)
		}
	}
	return agg, store
}

func hitCache(shared bool) aggregator.Cache {
	if shared {
		return sharedCache{aggregator.NewMemoryCache(1000)}
	}
	return aggregator.NewMemoryCache(1000)
}

// sharedCache is a cache the aggregator does not know to be in process:
// it asks it as it asks Redis, in a goroutine, under the source's timeout.
type sharedCache struct{ aggregator.Cache }

// recordsSource answers its one record as the list of the sales source's
// mapping reads it (records: items in the harness): here the rows themselves.
type recordsSource map[string]any

func (s recordsSource) Fetch(context.Context, aggregator.Key) ([]aggregator.Record, error) {
	var out []aggregator.Record
	for _, it := range s["items"].([]any) {
		out = append(out, aggregator.Record(it.(map[string]any)))
	}
	return out, nil
}

// ringLog records what a ring sends: every message delivered, per agent,
// and every distinct encoding (one Encode).
type ringLog struct {
	mu       sync.Mutex
	msgs     map[string][]Encoded // by agent
	encoded  map[*byte]bool
	complete map[string]chan struct{} // by call: closed once every agent expected has the card whole
	want     map[string]map[string]bool
	ended    map[string]chan struct{} // by call: closed once every agent expected was told it ended
	endWant  map[string]map[string]bool
}

func newRingLog() *ringLog {
	return &ringLog{msgs: map[string][]Encoded{}, encoded: map[*byte]bool{}, complete: map[string]chan struct{}{}, want: map[string]map[string]bool{},
		ended: map[string]chan struct{}{}, endWant: map[string]map[string]bool{}}
}

// expect registers callID, which rings agents: it returns a channel
// closed once each has the card whole, and one closed once each was told
// the call ended.
func (l *ringLog) expect(callID string, agents ...string) (complete, ended chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	complete, ended = make(chan struct{}), make(chan struct{})
	l.complete[callID], l.ended[callID] = complete, ended
	l.want[callID], l.endWant[callID] = map[string]bool{}, map[string]bool{}
	for _, a := range agents {
		l.want[callID][a] = true
		l.endWant[callID][a] = true
	}
	return complete, ended
}

// tick crosses agent off callID's list in want, and closes its channel
// in done once the list is empty.
func tick(want map[string]map[string]bool, done map[string]chan struct{}, callID, agent string) {
	if w := want[callID]; w != nil {
		delete(w, agent)
		if len(w) == 0 {
			close(done[callID])
			delete(want, callID)
			delete(done, callID)
		}
	}
}

func (l *ringLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	clear(l.msgs)
	clear(l.encoded)
}

func (l *ringLog) Deliver(agent string, m Encoded) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs[agent] = append(l.msgs[agent], m)
	l.encoded[unsafe.SliceData(m.Unnumbered())] = true
	switch {
	case (m.Type == TypePop || m.Type == TypeCard) && !cardLoading(m.Unnumbered()):
		tick(l.want, l.complete, m.CallID, agent)
	case m.Type == TypeEnded:
		tick(l.endWant, l.ended, m.CallID, agent)
	}
}

// cardLoading says whether a pop or card message holds a part still to
// come (this test's cards hold no such text in their data).
func cardLoading(raw []byte) bool {
	return bytes.Contains(raw, []byte(`"status":"loading"`)) || bytes.Contains(raw, []byte(`"history_loading":true`))
}

// ringCost is what one ring sent.
type ringCost struct {
	msgs, bytes, encodings int
	types                  string // per agent: the types in order
}

func (l *ringLog) cost(agents []string) ringCost {
	l.mu.Lock()
	defer l.mu.Unlock()
	var c ringCost
	var types []string
	for _, a := range agents {
		var ts []string
		for _, m := range l.msgs[a] {
			c.msgs++
			c.bytes += m.Size()
			ts = append(ts, m.Type)
		}
		types = append(types, a+":"+strings.Join(ts, ","))
	}
	c.encodings = len(l.encoded)
	c.types = strings.Join(types, " ")
	return c
}

// hitDispatcher is a running dispatcher on hitAggregator, delivering to
// log; alice may see credit, bob and carol may not (two audiences).
func hitDispatcher(t testing.TB, log *ringLog, shared bool) *Dispatcher {
	t.Helper()
	agg, store := hitAggregator(t, shared)
	roles := map[string][]string{"alice": {"agent", "credit"}, "bob": {"agent"}, "carol": {"agent"}}
	d, err := NewDispatcher(DispatcherConfig{
		Builder: agg, Recorder: store, Deliverer: log,
		AgentRoles: func(id string) []string { return roles[id] },
		AgentNames: func(id string) string { return strings.ToUpper(id[:1]) + id[1:] },
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

var hitAgents = []string{"alice", "bob", "carol"}

// ringOnce rings call id to hitAgents, waits until each has the card
// whole, ends the call and waits until each was told: every message the
// build sent is in log by then (its steps and the complete card come
// before the build ends, and the ended event is applied after).
func ringOnce(t testing.TB, d *Dispatcher, log *ringLog, id string) {
	complete, ended := log.expect(id, hitAgents...)
	d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: id, Caller: screenpop.Caller{Number: "+4930123456", Name: "ACME"},
		DID: "+493090182000", Agents: hitAgents, At: time.Now(), Source: "test"})
	select {
	case <-complete:
	case <-time.After(patience):
		t.Fatalf("call %s: the card never came whole to every agent", id)
	}
	d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: id, Outcome: screenpop.OutcomeAbandoned, At: time.Now(), Source: "test"})
	select {
	case <-ended:
	case <-time.After(patience):
		t.Fatalf("call %s: ended never came to every agent", id)
	}
}

// TestCacheHitRingMessages counts what a ring sends to its agents when
// every source answers from the cache at once: the card is complete by
// the time the caller is resolved, so each agent gets one pop, whole, and
// nothing else of it (no section, history nor card again), one encoding
// per audience (alice sees credit; bob and carol share one): with a cache
// in process (answered at once), and with a shared one (Redis: answered
// in goroutines, for which the aggregator holds the first step back
// briefly).
//
//	go test -run CacheHitRingMessages -v ./pop/
func TestCacheHitRingMessages(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(map[bool]string{false: "in-process", true: "shared"}[shared], func(t *testing.T) { testCacheHitRing(t, shared) })
	}
}

func testCacheHitRing(t *testing.T, shared bool) {
	log := newRingLog()
	d := hitDispatcher(t, log, shared)
	const rings = 20
	seen := map[string]int{}
	for i := range rings {
		id := fmt.Sprintf("hit-%d", i)
		log.reset()
		ringOnce(t, d, log, id)
		c := log.cost(hitAgents)
		// ended: one message, one encoding, for the three agents
		c.msgs -= len(hitAgents)
		c.encodings--
		c.types = strings.ReplaceAll(c.types, ",ended", "")
		seen[fmt.Sprintf("%d msgs, %d encodings: %s", c.msgs, c.encodings, c.types)]++
		var bytes int
		log.mu.Lock()
		for _, a := range hitAgents {
			for _, m := range log.msgs[a] {
				if m.Type != TypeEnded {
					bytes += m.Size()
				}
			}
		}
		log.mu.Unlock()
		if i == 0 {
			t.Logf("bytes to the three agents for the ring (ended left out): %d", bytes)
		}
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("%2d× %s", seen[k], k)
	}
	// A machine so busy that the cached answers took longer than the
	// aggregator holds the first step back for sends the card in steps:
	// correct, only dearer. Every ring must come one way or the other,
	// and at least one whole.
	const whole = "3 msgs, 2 encodings: alice:pop bob:pop carol:pop"
	if seen[whole] == 0 {
		t.Errorf("no cache-hit ring came as one whole pop per agent (%q)", whole)
	}
	for k := range seen {
		if k == whole {
			continue
		}
		_, perAgent, _ := strings.Cut(k, ": ")
		for _, a := range strings.Fields(perAgent) {
			if !strings.HasSuffix(a, ",card") {
				t.Errorf("a ring in steps that did not end with the complete card: %s", a)
			}
		}
	}
}

// BenchmarkCacheHitRing measures one ring of a cached caller to three
// agents in two audiences, through the real aggregator and dispatcher (no
// transport), the cache in process or shared (hitAggregator): from the ring to the card whole at every agent, and the
// end of the call. msgs/ring and B/ring are what the agents were sent for
// the ring (ended left out).
//
//	go test -run '^$' -bench CacheHitRing -benchmem ./pop/
func BenchmarkCacheHitRing(b *testing.B) {
	for _, shared := range []bool{false, true} {
		b.Run("cache="+map[bool]string{false: "in-process", true: "shared"}[shared], func(b *testing.B) { benchCacheHitRing(b, shared) })
	}
}

func benchCacheHitRing(b *testing.B, shared bool) {
	log := newRingLog()
	d := hitDispatcher(b, log, shared)
	var msgs, bytes, encodings int
	n := 0
	b.ReportAllocs()
	cpu := processCPU(b)
	for b.Loop() {
		id := fmt.Sprintf("bench-%d", n)
		log.reset()
		ringOnce(b, d, log, id)
		c := log.cost(hitAgents)
		msgs += c.msgs - len(hitAgents)
		encodings += c.encodings - 1
		log.mu.Lock()
		for _, a := range hitAgents {
			for _, m := range log.msgs[a] {
				if m.Type != TypeEnded {
					bytes += m.Size()
				}
			}
		}
		log.mu.Unlock()
		n++
	}
	b.ReportMetric(float64(msgs)/float64(n), "msgs/ring")
	b.ReportMetric(float64(bytes)/float64(n), "B/ring")
	b.ReportMetric(float64(encodings)/float64(n), "encodings/ring")
	b.ReportMetric(float64((processCPU(b)-cpu).Microseconds())/float64(n), "cpu-µs/ring")
}

// processCPU is the CPU time the process has used (user and system, every
// thread): what a ring costs the daemon, whichever goroutine spent it.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// A cached source that misses the cache does not hold the first pop back
// for its answer: the aggregator holds the first step only briefly (a
// shared cache), or not at all (in process: it knows the miss), then
// the card goes in steps as ever (the pop with the section loading, the
// complete card once it answered).
func TestCacheMissStillInSteps(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(map[bool]string{false: "in-process", true: "shared"}[shared], func(t *testing.T) { testCacheMissInSteps(t, shared) })
	}
}

func testCacheMissInSteps(t *testing.T, shared bool) {
	slow := &slowSource{records: []aggregator.Record{{"balance": 1234.5}}}
	gate := slow.hold()
	agg, err := aggregator.New(aggregator.Config{
		Region: "DE", Deadline: patience,
		Directory: &aggregator.SourceSpec{Name: "directory", CacheTTL: time.Hour, Source: staticSource{{"id": "C-1", "name": "ACME GmbH"}}},
		Sources: []aggregator.SourceSpec{
			{Name: "accounting", CacheTTL: time.Hour, Timeout: patience, Source: slow},
			{Name: "sales", CacheTTL: time.Hour, Source: staticSource{{"open_orders": 2}}},
		},
	}, aggregator.Options{Cache: hitCache(shared)})
	if err != nil {
		t.Fatal(err)
	}
	del := newFakeDeliverer()
	d, err := NewDispatcher(DispatcherConfig{Builder: agg, Deliverer: del})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	d.HandleCall(ringing("miss-1", time.Now(), "alice"))
	del.waitUntil(t, "the pop, accounting loading", func() bool {
		msgs := del.of("alice")
		return len(msgs) > 0 && msgs[0].Type == TypePop
	})
	pop := decode[PopData](t, del.of("alice")[0])
	if got := sectionStatuses(pop.Card); got["accounting"] != screenpop.SectionLoading {
		t.Fatalf("first pop's sections %v: accounting should be loading", got)
	}
	close(gate)
	del.waitUntil(t, "the complete card", func() bool {
		msgs := del.of("alice")
		return msgs[len(msgs)-1].Type == TypeCard
	})
	msgs := del.of("alice")
	card := decode[CardData](t, msgs[len(msgs)-1])
	if got := sectionStatuses(card.Card); got["accounting"] != screenpop.SectionOK || got["sales"] != screenpop.SectionOK {
		t.Errorf("complete card's sections %v", got)
	}
}

func sectionStatuses(c screenpop.Card) map[string]screenpop.SectionStatus {
	out := map[string]screenpop.SectionStatus{}
	for _, s := range c.Sections {
		out[s.Name] = s.Status
	}
	return out
}
