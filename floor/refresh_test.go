package floor

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
)

// The ledger keeps its live calls in the view's order (first ring, then
// ID) as they come and go, and hands the same snapshot out while none
// changed.
func TestLedgerKeepsCallOrder(t *testing.T) {
	l, _ := testLedger(t, nil)
	ids := func() []string {
		var out []string
		for _, c := range l.Calls() {
			out = append(out, c.ID)
		}
		return out
	}
	l.ObserveCall(ringing("c", 10, "alice"), at(10))
	l.ObserveCall(ringing("a", 12, "bob"), at(12))
	l.ObserveCall(ringing("b", 10, "carol"), at(12)) // the same ring as c: by ID
	l.ObserveCall(ringing("d", 5), at(13))           // rang before them all
	if got := ids(); !slices.Equal(got, []string{"d", "b", "c", "a"}) {
		t.Fatalf("order %v, want d b c a", got)
	}
	l.ObserveCall(answered("b", 14, "carol"), at(14))
	l.ObserveCall(ended("c", 15, screenpop.OutcomeAbandoned), at(15))
	l.ObserveCall(ringing("a", 16, "bob", "alice"), at(16)) // the queue moves on: the first ring stays
	if got := ids(); !slices.Equal(got, []string{"d", "b", "a"}) {
		t.Fatalf("order %v, want d b a", got)
	}
	calls, v1 := l.snapshot()
	if calls[1].Agent != "carol" || !slices.Equal(calls[2].Ringing, []string{"alice", "bob"}) || !calls[2].RingAt.Equal(at(12)) {
		t.Errorf("calls %+v", calls)
	}
	again, v2 := l.snapshot()
	if v1 != v2 || &again[0] != &calls[0] {
		t.Error("a snapshot with nothing changed was made anew")
	}
	if mine := l.Calls(); &mine[0] == &calls[0] {
		t.Error("Calls hands out the shared snapshot")
	}
	l.ObserveCall(ringing("e", 17), at(17))
	if _, v3 := l.snapshot(); v3 == v2 {
		t.Error("a new call left the version as it was")
	}
	// Many calls end: those gone leave the order, in one go.
	for i := range 100 {
		l.ObserveCall(ringing(fmt.Sprintf("m%03d", i), 20+float64(i%10)), at(30))
	}
	for i := range 100 {
		if i%5 != 0 {
			l.ObserveCall(ended(fmt.Sprintf("m%03d", i), 31, screenpop.OutcomeAbandoned), at(31))
		}
	}
	got := ids()
	want := []string{"d", "b", "a", "e"}
	for s := range 10 {
		for i := range 100 {
			if i%5 == 0 && i%10 == s {
				want = append(want, fmt.Sprintf("m%03d", i))
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("after many ended: %v, want %v", got, want)
	}
	if l.dead >= len(l.live) || len(l.live) > 2*len(want)+33 {
		t.Errorf("live holds %d for %d calls (%d gone)", len(l.live), len(want), l.dead)
	}
	l.Sweep(at(40).Add(2 * time.Hour)) // StaleAfter is an hour: every call expires
	if got := ids(); len(got) != 0 {
		t.Errorf("after the sweep: %v", got)
	}
}

// gauge reads one series of a gauge through the registry, as a scrape.
func gauge(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q} in the scrape", name, label, value)
	return 0
}

func newTestFloor(t *testing.T, share Share) (*Floor, *fakePages, *prometheus.Registry) {
	t.Helper()
	pages := &fakePages{}
	reg := prometheus.NewRegistry()
	f, err := New(Options{
		Config:     Config{ServiceLevelSeconds: 20, TimeZone: "UTC"},
		Daemon:     "a",
		Sources:    []string{"pbx"},
		Pages:      pages,
		Agents:     func() map[string]string { return map[string]string{"alice": "Alice", "bob": "Bob"} },
		Share:      share,
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f, pages, reg
}

// The floor's gauges are made at the scrape, exact, with no view made and
// no refresh run.
func TestFloorGaugesAtScrape(t *testing.T) {
	f, pages, reg := newTestFloor(t, nil)
	pages.set("alice", true)
	now := time.Now()
	f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/1", Source: "pbx", At: now.Add(-30 * time.Second),
		Agents: []string{"alice", "bob"}}, now)
	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"screenpop_calls_ringing", "source", "pbx", 1},
		{"screenpop_agents", "state", StateSignedIn, 1},
		{"screenpop_agents", "state", StateRinging, 2},
		{"screenpop_agents", "state", StateRingingBlind, 1},
		{"screenpop_agents", "state", StateOnCall, 0},
	} {
		if got := gauge(t, reg, c.name, c.label, c.value); got != c.want {
			t.Errorf("ringing: %s{%s} = %v, want %v", c.name, c.value, got, c.want)
		}
	}
	if got := gauge(t, reg, "screenpop_calls_longest_wait_seconds", "source", "pbx"); got < 30 {
		t.Errorf("longest wait %v, want 30s or more", got)
	}
	f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: "pbx/1", Source: "pbx", At: now, Agent: "alice"}, now)
	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"screenpop_calls_ringing", "source", "pbx", 0},
		{"screenpop_calls_longest_wait_seconds", "source", "pbx", 0},
		{"screenpop_agents", "state", StateRinging, 0},
		{"screenpop_agents", "state", StateOnCall, 1},
	} {
		if got := gauge(t, reg, c.name, c.label, c.value); got != c.want {
			t.Errorf("answered: %s{%s} = %v, want %v", c.name, c.value, got, c.want)
		}
	}
	if f.sentOK {
		t.Error("a view was made for no supervisor page")
	}
}

