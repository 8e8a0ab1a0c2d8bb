package pop

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
)

type dispatcherEnv struct {
	d    *Dispatcher
	stop func() // stops Run and waits for it (and the work it started)
	b    *fakeBuilder
	del  *fakeDeliverer
	rec  *fakeRecorder
	reg  *prometheus.Registry
}

func startDispatcher(t *testing.T, tweak func(*DispatcherConfig)) *dispatcherEnv {
	t.Helper()
	e := &dispatcherEnv{b: newFakeBuilder(), del: newFakeDeliverer(), rec: newFakeRecorder(), reg: prometheus.NewRegistry()}
	cfg := DispatcherConfig{
		Builder:    e.b,
		Recorder:   e.rec,
		Deliverer:  e.del,
		AgentNames: func(id string) string { return map[string]string{"bob": "Bob Builder"}[id] },
		Registerer: e.reg,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	d, err := NewDispatcher(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.d = d
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(e.stop)
	return e
}

func TestNewDispatcherNeedsBuilderAndDeliverer(t *testing.T) {
	if _, err := NewDispatcher(DispatcherConfig{Deliverer: newFakeDeliverer()}); err == nil || !strings.Contains(err.Error(), "Builder") {
		t.Errorf("without builder: %v", err)
	}
	if _, err := NewDispatcher(DispatcherConfig{Builder: newFakeBuilder()}); err == nil || !strings.Contains(err.Error(), "Deliverer") {
		t.Errorf("without deliverer: %v", err)
	}
}

func TestRingingPopsEveryAgentOnceAnswerWithdrawsOthersEndRecords(t *testing.T) {
	e := startDispatcher(t, nil)
	t0 := time.Now().Add(-time.Second)
	e.d.HandleCall(ringing("c1", t0, "alice", "bob", "carol"))
	for _, a := range []string{"alice", "bob", "carol"} {
		e.del.waitTypes(t, a, "c1", TypePop)
	}
	pop := decode[PopData](t, e.del.of("alice")[0])
	if pop.State != StateRinging || pop.Card.Customer == nil || pop.Card.Customer.Name != "ACME GmbH" || pop.Card.CallID != "c1" {
		t.Fatalf("pop data: %+v", pop)
	}
	// The same set again (a telephony source repairing its state) pops nobody twice.
	e.d.HandleCall(ringing("c1", t0, "alice", "bob", "carol"))
	e.d.HandleCall(answered("c1", "bob", t0.Add(3*time.Second)))
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered)
	for _, a := range []string{"alice", "carol"} {
		e.del.waitTypes(t, a, "c1", TypePop, TypeWithdrawn)
		w := decode[WithdrawnData](t, e.del.of(a)[1])
		if w.Reason != ReasonAnsweredElsewhere || w.By == nil || w.By.ID != "bob" || w.By.Name != "Bob Builder" {
			t.Errorf("%s withdrawn: %+v", a, w)
		}
	}
	if got := decode[AnsweredData](t, e.del.of("bob")[1]); got.Agent.ID != "bob" || got.Transferred {
		t.Errorf("answered data: %+v", got)
	}
	if n := e.b.buildCount("c1"); n != 1 {
		t.Errorf("card built %d times, want once", n)
	}

	e.d.HandleCall(ended("c1", "bob", screenpop.OutcomeAnswered, t0.Add(63*time.Second)))
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered, TypeEnded)
	if got := decode[EndedData](t, e.del.of("bob")[2]); got.Outcome != screenpop.OutcomeAnswered || got.Agent == nil || got.Agent.ID != "bob" {
		t.Errorf("ended data: %+v", got)
	}
	past := e.rec.waitRecorded(t, 1)[0]
	want := screenpop.PastCall{CallID: "c1", Phone: "+4930123456", At: t0, Agent: "bob", Outcome: screenpop.OutcomeAnswered, Duration: 63 * time.Second}
	if past.CallID != want.CallID || past.Phone != want.Phone || !past.At.Equal(want.At) || past.Agent != want.Agent || past.Outcome != want.Outcome || past.Duration != want.Duration {
		t.Errorf("recorded %+v, want %+v", past, want)
	}
	// The agents who lost the pop get nothing more about the call.
	for _, a := range []string{"alice", "carol"} {
		if got := e.del.types(a, "c1"); len(got) != 2 {
			t.Errorf("%s got %v, want only pop and withdrawn", a, got)
		}
	}
	if v := metricValue(t, e.reg, "screenpop_pop_latency_seconds", nil); v != 3 {
		t.Errorf("latency observations: %v, want 3 (one per pop)", v)
	}
}

