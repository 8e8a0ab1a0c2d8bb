// Package historytest is the conformance suite every history.Store must
// pass: the memory store and the PostgreSQL store run the same tests, so
// that what the demo shows is what production does.
//
//	func TestConformance(t *testing.T) {
//		historytest.Run(t, func(t *testing.T, cfg history.Config, opts history.Options) history.Store {
//			s, err := mystore.New(cfg, opts) // empty, running, closed by t.Cleanup
//			...
//		})
//	}
package historytest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
)

// Factory returns an empty store of cfg (whose Type it sets) and opts,
// running, and closed when the test ends. The suite sets opts.Now to a
// fake clock and opts.Daemon.
type Factory func(t *testing.T, cfg history.Config, opts history.Options) history.Store

// Clock is a settable clock for Options.Now.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Epoch is the suite's "now": a fixed time with a non-zero microsecond part.
var Epoch = time.Date(2026, 3, 2, 10, 0, 0, 123456000, time.UTC)

// Daemon is the name the suite gives its stores.
const Daemon = "daemon-a"

// Dispositions are the wrap-up codes the suite configures.
var Dispositions = []history.Disposition{
	{Code: "order", Label: "Order placed"},
	{Code: "complaint", Label: "Complaint"},
	{Code: "callback", Label: "Call back promised"},
}

// env is one test's store and clock.
type env struct {
	t     *testing.T
	s     history.Store
	clock *Clock
	ctx   context.Context
}

func newEnv(t *testing.T, newStore Factory, cfg history.Config) *env {
	t.Helper()
	clock := NewClock(Epoch)
	if cfg.Dispositions == nil {
		cfg.Dispositions = Dispositions
	}
	s := newStore(t, cfg, history.Options{Daemon: Daemon, Now: clock.Now})
	return &env{t: t, s: s, clock: clock, ctx: t.Context()}
}

// flush waits until the store has written everything: the PostgreSQL
// store queues its writes.
func (e *env) flush() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if err := e.s.Flush(ctx); err != nil {
		e.t.Fatalf("Flush: %v (status %+v)", err, e.s.Status())
	}
}

func (e *env) record(c history.Call) {
	e.t.Helper()
	if err := e.s.RecordCall(e.ctx, c); err != nil {
		e.t.Fatalf("RecordCall(%s): %v", c.ID, err)
	}
}

func (e *env) lookup(q history.Query) history.Result {
	e.t.Helper()
	e.flush()
	r, err := e.s.Lookup(e.ctx, q)
	if err != nil {
		e.t.Fatalf("Lookup(%+v): %v", q, err)
	}
	return r
}

func (e *env) saveNote(n history.NewNote) screenpop.Note {
	e.t.Helper()
	saved, err := e.s.SaveNote(e.ctx, n)
	if err != nil {
		e.t.Fatalf("SaveNote: %v", err)
	}
	return saved
}

func (e *env) access(q history.AccessQuery) []history.AccessEntry {
	e.t.Helper()
	e.flush()
	got, err := e.s.AccessLog(e.ctx, q)
	if err != nil {
		e.t.Fatalf("AccessLog(%+v): %v", q, err)
	}
	return got
}

func ids(calls []screenpop.PastCall) []string {
	out := []string{}
	for _, c := range calls {
		out = append(out, c.CallID)
	}
	return out
}

func accessAgents(entries []history.AccessEntry) []string {
	out := []string{}
	for _, e := range entries {
		out = append(out, e.Agent+"@"+e.CustomerID)
	}
	return out
}

func wantIDs(t *testing.T, what string, got []screenpop.PastCall, want ...string) {
	t.Helper()
	if want == nil {
		want = []string{}
	}
	if g := ids(got); !slices.Equal(g, want) {
		t.Fatalf("%s: calls %v, want %v", what, g, want)
	}
}

func deepEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

// at is the suite's epoch moved by d.
func at(d time.Duration) time.Time { return Epoch.Add(d) }

// Run runs the suite on the stores newStore makes.
func Run(t *testing.T, newStore Factory) {
	tests := []struct {
		name string
		run  func(*testing.T, Factory)
	}{
		{"RecordAndRecent", testRecordAndRecent},
		{"RecordTwiceStoresOnce", testRecordTwice},
		{"MergeFillsBlanks", testMerge},
		{"CallRoundTrip", testCallRoundTrip},
		{"NotesBeforeTheCall", testNotesBeforeCall},
		{"WithheldCallerNotes", testWithheldNotes},
		{"EditKeepsTheOriginal", testEditNote},
		{"NoteValidation", testNoteValidation},
		{"LookupByNumberAndCustomer", testLookup},
		{"WrapUp", testWrapUp},
		{"AgentState", testAgentState},
		{"AccessLog", testAccessLog},
		{"Purge", testPurge},
		{"EraseCustomer", testEraseCustomer},
		{"ErasePhone", testErasePhone},
		{"Links", testLinks},
		{"EraseLinks", testEraseLinks},
		{"InvalidWrites", testInvalid},
		{"Concurrent", testConcurrent},
		{"StatusAndClose", testStatusAndClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore) })
	}
}

