package pop

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
)

// patience bounds every wait of these tests, so that a broken dispatcher
// fails the test instead of hanging it. It is not a performance assertion.
const patience = 20 * time.Second

// fakeBuilder builds a fixed card per call. A call ID listed in gates
// blocks its Build until the gate is closed.
type fakeBuilder struct {
	mu       sync.Mutex
	builds   map[string]int
	buildFor map[string][]string
	gates    map[string]chan struct{}
	started  chan string // call IDs whose Build began, when not nil
	card     func(ev screenpop.CallEvent) screenpop.Card
}

var _ CardBuilder = (*fakeBuilder)(nil)

func newFakeBuilder() *fakeBuilder {
	return &fakeBuilder{builds: map[string]int{}, buildFor: map[string][]string{}, gates: map[string]chan struct{}{}}
}

func (b *fakeBuilder) gate(callID string) (release func()) {
	ch := make(chan struct{})
	b.mu.Lock()
	b.gates[callID] = ch
	b.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (b *fakeBuilder) wait(ctx context.Context, callID string) {
	b.mu.Lock()
	ch := b.gates[callID]
	started := b.started
	b.mu.Unlock()
	if started != nil {
		started <- callID
	}
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
		}
	}
}

func (b *fakeBuilder) Build(ctx context.Context, ev screenpop.CallEvent) screenpop.Card {
	b.mu.Lock()
	b.builds[ev.CallID]++
	b.mu.Unlock()
	b.wait(ctx, ev.CallID)
	if b.card != nil {
		return b.card(ev)
	}
	return testCard(ev)
}

func (b *fakeBuilder) BuildFor(ctx context.Context, ev screenpop.CallEvent, customerID string) screenpop.Card {
	b.mu.Lock()
	b.buildFor[ev.CallID] = append(b.buildFor[ev.CallID], customerID)
	b.mu.Unlock()
	b.wait(ctx, "select:"+ev.CallID)
	c := testCard(ev)
	c.Customer = &screenpop.Customer{ID: customerID, Name: "Picked " + customerID}
	return c
}

func (b *fakeBuilder) buildCount(callID string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.builds[callID]
}

func testCard(ev screenpop.CallEvent) screenpop.Card {
	c := screenpop.Card{
		CallID:     ev.CallID,
		Caller:     ev.Caller,
		Resolution: screenpop.ResolvedCustomer,
		Customer:   &screenpop.Customer{ID: "k-" + ev.CallID, Name: "ACME GmbH", Kind: "company", Contact: "Jane Doe", Role: "Buyer", Tags: []string{"supplier"}},
		Sections: []screenpop.CardSection{
			{Name: "accounting", Title: "Accounting", Status: screenpop.SectionOK, Fields: []screenpop.Field{
				{Key: "balance", Label: "Open balance", Value: 1234.5, Format: "money"},
				{Key: "currency", Label: "Currency", Value: "EUR"},
			}},
			{Name: "credit", Title: "Credit", Status: screenpop.SectionTimeout, Error: "no answer within 800ms"},
		},
		BuiltAt: time.Now(),
	}
	if ev.Caller.Withheld {
		c.Resolution, c.Customer = screenpop.ResolvedWithheld, nil
	} else {
		c.Phone = ev.Caller.Number
	}
	return c
}

// fakeDeliverer records what each agent was sent, in order.
type fakeDeliverer struct {
	mu      sync.Mutex
	seq     map[string]uint64
	msgs    map[string][]Message
	changed chan struct{}
}

var _ Deliverer = (*fakeDeliverer)(nil)

func newFakeDeliverer() *fakeDeliverer {
	return &fakeDeliverer{seq: map[string]uint64{}, msgs: map[string][]Message{}, changed: make(chan struct{})}
}

