package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/historytest"
	hpostgres "github.com/screenpop/screenpop/history/postgres"
	"github.com/screenpop/screenpop/pop"
)

const historyCTIToken = "cti-token-0123456789"

// historyDaemon runs a whole daemon on the demo configuration whose calls
// come from the http telephony entry "cti" (posted by the test), whose
// history is the PostgreSQL of dsn, and, with prefix, shares a Redis.
func historyDaemon(t *testing.T, name, dsn, prefix string) *Main {
	t.Helper()
	cfg := daemonConfig(t, prefix, `[{name: cti, type: http, tokens_env: CTI}]`)
	cfg.History = history.Config{Type: history.TypePostgres, DSNEnv: "HISTORY_DSN",
		Dispositions: []history.Disposition{{Code: "order", Label: "Order placed"}, {Code: "info", Label: "Information only"}}}
	cfg.History.ApplyDefaults()
	env := map[string]string{"SECRET": strings.Repeat("s", 40), "CTI": historyCTIToken, "HISTORY_DSN": dsn}
	m := runMain(t, cfg, Options{Env: func(k string) string { return env[k] }, Stderr: io.Discard, Daemon: name})
	// Ready (Redis too), the history migrated: calls find their tables.
	waitReady(t, "http://"+m.Addr().String())
	waitUntilOK(t, name+"'s history migrated and up", func() error {
		if _, body := readyz(t, m); !strings.Contains(body, "history (postgres): ok") {
			return errors.New(body)
		}
		return nil
	})
	return m
}

// postEvents posts call events to a daemon's cti endpoint, as a PBX does.
func postEvents(t *testing.T, m *Main, events ...map[string]any) {
	t.Helper()
	body, _ := json.Marshal(events)
	req, _ := http.NewRequest(http.MethodPost, "http://"+m.Addr().String()+"/api/v1/call-events/cti", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+historyCTIToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("posting events: %s %s", resp.Status, b)
	}
}

func ringEvent(callID, number string, agents ...string) map[string]any {
	return map[string]any{"event": "ringing", "call_id": callID, "caller": map[string]any{"number": number}, "did": "+493090182000", "agents": agents}
}

// nextOf reads messages until one of type typ for the call (skipping the
// hello, snapshots and other calls' messages).
func nextOf(t *testing.T, c *websocket.Conn, callID, typ string) envelope {
	t.Helper()
	return nextOfAny(t, c, callID, typ)
}

// nextOfAny reads until a message of one of types about callID.
func nextOfAny(t *testing.T, c *websocket.Conn, callID string, types ...string) envelope {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		var env envelope
		if err := c.ReadJSON(&env); err != nil {
			t.Fatalf("waiting for %v of %s: %v", types, callID, err)
		}
		if env.CallID == callID && slices.Contains(types, env.Type) {
			return env
		}
	}
}

