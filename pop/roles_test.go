package pop

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	screenpop "github.com/screenpop/screenpop"
)

// secretCard is a card whose credit section only the credit role may see;
// creditSecret is in no other part of it.
const creditSecret = "CREDIT-LIMIT-4711"

func secretCard(ev screenpop.CallEvent) screenpop.Card {
	c := testCard(ev)
	c.Sections = []screenpop.CardSection{
		{Name: "accounting", Title: "Accounting", Status: screenpop.SectionOK, Fields: []screenpop.Field{
			{Key: "balance", Label: "Open balance", Value: 1234.5, Format: "money"},
		}},
		{Name: "credit", Title: "Credit", Status: screenpop.SectionOK, Roles: []string{"credit", "supervisor"}, Fields: []screenpop.Field{
			{Key: "limit", Label: "Limit", Value: creditSecret},
		}},
	}
	return c
}

// shownLog records OnShown.
type shownLog struct {
	mu    sync.Mutex
	shown []string // "agent call section,section"
}

func (l *shownLog) add(agent, callID string, card screenpop.Card, sections []string) {
	names := []string{}
	for _, s := range card.Sections {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, sections) {
		panic("OnShown: sections " + strings.Join(sections, ",") + " but the card holds " + strings.Join(names, ","))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shown = append(l.shown, agent+" "+callID+" "+strings.Join(sections, ","))
}

func (l *shownLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.shown)
	slices.Sort(out)
	return out
}

// readRaw reads one frame as the browser gets it.
func readRaw(t *testing.T, c *websocket.Conn) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(patience))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return data
}

// TestHiddenSectionNeverLeavesTheDaemon: an agent without the role of a
// section gets no byte of it, in live frames, in a snapshot or in a
// replay; an agent with the role gets it; the access-log hook hears what
// each was sent.
func TestHiddenSectionNeverLeavesTheDaemon(t *testing.T) {
	roles := map[string][]string{"alice": {"agent", "credit"}}
	shown := &shownLog{}
	e := startHubWith(t, nil, func(c *DispatcherConfig) {
		c.AgentRoles = func(id string) []string { return roles[id] }
		c.OnShown = shown.add
	})
	e.b.card = secretCard
	alice, bob := e.dial(t, "alice", ""), e.dial(t, "bob", "")
	readType(t, alice, TypeSnapshot)
	readType(t, bob, TypeSnapshot)

	e.d.HandleCall(ringing("c1", time.Now(), "alice", "bob"))
	if f := readRaw(t, alice); !bytes.Contains(f, []byte(creditSecret)) || !bytes.Contains(f, []byte(`"name":"credit"`)) || bytes.Contains(f, []byte(`"roles"`)) {
		t.Errorf("alice, who has the credit role, did not get the section, or got its roles: %s", f)
	}
	f := readRaw(t, bob)
	if !bytes.Contains(f, []byte(`"type":"pop"`)) || !bytes.Contains(f, []byte(`"name":"accounting"`)) {
		t.Fatalf("bob's pop: %s", f)
	}
	if bytes.Contains(bytes.ToLower(f), []byte("credit")) || bytes.Contains(f, []byte(creditSecret)) {
		t.Errorf("bob's frame holds the credit section: %s", f)
	}
	if bytes.Contains(f, []byte(`"roles"`)) {
		t.Errorf("a frame tells which roles see what: %s", f)
	}
	var env envelope
	if err := json.Unmarshal(f, &env); err != nil {
		t.Fatal(err)
	}

	// Another tab of bob: the snapshot. Then one resuming from before
	// the pop: the replay.
	for _, query := range []string{"", "?since=" + strconv.FormatUint(env.Seq-1, 10)} {
		c := e.dial(t, "bob", query)
		frame := readRaw(t, c)
		if !bytes.Contains(frame, []byte(`"call_id":"c1"`)) || bytes.Contains(bytes.ToLower(frame), []byte("credit")) {
			t.Errorf("bob's page opened with %q got: %s", query, frame)
		}
	}
	e.d.Refresh("+4930123456", "")
	if f := readRaw(t, alice); !bytes.Contains(f, []byte(`"type":"card"`)) || !bytes.Contains(f, []byte(creditSecret)) {
		t.Errorf("alice's refreshed card: %s", f)
	}
	if f := readRaw(t, bob); !bytes.Contains(f, []byte(`"type":"card"`)) || bytes.Contains(bytes.ToLower(f), []byte("credit")) {
		t.Errorf("bob's refreshed card: %s", f)
	}
	want := []string{"alice c1 accounting,credit", "alice c1 accounting,credit", "bob c1 accounting", "bob c1 accounting"}
	if got := shown.list(); !slices.Equal(got, want) {
		t.Errorf("shown %v, want %v (once per card message and agent; not for snapshots and replays)", got, want)
	}
}