func TestRingingSetShrinkingWithdrawsAndGrowingPops(t *testing.T) {
	e := startDispatcher(t, nil)
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice", "bob", "carol"))
	for _, a := range []string{"alice", "bob", "carol"} {
		e.del.waitTypes(t, a, "c1", TypePop)
	}
	e.d.HandleCall(ringing("c1", now.Add(time.Second), "carol", "dave"))
	e.del.waitTypes(t, "dave", "c1", TypePop)
	for _, a := range []string{"alice", "bob"} {
		e.del.waitTypes(t, a, "c1", TypePop, TypeWithdrawn)
		if w := decode[WithdrawnData](t, e.del.of(a)[1]); w.Reason != ReasonNotRinging || w.By != nil {
			t.Errorf("%s withdrawn: %+v", a, w)
		}
	}
	e.d.HandleCall(ended("c1", "", screenpop.OutcomeAbandoned, now.Add(2*time.Second)))
	e.del.waitTypes(t, "dave", "c1", TypePop, TypeEnded)
	e.del.waitTypes(t, "carol", "c1", TypePop, TypeEnded)
	if got := decode[EndedData](t, e.del.of("carol")[1]); got.Outcome != screenpop.OutcomeAbandoned || got.Agent != nil {
		t.Errorf("ended data: %+v", got)
	}
	if got := e.del.types("alice", "c1"); len(got) != 2 {
		t.Errorf("alice got %v after losing the pop", got)
	}
}

func TestAnsweredBeforeCardReadyPopsOnlyTheAnswerer(t *testing.T) {
	e := startDispatcher(t, nil)
	release := e.b.gate("c1")
	e.b.started = make(chan string, 1)
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice", "bob"))
	<-e.b.started
	e.d.HandleCall(ringing("c1", now, "alice", "bob", "carol")) // an agent added while building
	e.d.HandleCall(answered("c1", "bob", now.Add(time.Second)))
	// A marker call proves the events above were applied before the card is released.
	e.d.HandleCall(ringing("marker", now, "bob"))
	<-e.b.started
	e.del.waitTypes(t, "bob", "marker", TypePop)
	release()
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered)
	if p := decode[PopData](t, e.del.of("bob")[1]); p.State != StateAnswered || p.AnsweredBy == nil || p.AnsweredBy.ID != "bob" {
		t.Errorf("answerer's pop: %+v", p)
	}
	e.d.HandleCall(ended("c1", "bob", screenpop.OutcomeAnswered, now.Add(2*time.Second)))
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered, TypeEnded)
	for _, a := range []string{"alice", "carol"} {
		if got := e.del.types(a, "c1"); len(got) != 0 {
			t.Errorf("%s got %v for a call answered before its card was ready", a, got)
		}
	}
}

func TestAgentsAddedWhileBuildingGetThePopWhenReady(t *testing.T) {
	e := startDispatcher(t, nil)
	release := e.b.gate("c1")
	e.b.started = make(chan string, 1)
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice"))
	<-e.b.started
	e.d.HandleCall(ringing("c1", now.Add(time.Second), "alice", "bob"))
	e.d.HandleCall(ringing("marker", now, "alice"))
	<-e.b.started
	e.del.waitTypes(t, "alice", "marker", TypePop)
	release()
	e.del.waitTypes(t, "alice", "c1", TypePop)
	e.del.waitTypes(t, "bob", "c1", TypePop)
	if n := e.b.buildCount("c1"); n != 1 {
		t.Errorf("built %d times", n)
	}
}

func TestEndedBeforeCardReadyDeliversNothingButRecords(t *testing.T) {
	e := startDispatcher(t, nil)
	release := e.b.gate("c1")
	e.b.started = make(chan string, 2)
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice"))
	e.d.HandleCall(ended("c1", "", screenpop.OutcomeAbandoned, now.Add(4*time.Second)))
	e.d.HandleCall(ringing("marker", now, "alice"))
	<-e.b.started
	<-e.b.started
	e.del.waitTypes(t, "alice", "marker", TypePop)
	release()
	past := e.rec.waitRecorded(t, 1)[0]
	if past.CallID != "c1" || past.Outcome != screenpop.OutcomeAbandoned || past.Duration != 4*time.Second || past.Agent != "" {
		t.Errorf("recorded %+v", past)
	}
	if got := e.del.types("alice", "c1"); len(got) != 0 {
		t.Errorf("alice got %v for a call that ended before its card", got)
	}
}

