package redisbus

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
)

// ambiguousBuilder gives every call two candidates; BuildFor completes the
// card with the one picked.
type ambiguousBuilder struct{}

var candidates = []screenpop.Customer{{ID: "k1", Name: "Jane Doe"}, {ID: "k2", Name: "John Doe"}}

func (ambiguousBuilder) Build(_ context.Context, ev screenpop.CallEvent) screenpop.Card {
	return screenpop.Card{CallID: ev.CallID, Caller: ev.Caller, Phone: ev.Caller.Number,
		Resolution: screenpop.ResolvedAmbiguous, Candidates: candidates}
}

func (ambiguousBuilder) BuildFor(_ context.Context, ev screenpop.CallEvent, customerID string) screenpop.Card {
	for _, k := range candidates {
		if k.ID == customerID {
			return screenpop.Card{CallID: ev.CallID, Caller: ev.Caller, Phone: ev.Caller.Number,
				Resolution: screenpop.ResolvedCustomer, Customer: &k}
		}
	}
	return screenpop.Card{CallID: ev.CallID, Resolution: screenpop.ResolvedUnknown}
}

// noteRecorder keeps the notes it is given.
type noteRecorder struct {
	mu    sync.Mutex
	notes []screenpop.Note
}

func (r *noteRecorder) Record(context.Context, screenpop.PastCall) error { return nil }

func (r *noteRecorder) AddNote(_ context.Context, _, _ string, n screenpop.Note) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notes = append(r.notes, n)
	return nil
}

func (r *noteRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.notes)
}

func send(t *testing.T, ws *websocket.Conn, req pop.Request) {
	t.Helper()
	if err := ws.WriteJSON(req); err != nil {
		t.Fatal(err)
	}
}

func expectError(t *testing.T, ws *websocket.Conn, call, code string) {
	t.Helper()
	m := expect(t, ws, pop.TypeError, call)
	var e pop.ErrorData
	if err := json.Unmarshal(m.Data, &e); err != nil {
		t.Fatal(err)
	}
	if e.Code != code {
		t.Fatalf("error %q (%s), want %q", e.Code, e.Message, code)
	}
}

// TestRequestsReachTheOwningDaemon: a call seen by daemon A only; agents
// connected to daemon B pick a candidate and write a note, and get the
// answers of A's dispatcher; an agent who never had the call is refused.
func TestRequestsReachTheOwningDaemon(t *testing.T) {
	client := sharedRedis(t)
	prefix := testPrefix(t, client)
	recA, recB := &noteRecorder{}, &noteRecorder{}
	a := startDaemonWith(t, "127.0.0.1:6379", prefix, ambiguousBuilder{}, recA)
	b := startDaemonWith(t, "127.0.0.1:6379", prefix, ambiguousBuilder{}, recB)
	for _, d := range []*daemon{a, b} {
		waitFor(t, "bus up and listening", func() bool { return d.bus.Ready() == nil && d.bus.listening.Load() })
	}
	alice, mallory := browser(t, b, "5001", ""), browser(t, b, "5666", "")
	expect(t, alice, pop.TypeSnapshot, "")
	expect(t, mallory, pop.TypeSnapshot, "")

	a.disp.HandleCall(ring("call-1", "5001"))
	var p pop.PopData
	if err := json.Unmarshal(expect(t, alice, pop.TypePop, "call-1").Data, &p); err != nil {
		t.Fatal(err)
	}
	if p.Card.Resolution != screenpop.ResolvedAmbiguous {
		t.Fatalf("card resolution %q, want ambiguous", p.Card.Resolution)
	}

	// Alice picks John Doe on daemon B; only A knows the call.
	send(t, alice, pop.Request{Type: pop.RequestSelect, CallID: "call-1", CustomerID: "k2"})
	var cd pop.CardData
	if err := json.Unmarshal(expect(t, alice, pop.TypeCard, "call-1").Data, &cd); err != nil {
		t.Fatal(err)
	}
	if cd.Card.Customer == nil || cd.Card.Customer.ID != "k2" || cd.SelectedBy.ID != "5001" || cd.SelectedBy.Name != "Agent 5001" {
		t.Fatalf("card after select: customer %+v, selected by %+v", cd.Card.Customer, cd.SelectedBy)
	}

	send(t, alice, pop.Request{Type: pop.RequestNote, CallID: "call-1", Text: "Wants a call-back on Friday.", Ref: "n1"})
	var ns pop.NoteSavedData
	if err := json.Unmarshal(expect(t, alice, pop.TypeNoteSaved, "call-1").Data, &ns); err != nil {
		t.Fatal(err)
	}
	if ns.Ref != "n1" || ns.Note.Agent != "5001" || ns.Note.Text != "Wants a call-back on Friday." {
		t.Fatalf("note_saved %+v", ns)
	}
	if recA.count() != 1 || recB.count() != 0 {
		t.Fatalf("notes stored: %d on the daemon with the call, %d on the other; want 1 and 0", recA.count(), recB.count())
	}

	// Mallory never had the call: A's dispatcher refuses both requests,
	// and the refusal reaches Mallory's browser on B.
	send(t, mallory, pop.Request{Type: pop.RequestSelect, CallID: "call-1", CustomerID: "k1"})
	expectError(t, mallory, "call-1", "forbidden")
	send(t, mallory, pop.Request{Type: pop.RequestNote, CallID: "call-1", Text: "not mine", Ref: "m1"})
	expectError(t, mallory, "call-1", "forbidden")
	if recA.count() != 1 {
		t.Fatalf("%d notes stored, want 1", recA.count())
	}

	// A call no daemon knows: unknown_call, once no daemon claimed it.
	send(t, alice, pop.Request{Type: pop.RequestSelect, CallID: "no-such-call", CustomerID: "k1"})
	expectError(t, alice, "no-such-call", "unknown_call")

	// Nothing else reached Alice: the next message is the next event.
	a.disp.HandleCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "call-1", Outcome: screenpop.OutcomeAbandoned, At: time.Now()})
	expect(t, alice, pop.TypeEnded, "call-1")

	if n := counter(b.bus.metrics.forwarded.WithLabelValues(forwardClaimed)); n != 4 {
		t.Fatalf("forwarded and claimed = %v, want 4", n)
	}
	if n := counter(b.bus.metrics.forwarded.WithLabelValues(forwardUnclaimed)); n != 1 {
		t.Fatalf("forwarded and unclaimed = %v, want 1", n)
	}
	if n := counter(a.bus.metrics.served); n != 4 {
		t.Fatalf("served by the daemon with the call = %v, want 4", n)
	}
}

