package pop

import (
	"slices"
	"sync"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

type ack struct{ agent, call, stage string }

// recordingAcks is an AckSink that keeps what it hears.
type recordingAcks struct {
	mu   sync.Mutex
	acks []ack
	at   []time.Time
}

func (r *recordingAcks) Shown(agent, call, stage string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acks = append(r.acks, ack{agent, call, stage})
	r.at = append(r.at, at)
}

func (r *recordingAcks) heard() []ack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.acks)
}

// A page's shown acknowledgements go to the AckSink with the agent the hub
// signed in, timed by the daemon; malformed ones are dropped; none gets an
// answer, so the page never waits for one.
func TestShownAcknowledgements(t *testing.T) {
	e := startHub(t, nil)
	acks := &recordingAcks{}
	e.hub.SetAcks(acks)
	c := e.dial(t, "alice", "")
	readType(t, c, TypeSnapshot)
	before := time.Now()
	for _, raw := range []string{
		`{"type": "shown", "call_id": "pbx/1", "stage": "shown", "agent": "mallory"}`,
		`{"type": "shown", "call_id": "pbx/1", "stage": "complete"}`,
		`{"type": "shown", "call_id": "pbx/1", "stage": "painted"}`,
		`{"type": "shown", "stage": "shown"}`,
		// Then a request that is answered: its error must be the next message.
		`{"type": "select", "call_id": "nope", "customer_id": "k1", "ref": "r1"}`,
	} {
		if err := c.WriteMessage(1, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	if env := readType(t, c, TypeError); env.CallID != "nope" {
		t.Fatalf("the first answer is about %q, want the select of nope: shown got an answer", env.CallID)
	}
	want := []ack{{"alice", "pbx/1", StageShown}, {"alice", "pbx/1", StageComplete}}
	if got := acks.heard(); !slices.Equal(got, want) {
		t.Errorf("heard %+v, want %+v", got, want)
	}
	for _, at := range acks.at {
		if at.Before(before) || at.After(time.Now()) {
			t.Errorf("acknowledgement timed %v, not by the daemon's clock", at)
		}
	}
	if !e.hub.Connected("alice") || e.hub.Connected("bob") || !slices.Equal(e.hub.ConnectedAgents(), []string{"alice"}) {
		t.Errorf("connected: alice %v bob %v all %v", e.hub.Connected("alice"), e.hub.Connected("bob"), e.hub.ConnectedAgents())
	}
}

// observedEvents is a CallObserver that keeps what it hears.
type observedEvents struct {
	mu     sync.Mutex
	events []screenpop.CallEvent
}

func (o *observedEvents) ObserveCall(ev screenpop.CallEvent, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, ev)
}

func (o *observedEvents) kinds() []screenpop.CallEventKind {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []screenpop.CallEventKind
	for _, e := range o.events {
		out = append(out, e.Kind)
	}
	return out
}

// The observer hears every event the dispatcher applies, in order; a pop
// to an agent without a page connected is no delivery: the latency
// histogram measures only alice's.
func TestObserverAndLatencyOfConnectedAgentsOnly(t *testing.T) {
	obs := &observedEvents{}
	e := startHubWith(t, nil, func(c *DispatcherConfig) { c.Observer = obs })
	c := e.dial(t, "alice", "")
	readType(t, c, TypeSnapshot)
	now := time.Now()
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "c1", Caller: screenpop.Caller{Number: "+4930123456"}, Agents: []string{"alice", "bob"}, At: now})
	readType(t, c, TypePop)
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: "c1", Agent: "alice", At: now})
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "c1", Outcome: screenpop.OutcomeAnswered, At: now})
	readType(t, c, TypeAnswered)
	readType(t, c, TypeEnded)
	if got := obs.kinds(); !slices.Equal(got, []screenpop.CallEventKind{screenpop.EventRinging, screenpop.EventAnswered, screenpop.EventEnded}) {
		t.Errorf("observed %v", got)
	}
	if got := metricValue(t, e.reg, "screenpop_pop_latency_seconds", nil); got != 1 {
		t.Errorf("latency observations %v, want 1 (alice's; bob has no page)", got)
	}
}
