package pop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
)

// gates open the sources of a progressive test's aggregator.
type gates struct {
	accounting, credit, tickets, history chan struct{}
}

func (g *gates) open(ch chan struct{}) { close(ch) }

// progressiveAggregator is a real aggregator: the directory knows every
// caller as C-1 at once; accounting and credit (for the credit role) need
// the customer, tickets the number; each answers when the test opens its
// gate, and so does the history.
func progressiveAggregator(t testing.TB) (*aggregator.Aggregator, *gates) {
	t.Helper()
	accounting := &slowSource{records: []aggregator.Record{{"balance": 1234.5}}}
	credit := &slowSource{records: []aggregator.Record{{"limit": creditSecret}}}
	tickets := &slowSource{records: []aggregator.Record{{"open": 2}}}
	hist := &slowHistory{MemoryHistory: aggregator.NewMemoryHistory(10)}
	if err := hist.Record(context.Background(), screenpop.PastCall{CallID: "old", Phone: "+4930123456", At: time.Now().Add(-time.Hour), Outcome: screenpop.OutcomeAnswered}); err != nil {
		t.Fatal(err)
	}
	g := &gates{accounting: accounting.hold(), credit: credit.hold(), tickets: tickets.hold(), history: hist.hold()}
	agg, err := aggregator.New(aggregator.Config{
		Region: "DE", Deadline: 30 * time.Second,
		Sections: []aggregator.SectionSpec{
			{Name: "accounting", Title: "Accounting"},
			{Name: "credit", Title: "Credit", Roles: []string{"credit"}},
			{Name: "tickets", Title: "Tickets"},
		},
		Directory: &aggregator.SourceSpec{Name: "directory", Source: staticSource{{"id": "C-1", "name": "ACME GmbH"}}},
		Sources: []aggregator.SourceSpec{
			{Name: "accounting", Timeout: 30 * time.Second, Source: accounting},
			{Name: "credit", Timeout: 30 * time.Second, Source: credit},
			{Name: "tickets", Needs: "phone", Timeout: 30 * time.Second, Source: tickets},
		},
	}, aggregator.Options{History: hist})
	if err != nil {
		t.Fatal(err)
	}
	return agg, g
}

// accessLog records OnShown as the access log gets it: agent, call,
// sections shown, and "history" when the card listed earlier calls.
type accessLog struct {
	mu      sync.Mutex
	entries []string
}

func (l *accessLog) add(agent, callID string, card screenpop.Card, sections []string) {
	for _, s := range card.Sections {
		if s.Status != screenpop.SectionLoading && !slices.Contains(sections, s.Name) {
			panic("OnShown: section " + s.Name + " holds content and is not named")
		}
	}
	if card.Customer == nil || card.Customer.ID != "C-1" || card.Phone == "" {
		panic(fmt.Sprintf("OnShown: a card part without whose it is: %+v", card))
	}
	e := agent + " " + callID + " [" + strings.Join(sections, ",") + "]"
	if len(card.History) > 0 {
		e += " history"
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
}

func (l *accessLog) of(agent string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, e := range l.entries {
		if strings.HasPrefix(e, agent+" ") {
			out = append(out, e)
		}
	}
	return out
}

func startProgressive(t *testing.T, log *accessLog) (*hubEnv, *gates) {
	t.Helper()
	roles := map[string][]string{"alice": {"agent", "credit"}}
	agg, g := progressiveAggregator(t)
	return startHubWith(t, nil, func(c *DispatcherConfig) {
		c.Builder = agg
		c.AgentRoles = func(id string) []string { return roles[id] }
		c.OnShown = log.add
	}), g
}

type wireCard struct {
	Sections []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	} `json:"sections"`
	History        []json.RawMessage `json:"history"`
	HistoryLoading bool              `json:"history_loading"`
}

// shows says what a card on the wire shows: each section with its status,
// and the earlier calls (or that they are loading).
func (c wireCard) shows() string {
	var parts []string
	for _, s := range c.Sections {
		parts = append(parts, s.Name+":"+s.Status)
	}
	h := fmt.Sprintf("history:%d", len(c.History))
	if c.HistoryLoading {
		h = "history:loading"
	}
	return strings.Join(append(parts, h), " ")
}