// encodedDeliverer keeps what it is given, as it is given.
type encodedDeliverer struct {
	*fakeDeliverer
	mu  sync.Mutex
	raw map[string][]Encoded
}

func (d *encodedDeliverer) Deliver(agent string, m Encoded) {
	d.mu.Lock()
	d.raw[agent] = append(d.raw[agent], m)
	d.mu.Unlock()
	d.fakeDeliverer.Deliver(agent, m)
}

// TestCardEncodedOncePerSetOfSections: agents who may see the same
// sections share one encoding of the message; an unknown agent gets only
// the sections that name no role.
func TestCardEncodedOncePerSetOfSections(t *testing.T) {
	del := &encodedDeliverer{fakeDeliverer: newFakeDeliverer(), raw: map[string][]Encoded{}}
	roles := map[string][]string{"a1": {"credit"}, "a2": {"supervisor"}, "a3": {"credit"}}
	e := startDispatcher(t, func(c *DispatcherConfig) {
		c.Deliverer = del
		c.AgentRoles = func(id string) []string { return roles[id] }
	})
	e.b.card = secretCard
	e.d.HandleCall(ringing("c1", time.Now(), "a1", "a2", "a3", "a4"))
	for _, a := range []string{"a1", "a2", "a3", "a4"} {
		del.waitTypes(t, a, "c1", TypePop)
	}
	del.mu.Lock()
	defer del.mu.Unlock()
	first := func(a string) []byte { return del.raw[a][0].Unnumbered() }
	if &first("a1")[0] != &first("a2")[0] || &first("a1")[0] != &first("a3")[0] {
		t.Error("agents who see the same sections got separate encodings")
	}
	if &first("a1")[0] == &first("a4")[0] || bytes.Contains(first("a4"), []byte(creditSecret)) {
		t.Errorf("a4, without roles, shares the credit card or sees it: %s", first("a4"))
	}
	if !bytes.Contains(first("a1"), []byte(creditSecret)) {
		t.Errorf("a1's card: %s", first("a1"))
	}
}

// TestNoRolesTableHidesRestrictedSections: without AgentRoles, nobody
// sees a section that names roles (deny by default).
func TestNoRolesTableHidesRestrictedSections(t *testing.T) {
	del := &encodedDeliverer{fakeDeliverer: newFakeDeliverer(), raw: map[string][]Encoded{}}
	e := startDispatcher(t, func(c *DispatcherConfig) { c.Deliverer = del })
	e.b.card = secretCard
	e.d.HandleCall(ringing("c1", time.Now(), "alice"))
	del.waitTypes(t, "alice", "c1", TypePop)
	del.mu.Lock()
	defer del.mu.Unlock()
	if raw := del.raw["alice"][0].Unnumbered(); bytes.Contains(raw, []byte(creditSecret)) || !bytes.Contains(raw, []byte("accounting")) {
		t.Errorf("alice's card without a roles table: %s", raw)
	}
}