func TestSlowCardDoesNotDelayAnotherCall(t *testing.T) {
	e := startDispatcher(t, nil)
	release := e.b.gate("slow")
	defer release()
	e.b.started = make(chan string, 2)
	now := time.Now()
	e.d.HandleCall(ringing("slow", now, "alice"))
	<-e.b.started
	e.d.HandleCall(ringing("fast", now, "bob"))
	// The slow card's Build is still blocked on its gate while this waits.
	e.del.waitTypes(t, "bob", "fast", TypePop)
	if got := e.del.types("alice", "slow"); len(got) != 0 {
		t.Fatalf("slow card delivered before release: %v", got)
	}
	release()
	e.del.waitTypes(t, "alice", "slow", TypePop)
}

func TestTransferMovesTheCard(t *testing.T) {
	e := startDispatcher(t, nil)
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice"))
	e.del.waitTypes(t, "alice", "c1", TypePop)
	e.d.HandleCall(answered("c1", "alice", now.Add(time.Second)))
	e.d.HandleCall(transferred("c1", "bob", now.Add(2*time.Second)))
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered)
	e.del.waitTypes(t, "alice", "c1", TypePop, TypeAnswered, TypeWithdrawn)
	if w := decode[WithdrawnData](t, e.del.of("alice")[2]); w.Reason != ReasonTransferred || w.By == nil || w.By.ID != "bob" {
		t.Errorf("withdrawn: %+v", w)
	}
	if a := decode[AnsweredData](t, e.del.of("bob")[1]); !a.Transferred || a.Agent.ID != "bob" {
		t.Errorf("answered: %+v", a)
	}
	if p := decode[PopData](t, e.del.of("bob")[0]); p.State != StateAnswered || p.Card.Customer == nil {
		t.Errorf("pop: %+v", p)
	}
	e.d.HandleCall(ended("c1", "bob", screenpop.OutcomeAnswered, now.Add(3*time.Second)))
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered, TypeEnded)
	if past := e.rec.waitRecorded(t, 1)[0]; past.Agent != "bob" {
		t.Errorf("recorded agent %q", past.Agent)
	}
	if got := e.del.types("alice", "c1"); len(got) != 3 {
		t.Errorf("alice got %v", got)
	}
}

func TestAnsweredOnAPhoneThatNeverRang(t *testing.T) {
	e := startDispatcher(t, nil)
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice"))
	e.del.waitTypes(t, "alice", "c1", TypePop)
	e.d.HandleCall(answered("c1", "zoe", now.Add(time.Second)))
	e.del.waitTypes(t, "zoe", "c1", TypePop, TypeAnswered)
	e.del.waitTypes(t, "alice", "c1", TypePop, TypeWithdrawn)
	// A late ringing event for an answered call pops nobody.
	e.d.HandleCall(ringing("c1", now, "alice", "carol"))
	e.d.HandleCall(ringing("marker", now, "carol"))
	e.del.waitTypes(t, "carol", "marker", TypePop)
	if got := e.del.types("carol", "c1"); len(got) != 0 {
		t.Errorf("carol got %v after the call was answered", got)
	}
}

func TestEventsAfterTheEndAreIgnored(t *testing.T) {
	e := startDispatcher(t, nil)
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice"))
	e.del.waitTypes(t, "alice", "c1", TypePop)
	e.d.HandleCall(ended("c1", "", screenpop.OutcomeAbandoned, now))
	e.rec.waitRecorded(t, 1)
	// A source repairing its state after a reconnect repeats old events.
	e.d.HandleCall(ringing("c1", now, "alice", "bob"))
	e.d.HandleCall(answered("c1", "bob", now))
	e.d.HandleCall(ended("c1", "bob", screenpop.OutcomeAnswered, now))
	e.d.HandleCall(ringing("marker", now, "alice", "bob"))
	e.del.waitTypes(t, "alice", "marker", TypePop)
	e.del.waitTypes(t, "bob", "marker", TypePop)
	e.stop()
	if got := e.del.types("alice", "c1"); fmt.Sprint(got) != "[pop ended]" {
		t.Errorf("alice got %v", got)
	}
	if got := e.del.types("bob", "c1"); len(got) != 0 {
		t.Errorf("bob got %v for a call that was over", got)
	}
	if n := e.b.buildCount("c1"); n != 1 {
		t.Errorf("built %d times", n)
	}
	if n := len(e.rec.recorded()); n != 1 {
		t.Errorf("recorded %d times", n)
	}
	if e.d.state.Follows("c1") {
		t.Error("the ended call is followed again")
	}
}