func cardIn(t *testing.T, env envelope) wireCard {
	t.Helper()
	var d struct {
		Card wireCard `json:"card"`
	}
	if err := json.Unmarshal(env.Data, &d); err != nil {
		t.Fatal(err)
	}
	return d.Card
}

func sectionIn(t *testing.T, env envelope) string {
	t.Helper()
	var d struct {
		Section struct {
			Name   string `json:"name"`
			Status string `json:"status"`
			Roles  []string
		} `json:"section"`
	}
	if err := json.Unmarshal(env.Data, &d); err != nil {
		t.Fatal(err)
	}
	if d.Section.Roles != nil {
		t.Errorf("a section goes out with its roles: %s", env.Data)
	}
	return d.Section.Name + ":" + d.Section.Status
}

// readFrame reads one message, keeping its raw frame.
func readFrame(t *testing.T, c *websocket.Conn) (envelope, []byte) {
	t.Helper()
	raw := readRaw(t, c)
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatal(err)
	}
	return env, raw
}

// The pop goes out as soon as the caller is resolved, every section
// loading; each section follows as its source answers, only to the agents
// who may see it; the earlier calls when read; then the complete card. A
// page reconnecting meanwhile gets what was filled in so far, by replay
// or snapshot, then the rest. The access log hears what each message
// showed.
func TestProgressivePopOverTheSocket(t *testing.T) {
	log := &accessLog{}
	e, g := startProgressive(t, log)
	alice, bob := e.dial(t, "alice", ""), e.dial(t, "bob", "")
	readType(t, alice, TypeSnapshot)
	readType(t, bob, TypeSnapshot)
	var bobFrames [][]byte
	readBob := func() envelope {
		env, raw := readFrame(t, bob)
		bobFrames = append(bobFrames, raw)
		return env
	}

	e.d.HandleCall(ringing("c1", time.Now(), "alice", "bob"))
	pop := readType(t, alice, TypePop)
	if got, want := cardIn(t, pop).shows(), "accounting:loading credit:loading tickets:loading history:loading"; got != want {
		t.Errorf("alice's pop shows %s, want %s", got, want)
	}
	if env := readBob(); env.Type != TypePop || cardIn(t, env).shows() != "accounting:loading tickets:loading history:loading" {
		t.Errorf("bob's first message: %s %s", env.Type, env.Data)
	}

	g.open(g.credit)
	if env := readType(t, alice, TypeSection); sectionIn(t, env) != "credit:ok" || !bytes.Contains(env.Data, []byte(creditSecret)) {
		t.Errorf("alice's section: %s", env.Data)
	}
	g.open(g.tickets)
	if env := readType(t, alice, TypeSection); sectionIn(t, env) != "tickets:ok" {
		t.Errorf("alice's section: %s", env.Data)
	}
	// Bob may not see credit: tickets is his next message.
	if env := readBob(); env.Type != TypeSection || sectionIn(t, env) != "tickets:ok" {
		t.Errorf("bob's second message: %s %s", env.Type, env.Data)
	}
	g.open(g.history)
	for _, c := range []*websocket.Conn{alice, bob} {
		var env envelope
		if c == bob {
			env = readBob()
		} else {
			env = read(t, c)
		}
		var h HistoryData
		if err := json.Unmarshal(env.Data, &h); err != nil || env.Type != TypeHistory || len(h.History) != 1 || h.History[0].CallID != "old" {
			t.Errorf("history message: %s %s (%v)", env.Type, env.Data, err)
		}
	}

	// Pages reconnecting now: by replay after the pop (alice), by snapshot
	// (bob); accounting is still loading.
	aliceAgain := e.dial(t, "alice", fmt.Sprintf("?since=%d", pop.Seq))
	for _, want := range []string{TypeSection, TypeSection, TypeHistory} {
		readType(t, aliceAgain, want)
	}
	bobAgain := e.dial(t, "bob", "")
	snap := readType(t, bobAgain, TypeSnapshot)
	var s struct {
		Pops []struct {
			Card wireCard `json:"card"`
		} `json:"pops"`
	}
	if err := json.Unmarshal(snap.Data, &s); err != nil || len(s.Pops) != 1 {
		t.Fatalf("bob's snapshot: %s (%v)", snap.Data, err)
	}
	if got, want := s.Pops[0].Card.shows(), "accounting:loading tickets:ok history:1"; got != want {
		t.Errorf("bob's snapshot shows %s, want %s", got, want)
	}

	// The last source: the complete card, to every page.
	g.open(g.accounting)
	for name, c := range map[string]*websocket.Conn{"alice": alice, "alice again": aliceAgain, "bob again": bobAgain} {
		env := readType(t, c, TypeCard)
		want := "accounting:ok credit:ok tickets:ok history:1"
		if strings.HasPrefix(name, "bob") {
			want = "accounting:ok tickets:ok history:1"
		}
		if got := cardIn(t, env).shows(); got != want {
			t.Errorf("%s: the complete card shows %s, want %s", name, got, want)
		}
	}
	if env := readBob(); env.Type != TypeCard {
		t.Errorf("bob's last message: %s", env.Type)
	}
	for _, f := range append(bobFrames, []byte(snap.Data)) {
		if bytes.Contains(f, []byte(creditSecret)) || bytes.Contains(f, []byte(`"credit"`)) {
			t.Errorf("bob got the credit section: %s", f)
		}
	}

	// Each message is accountable, with what it showed.
	if got, want := log.of("alice"), []string{
		"alice c1 []", "alice c1 [credit]", "alice c1 [tickets]", "alice c1 [] history",
		"alice c1 [accounting,credit,tickets] history",
	}; !slices.Equal(got, want) {
		t.Errorf("alice's access log:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := log.of("bob"), []string{
		"bob c1 []", "bob c1 [tickets]", "bob c1 [] history", "bob c1 [accounting,tickets] history",
	}; !slices.Equal(got, want) {
		t.Errorf("bob's access log:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, typ := range []string{TypeSection, TypeHistory} {
		if v := metricValue(t, e.reg, "screenpop_pop_messages_total", map[string]string{"type": typ}); v == 0 {
			t.Errorf("no %s message counted", typ)
		}
	}
}

// Once the call ended (or the agent's pop was withdrawn), what the sources
// still bring goes to nobody; the call is recorded with its card.
func TestProgressiveStepsStopWithTheCall(t *testing.T) {
	log := &accessLog{}
	e, g := startProgressive(t, log)
	alice, bob := e.dial(t, "alice", ""), e.dial(t, "bob", "")
	readType(t, alice, TypeSnapshot)
	readType(t, bob, TypeSnapshot)
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice", "bob"))
	readType(t, alice, TypePop)
	readType(t, bob, TypePop)
	g.open(g.history)
	readType(t, alice, TypeHistory)
	readType(t, bob, TypeHistory)

	e.d.HandleCall(answered("c1", "bob", now.Add(time.Second)))
	if env := readType(t, alice, TypeWithdrawn); env.CallID != "c1" {
		t.Fatal(env.CallID)
	}
	readType(t, bob, TypeAnswered)
	g.open(g.tickets)
	if env := readType(t, bob, TypeSection); sectionIn(t, env) != "tickets:ok" {
		t.Errorf("bob's section: %s", env.Data)
	}
	e.d.HandleCall(ended("c1", "bob", screenpop.OutcomeAnswered, now.Add(2*time.Second)))
	readType(t, bob, TypeEnded)
	// The call's end cancels its build: the other sources are abandoned,
	// and the call recorded.
	e.rec.waitRecorded(t, 1)
	g.open(g.accounting)
	g.open(g.credit)

	// Nothing after the end: the next message of each is about another call.
	e.d.HandleCall(ringing("c2", now.Add(3*time.Second), "alice", "bob"))
	for name, c := range map[string]*websocket.Conn{"alice": alice, "bob": bob} {
		if env := read(t, c); env.CallID != "c2" || env.Type != TypePop {
			t.Errorf("%s: after c1 ended, got %s for %s", name, env.Type, env.CallID)
		}
	}
	var c1 []string
	for _, e := range log.of("alice") {
		if strings.HasPrefix(e, "alice c1 ") {
			c1 = append(c1, e)
		}
	}
	if want := []string{"alice c1 []", "alice c1 [] history"}; !slices.Equal(c1, want) {
		t.Errorf("alice's access log of c1: %v, want %v", c1, want)
	}
}