// With a supervisor page open, a refresh sends the view only when
// something it is made of changed.
func TestFloorSendsOnlyChanges(t *testing.T) {
	f, pages, _ := newTestFloor(t, nil)
	ctx := context.Background()
	s, ok := f.subscribe()
	if !ok {
		t.Fatal("subscribe")
	}
	defer f.unsubscribe(s)
	next := func() (viewMessage, bool) {
		t.Helper()
		select {
		case data := <-s.ch:
			var m viewMessage
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			return m, true
		default:
			return viewMessage{}, false
		}
	}
	if m, ok := next(); !ok || m.Type != "floor" {
		t.Fatalf("no view at once: %+v", m)
	}
	f.refresh(ctx) // the first: sent whatever it holds
	next()
	f.refresh(ctx)
	if m, ok := next(); ok {
		t.Errorf("a view sent with nothing changed: %+v", m)
	}
	now := time.Now()
	f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/1", Source: "pbx", At: now, Agents: []string{"bob"}}, now)
	f.refresh(ctx)
	if m, ok := next(); !ok || len(m.Data.Waiting) != 1 {
		t.Errorf("after a ring: %+v %v", m, ok)
	}
	pages.set("bob", true)
	f.refresh(ctx)
	if m, ok := next(); !ok || !m.Data.Waiting[0].Agents[0].Connected {
		t.Errorf("after bob's page opened: %+v %v", m, ok)
	}
	f.refresh(ctx)
	if m, ok := next(); ok {
		t.Errorf("a view sent with nothing changed: %+v", m)
	}
}

// fakeShare is a Share in memory: what it was asked, and the other
// daemons' views it answers.
type fakeShare struct {
	mu        sync.Mutex
	published []DaemonView
	reads     int
	added     []Record
	others    []DaemonView
}

func (s *fakeShare) Publish(_ context.Context, v DaemonView, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.published = append(s.published, v)
	return nil
}

func (s *fakeShare) Views(context.Context) ([]DaemonView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	return slices.Clone(s.others), nil
}

func (s *fakeShare) Add(_ context.Context, r []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.added = append(s.added, r...)
	return nil
}

func (s *fakeShare) Counts(context.Context, string) (Counts, error) { return Counts{}, nil }
func (s *fakeShare) PublishAck(context.Context, Ack) error          { return nil }
func (s *fakeShare) Acks(ctx context.Context, _ func(Ack), _ func()) error {
	<-ctx.Done()
	return ctx.Err()
}

func (s *fakeShare) counts() (published, reads, added int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.published), s.reads, len(s.added)
}

// With Redis and no supervisor page open anywhere, a daemon shares its
// view every Interval only; once another daemon has a page open, it
// publishes at every change too (reading the others' still every
// Interval), and its gauges are the whole floor's.
func TestFloorSharesWhenWatched(t *testing.T) {
	share := &fakeShare{}
	f, _, reg := newTestFloor(t, share)
	ctx := context.Background()
	f.update(ctx, true) // a tick
	if p, r, _ := share.counts(); p != 1 || r != 1 {
		t.Fatalf("a tick: %d published, %d read; want 1, 1", p, r)
	}
	now := time.Now()
	ring := screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/1", Source: "pbx", At: now, Agents: []string{"bob"}}
	f.ObserveCall(ring, now)
	f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "pbx/1", Source: "pbx", At: now, Outcome: screenpop.OutcomeAbandoned}, now)
	f.refresh(ctx)
	if p, r, a := share.counts(); p != 1 || r != 1 || a != 0 {
		t.Fatalf("a change, nobody watching: %d published, %d read, %d added; want 1, 1, 0", p, r, a)
	}
	share.mu.Lock()
	share.others = []DaemonView{{ID: "b#1", Daemon: "b", At: now, Version: 1, Watched: true, Pages: []string{"bob"}}}
	share.mu.Unlock()
	f.update(ctx, true)
	if p, r, a := share.counts(); p != 2 || r != 2 || a != 1 {
		t.Fatalf("a tick: %d published, %d read, %d added; want 2, 2, 1", p, r, a)
	}
	if !f.Connected("bob") {
		t.Error("bob's page on b is not seen")
	}
	ring.CallID = "pbx/2"
	f.ObserveCall(ring, now)
	f.refresh(ctx)
	p, r, _ := share.counts()
	if p != 3 || r != 2 {
		t.Fatalf("a change, b watching: %d published, %d read; want 3, 2", p, r)
	}
	share.mu.Lock()
	last := share.published[len(share.published)-1]
	share.mu.Unlock()
	if len(last.Calls) != 1 || last.Calls[0].ID != "pbx/2" || last.Version <= share.published[0].Version {
		t.Errorf("published %+v", last)
	}
	f.refresh(ctx)
	if p, _, _ := share.counts(); p != 3 {
		t.Errorf("nothing changed: published again")
	}
	if got := gauge(t, reg, "screenpop_agents", "state", StateSignedIn); got != 1 {
		t.Errorf("agents signed in %v, want 1 (bob, on b)", got)
	}
	if got := gauge(t, reg, "screenpop_agents", "state", StateRingingBlind); got != 0 {
		t.Errorf("agents ringing blind %v, want 0 (bob's page is on b)", got)
	}
	if v := f.Current(); v.Partial || len(v.Daemons) != 2 || v.Today.Abandoned != 0 {
		// The day's counts are Redis's: the fake's are none.
		t.Errorf("view: partial %v, daemons %v, today %+v", v.Partial, v.Daemons, v.Today)
	}
}

