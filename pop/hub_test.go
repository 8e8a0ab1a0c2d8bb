package pop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
)

type hubEnv struct {
	hub  *Hub
	auth *TokenAuth
	srv  *httptest.Server
	d    *Dispatcher
	b    *fakeBuilder
	rec  *fakeRecorder
	reg  *prometheus.Registry
}

func startHub(t testing.TB, tweak func(*HubConfig)) *hubEnv {
	t.Helper()
	return startHubWith(t, tweak, nil)
}

// startHubWith is startHub with the dispatcher's configuration tweaked too.
func startHubWith(t testing.TB, tweak func(*HubConfig), tweakDispatcher func(*DispatcherConfig)) *hubEnv {
	t.Helper()
	auth, err := NewTokenAuth(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	e := &hubEnv{auth: auth, b: newFakeBuilder(), rec: newFakeRecorder(), reg: prometheus.NewRegistry()}
	cfg := HubConfig{Auth: e.auth, Registerer: e.reg}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := NewHub(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.hub = h
	dcfg := DispatcherConfig{Builder: e.b, Recorder: e.rec, Deliverer: h, Registerer: e.reg}
	if tweakDispatcher != nil {
		tweakDispatcher(&dcfg)
	}
	e.d, err = NewDispatcher(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	h.SetRequests(e.d)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.d.Run(ctx) }()
	e.srv = httptest.NewServer(h.Handler())
	t.Cleanup(func() {
		h.Close()
		e.srv.Close()
		cancel()
		<-done
	})
	return e
}

func (e *hubEnv) wsURL(query string) string {
	return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws" + query
}

func (e *hubEnv) token(t testing.TB, agent string) string {
	t.Helper()
	tok, err := e.auth.Issue(agent, strings.ToUpper(agent[:1])+agent[1:], []string{"agent"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// dial connects as a browser would: token in the subprotocol list.
func (e *hubEnv) dial(t testing.TB, agent, query string) *websocket.Conn {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{Subprotocol, BearerSubprotocolPrefix + e.token(t, agent)}}
	c, resp, err := d.Dial(e.wsURL(query), nil)
	if err != nil {
		t.Fatalf("dial as %s: %v (%v)", agent, err, resp)
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != Subprotocol {
		t.Errorf("server chose subprotocol %q, want %q", got, Subprotocol)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type envelope struct {
	Type   string          `json:"type"`
	Seq    uint64          `json:"seq"`
	CallID string          `json:"call_id"`
	At     time.Time       `json:"at"`
	Data   json.RawMessage `json:"data"`
}

func read(t testing.TB, c *websocket.Conn) envelope {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(patience))
	var env envelope
	if err := c.ReadJSON(&env); err != nil {
		t.Fatalf("read: %v", err)
	}
	return env
}

func readType(t testing.TB, c *websocket.Conn, typ string) envelope {
	t.Helper()
	env := read(t, c)
	if env.Type != typ {
		t.Fatalf("got %s (%s), want %s", env.Type, env.Data, typ)
	}
	return env
}

func snapshotOf(t *testing.T, env envelope) SnapshotData {
	t.Helper()
	var s SnapshotData
	if err := json.Unmarshal(env.Data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHubRefusesUpgradeWithoutValidToken(t *testing.T) {
	e := startHub(t, nil)
	other, err := NewTokenAuth([]byte("another-secret-another-secret-xx"))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.Issue("alice", "Alice", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	valid := e.token(t, "alice")
	cases := []struct {
		name   string
		query  string
		protos []string
	}{
		{"no token", "", []string{Subprotocol}},
		{"bad token", "", []string{Subprotocol, "bearer.not-a-token"}},
		{"forged token", "", []string{Subprotocol, BearerSubprotocolPrefix + forged}},
		{"token in the URL", "?token=" + valid + "&access_token=" + valid, []string{Subprotocol}},
	}
	for _, tc := range cases {
		d := websocket.Dialer{Subprotocols: tc.protos}
		c, resp, err := d.Dial(e.wsURL(tc.query), nil)
		if err == nil {
			c.Close()
			t.Errorf("%s: upgraded", tc.name)
			continue
		}
		if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: %v, response %v; want 401 and no upgrade", tc.name, err, resp)
		}
	}
	if v := metricValue(t, e.reg, "screenpop_pop_dropped_connections_total", map[string]string{"reason": "auth"}); v != float64(len(cases)) {
		t.Errorf("dropped{reason=auth} = %v, want %d", v, len(cases))
	}
	// A non-browser client with the header is let in.
	h := http.Header{"Authorization": {"Bearer " + valid}}
	c, _, err := websocket.DefaultDialer.Dial(e.wsURL(""), h)
	if err != nil {
		t.Fatalf("Authorization header: %v", err)
	}
	defer c.Close()
	readType(t, c, TypeSnapshot)
}

func TestHubExpiredTokenRefused(t *testing.T) {
	e := startHub(t, nil)
	// Same secret, a clock two hours behind: the token expired an hour ago.
	past := newTestAuth(t)
	past.now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	old, err := past.Issue("alice", "Alice", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	d := websocket.Dialer{Subprotocols: []string{Subprotocol, BearerSubprotocolPrefix + old}}
	if _, resp, err := d.Dial(e.wsURL(""), nil); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("expired token: %v %v", err, resp)
	}
}

func TestHubOriginCheck(t *testing.T) {
	e := startHub(t, func(c *HubConfig) { c.AllowedOrigins = []string{"https://CRM.example.com:443/"} })
	tok := e.token(t, "alice")
	dial := func(origin string) (*http.Response, error) {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		d := websocket.Dialer{Subprotocols: []string{Subprotocol, BearerSubprotocolPrefix + tok}}
		c, resp, err := d.Dial(e.wsURL(""), h)
		if err == nil {
			c.Close()
		}
		return resp, err
	}
	if resp, err := dial("https://evil.example"); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: %v %v, want 403", err, resp)
	}
	if resp, err := dial("null"); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("opaque origin: %v %v, want 403", err, resp)
	}
	for _, ok := range []string{e.srv.URL, "https://crm.example.com", ""} {
		if _, err := dial(ok); err != nil {
			t.Errorf("origin %q refused: %v", ok, err)
		}
	}
	if v := metricValue(t, e.reg, "screenpop_pop_dropped_connections_total", map[string]string{"reason": "origin"}); v != 2 {
		t.Errorf("dropped{reason=origin} = %v", v)
	}
	if _, err := NewHub(HubConfig{Auth: e.auth, AllowedOrigins: []string{"crm.example.com"}}); err == nil || !strings.Contains(err.Error(), "allowed_origins[0]") {
		t.Errorf("origin without scheme accepted: %v", err)
	}
}

func TestHubSnapshotThenLiveMessages(t *testing.T) {
	e := startHub(t, nil)
	// The pop exists before the page connects: it must come in the snapshot.
	watcher := e.dial(t, "alice", "")
	readType(t, watcher, TypeSnapshot)
	e.d.HandleCall(ringing("c1", time.Now(), "alice"))
	if env := readType(t, watcher, TypePop); env.CallID != "c1" {
		t.Fatalf("pop for %s", env.CallID)
	}
	c := e.dial(t, "alice", "")
	snap := readType(t, c, TypeSnapshot)
	s := snapshotOf(t, snap)
	if s.Agent.ID != "alice" || s.Agent.Name != "Alice" || len(s.Pops) != 1 || s.Pops[0].CallID != "c1" || s.Pops[0].State != StateRinging || s.Pops[0].Card.Customer == nil {
		t.Fatalf("snapshot: %s", snap.Data)
	}
	e.d.HandleCall(ringing("c2", time.Now(), "alice"))
	pop := readType(t, c, TypePop)
	if pop.CallID != "c2" || pop.Seq != snap.Seq+1 {
		t.Errorf("pop %s seq %d after snapshot seq %d", pop.CallID, pop.Seq, snap.Seq)
	}
	if v := metricValue(t, e.reg, "screenpop_pop_connections", nil); v != 2 {
		t.Errorf("connections = %v", v)
	}
	if v := metricValue(t, e.reg, "screenpop_pop_connected_agents", nil); v != 1 {
		t.Errorf("connected agents = %v", v)
	}
}

func TestAgentsOnlySeeTheirOwnCalls(t *testing.T) {
	e := startHub(t, nil)
	alice1 := e.dial(t, "alice", "")
	alice2 := e.dial(t, "alice", "")
	bob := e.dial(t, "bob", "")
	for _, c := range []*websocket.Conn{alice1, alice2, bob} {
		readType(t, c, TypeSnapshot)
	}
	e.d.HandleCall(ringing("for-bob", time.Now(), "bob"))
	if env := readType(t, bob, TypePop); env.CallID != "for-bob" {
		t.Fatalf("bob got %s", env.CallID)
	}
	e.d.HandleCall(ringing("for-alice", time.Now(), "alice"))
	var seqs []uint64
	for _, c := range []*websocket.Conn{alice1, alice2} {
		env := readType(t, c, TypePop)
		if env.CallID != "for-alice" {
			t.Fatalf("alice got a pop for %s", env.CallID)
		}
		seqs = append(seqs, env.Seq)
	}
	if seqs[0] != seqs[1] {
		t.Errorf("two tabs got seq %v for one message", seqs)
	}
	// Requests about someone else's call are refused like any other
	// foreign call: nothing about bob's call comes back but the refusal.
	if err := alice1.WriteJSON(Request{Type: RequestSelect, CallID: "for-bob", CustomerID: "k-for-bob"}); err != nil {
		t.Fatal(err)
	}
	env := readType(t, alice1, TypeError)
	var ed ErrorData
	json.Unmarshal(env.Data, &ed)
	if ed.Code != "forbidden" || env.Seq != 0 || ed.Request != RequestSelect {
		t.Errorf("select on bob's call: %s seq %d", env.Data, env.Seq)
	}
	if err := alice1.WriteJSON(Request{Type: RequestNote, CallID: "for-bob", Text: "peek", Ref: "x"}); err != nil {
		t.Fatal(err)
	}
	env = readType(t, alice1, TypeError)
	json.Unmarshal(env.Data, &ed)
	if ed.Code != "forbidden" || ed.Ref != "x" {
		t.Errorf("note on bob's call: %s", env.Data)
	}
	// A last message to alice proves everything before it was seen: no
	// message about bob's call reached her tabs.
	e.d.HandleCall(ringing("marker", time.Now(), "alice"))
	for _, c := range []*websocket.Conn{alice2} {
		if env := readType(t, c, TypePop); env.CallID != "marker" {
			t.Errorf("alice's second tab got %s %s", env.Type, env.CallID)
		}
	}
	if env := readType(t, alice1, TypePop); env.CallID != "marker" {
		t.Errorf("alice got %s %s", env.Type, env.CallID)
	}
}

func TestReconnectWithSinceGetsWhatWasMissed(t *testing.T) {
	e := startHub(t, nil)
	watcher := e.dial(t, "alice", "")
	readType(t, watcher, TypeSnapshot)
	c := e.dial(t, "alice", "")
	last := readType(t, c, TypeSnapshot).Seq
	c.Close()
	for i := range 3 {
		e.d.HandleCall(ringing(fmt.Sprint("c", i), time.Now(), "alice"))
		readType(t, watcher, TypePop)
	}
	c = e.dial(t, "alice", fmt.Sprintf("?since=%d", last))
	for i := range 3 {
		env := read(t, c)
		if env.Type != TypePop || env.Seq != last+uint64(i)+1 {
			t.Fatalf("replayed message %d: %s seq %d, want pop seq %d", i, env.Type, env.Seq, last+uint64(i)+1)
		}
	}
	e.d.HandleCall(answered("c0", "alice", time.Now()))
	if env := readType(t, c, TypeAnswered); env.Seq != last+4 {
		t.Errorf("live message after the replay: seq %d, want %d", env.Seq, last+4)
	}
	// Up to date: nothing to replay, the next live message comes first.
	readType(t, watcher, TypeAnswered)
	c.Close()
	c = e.dial(t, "alice", fmt.Sprintf("?since=%d", last+4))
	e.d.HandleCall(ended("c0", "alice", screenpop.OutcomeAnswered, time.Now()))
	if env := readType(t, c, TypeEnded); env.Seq != last+5 {
		t.Errorf("ended seq %d, want %d", env.Seq, last+5)
	}
}

func TestReconnectAcrossAGapGetsASnapshot(t *testing.T) {
	e := startHub(t, func(c *HubConfig) { c.ReplaySize = 2 })
	watcher := e.dial(t, "alice", "")
	last := readType(t, watcher, TypeSnapshot).Seq
	for i := range 3 {
		e.d.HandleCall(ringing(fmt.Sprint("c", i), time.Now(), "alice"))
		readType(t, watcher, TypePop)
	}
	for name, since := range map[string]uint64{
		"ring overflowed":      last,
		"seq never assigned":   last + 100,
		"seq of an old daemon": 42,
	} {
		c := e.dial(t, "alice", fmt.Sprintf("?since=%d", since))
		env := read(t, c)
		if env.Type != TypeSnapshot {
			t.Errorf("%s: got %s, want snapshot", name, env.Type)
			continue
		}
		if env.Seq != last+3 || len(snapshotOf(t, env).Pops) != 3 {
			t.Errorf("%s: snapshot seq %d (want %d) with %s", name, env.Seq, last+3, env.Data)
		}
		c.Close()
	}
	// The last two are still in the ring.
	c := e.dial(t, "alice", fmt.Sprintf("?since=%d", last+1))
	if env := read(t, c); env.Type != TypePop || env.Seq != last+2 {
		t.Errorf("replay from the ring: %s seq %d", env.Type, env.Seq)
	}
}

// TestReplayAfterACallEndedIsCompacted: ReplayEndedAge after a call
// ended, a page that comes back gets what says how the call went, not its
// card: one that saw the pop learns it was answered and ended, one that
// did not gets the same; a call still going on is replayed whole.
func TestReplayAfterACallEndedIsCompacted(t *testing.T) {
	e := startHub(t, func(c *HubConfig) { c.ReplayEndedAge = time.Minute })
	clock := time.Now()
	e.hub.mu.Lock()
	e.hub.now = func() time.Time { return clock }
	e.hub.mu.Unlock()
	watcher := e.dial(t, "alice", "")
	last := readType(t, watcher, TypeSnapshot).Seq
	now := time.Now()
	e.d.HandleCall(ringing("c1", now, "alice"))
	pop := readType(t, watcher, TypePop)
	e.d.HandleCall(answered("c1", "alice", now))
	readType(t, watcher, TypeAnswered)
	e.d.HandleCall(ringing("c2", now, "alice"))
	readType(t, watcher, TypePop)
	e.d.HandleCall(ended("c1", "alice", screenpop.OutcomeAnswered, now))
	readType(t, watcher, TypeEnded)

	replay := func(since uint64, want ...string) *websocket.Conn {
		t.Helper()
		c := e.dial(t, "alice", fmt.Sprintf("?since=%d", since))
		for i, w := range want {
			env := read(t, c)
			if got := env.Type + " " + env.CallID; got != w {
				t.Fatalf("since %d: message %d is %q, want %q", since, i, got, w)
			}
		}
		return c
	}
	replay(last, "pop c1", "answered c1", "pop c2", "ended c1").Close()
	e.hub.mu.Lock()
	clock = clock.Add(time.Minute)
	e.hub.mu.Unlock()
	replay(last, "answered c1", "pop c2", "ended c1").Close()
	c := replay(pop.Seq, "answered c1", "pop c2", "ended c1")
	// Nothing else was replayed: the next message is live.
	e.d.HandleCall(answered("c2", "alice", now))
	readType(t, c, TypeAnswered)
}

// TestIdleAgentIsForgotten: an agent who got no message for ReplayAge
// leaves the hub altogether once no page of theirs is open; a page coming
// back then resumes only if it saw everything, else gets a snapshot, and
// numbers go on above what it saw.
func TestIdleAgentIsForgotten(t *testing.T) {
	e := startHub(t, func(c *HubConfig) { c.ReplayAge = time.Minute })
	clock := time.Now()
	e.hub.mu.Lock()
	e.hub.now = func() time.Time { return clock }
	e.hub.mu.Unlock()
	c := e.dial(t, "alice", "")
	first := readType(t, c, TypeSnapshot)
	e.d.HandleCall(ringing("c1", time.Now(), "alice"))
	pop := readType(t, c, TypePop)
	if v := metricValue(t, e.reg, "screenpop_pop_log_agents", nil); v != 1 {
		t.Errorf("log_agents = %v, want 1", v)
	}
	if v := metricValue(t, e.reg, "screenpop_pop_log_bytes", nil); v < 100 {
		t.Errorf("log_bytes = %v, want the pop's size", v)
	}
	c.Close()
	waitFor(t, "the page to be gone", func() bool { return metricValue(t, e.reg, "screenpop_pop_connections", nil) == 0 })
	if e.hub.AgentName("alice") != "Alice" {
		t.Error("alice's name was forgotten while the log holds her")
	}

	e.hub.mu.Lock()
	clock = clock.Add(time.Minute)
	e.hub.mu.Unlock()
	e.hub.expire()
	e.hub.mu.Lock()
	agents := len(e.hub.agents)
	e.hub.mu.Unlock()
	if agents != 0 || e.hub.AgentName("alice") != "" {
		t.Errorf("%d agents still held after ReplayAge without a message", agents)
	}
	for _, g := range []string{"screenpop_pop_log_agents", "screenpop_pop_log_bytes"} {
		if v := metricValue(t, e.reg, g, nil); v != 0 {
			t.Errorf("%s = %v after alice was forgotten", g, v)
		}
	}

	// She saw everything up to the pop: nothing to replay.
	c = e.dial(t, "alice", fmt.Sprintf("?since=%d", pop.Seq))
	e.d.HandleCall(answered("c1", "alice", time.Now()))
	if env := readType(t, c, TypeAnswered); env.Seq != pop.Seq+1 {
		t.Errorf("answered seq %d, want %d", env.Seq, pop.Seq+1)
	}
	c.Close()
	// A page that missed the pop, which the log forgot meanwhile: a
	// snapshot.
	e.hub.mu.Lock()
	clock = clock.Add(time.Minute)
	e.hub.mu.Unlock()
	e.hub.expire()
	c = e.dial(t, "alice", fmt.Sprintf("?since=%d", first.Seq))
	snap := readType(t, c, TypeSnapshot)
	if s := snapshotOf(t, snap); snap.Seq != pop.Seq+1 || len(s.Pops) != 1 || s.Pops[0].State != StateAnswered {
		t.Errorf("snapshot seq %d (want %d): %s", snap.Seq, pop.Seq+1, snap.Data)
	}
}

func TestSlowBrowserIsDisconnectedWithoutBlockingOthers(t *testing.T) {
	e := startHub(t, func(c *HubConfig) { c.OutboxSize = 4 })
	// The slow tab never reads: once the socket buffers are full (the
	// kernel grows a receive buffer only for a reader), the server's writes
	// to it block and its outbox fills.
	slowDialer := websocket.Dialer{Subprotocols: []string{Subprotocol, BearerSubprotocolPrefix + e.token(t, "alice")}}
	slow, _, err := slowDialer.Dial(e.wsURL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fastAlice := e.dial(t, "alice", "")
	fastBob := e.dial(t, "bob", "")
	readType(t, fastAlice, TypeSnapshot)
	readType(t, fastBob, TypeSnapshot)

	const n = 80
	big := strings.Repeat("x", 256<<10)
	got := make(chan string, 2)
	var wg sync.WaitGroup
	for _, fc := range []struct {
		name string
		c    *websocket.Conn
	}{{"alice", fastAlice}, {"bob", fastBob}} {
		wg.Go(func() {
			for i := range n {
				fc.c.SetReadDeadline(time.Now().Add(patience))
				var env envelope
				if err := fc.c.ReadJSON(&env); err != nil {
					got <- fmt.Sprintf("%s: read %d: %v", fc.name, i, err)
					return
				}
				got <- ""
			}
		})
	}
	// Encoded up front: 20 MiB of JSON under -race is seconds of CPU
	// that a loaded machine must not count against the Hub.
	msgs := make([]Encoded, n)
	for i := range msgs {
		msgs[i] = encode(t, Message{Type: TypePop, CallID: fmt.Sprint("big", i), Data: big})
	}
	delivered := make(chan error, 1)
	go func() {
		for _, m := range msgs {
			// Deliver is what the dispatcher calls with its state locked:
			// it must return whatever the slow tab does.
			e.hub.Deliver("alice", m)
			e.hub.Deliver("bob", m)
			// Pace on the fast tabs so that only the slow one can fall behind.
			for range 2 {
				if msg := <-got; msg != "" {
					delivered <- errors.New(msg)
					return
				}
			}
		}
		delivered <- nil
	}()
	select {
	case err := <-delivered:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(4 * patience):
		// A watchdog, not a timing goal: a Deliver that blocks on the
		// slow tab never returns, and the fast tabs' reads (each within
		// patience) pace the loop.
		t.Fatal("Deliver blocked on a slow browser")
	}
	wg.Wait()
	if v := metricValue(t, e.reg, "screenpop_pop_dropped_connections_total", map[string]string{"reason": "slow"}); v != 1 {
		t.Errorf("dropped{reason=slow} = %v, want 1", v)
	}
	if v := metricValue(t, e.reg, "screenpop_pop_connections", nil); v != 2 {
		t.Errorf("connections = %v, want 2 after the slow one left", v)
	}
	// The slow tab gets what was in flight, then the connection ends.
	slow.SetReadDeadline(time.Now().Add(patience))
	for {
		if _, _, err := slow.NextReader(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code != websocket.CloseTryAgainLater {
				t.Errorf("slow tab closed with %d, want %d", ce.Code, websocket.CloseTryAgainLater)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("slow tab was not disconnected: %v", err)
			}
			break
		}
	}
}

func TestSelectAndNoteOverTheSocket(t *testing.T) {
	e := startHub(t, nil)
	e.b.card = func(ev screenpop.CallEvent) screenpop.Card {
		c := testCard(ev)
		c.Resolution, c.Customer = screenpop.ResolvedAmbiguous, nil
		c.Candidates = []screenpop.Customer{{ID: "k1", Name: "Jane"}, {ID: "k2", Name: "John"}}
		return c
	}
	c := e.dial(t, "alice", "")
	readType(t, c, TypeSnapshot)
	e.d.HandleCall(ringing("c1", time.Now(), "alice"))
	readType(t, c, TypePop)

	c.WriteJSON(Request{Type: RequestSelect, CallID: "c1", CustomerID: "k9"})
	env := readType(t, c, TypeError)
	var ed ErrorData
	json.Unmarshal(env.Data, &ed)
	if ed.Code != "bad_request" || env.CallID != "c1" {
		t.Errorf("select of a non-candidate: %s", env.Data)
	}
	c.WriteJSON(Request{Type: RequestSelect, CallID: "c1", CustomerID: "k2"})
	env = readType(t, c, TypeCard)
	var cd CardData
	json.Unmarshal(env.Data, &cd)
	if cd.Card.Customer == nil || cd.Card.Customer.ID != "k2" || cd.SelectedBy.ID != "alice" {
		t.Errorf("card after select: %s", env.Data)
	}
	c.WriteJSON(Request{Type: RequestNote, CallID: "c1", Text: "Orders 40 pallets", Ref: "n1"})
	env = readType(t, c, TypeNoteSaved)
	var ns NoteSavedData
	json.Unmarshal(env.Data, &ns)
	if ns.Ref != "n1" || ns.Note.Text != "Orders 40 pallets" || ns.Note.Agent != "alice" || env.Seq == 0 {
		t.Errorf("note_saved: %s seq %d", env.Data, env.Seq)
	}
	c.WriteJSON(Request{Type: "shout", CallID: "c1"})
	env = readType(t, c, TypeError)
	json.Unmarshal(env.Data, &ed)
	if ed.Code != "bad_request" || !strings.Contains(ed.Message, "shout") {
		t.Errorf("unknown request: %s", env.Data)
	}
	c.WriteMessage(websocket.TextMessage, []byte("{not json"))
	readType(t, c, TypeError)
}

func TestOversizedMessageClosesTheConnection(t *testing.T) {
	e := startHub(t, func(c *HubConfig) { c.ReadLimit = 1024 })
	c := e.dial(t, "alice", "")
	readType(t, c, TypeSnapshot)
	c.WriteJSON(Request{Type: RequestNote, CallID: "c1", Text: strings.Repeat("x", 2048)})
	c.SetReadDeadline(time.Now().Add(patience))
	_, _, err := c.ReadMessage()
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("connection still open after an oversized message: %v", err)
	}
}

// pingNow does what the ping timer of every page of agentID does when it
// fires.
func (h *Hub) pingNow(agentID string) int {
	h.mu.Lock()
	var conns []*conn
	if b := h.agents[agentID]; b != nil {
		for c := range b.conns {
			conns = append(conns, c)
		}
	}
	h.mu.Unlock()
	for _, c := range conns {
		h.tick(c)
	}
	return len(conns)
}

// TestPingPong: the hub pings on its timer (here the test's calls), a
// browser answering stays, and one that went away without closing is
// dropped. No wall-clock assertion: the ticks are the test's, the pongs
// are known to be handled because the hub reads in order, and the silent
// connection only has to go eventually.
func TestPingPong(t *testing.T) {
	e := startHub(t, nil)
	alive := e.dial(t, "alice", "")
	readType(t, alive, TypeSnapshot)
	pings := make(chan struct{})
	alive.SetPingHandler(func(data string) error {
		err := alive.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(patience))
		pings <- struct{}{}
		return err
	})
	msgs := make(chan envelope)
	go func() {
		defer close(msgs)
		for {
			var env envelope
			if err := alive.ReadJSON(&env); err != nil {
				return
			}
			msgs <- env
		}
	}()
	for i := range 20 {
		if n := e.hub.pingNow("alice"); n != 1 {
			t.Fatalf("ping %d: alice has %d pages attached", i, n)
		}
		select {
		case <-pings:
		case <-time.After(patience):
			t.Fatalf("ping %d never reached the browser", i)
		}
	}
	// A request after the pongs: its answer means the hub read them all,
	// and the connection is still there.
	if err := alive.WriteMessage(websocket.TextMessage, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	select {
	case env, ok := <-msgs:
		if !ok || env.Type != TypeError {
			t.Fatalf("after 20 pings answered: %+v, open %v; want the error reply", env, ok)
		}
	case <-time.After(patience):
		t.Fatal("no reply after the pongs")
	}

	// A browser that went away without closing (no pongs) is dropped once
	// nothing came for PongTimeout, however long the test takes to see it.
	quiet := startHub(t, func(c *HubConfig) {
		c.PingInterval = 10 * time.Millisecond
		c.PongTimeout = 50 * time.Millisecond
	})
	dead := quiet.dial(t, "bob", "")
	readType(t, dead, TypeSnapshot)
	dead.SetPingHandler(func(string) error { return nil })
	dead.SetReadDeadline(time.Now().Add(patience))
	for {
		if _, _, err := dead.NextReader(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("silent connection was not dropped: %v", err)
			}
			break
		}
	}
}

func TestHubCloseDisconnectsAndRefuses(t *testing.T) {
	e := startHub(t, nil)
	c := e.dial(t, "alice", "")
	readType(t, c, TypeSnapshot)
	e.hub.Close()
	c.SetReadDeadline(time.Now().Add(patience))
	_, _, err := c.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Errorf("after Close: %v, want close 1001", err)
	}
	d := websocket.Dialer{Subprotocols: []string{Subprotocol, BearerSubprotocolPrefix + e.token(t, "alice")}}
	if _, resp, err := d.Dial(e.wsURL(""), nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Close: %v %v", err, resp)
	}
	if v := metricValue(t, e.reg, "screenpop_pop_connections", nil); v != 0 {
		t.Errorf("connections = %v", v)
	}
}

func TestPageIsServed(t *testing.T) {
	e := startHub(t, nil)
	for path, want := range map[string]string{"/": "<template id=\"pop-template\">", "/app.js": "screenpop agent page", "/style.css": ".card-section"} {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
	resp, err := http.Get(e.srv.URL + "/nope.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope.js: %d", resp.StatusCode)
	}
	resp, err = http.Get(e.srv.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /ws without upgrade: %d", resp.StatusCode)
	}
}