// TestForwardedRequestAnsweredOnce: two daemons watching the same PBX both
// know the call; a request from a third is handled by one of them only
// (one note stored, one card).
func TestForwardedRequestAnsweredOnce(t *testing.T) {
	client := sharedRedis(t)
	prefix := testPrefix(t, client)
	rec1, rec2 := &noteRecorder{}, &noteRecorder{}
	a1 := startDaemonWith(t, "127.0.0.1:6379", prefix, ambiguousBuilder{}, rec1)
	a2 := startDaemonWith(t, "127.0.0.1:6379", prefix, ambiguousBuilder{}, rec2)
	c := startDaemonWith(t, "127.0.0.1:6379", prefix, ambiguousBuilder{}, &noteRecorder{})
	for _, d := range []*daemon{a1, a2, c} {
		waitFor(t, "bus up and listening", func() bool { return d.bus.Ready() == nil && d.bus.listening.Load() })
	}
	ws := browser(t, c, "6001", "")
	expect(t, ws, pop.TypeSnapshot, "")
	both := func(ev screenpop.CallEvent) {
		a1.disp.HandleCall(ev)
		a2.disp.HandleCall(ev)
	}
	both(ring("call-1", "6001"))
	expect(t, ws, pop.TypePop, "call-1")

	for i := range 3 {
		send(t, ws, pop.Request{Type: pop.RequestNote, CallID: "call-1", Text: "note", Ref: "n"})
		expect(t, ws, pop.TypeNoteSaved, "call-1")
		if n := rec1.count() + rec2.count(); n != i+1 {
			t.Fatalf("after %d notes, %d stored", i+1, n)
		}
	}
	send(t, ws, pop.Request{Type: pop.RequestSelect, CallID: "call-1", CustomerID: "k1"})
	expect(t, ws, pop.TypeCard, "call-1")
	// A second card, had both daemons answered, would come before this.
	a1.disp.HandleCall(ring("marker", "6001"))
	expect(t, ws, pop.TypePop, "marker")
	if n := counter(a1.bus.metrics.served) + counter(a2.bus.metrics.served); n != 4 {
		t.Fatalf("served %v requests, want 4", n)
	}
}