// A view of one daemon's calls (taken as they come, in order) is the
// view of the same calls reported by two daemons (merged, sorted): the
// waiting calls the longest waiting first, the agents by name.
func TestMergeOneDaemonAsTwo(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	names := map[string]string{}
	for i := range 30 {
		names[fmt.Sprintf("a%02d", i)] = fmt.Sprintf("Agent %c", 'Z'-rune(i%26))
	}
	var calls []CallView
	for i := range 300 {
		c := CallView{ID: fmt.Sprintf("pbx/%03d", rnd.IntN(1000)*1000+i), Source: []string{"pbx", "cti"}[i%2], Line: "Support",
			RingAt: at(float64(rnd.IntN(60)))}
		switch rnd.IntN(3) {
		case 0:
			c.Agent, c.AnsweredAt = fmt.Sprintf("a%02d", rnd.IntN(40)), c.RingAt.Add(time.Second)
		default:
			for range rnd.IntN(3) {
				c.Ringing = append(c.Ringing, fmt.Sprintf("a%02d", rnd.IntN(40)))
			}
			slices.Sort(c.Ringing)
			c.Ringing = slices.Compact(c.Ringing)
		}
		calls = append(calls, c)
	}
	slices.SortFunc(calls, callOrder)
	in := mergeInput{now: at(100), day: "2026-03-04", serviceLevel: 20, names: names,
		views: []DaemonView{{ID: "a#1", Daemon: "a", Calls: calls, Pages: []string{"a01", "a35"}}}}
	one, g1 := merge(in)
	shuffled := slices.Clone(calls)
	rnd.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	in.views = append(in.views, DaemonView{ID: "b#1", Daemon: "a", Calls: shuffled})
	two, g2 := merge(in)
	one.Daemons, two.Daemons = nil, nil
	if !reflect.DeepEqual(one, two) || !reflect.DeepEqual(g1, g2) {
		t.Fatalf("one daemon's view differs from the same calls of two:\n%+v\n%+v", one, two)
	}
	if !slices.IsSortedFunc(one.Waiting, func(a, b WaitingCall) int { return cmp.Compare(b.Wait, a.Wait) }) || len(one.Waiting) == 0 {
		t.Errorf("waiting not the longest first: %+v", one.Waiting)
	}
	if !slices.IsSortedFunc(one.Agents, func(a, b AgentView) int {
		return cmp.Or(strings.Compare(strings.ToLower(cmp.Or(a.Name, a.ID)), strings.ToLower(cmp.Or(b.Name, b.ID))), strings.Compare(a.ID, b.ID))
	}) {
		t.Errorf("agents not by name: %+v", one.Agents)
	}
	// The gauges alone are the view's.
	in.gaugesOnly = true
	if _, g3 := merge(in); !reflect.DeepEqual(g1, g3) {
		t.Errorf("gauges alone %+v, with the view %+v", g3, g1)
	}
}

// Run refreshes soon after a change, with no tick to help: the changes of
// a burst (signalled while a refresh is due, when Run does not listen)
// are all in a view, and a change after that refresh brings another.
func TestRunRefreshesAfterChangesWithoutTicks(t *testing.T) {
	f, _, _ := newTestFloor(t, nil)
	f.opts.Interval = time.Hour // no tick in this test: only changes refresh
	s, ok := f.subscribe()
	if !ok {
		t.Fatal("subscribe")
	}
	defer f.unsubscribe(s)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	waitWaiting := func(want int) {
		t.Helper()
		give := time.After(20 * time.Second) // only bounds a hung test
		for {
			select {
			case data := <-s.ch:
				var m viewMessage
				if err := json.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				if m.Type == "floor" && len(m.Data.Waiting) == want {
					return
				}
			case <-give:
				t.Fatalf("no view with %d calls waiting", want)
			}
		}
	}
	ring := func(id string) {
		now := time.Now()
		f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: id, Source: "pbx", At: now, Agents: []string{"bob"}}, now)
	}
	for burst := range 2 {
		for i := range 20 {
			ring(fmt.Sprintf("pbx/burst-%d-%d", burst, i))
		}
		waitWaiting(20 * (burst + 1))
	}
	ring("pbx/after")
	waitWaiting(41)
}