func TestWithheldCallIsNotRecorded(t *testing.T) {
	e := startDispatcher(t, nil)
	now := time.Now()
	ev := ringing("w1", now, "alice")
	ev.Caller = screenpop.Caller{Withheld: true}
	e.d.HandleCall(ev)
	e.del.waitTypes(t, "alice", "w1", TypePop)
	e.d.HandleCall(answered("w1", "alice", now))
	e.d.HandleCall(ended("w1", "alice", screenpop.OutcomeAnswered, now.Add(time.Second)))
	e.d.HandleCall(ringing("c2", now, "alice"))
	e.d.HandleCall(ended("c2", "", screenpop.OutcomeAbandoned, now.Add(time.Second)))
	e.rec.waitRecorded(t, 1)
	e.del.waitTypes(t, "alice", "w1", TypePop, TypeAnswered, TypeEnded)
	err := e.d.Note(context.Background(), Agent{ID: "alice"}, "w1", "asked about delivery", "r1")
	var re *RequestError
	if !errors.As(err, &re) || re.Code != "bad_request" {
		t.Errorf("note on a withheld call: %v", err)
	}
	e.stop() // waits for every history write it started
	if got := e.rec.recorded(); len(got) != 1 || got[0].CallID != "c2" {
		t.Errorf("recorded %+v, want only c2", got)
	}
}

func TestSelectCandidate(t *testing.T) {
	e := startDispatcher(t, nil)
	e.b.card = func(ev screenpop.CallEvent) screenpop.Card {
		c := testCard(ev)
		c.Resolution, c.Customer = screenpop.ResolvedAmbiguous, nil
		c.Candidates = []screenpop.Customer{{ID: "k1", Name: "Jane Doe"}, {ID: "k2", Name: "John Doe"}}
		return c
	}
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice", "bob"))
	e.d.HandleCall(ringing("c2", now, "carol"))
	e.del.waitTypes(t, "alice", "c1", TypePop)
	e.del.waitTypes(t, "bob", "c1", TypePop)
	e.del.waitTypes(t, "carol", "c2", TypePop)

	var re *RequestError
	if err := e.d.Select(Agent{ID: "carol"}, "c1", "k1"); !errors.As(err, &re) || re.Code != "forbidden" {
		t.Errorf("select by an agent not holding the call: %v", err)
	}
	if err := e.d.Select(Agent{ID: "alice"}, "c1", "k9"); !errors.As(err, &re) || re.Code != "bad_request" {
		t.Errorf("select of a non-candidate: %v", err)
	}
	if err := e.d.Select(Agent{ID: "alice"}, "nope", "k1"); !errors.As(err, &re) || re.Code != "unknown_call" {
		t.Errorf("select on an unknown call: %v", err)
	}
	release := e.b.gate("select:c1")
	if err := e.d.Select(Agent{ID: "alice", Name: "Alice"}, "c1", "k2"); err != nil {
		t.Fatal(err)
	}
	// One pick at a time: the first one is still being built.
	if err := e.d.Select(Agent{ID: "bob"}, "c1", "k1"); !errors.As(err, &re) || re.Code != "not_ready" {
		t.Errorf("second select while the first builds: %v", err)
	}
	release()
	for _, a := range []string{"alice", "bob"} {
		e.del.waitTypes(t, a, "c1", TypePop, TypeCard)
		cd := decode[CardData](t, e.del.of(a)[1])
		if cd.Card.Customer == nil || cd.Card.Customer.ID != "k2" || cd.SelectedBy.ID != "alice" || len(cd.Card.Candidates) != 2 {
			t.Errorf("%s card: %+v", a, cd)
		}
	}
	if got := e.del.types("carol", "c1"); len(got) != 0 {
		t.Errorf("carol got %v", got)
	}
	// The snapshot carries the picked card.
	var pops []PopView
	e.d.Snapshot("bob", func(p []PopView) { pops = p })
	if len(pops) != 1 || pops[0].Card.Customer == nil || pops[0].Card.Customer.ID != "k2" {
		t.Errorf("snapshot after select: %+v", pops)
	}
}