func testRecordAndRecent(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	const phone = "+4930901820"
	for i, id := range []string{"pbx/1", "pbx/2", "pbx/3"} {
		err := e.s.Record(e.ctx, screenpop.PastCall{
			CallID: id, Phone: phone, At: at(time.Duration(i) * time.Hour), Agent: "1001", AgentName: "Alice",
			Outcome: screenpop.OutcomeAnswered, Duration: 90 * time.Second, CustomerID: "C-1", DID: "+4930111",
		})
		if err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	e.record(history.Call{ID: "pbx/other", Phone: "+4930999999", RingAt: at(4 * time.Hour)})
	e.flush()
	got, err := e.s.Recent(e.ctx, phone, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []screenpop.PastCall{
		{CallID: "pbx/3", Phone: phone, At: history.Time(at(2 * time.Hour)), Agent: "1001", AgentName: "Alice", Outcome: screenpop.OutcomeAnswered, Duration: 90 * time.Second, CustomerID: "C-1", DID: "+4930111"},
		{CallID: "pbx/2", Phone: phone, At: history.Time(at(time.Hour)), Agent: "1001", AgentName: "Alice", Outcome: screenpop.OutcomeAnswered, Duration: 90 * time.Second, CustomerID: "C-1", DID: "+4930111"},
	}
	deepEqual(t, "Recent(phone, 2)", got, want)
	for _, q := range []struct {
		phone string
		limit int
	}{{phone, 0}, {"", 5}, {"+4930000000", 5}} {
		got, err := e.s.Recent(e.ctx, q.phone, q.limit)
		if err != nil || len(got) != 0 {
			t.Fatalf("Recent(%q, %d) = %v, %v; want nothing", q.phone, q.limit, got, err)
		}
	}
}

func testRecordTwice(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	p := screenpop.PastCall{CallID: "pbx/1", Phone: "+4930901820", At: at(0), Agent: "1001", Outcome: screenpop.OutcomeAnswered, Duration: time.Minute,
		Notes: []screenpop.Note{{Agent: "1001", At: at(time.Second), Text: "came with the call"}}}
	for range 3 {
		if err := e.s.Record(e.ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	r := e.lookup(history.Query{Phone: p.Phone, Limit: 10})
	wantIDs(t, "after three records", r.Calls, "pbx/1")
	if r.Last30Days != 1 || len(r.Calls[0].Notes) != 1 || r.Calls[0].Notes[0].Text != "came with the call" {
		t.Fatalf("got %+v; want one call with its one note, counted once", r)
	}
}

func testMerge(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	first := history.Call{ID: "pbx-a/7", Phone: "+4930901820", Rung: []string{"1002", "1001"}, Outcome: screenpop.OutcomeNoAnswer,
		RingAt: at(0), EndAt: at(20 * time.Second), Source: "pbx-a"}
	second := history.Call{ID: "pbx-a/7", Phone: "+4930901820", CustomerID: "C-7", DID: "+4930111", Rung: []string{"1003", "1001"},
		AnsweredBy: "1003", Agent: "1003", AgentName: "Carol", Outcome: screenpop.OutcomeAnswered,
		RingAt: at(time.Second), PopAt: at(2 * time.Second), AnswerAt: at(5 * time.Second), EndAt: at(time.Minute),
		Transfers: []history.Transfer{{From: "1003", To: "1004", At: at(30 * time.Second), Attended: true}}}
	e.record(first)
	e.flush()
	e.record(second)
	e.record(first) // a third record changes nothing any more
	e.flush()
	got, err := e.s.Call(e.ctx, "pbx-a/7")
	if err != nil {
		t.Fatal(err)
	}
	want := history.Call{ID: "pbx-a/7", Phone: "+4930901820", CustomerID: "C-7", DID: "+4930111", Rung: []string{"1001", "1002", "1003"},
		AnsweredBy: "1003", Agent: "1003", AgentName: "Carol", Outcome: screenpop.OutcomeAnswered,
		RingAt: history.Time(at(0)), PopAt: history.Time(at(2 * time.Second)), AnswerAt: history.Time(at(5 * time.Second)), EndAt: history.Time(at(time.Minute)),
		Transfers: []history.Transfer{{From: "1003", To: "1004", At: history.Time(at(30 * time.Second)), Attended: true}},
		Source:    "pbx-a", Daemons: []string{Daemon}}
	deepEqual(t, "merged call", got, want)
	r := e.lookup(history.Query{CustomerID: "C-7", Limit: 5})
	wantIDs(t, "by the customer the second record added", r.Calls, "pbx-a/7")
	if r.Calls[0].Duration != time.Minute {
		t.Fatalf("duration %s, want 1m (earliest ring to latest end)", r.Calls[0].Duration)
	}
}

func testCallRoundTrip(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	// Nanoseconds and a zone: stored in UTC to the microsecond.
	zone := time.FixedZone("CET", 3600)
	c := history.Call{ID: "pbx/rt", Phone: "+4930901820", CustomerID: "C-1", DID: "+4930111", Rung: []string{"1001"},
		AnsweredBy: "1001", Agent: "1001", AgentName: "Alice", Outcome: screenpop.OutcomeAnswered,
		RingAt: time.Date(2026, 3, 2, 11, 0, 0, 123456789, zone), EndAt: time.Date(2026, 3, 2, 11, 5, 0, 999, zone), Source: "pbx"}
	e.record(c)
	e.flush()
	got, err := e.s.Call(e.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.RingAt != history.Time(c.RingAt) || got.RingAt.Location() != time.UTC || got.EndAt != history.Time(c.EndAt) || !got.PopAt.IsZero() {
		t.Fatalf("times %v %v %v; want %v %v and no pop time", got.RingAt, got.EndAt, got.PopAt, history.Time(c.RingAt), history.Time(c.EndAt))
	}
	if _, err := e.s.Call(e.ctx, "pbx/none"); !errors.Is(err, history.ErrCallNotFound) {
		t.Fatalf("Call(unknown) = %v, want ErrCallNotFound", err)
	}
	// A withheld call keeps no number even if one was given.
	e.record(history.Call{ID: "pbx/withheld", Phone: "+4930901820", Withheld: true, RingAt: at(0)})
	e.flush()
	if got, err := e.s.Call(e.ctx, "pbx/withheld"); err != nil || got.Phone != "" || !got.Withheld {
		t.Fatalf("withheld call: %+v, %v", got, err)
	}
}

func testNotesBeforeCall(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	const phone = "+4930901820"
	if err := e.s.AddNote(e.ctx, phone, "pbx/1", screenpop.Note{Agent: "1001", At: at(10 * time.Second), Text: "wants a callback"}); err != nil {
		t.Fatal(err)
	}
	notes, err := e.s.Notes(e.ctx, "pbx/1")
	if err != nil || len(notes) != 1 || notes[0].Text != "wants a callback" || notes[0].ID == "" {
		t.Fatalf("Notes before the call is recorded: %+v, %v", notes, err)
	}
	if r := e.lookup(history.Query{Phone: phone, Limit: 5}); len(r.Calls) != 0 {
		t.Fatalf("a call with only a note shows in the history: %v", ids(r.Calls))
	}
	if err := e.s.Record(e.ctx, screenpop.PastCall{CallID: "pbx/1", Phone: phone, At: at(0), Agent: "1001", Outcome: screenpop.OutcomeAnswered}); err != nil {
		t.Fatal(err)
	}
	e.saveNote(history.NewNote{CallID: "pbx/1", Phone: phone, Agent: "1002", At: at(time.Minute), Text: "called back"})
	r := e.lookup(history.Query{Phone: phone, Limit: 5})
	wantIDs(t, "after Record", r.Calls, "pbx/1")
	got := r.Calls[0].Notes
	if len(got) != 2 || got[0].Text != "wants a callback" || got[0].Agent != "1001" || got[0].At != history.Time(at(10*time.Second)) || got[1].Text != "called back" {
		t.Fatalf("notes %+v; want the early note then the later one", got)
	}
}

func testWithheldNotes(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	if err := e.s.AddNote(e.ctx, "", "pbx/anon", screenpop.Note{Agent: "1001", At: at(time.Second), Text: "would not give a name"}); err != nil {
		t.Fatalf("a withheld caller's note: %v", err)
	}
	e.record(history.Call{ID: "pbx/anon", Withheld: true, CustomerID: "C-9", Agent: "1001", Outcome: screenpop.OutcomeAnswered, RingAt: at(0), EndAt: at(time.Minute)})
	e.flush()
	notes, err := e.s.Notes(e.ctx, "pbx/anon")
	if err != nil || len(notes) != 1 || notes[0].Text != "would not give a name" {
		t.Fatalf("Notes(withheld call) = %+v, %v", notes, err)
	}
	// The agent picked the customer: their history shows the call.
	r := e.lookup(history.Query{CustomerID: "C-9", Limit: 5})
	wantIDs(t, "by the picked customer", r.Calls, "pbx/anon")
	if r.Calls[0].Phone != "" || len(r.Calls[0].Notes) != 1 {
		t.Fatalf("withheld call in the history: %+v", r.Calls[0])
	}
	if calls, err := e.s.Recent(e.ctx, "", 5); err != nil || len(calls) != 0 {
		t.Fatalf("Recent(\"\") = %v, %v; want nothing", calls, err)
	}
}

func testEditNote(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	e.record(history.Call{ID: "pbx/1", Phone: "+4930901820", RingAt: at(0)})
	saved := e.saveNote(history.NewNote{CallID: "pbx/1", Phone: "+4930901820", Agent: "1001", AgentName: "Alice", Text: "first"})
	if !history.ValidID(saved.ID) || saved.At != history.Time(Epoch) || saved.Text != "first" || saved.AgentName != "Alice" {
		t.Fatalf("SaveNote returned %+v; want an ID and the clock's time", saved)
	}
	e.clock.Set(at(time.Minute))
	if err := e.s.EditNote(e.ctx, history.NoteEdit{NoteID: saved.ID, Agent: "1001", Text: "second"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(at(2 * time.Minute))
	if err := e.s.EditNote(e.ctx, history.NoteEdit{NoteID: saved.ID, Agent: "1009", AgentName: "Supervisor", Text: "third"}); err != nil {
		t.Fatal(err)
	}
	e.flush()
	notes, err := e.s.Notes(e.ctx, "pbx/1")
	if err != nil {
		t.Fatal(err)
	}
	want := []screenpop.Note{{ID: saved.ID, Agent: "1001", AgentName: "Alice", At: history.Time(Epoch), Text: "third", EditedAt: history.Time(at(2 * time.Minute)), EditedBy: "1009"}}
	deepEqual(t, "edited note", notes, want)
	versions, err := e.s.NoteVersions(e.ctx, saved.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantVersions := []history.NoteVersion{
		{Agent: "1001", AgentName: "Alice", At: history.Time(Epoch), Text: "first"},
		{Agent: "1001", At: history.Time(at(time.Minute)), Text: "second"},
		{Agent: "1009", AgentName: "Supervisor", At: history.Time(at(2 * time.Minute)), Text: "third"},
	}
	deepEqual(t, "versions", versions, wantVersions)
	for _, id := range []string{history.NewID(), "not-an-id"} {
		if err := e.s.EditNote(e.ctx, history.NoteEdit{NoteID: id, Agent: "1001", Text: "x"}); !errors.Is(err, history.ErrNoteNotFound) {
			t.Fatalf("EditNote(%q) = %v, want ErrNoteNotFound", id, err)
		}
		if _, err := e.s.NoteVersions(e.ctx, id); !errors.Is(err, history.ErrNoteNotFound) {
			t.Fatalf("NoteVersions(%q) = %v, want ErrNoteNotFound", id, err)
		}
	}
}

func testNoteValidation(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	for name, n := range map[string]history.NewNote{
		"empty text":   {CallID: "pbx/1", Agent: "1001", Text: "  \n"},
		"too long":     {CallID: "pbx/1", Agent: "1001", Text: strings.Repeat("é", history.MaxNoteLength+1)},
		"no call id":   {Agent: "1001", Text: "x"},
		"no agent":     {CallID: "pbx/1", Text: "x"},
		"bad time":     {CallID: "pbx/1", Agent: "1001", Text: "x", At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"huge call id": {CallID: strings.Repeat("x", 1000), Agent: "1001", Text: "x"},
	} {
		if _, err := e.s.SaveNote(e.ctx, n); !errors.Is(err, history.ErrInvalid) {
			t.Errorf("SaveNote(%s) = %v, want ErrInvalid", name, err)
		}
	}
	// Text that PostgreSQL's text type refuses is cleaned, not refused.
	saved := e.saveNote(history.NewNote{CallID: "pbx/1", Agent: "1001", Text: "a\x00b\xffc " + strings.Repeat("é", history.MaxNoteLength-6)})
	notes, err := e.s.Notes(e.ctx, "pbx/1")
	if err != nil || len(notes) != 1 || notes[0].Text != saved.Text || !strings.HasPrefix(saved.Text, "ab\uFFFDc ") {
		t.Fatalf("cleaned note: saved %q, read %+v, %v", saved.Text[:8], notes, err)
	}
}

func testLookup(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	const p1, p2, p3 = "+4930000001", "+4930000002", "+4930000003"
	for _, c := range []history.Call{
		{ID: "pbx/old", Phone: p1, CustomerID: "C-1", RingAt: at(-40 * 24 * time.Hour)},
		{ID: "pbx/a", Phone: p1, CustomerID: "C-1", RingAt: at(-3 * time.Hour)},
		{ID: "pbx/b", Phone: p2, CustomerID: "C-1", RingAt: at(-2 * time.Hour)}, // the customer from another phone
		{ID: "pbx/c", Phone: p1, RingAt: at(-1 * time.Hour)},                    // the number, unresolved then
		{ID: "pbx/d", Phone: p3, CustomerID: "C-2", RingAt: at(-30 * time.Minute)},
		{ID: "pbx/e", Phone: p2, CustomerID: "C-1", RingAt: at(-2 * time.Hour)}, // same time as b
	} {
		e.record(c)
	}
	r := e.lookup(history.Query{Phone: p1, CustomerID: "C-1", Limit: 10})
	wantIDs(t, "by number and customer", r.Calls, "pbx/c", "pbx/e", "pbx/b", "pbx/a", "pbx/old")
	if r.Last30Days != 4 {
		t.Fatalf("Last30Days = %d, want 4 (the 40-day-old call is out)", r.Last30Days)
	}
	r = e.lookup(history.Query{Phone: p1, CustomerID: "C-1", Limit: 2})
	wantIDs(t, "limit 2", r.Calls, "pbx/c", "pbx/e")
	if r.Last30Days != 4 {
		t.Fatalf("Last30Days = %d with a limit, want 4", r.Last30Days)
	}
	wantIDs(t, "by number", e.lookup(history.Query{Phone: p1, Limit: 10}).Calls, "pbx/c", "pbx/a", "pbx/old")
	wantIDs(t, "by customer", e.lookup(history.Query{CustomerID: "C-1", Limit: 10}).Calls, "pbx/e", "pbx/b", "pbx/a", "pbx/old")
	if r := e.lookup(history.Query{Phone: p1, CustomerID: "C-1"}); len(r.Calls) != 0 || r.Last30Days != 4 {
		t.Fatalf("limit 0: %+v; want no calls, the count", r)
	}
	if r := e.lookup(history.Query{Limit: 10}); len(r.Calls) != 0 || r.Last30Days != 0 {
		t.Fatalf("empty query: %+v", r)
	}
}

func testWrapUp(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	if err := e.s.WrapUp(e.ctx, history.WrapUp{CallID: "pbx/1", Agent: "1001", Code: "nonsense"}); !errors.Is(err, history.ErrUnknownDisposition) {
		t.Fatalf("unknown code: %v", err)
	}
	// Chosen before the call is recorded (the call ends after the agent
	// picked), replaced by a later choice, not by an older one.
	for _, w := range []history.WrapUp{
		{CallID: "pbx/1", Agent: "1001", Code: "order", At: at(time.Minute)},
		{CallID: "pbx/1", Agent: "1001", Code: "complaint", At: at(2 * time.Minute)},
		{CallID: "pbx/1", Agent: "1001", Code: "callback", At: at(90 * time.Second)},
	} {
		if err := e.s.WrapUp(e.ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	e.record(history.Call{ID: "pbx/1", Phone: "+4930901820", Agent: "1001", Outcome: screenpop.OutcomeAnswered, RingAt: at(0), EndAt: at(time.Minute)})
	e.record(history.Call{ID: "pbx/2", Phone: "+4930901820", RingAt: at(-time.Hour)})
	r := e.lookup(history.Query{Phone: "+4930901820", Limit: 5})
	wantIDs(t, "calls", r.Calls, "pbx/1", "pbx/2")
	if c := r.Calls[0]; c.Disposition != "complaint" || c.DispositionLabel != "Complaint" {
		t.Fatalf("disposition %q %q, want the latest choice: complaint, Complaint", c.Disposition, c.DispositionLabel)
	}
	if c := r.Calls[1]; c.Disposition != "" || c.DispositionLabel != "" {
		t.Fatalf("a call without wrap-up shows %q", c.Disposition)
	}
}

func testAgentState(t *testing.T, f Factory) {
	ready := history.AgentState{Ready: true}
	t.Run("required", func(t *testing.T) {
		e := newEnv(t, f, history.Config{WrapUpRequired: true, WrapUpTime: time.Minute})
		st, err := e.s.AgentState(e.ctx, "1001", Epoch)
		if err != nil || st != ready {
			t.Fatalf("no calls yet: %+v, %v", st, err)
		}
		e.record(history.Call{ID: "pbx/1", Agent: "1001", Outcome: screenpop.OutcomeAnswered, RingAt: at(-5 * time.Minute), EndAt: at(-4 * time.Minute)})
		e.record(history.Call{ID: "pbx/2", Agent: "1001", Outcome: screenpop.OutcomeAnswered, RingAt: at(-2 * time.Minute), EndAt: at(-10 * time.Second)})
		e.record(history.Call{ID: "pbx/3", Agent: "1001", Outcome: screenpop.OutcomeNoAnswer, RingAt: at(-time.Second), EndAt: at(0)})
		e.flush()
		want := history.AgentState{CallID: "pbx/2", Until: history.Time(at(50 * time.Second))}
		for _, now := range []time.Time{Epoch, at(time.Hour)} { // overdue stays not ready
			if st, err := e.s.AgentState(e.ctx, "1001", now); err != nil || st != want {
				t.Fatalf("at %s: %+v, %v; want %+v", now, st, err, want)
			}
		}
		if err := e.s.WrapUp(e.ctx, history.WrapUp{CallID: "pbx/2", Agent: "1001", Code: "order"}); err != nil {
			t.Fatal(err)
		}
		e.flush()
		if st, err := e.s.AgentState(e.ctx, "1001", Epoch); err != nil || st != ready {
			t.Fatalf("after the wrap-up: %+v, %v", st, err)
		}
	})
	t.Run("time only", func(t *testing.T) {
		e := newEnv(t, f, history.Config{WrapUpTime: time.Minute})
		e.record(history.Call{ID: "pbx/1", Agent: "1001", Outcome: screenpop.OutcomeAnswered, RingAt: at(-time.Minute), EndAt: at(0)})
		e.flush()
		want := history.AgentState{CallID: "pbx/1", Until: history.Time(at(time.Minute))}
		if st, _ := e.s.AgentState(e.ctx, "1001", at(59*time.Second)); st != want {
			t.Fatalf("during the wrap-up time: %+v, want %+v", st, want)
		}
		if st, _ := e.s.AgentState(e.ctx, "1001", at(time.Minute)); st != ready {
			t.Fatalf("after the wrap-up time: %+v", st)
		}
	})
	t.Run("none", func(t *testing.T) {
		e := newEnv(t, f, history.Config{})
		e.record(history.Call{ID: "pbx/1", Agent: "1001", Outcome: screenpop.OutcomeAnswered, RingAt: at(-time.Minute), EndAt: at(0)})
		e.flush()
		if st, _ := e.s.AgentState(e.ctx, "1001", Epoch); st != ready {
			t.Fatalf("without wrap-up rules: %+v", st)
		}
	})
}

func testAccessLog(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	entries := []history.AccessEntry{
		{At: at(-3 * time.Hour), Agent: "1001", CustomerID: "C-1", Phone: "+4930000001", CallID: "pbx/1", Sections: []string{"accounting", "history"}},
		{At: at(-2 * time.Hour), Agent: "1002", CustomerID: "C-1", Phone: "+4930000001", CallID: "pbx/2", Sections: []string{"accounting"}, Daemon: "daemon-b"},
		{At: at(-1 * time.Hour), Agent: "1001", Phone: "+4930000002", CallID: "pbx/3"},
		{Agent: "1003", CustomerID: "C-2", CallID: "pbx/4"}, // now
	}
	for _, a := range entries {
		if err := e.s.LogAccess(e.ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	got := e.access(history.AccessQuery{CustomerID: "C-1", Since: at(-720 * time.Hour)})
	if len(got) != 2 {
		t.Fatalf("by customer: %v", accessAgents(got))
	}
	want := history.AccessEntry{ID: got[0].ID, At: history.Time(at(-2 * time.Hour)), Action: history.ActionCard, Agent: "1002", CustomerID: "C-1",
		PhoneHash: history.HashPhone("+4930000001"), CallID: "pbx/2", Sections: []string{"accounting"}, Daemon: "daemon-b"}
	deepEqual(t, "newest entry of C-1", got[0], want)
	if !history.ValidID(got[0].ID) || got[1].Agent != "1001" || got[1].Daemon != Daemon || !slices.Equal(got[1].Sections, []string{"accounting", "history"}) {
		t.Fatalf("older entry of C-1: %+v", got[1])
	}
	if got := e.access(history.AccessQuery{CustomerID: "C-1", Since: at(-150 * time.Minute)}); len(got) != 1 || got[0].Agent != "1002" {
		t.Fatalf("by customer since 2.5h ago: %v", accessAgents(got))
	}
	if got := e.access(history.AccessQuery{Agent: "1001"}); !slices.Equal(accessAgents(got), []string{"1001@", "1001@C-1"}) {
		t.Fatalf("by agent: %v", accessAgents(got))
	}
	if got := e.access(history.AccessQuery{Phone: "+4930000002"}); len(got) != 1 || got[0].CallID != "pbx/3" || got[0].Phone != "" {
		t.Fatalf("by phone: %+v", got)
	}
	if got := e.access(history.AccessQuery{}); !slices.Equal(accessAgents(got), []string{"1003@C-2", "1001@", "1002@C-1", "1001@C-1"}) {
		t.Fatalf("everything, newest first: %v", accessAgents(got))
	} else if got[0].At != history.Time(Epoch) || got[0].Sections != nil {
		t.Fatalf("entry without time or sections: %+v", got[0])
	}
	if got := e.access(history.AccessQuery{Limit: 1}); len(got) != 1 || got[0].Agent != "1003" {
		t.Fatalf("limit 1: %v", accessAgents(got))
	}
	if err := e.s.LogAccess(e.ctx, history.AccessEntry{CustomerID: "C-1"}); !errors.Is(err, history.ErrInvalid) {
		t.Fatalf("entry without agent: %v, want ErrInvalid", err)
	}
}

func testPurge(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{Retention: 48 * time.Hour, AccessRetention: 24 * time.Hour})
	old, recent := at(-72*time.Hour), at(-time.Hour)
	e.record(history.Call{ID: "pbx/old", Phone: "+4930000001", RingAt: old})
	e.record(history.Call{ID: "pbx/new", Phone: "+4930000001", RingAt: recent})
	e.saveNote(history.NewNote{CallID: "pbx/old", Agent: "1001", At: old, Text: "old note of an old call"})
	e.saveNote(history.NewNote{CallID: "pbx/old", Agent: "1001", At: recent, Text: "recent note of an old call"})
	e.saveNote(history.NewNote{CallID: "pbx/lost", Agent: "1001", At: old, Text: "old note of a call never recorded"})
	e.saveNote(history.NewNote{CallID: "pbx/new", Agent: "1001", At: recent, Text: "recent note"})
	for _, w := range []history.WrapUp{{CallID: "pbx/old", At: old}, {CallID: "pbx/new", At: recent}, {CallID: "pbx/lost2", At: old}} {
		w.Agent, w.Code = "1001", "order"
		if err := e.s.WrapUp(e.ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range []history.AccessEntry{{At: at(-25 * time.Hour), Agent: "1001"}, {At: at(-23 * time.Hour), Agent: "1002"}} {
		if err := e.s.LogAccess(e.ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	e.flush()
	got, err := e.s.Purge(e.ctx, Epoch)
	if err != nil {
		t.Fatal(err)
	}
	deepEqual(t, "purged", got, history.Purged{Calls: 1, Notes: 2, WrapUps: 2, Access: 1})
	r := e.lookup(history.Query{Phone: "+4930000001", Limit: 10})
	wantIDs(t, "after the purge", r.Calls, "pbx/new")
	if notes, _ := e.s.Notes(e.ctx, "pbx/old"); len(notes) != 1 || notes[0].Text != "recent note of an old call" {
		t.Fatalf("notes of the purged call: %+v; want the recent one only", notes)
	}
	if got := e.access(history.AccessQuery{}); len(got) != 1 || got[0].Agent != "1002" {
		t.Fatalf("access after the purge: %v", accessAgents(got))
	}
	if got, err := e.s.Purge(e.ctx, Epoch); err != nil || got != (history.Purged{}) {
		t.Fatalf("second purge: %+v, %v; want nothing", got, err)
	}
}

func testEraseCustomer(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	e.record(history.Call{ID: "pbx/1", Phone: "+4930000001", CustomerID: "C-1", RingAt: at(-2 * time.Hour)})
	e.record(history.Call{ID: "pbx/2", Phone: "+4930000002", CustomerID: "C-1", RingAt: at(-time.Hour)})
	e.record(history.Call{ID: "pbx/3", Phone: "+4930000001", CustomerID: "C-2", RingAt: at(-time.Hour)})
	e.saveNote(history.NewNote{CallID: "pbx/1", Phone: "+4930000001", Agent: "1001", Text: "about C-1"})
	e.saveNote(history.NewNote{CallID: "pbx/3", Phone: "+4930000001", Agent: "1001", Text: "about C-2"})
	if err := e.s.WrapUp(e.ctx, history.WrapUp{CallID: "pbx/2", Agent: "1001", Code: "order"}); err != nil {
		t.Fatal(err)
	}
	e.flush()
	gone, err := e.s.Erase(e.ctx, history.Subject{CustomerID: "C-1", By: "dpo"})
	if err != nil {
		t.Fatal(err)
	}
	deepEqual(t, "erased", gone, history.Erased{Calls: 2, Notes: 1})
	wantIDs(t, "C-1 after erasure", e.lookup(history.Query{CustomerID: "C-1", Limit: 10}).Calls)
	r := e.lookup(history.Query{Phone: "+4930000001", Limit: 10})
	wantIDs(t, "the number's other customer", r.Calls, "pbx/3")
	if len(r.Calls[0].Notes) != 1 {
		t.Fatalf("C-2's note went too: %+v", r.Calls[0])
	}
	for _, id := range []string{"pbx/1", "pbx/2"} {
		if _, err := e.s.Call(e.ctx, id); !errors.Is(err, history.ErrCallNotFound) {
			t.Fatalf("Call(%s) after erasure: %v", id, err)
		}
	}
	got := e.access(history.AccessQuery{CustomerID: "C-1"})
	if len(got) != 1 || got[0].Action != history.ActionErase || got[0].Agent != "dpo" || got[0].Sections != nil || got[0].CallID != "" {
		t.Fatalf("access log after erasure: %+v; want one erase line", got)
	}
	if _, err := e.s.Erase(e.ctx, history.Subject{By: "dpo"}); !errors.Is(err, history.ErrInvalid) {
		t.Fatalf("erase without subject: %v", err)
	}
	if _, err := e.s.Erase(e.ctx, history.Subject{CustomerID: "C-2"}); !errors.Is(err, history.ErrInvalid) {
		t.Fatalf("erase without who ordered it: %v", err)
	}
}

func testErasePhone(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	const phone = "+4930000001"
	e.record(history.Call{ID: "pbx/1", Phone: phone, RingAt: at(-time.Hour)})
	e.record(history.Call{ID: "pbx/2", Phone: "+4930000002", RingAt: at(-time.Hour)})
	e.saveNote(history.NewNote{CallID: "pbx/1", Phone: phone, Agent: "1001", Text: "recorded call"})
	e.saveNote(history.NewNote{CallID: "pbx/lost", Phone: phone, Agent: "1001", Text: "call never recorded"})
	e.saveNote(history.NewNote{CallID: "pbx/2", Phone: "+4930000002", Agent: "1001", Text: "someone else"})
	e.flush()
	gone, err := e.s.Erase(e.ctx, history.Subject{Phone: phone, By: "dpo"})
	if err != nil {
		t.Fatal(err)
	}
	deepEqual(t, "erased", gone, history.Erased{Calls: 1, Notes: 2})
	if notes, _ := e.s.Notes(e.ctx, "pbx/lost"); len(notes) != 0 {
		t.Fatalf("the note under the number survived: %+v", notes)
	}
	wantIDs(t, "someone else", e.lookup(history.Query{Phone: "+4930000002", Limit: 5}).Calls, "pbx/2")
	got := e.access(history.AccessQuery{Phone: phone})
	if len(got) != 1 || got[0].Action != history.ActionErase || got[0].PhoneHash != history.HashPhone(phone) {
		t.Fatalf("access log: %+v", got)
	}
}

// testLinks: a number an agent linked to a customer is found by its
// number at once (no flush: the card built right after must see it), a
// new link replaces the old, and each is in the access log as who linked
// which number's hash to whom.
func testLinks(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	const phone = "+4930000001"
	if _, err := e.s.LinkOf(e.ctx, phone); !errors.Is(err, history.ErrNotLinked) {
		t.Fatalf("LinkOf before any link: %v, want ErrNotLinked", err)
	}
	first := history.Link{Phone: phone, CustomerID: "C-1", Agent: "1001", AgentName: "Alice", CallID: "pbx/1", At: at(-time.Hour)}
	if err := e.s.Link(e.ctx, first); err != nil {
		t.Fatal(err)
	}
	got, err := e.s.LinkOf(e.ctx, phone)
	if err != nil {
		t.Fatalf("LinkOf right after Link: %v", err)
	}
	want := first
	want.At, want.Daemon = history.Time(first.At), Daemon
	deepEqual(t, "the link", got, want)

	e.clock.Set(at(time.Minute))
	if err := e.s.Link(e.ctx, history.Link{Phone: phone, CustomerID: "C-2", Agent: "1002"}); err != nil {
		t.Fatal(err)
	}
	if got, err := e.s.LinkOf(e.ctx, phone); err != nil || got.CustomerID != "C-2" || got.Agent != "1002" || got.AgentName != "" || got.CallID != "" || !got.At.Equal(history.Time(at(time.Minute))) {
		t.Fatalf("after linking again: %+v, %v; want C-2 by 1002 now", got, err)
	}
	if _, err := e.s.LinkOf(e.ctx, "+4930000002"); !errors.Is(err, history.ErrNotLinked) {
		t.Fatalf("another number: %v, want ErrNotLinked", err)
	}

	entries := e.access(history.AccessQuery{Phone: phone})
	if len(entries) != 2 {
		t.Fatalf("access log of the number: %+v; want two link entries", entries)
	}
	wantEntry := history.AccessEntry{ID: entries[1].ID, At: history.Time(at(-time.Hour)), Action: history.ActionLink, Agent: "1001",
		CustomerID: "C-1", PhoneHash: history.HashPhone(phone), CallID: "pbx/1", Daemon: Daemon}
	deepEqual(t, "the first link's access entry", entries[1], wantEntry)
	if entries[0].CustomerID != "C-2" || entries[0].Agent != "1002" || entries[0].Action != history.ActionLink {
		t.Fatalf("the second link's access entry: %+v", entries[0])
	}

	for name, l := range map[string]history.Link{
		"no customer":    {Phone: phone, Agent: "1001"},
		"no agent":       {Phone: phone, CustomerID: "C-1"},
		"no phone":       {CustomerID: "C-1", Agent: "1001"},
		"not E.164":      {Phone: "030000001", CustomerID: "C-1", Agent: "1001"},
		"long customer":  {Phone: phone, CustomerID: strings.Repeat("c", 300), Agent: "1001"},
		"time out range": {Phone: phone, CustomerID: "C-1", Agent: "1001", At: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if err := e.s.Link(e.ctx, l); !errors.Is(err, history.ErrInvalid) {
			t.Errorf("Link(%s) = %v, want ErrInvalid", name, err)
		}
	}
	if got, _ := e.s.LinkOf(e.ctx, phone); got.CustomerID != "C-2" {
		t.Fatalf("a refused link changed the number's: %+v", got)
	}
}

// testEraseLinks: erasing a customer takes the numbers linked to them,
// erasing a number takes its link; others stay.
func testEraseLinks(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	for _, l := range []history.Link{
		{Phone: "+4930000001", CustomerID: "C-1", Agent: "1001"},
		{Phone: "+4930000002", CustomerID: "C-1", Agent: "1001"},
		{Phone: "+4930000003", CustomerID: "C-2", Agent: "1001"},
		{Phone: "+4930000004", CustomerID: "C-3", Agent: "1001"},
	} {
		if err := e.s.Link(e.ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	gone, err := e.s.Erase(e.ctx, history.Subject{CustomerID: "C-1", By: "dpo"})
	if err != nil {
		t.Fatal(err)
	}
	deepEqual(t, "erased C-1", gone, history.Erased{Links: 2})
	gone, err = e.s.Erase(e.ctx, history.Subject{Phone: "+4930000003", By: "dpo"})
	if err != nil {
		t.Fatal(err)
	}
	deepEqual(t, "erased +4930000003", gone, history.Erased{Links: 1})
	for _, phone := range []string{"+4930000001", "+4930000002", "+4930000003"} {
		if l, err := e.s.LinkOf(e.ctx, phone); !errors.Is(err, history.ErrNotLinked) {
			t.Errorf("LinkOf(%s) after erasure: %+v, %v", phone, l, err)
		}
	}
	if l, err := e.s.LinkOf(e.ctx, "+4930000004"); err != nil || l.CustomerID != "C-3" {
		t.Fatalf("someone else's link: %+v, %v", l, err)
	}
}

func testInvalid(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	for name, c := range map[string]history.Call{
		"no id":        {Phone: "+4930000001", RingAt: at(0)},
		"no ring time": {ID: "pbx/1"},
		"bad time":     {ID: "pbx/1", RingAt: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)},
		"long agent":   {ID: "pbx/1", RingAt: at(0), Agent: strings.Repeat("a", 300)},
		"many rung":    {ID: "pbx/1", RingAt: at(0), Rung: strings.Split(strings.Repeat("a,", 101), ",")},
	} {
		if err := e.s.RecordCall(e.ctx, c); !errors.Is(err, history.ErrInvalid) {
			t.Errorf("RecordCall(%s) = %v, want ErrInvalid", name, err)
		}
	}
	if err := e.s.LogAccess(e.ctx, history.AccessEntry{Agent: "1001", Action: "peek"}); !errors.Is(err, history.ErrInvalid) {
		t.Errorf("unknown action: %v", err)
	}
	if err := e.s.WrapUp(e.ctx, history.WrapUp{Agent: "1001", Code: "order"}); !errors.Is(err, history.ErrInvalid) {
		t.Errorf("wrap-up without call: %v", err)
	}
}

func testConcurrent(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	const workers, calls = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*calls*3)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				id := fmt.Sprintf("pbx/%d-%d", w, i)
				phone := fmt.Sprintf("+49300000%02d", i%5)
				if _, err := e.s.SaveNote(e.ctx, history.NewNote{CallID: id, Phone: phone, Agent: "1001", Text: "note " + id}); err != nil {
					errs <- err
				}
				if err := e.s.RecordCall(e.ctx, history.Call{ID: id, Phone: phone, RingAt: at(time.Duration(w*calls+i) * time.Second)}); err != nil {
					errs <- err
				}
				if err := e.s.LogAccess(e.ctx, history.AccessEntry{Agent: "1001", CallID: id}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for i := range 5 {
		r := e.lookup(history.Query{Phone: fmt.Sprintf("+49300000%02d", i), Limit: 1000})
		for _, c := range r.Calls {
			if len(c.Notes) != 1 || c.Notes[0].Text != "note "+c.CallID {
				t.Fatalf("call %s has notes %+v", c.CallID, c.Notes)
			}
		}
		total += len(r.Calls)
	}
	if total != workers*calls {
		t.Fatalf("%d calls stored, want %d", total, workers*calls)
	}
	if got := e.access(history.AccessQuery{Agent: "1001", Limit: 10000}); len(got) != workers*calls {
		t.Fatalf("%d access entries, want %d", len(got), workers*calls)
	}
}

func testStatusAndClose(t *testing.T, f Factory) {
	e := newEnv(t, f, history.Config{})
	e.record(history.Call{ID: "pbx/1", RingAt: at(0)})
	e.flush()
	if err := e.s.Healthy(); err != nil {
		t.Fatalf("Healthy after a write: %v", err)
	}
	if st := e.s.Status(); !st.Up || !st.Migrated || st.Queued != 0 {
		t.Fatalf("Status: %+v", st)
	}
	if err := e.s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := e.s.RecordCall(e.ctx, history.Call{ID: "pbx/2", RingAt: at(0)}); !errors.Is(err, history.ErrClosed) {
		t.Fatalf("RecordCall after Close: %v, want ErrClosed", err)
	}
}
