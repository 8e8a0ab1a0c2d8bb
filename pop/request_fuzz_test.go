package pop

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/pop/popstate"
)

// fuzzAcks records the acknowledgements a Hub hands on.
type fuzzAcks struct {
	mu     sync.Mutex
	agents []string
}

func (a *fuzzAcks) Shown(agentID, _, _ string, _ time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.agents = append(a.agents, agentID)
}

func (a *fuzzAcks) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.agents
	a.agents = nil
	return out
}

// requestSeeds are browser messages: one of each request type about the
// call the agent holds, and what a page (or someone posing as one) might
// send instead. testdata/fuzz/FuzzBrowserRequest holds more.
var requestSeeds = []string{
	`{"type":"select","call_id":"pbx/1","customer_id":"k-pbx/1","ref":"r1"}`,
	`{"type":"note","call_id":"pbx/1","text":"wants a callback on Tuesday","ref":"n1"}`,
	`{"type":"note_edit","call_id":"pbx/1","note_id":"1","text":"callback on Wednesday","ref":"n2"}`,
	`{"type":"wrapup","call_id":"pbx/1","code":"order","ref":"w1"}`,
	`{"type":"search","call_id":"pbx/1","text":"ACME","ref":"s1"}`,
	`{"type":"link","call_id":"pbx/1","customer_id":"C-1","ref":"l1"}`,
	`{"type":"shown","call_id":"pbx/1","stage":"shown"}`,
	`{"type":"shown","call_id":"pbx/1","stage":"painted"}`,
	`{"type":"note","call_id":"pbx/unknown","text":"x"}`,
	`{"type":"note","call_id":"pbx/1","text":""}`,
	`{"type":"wrapup","call_id":"pbx/1","code":"nonsense"}`,
	`{"type":"hangup","call_id":"pbx/1"}`,
	`{"type":"note","call_id":"pbx/1","text":"\u0000\ud800","ref":"\u2028"}`,
	`{"type":["note"]}`, `{"type":null,"call_id":7}`, `[]`, `null`, `"note"`, `{`, ``, "\xff",
}

// FuzzBrowserRequest sends arbitrary messages, as a page's socket brings
// them, through the Hub's one entry point for them (handleRequest: decode,
// dispatch to the Dispatcher, answer) on behalf of agent alice, who holds
// a live call with its card and a history that keeps notes and wrap-ups.
// Nothing may panic; a request gets at most one error, and one that is no
// JSON request object gets exactly one, bad_request; every error has a
// documented code and a message, and one to a request echoes its type,
// call and ref; an acknowledgement (shown) never gets one, and is handed on as
// alice's whatever the message says; and every message the page is sent
// is a JSON object it can read.
func FuzzBrowserRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	store, err := history.NewMemory(history.Config{Dispositions: testDispositions}, history.Options{Daemon: "fuzz"})
	if err != nil {
		f.Fatal(err)
	}
	e := startHubWith(f, nil, func(c *DispatcherConfig) {
		c.Recorder = store
		c.WrapUp = WrapUpSettings{Dispositions: testDispositions}
	})
	acks := &fuzzAcks{}
	e.hub.SetAcks(acks)
	// A page of alice's, to know when the call has popped and been
	// answered.
	page := e.dial(f, "alice", "")
	readType(f, page, TypeHello)
	readType(f, page, TypeSnapshot)
	now := time.Now()
	e.d.HandleCall(ringing("pbx/1", now, "alice", "bob"))
	e.d.HandleCall(answered("pbx/1", "alice", now))
	readType(f, page, TypePop)
	readType(f, page, TypeAnswered)

	// The connection the requests come from: attached to alice like a
	// tab, with no socket and no writer (writing says one runs, so that
	// none starts): what it is sent stays in its outbox for the fuzz
	// function to read.
	c := &conn{id: 1 << 62, agent: Agent{ID: "alice", Name: "Alice"}, writing: true}
	h := e.hub
	h.mu.Lock()
	h.attach(h.box("alice"), c)
	h.mu.Unlock()
	// Registered after startHubWith's: runs before the hub closes, which
	// would reach for the socket c does not have.
	f.Cleanup(func() {
		h.mu.Lock()
		if b := h.attached(c); b != nil {
			h.detach(b, c, 0, "")
		}
		h.mu.Unlock()
	})
	codes := []string{popstate.CodeForbidden, popstate.CodeUnknownCall, popstate.CodeNotReady, popstate.CodeBadRequest, popstate.CodeUnavailable}

	f.Fuzz(func(t *testing.T, data []byte) {
		c.outMu.Lock()
		c.outbox, c.sent = nil, 0 // what earlier requests (a pick's card) brought
		c.outMu.Unlock()
		acks.take()

		h.handleRequest(c, data)

		h.mu.Lock()
		attached := h.attached(c) != nil
		h.mu.Unlock()
		if !attached {
			t.Fatalf("the connection was dropped for %q", data)
		}
		var req Request
		decodeErr := json.Unmarshal(data, &req)
		var errs []ErrorData
		for {
			m, ok := c.next()
			if !ok {
				break
			}
			var env struct {
				Type   string          `json:"type"`
				CallID string          `json:"call_id"`
				Data   json.RawMessage `json:"data"`
			}
			raw := m.AppendJSON(nil)
			if err := json.Unmarshal(raw, &env); err != nil || env.Type == "" {
				t.Fatalf("the page was sent %q, which it cannot read: %v", raw, err)
			}
			if env.Type != TypeError {
				continue
			}
			var ed ErrorData
			if err := json.Unmarshal(env.Data, &ed); err != nil {
				t.Fatalf("error data %s: %v", env.Data, err)
			}
			errs = append(errs, ed)
			if decodeErr == nil && (env.CallID != req.CallID || ed.Request != req.Type || ed.Ref != req.Ref) {
				t.Errorf("error %+v (call %q) does not echo request %+v", ed, env.CallID, req)
			}
		}
		if len(errs) > 1 {
			t.Errorf("%q got %d errors: %+v", data, len(errs), errs)
		}
		for _, ed := range errs {
			if !slices.Contains(codes, ed.Code) || ed.Message == "" {
				t.Errorf("%q got error %+v", data, ed)
			}
		}
		if decodeErr != nil {
			if len(errs) != 1 || errs[0].Code != popstate.CodeBadRequest {
				t.Errorf("%q is no JSON request, and got %+v", data, errs)
			}
			return
		}
		if req.Type == RequestShown && len(errs) > 0 {
			t.Errorf("an acknowledgement got an answer: %q -> %+v", data, errs)
		}
		for _, a := range acks.take() {
			if a != "alice" {
				t.Errorf("%q was handed on as %q's acknowledgement", data, a)
			}
		}
	})
}