func TestNotes(t *testing.T) {
	e := startDispatcher(t, nil)
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice", "bob"))
	e.del.waitTypes(t, "alice", "c1", TypePop)
	e.del.waitTypes(t, "bob", "c1", TypePop)
	e.d.HandleCall(answered("c1", "alice", now))
	e.del.waitTypes(t, "alice", "c1", TypePop, TypeAnswered)
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeWithdrawn)
	ctx := context.Background()
	var re *RequestError
	if err := e.d.Note(ctx, Agent{ID: "carol"}, "c1", "hello", ""); !errors.As(err, &re) || re.Code != "forbidden" {
		t.Errorf("note by a stranger: %v", err)
	}
	if err := e.d.Note(ctx, Agent{ID: "alice"}, "c1", strings.Repeat("é", MaxNoteLength+1), ""); !errors.As(err, &re) || re.Code != "bad_request" {
		t.Errorf("note too long: %v", err)
	}
	if err := e.d.Note(ctx, Agent{ID: "alice"}, "c1", strings.Repeat("é", MaxNoteLength), "r0"); err != nil {
		t.Errorf("note of exactly the limit: %v", err)
	}
	if err := e.d.Note(ctx, Agent{ID: "alice"}, "c1", "  ", ""); !errors.As(err, &re) || re.Code != "bad_request" {
		t.Errorf("empty note: %v", err)
	}
	if err := e.d.Note(ctx, Agent{ID: "alice"}, "c1", " wants a call-back ", "r1"); err != nil {
		t.Fatal(err)
	}
	e.del.waitTypes(t, "alice", "c1", TypePop, TypeAnswered, TypeNoteSaved, TypeNoteSaved)
	ns := decode[NoteSavedData](t, e.del.of("alice")[3])
	if ns.Ref != "r1" || ns.Note.Text != "wants a call-back" || ns.Note.Agent != "alice" {
		t.Errorf("note_saved: %+v", ns)
	}
	e.d.HandleCall(ended("c1", "alice", screenpop.OutcomeAnswered, now.Add(time.Minute)))
	e.rec.waitRecorded(t, 1)
	// After the call: the agent who had it still may; bob held the pop while it rang.
	if err := e.d.Note(ctx, Agent{ID: "bob"}, "c1", "I know them", "r2"); err != nil {
		t.Errorf("note after end by an agent who held the pop: %v", err)
	}
	if err := e.d.Note(ctx, Agent{ID: "carol"}, "c1", "hi", ""); !errors.As(err, &re) || re.Code != "forbidden" {
		t.Errorf("note after end by a stranger: %v", err)
	}
	e.rec.mu.Lock()
	notes := e.rec.notes["+4930123456|c1"]
	e.rec.mu.Unlock()
	if len(notes) != 3 || notes[1].Text != "wants a call-back" || notes[2].Agent != "bob" {
		t.Errorf("stored notes: %+v", notes)
	}
	e.rec.mu.Lock()
	e.rec.fail = errors.New("database down")
	e.rec.mu.Unlock()
	if err := e.d.Note(ctx, Agent{ID: "alice"}, "c1", "again", ""); !errors.As(err, &re) || re.Code != "unavailable" || strings.Contains(re.Message, "database") {
		t.Errorf("note with the recorder down: %v", err)
	}
}

