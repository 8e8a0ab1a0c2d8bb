package pop

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
)

var testDispositions = []history.Disposition{{Code: "order", Label: "Order placed"}, {Code: "info", Label: "Information only"}}

// startHistoryHub is a hub and dispatcher whose Recorder is a history
// store (in memory) with wrap-up dispositions, a disposition required.
func startHistoryHub(t *testing.T) (*hubEnv, *history.Memory) {
	t.Helper()
	store, err := history.NewMemory(history.Config{Dispositions: testDispositions, WrapUpRequired: true, WrapUpTime: time.Minute}, history.Options{Daemon: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e := startHubWith(t, nil, func(c *DispatcherConfig) {
		c.Recorder = store
		c.AgentNames = func(id string) string { return map[string]string{"bob": "Bob Builder"}[id] }
		c.WrapUp = WrapUpSettings{Dispositions: testDispositions, Required: true, Time: time.Minute}
	})
	return e, store
}

// waitCall polls the store until the call is recorded.
func waitCall(t *testing.T, store history.Store, id string) history.Call {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		c, err := store.Call(context.Background(), id)
		if err == nil {
			return c
		}
		if !errors.Is(err, history.ErrCallNotFound) || time.Now().After(deadline) {
			t.Fatalf("call %s never recorded: %v", id, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func helloOf(t *testing.T, env envelope) HelloData {
	t.Helper()
	if env.Type != TypeHello || env.Seq != 0 {
		t.Fatalf("got %s (seq %d), want an unnumbered hello", env.Type, env.Seq)
	}
	var h HelloData
	if err := json.Unmarshal(env.Data, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// Everything of a call goes to the history once it ends: the number, the
// customer, the line, every agent rung, who answered, the transfer, the
// outcome and the times of ring, pop, answer and end.
func TestDispatcherRecordsTheWholeCall(t *testing.T) {
	e, store := startHistoryHub(t)
	bob := e.dial(t, "bob", "")
	helloOf(t, read(t, bob))
	readType(t, bob, TypeSnapshot)
	t0 := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	ev := ringing("r1", t0, "alice", "bob")
	ev.DID = "100"
	e.d.HandleCall(ev)
	readType(t, bob, TypePop)
	e.d.HandleCall(answered("r1", "bob", t0.Add(2*time.Second)))
	readType(t, bob, TypeAnswered)
	e.d.HandleCall(transferred("r1", "carol", t0.Add(10*time.Second)))
	readType(t, bob, TypeWithdrawn)
	e.d.HandleCall(ended("r1", "carol", screenpop.OutcomeAnswered, t0.Add(40*time.Second)))

	c := waitCall(t, store, "r1")
	if c.Phone != "+4930123456" || c.CustomerID != "k-r1" || c.DID != "100" || !slices.Equal(c.Rung, []string{"alice", "bob"}) ||
		c.AnsweredBy != "bob" || c.Agent != "carol" || c.Outcome != screenpop.OutcomeAnswered || c.Source != "test" ||
		!slices.Equal(c.Daemons, []string{"test"}) {
		t.Errorf("recorded %+v", c)
	}
	if len(c.Transfers) != 1 || c.Transfers[0].From != "bob" || c.Transfers[0].To != "carol" || !c.Transfers[0].At.Equal(t0.Add(10*time.Second)) {
		t.Errorf("transfers %+v", c.Transfers)
	}
	if !c.RingAt.Equal(t0) || !c.AnswerAt.Equal(t0.Add(2*time.Second)) || !c.EndAt.Equal(t0.Add(40*time.Second)) || c.PopAt.IsZero() {
		t.Errorf("times ring %s pop %s answer %s end %s", c.RingAt, c.PopAt, c.AnswerAt, c.EndAt)
	}
}

// A withheld caller's call has notes and a wrap-up too, kept by call; a
// note is confirmed once stored, with its ID, and its author may change it
// (the original is kept); a colleague may not.
func TestWithheldCallerNotesEditsAndWrapUp(t *testing.T) {
	e, store := startHistoryHub(t)
	alice, bob := e.dial(t, "alice", ""), e.dial(t, "bob", "")
	for _, c := range []*websocket.Conn{alice, bob} {
		h := helloOf(t, read(t, c))
		if h.WrapUp == nil || len(h.WrapUp.Dispositions) != 2 || !h.WrapUp.Required || h.WrapUp.Time != time.Minute || h.State == nil || !h.State.Ready {
			t.Fatalf("hello %+v", h)
		}
		readType(t, c, TypeSnapshot)
	}
	ev := ringing("w1", time.Now(), "alice", "bob")
	ev.Caller = screenpop.Caller{Withheld: true}
	e.d.HandleCall(ev)
	readType(t, alice, TypePop)
	readType(t, bob, TypePop)
	e.d.HandleCall(answered("w1", "alice", time.Now()))
	readType(t, alice, TypeAnswered)
	readType(t, bob, TypeWithdrawn)

	alice.WriteJSON(Request{Type: RequestNote, CallID: "w1", Text: "Asked about the delivery", Ref: "n1"})
	var saved NoteSavedData
	json.Unmarshal(readType(t, alice, TypeNoteSaved).Data, &saved)
	if !history.ValidID(saved.Note.ID) || saved.Ref != "n1" {
		t.Fatalf("note_saved %+v", saved)
	}
	notes, err := store.Notes(context.Background(), "w1")
	if err != nil || len(notes) != 1 || notes[0].Text != "Asked about the delivery" {
		t.Fatalf("stored notes %+v, %v", notes, err)
	}

	alice.WriteJSON(Request{Type: RequestEditNote, CallID: "w1", NoteID: saved.Note.ID, Text: "Asked about the delivery on Friday", Ref: "e1"})
	var edited NoteSavedData
	json.Unmarshal(readType(t, alice, TypeNoteSaved).Data, &edited)
	if edited.Note.ID != saved.Note.ID || edited.Note.EditedBy != "alice" || edited.Note.EditedAt.IsZero() || edited.Ref != "e1" {
		t.Errorf("edit's note_saved %+v", edited)
	}
	versions, err := store.NoteVersions(context.Background(), saved.Note.ID)
	if err != nil || len(versions) != 2 || versions[0].Text != "Asked about the delivery" || versions[1].Text != "Asked about the delivery on Friday" {
		t.Errorf("versions %+v, %v", versions, err)
	}
	bob.WriteJSON(Request{Type: RequestEditNote, CallID: "w1", NoteID: saved.Note.ID, Text: "mine now", Ref: "b1"})
	var refused ErrorData
	json.Unmarshal(readType(t, bob, TypeError).Data, &refused)
	if refused.Code != "forbidden" || refused.Request != RequestEditNote {
		t.Errorf("a colleague's edit: %+v", refused)
	}

	e.d.HandleCall(ended("w1", "alice", screenpop.OutcomeAnswered, time.Now()))
	readType(t, alice, TypeEnded)
	if c := waitCall(t, store, "w1"); !c.Withheld || c.Phone != "" || c.Agent != "alice" {
		t.Errorf("withheld call recorded as %+v", c)
	}
	// In wrap-up now: a page that connects is told so.
	again := e.dial(t, "alice", "")
	if h := helloOf(t, read(t, again)); h.State == nil || h.State.Ready || h.State.CallID != "w1" || h.State.Until.IsZero() {
		t.Errorf("hello in wrap-up: %+v", h.State)
	}
	readType(t, again, TypeSnapshot)

	alice.WriteJSON(Request{Type: RequestWrapUp, CallID: "w1", Code: "nonsense", Ref: "x"})
	json.Unmarshal(readType(t, alice, TypeError).Data, &refused)
	if refused.Code != "bad_request" || refused.Request != RequestWrapUp {
		t.Errorf("an unknown code: %+v", refused)
	}
	alice.WriteJSON(Request{Type: RequestWrapUp, CallID: "w1", Code: "order", Ref: "x"})
	for _, c := range []*websocket.Conn{alice, again} {
		var w WrappedUpData
		env := readType(t, c, TypeWrappedUp)
		json.Unmarshal(env.Data, &w)
		if env.CallID != "w1" || w.Code != "order" || w.Label != "Order placed" || w.Ref != "x" {
			t.Errorf("wrapped_up %s %+v", env.CallID, w)
		}
	}
	if st, _ := store.AgentState(context.Background(), "alice", time.Now()); !st.Ready {
		t.Errorf("after the wrap-up: %+v", st)
	}
	bob.WriteJSON(Request{Type: RequestWrapUp, CallID: "w1", Code: "info"})
	json.Unmarshal(readType(t, bob, TypeError).Data, &refused)
	if refused.Code != "forbidden" {
		t.Errorf("a colleague whose phone only rang wrapped the call up: %+v", refused)
	}
}

// Without a history store that keeps wrap-ups, dispositions are refused at
// construction, and no hello is sent; with one but no dispositions, the
// hello only says that notes are kept by call.
func TestWrapUpNeedsAHistory(t *testing.T) {
	_, err := NewDispatcher(DispatcherConfig{Builder: newFakeBuilder(), Recorder: newFakeRecorder(), Deliverer: newFakeDeliverer(),
		WrapUp: WrapUpSettings{Dispositions: testDispositions}})
	if err == nil {
		t.Fatal("dispositions with a plain recorder were accepted")
	}
	e := startHub(t, nil)
	readType(t, e.dial(t, "alice", ""), TypeSnapshot)

	// A history without dispositions: the hello says notes are kept by
	// call, and no more.
	store, err := history.NewMemory(history.Config{}, history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e = startHubWith(t, nil, func(c *DispatcherConfig) { c.Recorder = store })
	if h := helloOf(t, read(t, e.dial(t, "alice", ""))); !h.NotesByCall || h.WrapUp != nil || h.State != nil {
		t.Errorf("hello without dispositions: %+v", h)
	}
}