// historyReader opens the PostgreSQL history for the test's own reads.
func historyReader(t *testing.T, dsn string) *hpostgres.Store {
	t.Helper()
	s, err := hpostgres.New(history.Config{Type: history.TypePostgres}, dsn, history.Options{Daemon: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitUntilOK polls cond until it returns nil.
func waitUntilOK(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func popCard(t *testing.T, env envelope) screenpop.Card {
	t.Helper()
	var data pop.PopData
	if err := json.Unmarshal(env.Data, &data); err != nil {
		t.Fatal(err)
	}
	return data.Card
}

// Two daemons on one Redis and one PostgreSQL: a call both see (both watch
// the same PBX) is stored once, by both; a note written through one is in
// the history the other shows; each card, whichever daemon built it, has
// the same history, by number and by customer.
func TestTwoDaemonsShareOneHistory(t *testing.T) {
	dsn := historytest.PostgresSchema(t, historytest.TestDSN)
	prefix := "screenpop-test-" + randomHex(t) + ":"
	t.Cleanup(func() { cleanRedis(t, prefix) })
	a := historyDaemon(t, "daemon-a", dsn, prefix)
	b := historyDaemon(t, "daemon-b", dsn, prefix)
	reader := historyReader(t, dsn)
	alice := dialAgent(t, b, "1001")
	// The socket is upgraded before the daemon attaches it to the shared
	// stream; its hello comes after. A ring before that reaches the page
	// in its snapshot, not as a pop message (pop/redisbus
	// TestRingWhileConnecting), and this test reads pop messages.
	nextOfAny(t, alice, "", pop.TypeHello)

	// Brandt Metallbau (C-10001) calls; both daemons see the call (both
	// watch the PBX): each event reaches both, the agent's page gets each
	// message once.
	step := func(event map[string]any, typ string) {
		t.Helper()
		postEvents(t, a, event)
		postEvents(t, b, event)
		nextOf(t, alice, "cti/call-1", typ)
	}
	// The page's messages may come from the other daemon (through Redis)
	// before this daemon's dispatcher took the same event: a request it
	// refuses for that reason is sent again, a bounded number of times.
	request := func(req pop.Request, typ string) {
		t.Helper()
		for attempt := 1; ; attempt++ {
			if err := alice.WriteJSON(req); err != nil {
				t.Fatal(err)
			}
			env := nextOfAny(t, alice, req.CallID, typ, pop.TypeError)
			if env.Type == typ {
				return
			}
			if attempt == 50 {
				t.Fatalf("%s refused 50 times: %s", req.Type, env.Data)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	step(ringEvent("call-1", "+49301234567", "1001"), "pop")
	step(map[string]any{"event": "answered", "call_id": "call-1", "agent": "1001"}, "answered")
	request(pop.Request{Type: pop.RequestNote, CallID: "cti/call-1", Text: "Wants a quote for 40 gates", Ref: "n1"}, "note_saved")
	step(map[string]any{"event": "ended", "call_id": "call-1", "agent": "1001", "outcome": "answered"}, "ended")
	request(pop.Request{Type: pop.RequestWrapUp, CallID: "cti/call-1", Code: "order", Ref: "w1"}, "wrapped_up")

	// One row, recorded by both.
	waitUntilOK(t, "the call recorded by both daemons", func() error {
		c, err := reader.Call(context.Background(), "cti/call-1")
		if err != nil {
			return err
		}
		if !slices.Equal(c.Daemons, []string{"daemon-a", "daemon-b"}) || c.CustomerID != "C-10001" || c.AnsweredBy != "1001" ||
			c.Outcome != screenpop.OutcomeAnswered || !slices.Equal(c.Rung, []string{"1001"}) || c.DID != "+493090182000" || c.PopAt.IsZero() {
			return fmt.Errorf("recorded %+v", c)
		}
		return nil
	})
	r, err := reader.Lookup(context.Background(), history.Query{CustomerID: "C-10001", Limit: 10})
	if err != nil || len(r.Calls) != 1 || r.Last30Days != 1 {
		t.Fatalf("the customer's calls: %+v (%d in 30 days), %v", r.Calls, r.Last30Days, err)
	}

	// The customer calls from another phone; only daemon A sees it: its
	// card has the first call, with B's note and the wrap-up.
	postEvents(t, a, ringEvent("call-2", "+493012345670", "1001"))
	card := completeCard(t, alice, nextOf(t, alice, "cti/call-2", "pop"))
	if len(card.History) != 1 || card.History[0].CallID != "cti/call-1" || card.History[0].AgentName != "Alice Agent" ||
		card.History[0].DispositionLabel != "Order placed" || len(card.History[0].Notes) != 1 || card.History[0].Notes[0].Text != "Wants a quote for 40 gates" ||
		card.CallsLast30Days == nil || *card.CallsLast30Days != 1 {
		t.Fatalf("daemon A's card: history %+v, last 30 days %v", card.History, card.CallsLast30Days)
	}
	postEvents(t, a, map[string]any{"event": "ended", "call_id": "call-2", "outcome": "abandoned"})
	nextOf(t, alice, "cti/call-2", "ended")
	waitUntilOK(t, "call-2 recorded", func() error {
		_, err := reader.Call(context.Background(), "cti/call-2")
		return err
	})

	// The first number again, seen by B only: the same history.
	postEvents(t, b, ringEvent("call-3", "+49301234567", "1001"))
	card = completeCard(t, alice, nextOf(t, alice, "cti/call-3", "pop"))
	if len(card.History) != 2 || card.History[0].CallID != "cti/call-2" || card.History[1].CallID != "cti/call-1" ||
		card.CallsLast30Days == nil || *card.CallsLast30Days != 2 {
		t.Fatalf("daemon B's card: history %+v, last 30 days %v", card.History, card.CallsLast30Days)
	}

	// Each daemon logged the cards it delivered.
	waitUntilOK(t, "both daemons in the access log", func() error {
		entries, err := reader.AccessLog(context.Background(), history.AccessQuery{CustomerID: "C-10001"})
		if err != nil {
			return err
		}
		// A card sent in steps is logged step by step: its first entry
		// may name no section (all still loading), the complete card's
		// names them all.
		by := map[string]bool{}
		for _, e := range entries {
			if e.Agent != "1001" || e.PhoneHash == "" {
				return fmt.Errorf("entry %+v", e)
			}
			if len(e.Sections) > 0 {
				by[e.Daemon] = true
			}
		}
		if !by["daemon-a"] || !by["daemon-b"] {
			return fmt.Errorf("entries by %v", by)
		}
		return nil
	})
}

// tcpProxy stands between the daemon and PostgreSQL, so that a test can
// take PostgreSQL away (every connection cut, new ones refused) and bring
// it back on the same address.
type tcpProxy struct {
	target, addr string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{target: target, addr: "127.0.0.1:0"}
	p.up(t)
	p.addr = p.ln.Addr().String()
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) up(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// readyz returns /readyz's status and body.
func readyz(t *testing.T, m *Main) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + m.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The drill: PostgreSQL goes away mid-shift. Pops keep coming, notes are
// refused (the page keeps the text), /readyz and the metrics say the
// history is down without taking the daemon out of the load balancer, and
// the calls and card deliveries of the outage are written once
// PostgreSQL is back.
func TestHistoryDownMidShift(t *testing.T) {
	dsn := historytest.PostgresSchema(t, historytest.TestDSN)
	proxy := startProxy(t, "127.0.0.1:5432")
	viaProxy := strings.Replace(dsn, "127.0.0.1:5432", proxy.addr, 1)
	m := historyDaemon(t, "daemon-a", viaProxy, "")
	reader := historyReader(t, dsn)
	alice := dialAgent(t, m, "1001")
	// As in TestTwoDaemonsShareOneHistory: a ring before the page is attached
	// reaches it in its snapshot, not as the pop message read below. The
	// hello comes once it is attached.
	nextOfAny(t, alice, "", pop.TypeHello)

	proxy.down()
	for i := range 3 {
		id := fmt.Sprintf("down-%d", i)
		postEvents(t, m, ringEvent(id, "+49301234567", "1001"))
		nextOf(t, alice, "cti/"+id, "pop")
		postEvents(t, m, map[string]any{"event": "answered", "call_id": id, "agent": "1001"})
		nextOf(t, alice, "cti/"+id, "answered")
		postEvents(t, m, map[string]any{"event": "ended", "call_id": id, "agent": "1001", "outcome": "answered"})
		nextOf(t, alice, "cti/"+id, "ended")
	}
	waitUntilOK(t, "/readyz saying the history is down, the daemon still ready", func() error {
		code, body := readyz(t, m)
		if code != http.StatusOK || !strings.Contains(body, "history (postgres): DOWN: history postgres unreachable since") ||
			!strings.Contains(body, "pops still flow") {
			return fmt.Errorf("%d %s", code, body)
		}
		return nil
	})
	if up := metricValue(t, m, "screenpop_history_up"); up != 0 {
		t.Errorf("screenpop_history_up = %v while PostgreSQL is away", up)
	}
	if q := metricValue(t, m, "screenpop_history_queued_writes"); q < 3 {
		t.Errorf("screenpop_history_queued_writes = %v, want the outage's writes", q)
	}
	// A note cannot be confirmed: refused after the request's deadline.
	alice.WriteJSON(pop.Request{Type: pop.RequestNote, CallID: "cti/down-0", Text: "not now", Ref: "n"})
	var refusal pop.ErrorData
	if err := json.Unmarshal(nextOf(t, alice, "cti/down-0", "error").Data, &refusal); err != nil || refusal.Code != "unavailable" || refusal.Request != "note" {
		t.Errorf("note while PostgreSQL is away: %+v, %v", refusal, err)
	}

	proxy.up(t)
	waitUntilOK(t, "the outage's writes in PostgreSQL", func() error {
		for i := range 3 {
			c, err := reader.Call(context.Background(), fmt.Sprintf("cti/down-%d", i))
			if err != nil {
				return err
			}
			if c.Outcome != screenpop.OutcomeAnswered || c.CustomerID != "C-10001" {
				return fmt.Errorf("recorded %+v", c)
			}
		}
		entries, err := reader.AccessLog(context.Background(), history.AccessQuery{Agent: "1001"})
		if err != nil {
			return err
		}
		if len(entries) < 3 {
			return fmt.Errorf("%d access entries", len(entries))
		}
		return nil
	})
	if notes, err := reader.Notes(context.Background(), "cti/down-0"); err != nil || len(notes) != 0 {
		t.Errorf("the refused note was written: %+v, %v", notes, err)
	}
	waitUntilOK(t, "/readyz saying the history is up again", func() error {
		if _, body := readyz(t, m); !strings.Contains(body, "history (postgres): ok (0 write(s) queued)") {
			return errors.New(body)
		}
		return nil
	})
}

// metricValue reads a gauge, or a counter, of the daemon's registry
// (its first series).
func metricValue(t *testing.T, m *Main, name string) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			if g := mf.GetMetric()[0].GetGauge(); g != nil {
				return g.GetValue()
			}
			if c := mf.GetMetric()[0].GetCounter(); c != nil {
				return c.GetValue()
			}
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