func TestSnapshotListsOnlyTheAgentsCurrentPops(t *testing.T) {
	e := startDispatcher(t, nil)
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice", "bob"))
	e.d.HandleCall(ringing("c2", now.Add(time.Second), "alice"))
	e.d.HandleCall(ringing("c3", now, "bob"))
	e.d.HandleCall(answered("c2", "alice", now.Add(2*time.Second)))
	e.d.HandleCall(ringing("c4", now, "alice"))
	e.d.HandleCall(ended("c4", "", screenpop.OutcomeAbandoned, now))
	e.del.waitTypes(t, "alice", "c1", TypePop)
	e.del.waitTypes(t, "alice", "c2", TypePop, TypeAnswered)
	e.del.waitTypes(t, "bob", "c3", TypePop)
	e.rec.waitRecorded(t, 1)
	var pops []PopView
	e.d.Snapshot("alice", func(p []PopView) { pops = p })
	var got []string
	for _, p := range pops {
		got = append(got, p.CallID+":"+p.State)
	}
	if want := []string{"c1:ringing", "c2:answered"}; !slices.Equal(got, want) {
		t.Errorf("alice's snapshot %v, want %v", got, want)
	}
	e.d.Snapshot("nobody", func(p []PopView) { pops = p })
	if pops == nil || len(pops) != 0 {
		t.Errorf("snapshot of an agent without calls: %#v, want an empty list", pops)
	}
}

func TestStaleCallsExpire(t *testing.T) {
	e := startDispatcher(t, func(c *DispatcherConfig) { c.StaleAfter = time.Hour })
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice"))
	e.del.waitTypes(t, "alice", "c1", TypePop)
	e.d.mu.Lock()
	e.d.now = func() time.Time { return now.Add(2 * time.Hour) }
	e.d.sweep()
	e.d.mu.Unlock()
	e.del.waitTypes(t, "alice", "c1", TypePop, TypeWithdrawn)
	if w := decode[WithdrawnData](t, e.del.of("alice")[1]); w.Reason != ReasonExpired {
		t.Errorf("withdrawn: %+v", w)
	}
	var pops []PopView
	e.d.Snapshot("alice", func(p []PopView) { pops = p })
	if len(pops) != 0 {
		t.Errorf("snapshot after expiry: %+v", pops)
	}
}

func TestPanickingBuilderCostsOnlyItsCard(t *testing.T) {
	e := startDispatcher(t, nil)
	e.b.card = func(ev screenpop.CallEvent) screenpop.Card {
		if ev.CallID == "boom" {
			panic("source bug")
		}
		return testCard(ev)
	}
	now := time.Now()
	e.d.HandleCall(ringing("boom", now, "alice"))
	e.d.HandleCall(ringing("fine", now, "alice"))
	e.del.waitTypes(t, "alice", "boom", TypePop)
	e.del.waitTypes(t, "alice", "fine", TypePop)
	var boom PopData
	for _, m := range e.del.of("alice") {
		if m.CallID == "boom" {
			boom = decode[PopData](t, m)
		}
	}
	if boom.Card.Resolution != screenpop.ResolvedFailed {
		t.Errorf("card of a panicking build: %+v", boom.Card)
	}
}