func (f *fakeDeliverer) Deliver(agent string, e Encoded) {
	// Decode what a browser would get, so that nothing aliases the
	// dispatcher's state.
	var env struct {
		Type   string          `json:"type"`
		CallID string          `json:"call_id"`
		At     time.Time       `json:"at"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(e.Unnumbered(), &env); err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq[agent]++
	m := Message{Type: env.Type, Seq: f.seq[agent], CallID: env.CallID, At: env.At, Data: env.Data}
	f.msgs[agent] = append(f.msgs[agent], m)
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeDeliverer) of(agent string) []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Message(nil), f.msgs[agent]...)
}

// types lists the types of agent's messages about callID.
func (f *fakeDeliverer) types(agent, callID string) []string {
	var out []string
	for _, m := range f.of(agent) {
		if m.CallID == callID {
			out = append(out, m.Type)
		}
	}
	return out
}

// waitUntil blocks until cond holds (checked after every delivery).
func (f *fakeDeliverer) waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !f.await(cond) {
		t.Fatalf("gave up waiting for %s", what)
	}
}

// await is waitUntil for goroutines other than the test's: false when it
// gave up.
func (f *fakeDeliverer) await(cond func() bool) bool {
	deadline := time.After(patience)
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

func (f *fakeDeliverer) waitTypes(t *testing.T, agent, callID string, want ...string) {
	t.Helper()
	f.waitUntil(t, fmt.Sprintf("%s to get %v for %s", agent, want, callID), func() bool {
		return len(f.types(agent, callID)) >= len(want)
	})
	if got := f.types(agent, callID); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s got %v for %s, want %v", agent, got, callID, want)
	}
}

// encode is Encode for tests that deliver by hand.
func encode(t testing.TB, m Message) Encoded {
	t.Helper()
	if m.At.IsZero() {
		m.At = time.Now()
	}
	e, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func decode[T any](t *testing.T, m Message) T {
	t.Helper()
	var v T
	raw, ok := m.Data.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		raw = b
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %s data: %v", m.Type, err)
	}
	return v
}

// fakeRecorder is an in-memory CallRecorder.
type fakeRecorder struct {
	mu      sync.Mutex
	calls   []screenpop.PastCall
	notes   map[string][]screenpop.Note // phone|callID
	fail    error
	changed chan struct{}
}

var _ CallRecorder = (*fakeRecorder)(nil)

func newFakeRecorder() *fakeRecorder {
	return &fakeRecorder{notes: map[string][]screenpop.Note{}, changed: make(chan struct{})}
}

func (r *fakeRecorder) Record(_ context.Context, c screenpop.PastCall) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
	close(r.changed)
	r.changed = make(chan struct{})
	return r.fail
}

func (r *fakeRecorder) AddNote(_ context.Context, phone, callID string, n screenpop.Note) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.notes[phone+"|"+callID] = append(r.notes[phone+"|"+callID], n)
	return nil
}

func (r *fakeRecorder) recorded() []screenpop.PastCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]screenpop.PastCall(nil), r.calls...)
}

func (r *fakeRecorder) waitRecorded(t *testing.T, n int) []screenpop.PastCall {
	t.Helper()
	deadline := time.After(patience)
	for {
		r.mu.Lock()
		ch := r.changed
		got := len(r.calls)
		r.mu.Unlock()
		if got >= n {
			return r.recorded()
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("gave up waiting for %d recorded calls (have %d)", n, got)
		}
	}
}

// metricValue reads one sample from reg: a counter or gauge value, or a
// histogram's sample count.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

func ringing(callID string, at time.Time, agents ...string) screenpop.CallEvent {
	return screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: callID, Caller: screenpop.Caller{Number: "+4930123456"}, Agents: agents, At: at, Source: "test"}
}

func answered(callID, agent string, at time.Time) screenpop.CallEvent {
	return screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: callID, Agent: agent, At: at, Source: "test"}
}

func transferred(callID, agent string, at time.Time) screenpop.CallEvent {
	return screenpop.CallEvent{Kind: screenpop.EventTransferred, CallID: callID, Agent: agent, At: at, Source: "test"}
}

func ended(callID, agent string, outcome screenpop.Outcome, at time.Time) screenpop.CallEvent {
	return screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: callID, Agent: agent, Outcome: outcome, At: at, Source: "test"}
}