// 500 calls from many goroutines at once, each rung at 3 of 20 agents,
// answered by one and ended. Even calls are answered once the card is up,
// odd ones at once (the card may still be building, or never be needed).
// Whatever the interleaving, every agent's view of every call must be one of
// the legal sequences.
func TestManyConcurrentCalls(t *testing.T) {
	e := startDispatcher(t, nil)
	const calls, workers, agents = 500, 25, 20
	agent := func(i int) string { return fmt.Sprintf("a%02d", i%agents) }
	var wg sync.WaitGroup
	var gaveUp sync.Map
	now := time.Now()
	for w := range workers {
		wg.Go(func() {
			for i := w; i < calls; i += workers {
				id := fmt.Sprintf("call-%03d", i)
				ring := []string{agent(i), agent(i + 1), agent(i + 2)}
				e.d.HandleCall(ringing(id, now, ring...))
				e.d.HandleCall(ringing(id, now, ring...))
				if i%2 == 0 {
					popped := e.del.await(func() bool {
						for _, a := range ring {
							if len(e.del.types(a, id)) == 0 {
								return false
							}
						}
						return true
					})
					if !popped {
						gaveUp.Store(id, true)
					}
				}
				e.d.HandleCall(answered(id, ring[i%3], now.Add(time.Second)))
				e.d.HandleCall(ended(id, ring[i%3], screenpop.OutcomeAnswered, now.Add(time.Minute)))
			}
		})
	}
	wg.Wait()
	gaveUp.Range(func(k, _ any) bool {
		t.Errorf("%s: no pops before the answer", k)
		return true
	})
	e.rec.waitRecorded(t, calls)
	e.stop()
	for i := range calls {
		id := fmt.Sprintf("call-%03d", i)
		ring := []string{agent(i), agent(i + 1), agent(i + 2)}
		winner := ring[i%3]
		for _, a := range ring {
			got := fmt.Sprint(e.del.types(a, id))
			var legal []string
			switch {
			case a == winner && i%2 == 0:
				legal = []string{"[pop answered ended]"}
			case a == winner:
				legal = []string{"[pop answered ended]", "[]"} // [] when it ended before its card
			case i%2 == 0:
				legal = []string{"[pop withdrawn]"}
			default:
				legal = []string{"[pop withdrawn]", "[]"}
			}
			if !slices.Contains(legal, got) {
				t.Errorf("%s got %s for %s, want one of %v", a, got, id, legal)
			}
		}
		if n := e.b.buildCount(id); n != 1 {
			t.Errorf("%s built %d times", id, n)
		}
	}
	if got := len(e.rec.recorded()); got != calls {
		t.Errorf("recorded %d calls, want %d", got, calls)
	}
	// Nobody outside a call's ring heard of it, and seqs only grow.
	for i := range agents {
		a := agent(i)
		var last uint64
		for _, m := range e.del.of(a) {
			var n int
			fmt.Sscanf(m.CallID, "call-%d", &n)
			if a != agent(n) && a != agent(n+1) && a != agent(n+2) {
				t.Errorf("%s got %s about %s", a, m.Type, m.CallID)
			}
			if m.Seq <= last {
				t.Errorf("%s: seq %d after %d", a, m.Seq, last)
			}
			last = m.Seq
		}
	}
	if live := e.d.state.Calls(); live != 0 {
		t.Errorf("%d calls still followed after all ended", live)
	}
	if v := metricValue(t, e.reg, "screenpop_pop_active_calls", nil); v != 0 {
		t.Errorf("active calls gauge %v", v)
	}
}

// TestRefreshSendsNewCardToHolders: the aggregator says a number's data
// changed; the holders of its live call get the rebuilt card, other calls
// and ended calls are left alone, and a refresh asked while the first card
// was built is not lost.
func TestRefreshSendsNewCardToHolders(t *testing.T) {
	e := startDispatcher(t, nil)
	var version atomic.Int64
	e.b.card = func(ev screenpop.CallEvent) screenpop.Card {
		c := testCard(ev)
		c.Sections[0].Fields[0].Value = float64(version.Load())
		return c
	}
	now := time.Now()
	other := ringing("c2", now, "carol")
	other.Caller.Number = "+48601234567"
	e.d.HandleCall(ringing("c1", now, "alice", "bob"))
	e.d.HandleCall(other)
	e.del.waitTypes(t, "alice", "c1", TypePop)
	e.del.waitTypes(t, "bob", "c1", TypePop)
	e.del.waitTypes(t, "carol", "c2", TypePop)
	e.d.HandleCall(answered("c1", "bob", now))
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered)

	version.Store(2)
	e.d.Refresh("+4930123456", "")
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered, TypeCard)
	got := decode[CardData](t, e.del.of("bob")[2])
	if got.Card.CallID != "c1" || got.Card.Sections[0].Fields[0].Value != float64(2) || got.SelectedBy.ID != "" {
		t.Errorf("refreshed card: %+v", got)
	}
	// By customer: the customer of c2's card.
	e.d.Refresh("", "k-c2")
	e.del.waitTypes(t, "carol", "c2", TypePop, TypeCard)
	if n := e.b.buildCount("c1"); n != 2 {
		t.Errorf("c1 built %d times, want 2", n)
	}
	if got := e.del.types("alice", "c1"); fmt.Sprint(got) != fmt.Sprint([]string{TypePop, TypeWithdrawn}) {
		t.Errorf("alice (no longer holding) got %v", got)
	}

	// Asked while the first card of c3 is being built.
	release := e.b.gate("c3")
	started := make(chan string, 4)
	e.b.mu.Lock()
	e.b.started = started
	e.b.mu.Unlock()
	e.d.HandleCall(ringing("c3", now, "dave"))
	<-started
	e.d.Refresh("+4930123456", "")
	release()
	e.del.waitTypes(t, "dave", "c3", TypePop, TypeCard)
	<-started
	if v := metricValue(t, e.reg, "screenpop_pop_refreshed_cards_total", nil); v < 3 {
		t.Errorf("refreshed cards = %v", v)
	}
}
