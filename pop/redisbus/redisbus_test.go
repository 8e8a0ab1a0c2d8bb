package redisbus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

// cardBuilder is the smallest CardBuilder: the card names the call.
type cardBuilder struct{}

func (cardBuilder) Build(_ context.Context, ev screenpop.CallEvent) screenpop.Card {
	return screenpop.Card{CallID: ev.CallID, Caller: ev.Caller, Phone: ev.Caller.Number, Resolution: screenpop.ResolvedUnknown, BuiltAt: time.Now()}
}

func (cardBuilder) BuildFor(ctx context.Context, ev screenpop.CallEvent, _ string) screenpop.Card {
	return cardBuilder{}.Build(ctx, ev)
}

// daemon is one screenpop daemon as cmd/screenpopd wires it with Redis:
// hub, bus and dispatcher behind an HTTP server.
type daemon struct {
	hub  *pop.Hub
	bus  *Bus
	disp *pop.Dispatcher
	srv  *httptest.Server
}

func startDaemon(t *testing.T, addr, prefix string) *daemon {
	t.Helper()
	return startDaemonWith(t, addr, prefix, cardBuilder{}, nil)
}

// startDaemonWith is startDaemon with a card builder and call recorder of
// the test's choosing.
func startDaemonWith(t *testing.T, addr, prefix string, builder pop.CardBuilder, recorder pop.CallRecorder) *daemon {
	t.Helper()
	return startDaemonConfig(t, addr, prefix, func(c *pop.DispatcherConfig) { c.Builder, c.Recorder = builder, recorder })
}

// startDaemonConfig is startDaemon with the dispatcher's configuration
// tweaked (Builder is cardBuilder unless tweak sets another).
func startDaemonConfig(t *testing.T, addr, prefix string, tweak func(*pop.DispatcherConfig)) *daemon {
	t.Helper()
	return startDaemonOpts(t, addr, prefix, daemonOpts{disp: tweak})
}

// daemonOpts tweak the configurations of a test daemon's parts.
type daemonOpts struct {
	// client, when set, makes the daemon's Redis client (Sentinel).
	client func() redis.UniversalClient
	hub    func(*pop.HubConfig)
	bus    func(*Config)
	disp   func(*pop.DispatcherConfig)
}

// startDaemonOpts is startDaemon with its parts' configurations tweaked.
func startDaemonOpts(t testing.TB, addr, prefix string, opts daemonOpts) *daemon {
	t.Helper()
	auth, err := pop.NewTokenAuth(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	hcfg := pop.HubConfig{Auth: auth}
	if opts.hub != nil {
		opts.hub(&hcfg)
	}
	hub, err := pop.NewHub(hcfg)
	if err != nil {
		t.Fatal(err)
	}
	var client redis.UniversalClient = redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 300 * time.Millisecond,
		ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond, MaxRetries: 1})
	if opts.client != nil {
		client.Close()
		client = opts.client()
	}
	bcfg := Config{Client: client, Hub: hub, KeyPrefix: prefix, HealthInterval: 50 * time.Millisecond,
		ReadBlock: 200 * time.Millisecond, Registerer: prometheus.NewRegistry()}
	if os.Getenv("REDISBUS_TEST_LOG") != "" {
		bcfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("daemon", fmt.Sprintf("%p", hub))
	}
	if opts.bus != nil {
		opts.bus(&bcfg)
	}
	bus, err := New(bcfg)
	if err != nil {
		t.Fatal(err)
	}
	hub.SetShared(bus)
	dcfg := pop.DispatcherConfig{Builder: cardBuilder{}, Deliverer: bus}
	if opts.disp != nil {
		opts.disp(&dcfg)
	}
	disp, err := pop.NewDispatcher(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	hub.SetRequests(disp)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { bus.Run(ctx) })
	wg.Go(func() { disp.Run(ctx) })
	srv := httptest.NewServer(hub.Handler())
	t.Cleanup(func() {
		hub.Close()
		srv.Close()
		cancel()
		wg.Wait()
		client.Close()
	})
	return &daemon{hub: hub, bus: bus, disp: disp, srv: srv}
}

func testPrefix(t *testing.T, client *redis.Client) string {
	prefix := fmt.Sprintf("test:redisbus:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		keys, _ := client.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			client.Del(ctx, keys...)
		}
	})
	return prefix
}

func sharedRedis(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the tests need Redis on 127.0.0.1:6379: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type received struct {
	Type   string          `json:"type"`
	Seq    uint64          `json:"seq"`
	CallID string          `json:"call_id"`
	Data   json.RawMessage `json:"data"`
}

// browser connects agent to d; query is e.g. "since=123".
func browser(t *testing.T, d *daemon, agent, query string) *websocket.Conn {
	t.Helper()
	auth, _ := pop.NewTokenAuth(testSecret)
	tok, err := auth.Issue(agent, "Agent "+agent, []string{"agent"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u := "ws" + strings.TrimPrefix(d.srv.URL, "http") + "/ws"
	if query != "" {
		u += "?" + query
	}
	ws, _, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatalf("dial %s as %s: %v", u, agent, err)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func next(t *testing.T, ws *websocket.Conn) received {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m received
	if err := ws.ReadJSON(&m); err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

func expect(t *testing.T, ws *websocket.Conn, typ, call string) received {
	t.Helper()
	m := next(t, ws)
	if m.Type != typ || m.CallID != call {
		t.Fatalf("got %s for call %q (data %s), want %s for %q", m.Type, m.CallID, m.Data, typ, call)
	}
	return m
}

func ring(call string, agents ...string) screenpop.CallEvent {
	return screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: call, Caller: screenpop.Caller{Number: "+4930123456"},
		Agents: agents, Source: "test", At: time.Now()}
}

func counter(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	(<-ch).Write(&m)
	if m.Counter != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 400 {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// TestThreeDaemons: a call seen by one daemon pops on agents connected to
// the two others, and the answer withdraws it everywhere.
func TestThreeDaemons(t *testing.T) {
	client := sharedRedis(t)
	prefix := testPrefix(t, client)
	a, b, c := startDaemon(t, "127.0.0.1:6379", prefix), startDaemon(t, "127.0.0.1:6379", prefix), startDaemon(t, "127.0.0.1:6379", prefix)
	for _, d := range []*daemon{a, b, c} {
		waitFor(t, "bus up and subscribed to news", func() bool { return d.bus.Ready() == nil && d.bus.subscribed.Load() })
	}
	wa, wb, wc := browser(t, a, "1001", ""), browser(t, b, "1002", ""), browser(t, c, "1003", "")
	for _, ws := range []*websocket.Conn{wa, wb, wc} {
		expect(t, ws, pop.TypeSnapshot, "")
	}
	// Each daemon hears only the news of the agents it watches: wait for
	// those subscriptions too.
	for _, d := range []*daemon{a, b, c} {
		waitFor(t, "subscribed to the news of the agent watched", func() bool { return hearsAll(d.bus) })
	}
	a.disp.HandleCall(ring("call-1", "1001", "1002", "1003"))
	pa, pb, pc := expect(t, wa, pop.TypePop, "call-1"), expect(t, wb, pop.TypePop, "call-1"), expect(t, wc, pop.TypePop, "call-1")
	if pb.Seq == 0 || pc.Seq == 0 || pa.Seq == 0 {
		t.Fatal("pops without seq")
	}
	a.disp.HandleCall(screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: "call-1", Agent: "1002", At: time.Now()})
	expect(t, wa, pop.TypeWithdrawn, "call-1")
	if m := expect(t, wb, pop.TypeAnswered, "call-1"); m.Seq <= pb.Seq {
		t.Fatalf("seq went from %d to %d", pb.Seq, m.Seq)
	}
	expect(t, wc, pop.TypeWithdrawn, "call-1")
	// The counter moves after the script returned, which may be after the
	// browsers read the message.
	waitFor(t, "6 messages through Redis (3 pops, 1 answered, 2 withdrawn)", func() bool {
		return counter(a.bus.metrics.delivered.WithLabelValues(pathRedis)) == 6
	})
	if n := counter(b.bus.metrics.delivered.WithLabelValues(pathRedis)); n != 0 {
		t.Fatalf("daemon b delivered %v messages; it saw no call", n)
	}
	// Subscribed before the call, b and c got a's entries as their news
	// came, not by reading the streams.
	if b.bus.heard.Load() == 0 || c.bus.heard.Load() == 0 {
		t.Errorf("entries handed over as news came: b %d, c %d; want some on each", b.bus.heard.Load(), c.bus.heard.Load())
	}
}

// TestDedupSamePBX: two daemons watching the same PBX apply the same events;
// each agent gets each message once.
func TestDedupSamePBX(t *testing.T) {
	client := sharedRedis(t)
	prefix := testPrefix(t, client)
	a, b := startDaemon(t, "127.0.0.1:6379", prefix), startDaemon(t, "127.0.0.1:6379", prefix)
	for _, d := range []*daemon{a, b} {
		waitFor(t, "bus up", func() bool { return d.bus.Ready() == nil })
	}
	wa, wb := browser(t, a, "2001", ""), browser(t, b, "2002", "")
	expect(t, wa, pop.TypeSnapshot, "")
	expect(t, wb, pop.TypeSnapshot, "")
	// Each daemon builds the card on its own: when its build ends after
	// the other daemon's pop reached the page (through Redis) and after
	// the queue moved on, it never pops the agent who lost the call, so
	// neither withdraws it. Wait for both daemons to have sent every
	// message of a step before the next one: then each sends all six.
	sent := func(d *daemon) float64 {
		return counter(d.bus.metrics.deduplicated) + counter(d.bus.metrics.delivered.WithLabelValues(pathRedis))
	}
	both := func(ev screenpop.CallEvent, total float64) {
		a.disp.HandleCall(ev)
		b.disp.HandleCall(ev)
		waitFor(t, fmt.Sprintf("both daemons to send %v messages", total), func() bool { return sent(a) >= total && sent(b) >= total })
	}
	both(ring("call-1", "2001", "2002"), 2)
	expect(t, wa, pop.TypePop, "call-1")
	expect(t, wb, pop.TypePop, "call-1")
	both(ring("call-1", "2002"), 3) // the queue moves on: 2001 loses it
	expect(t, wa, pop.TypeWithdrawn, "call-1")
	both(ring("call-1", "2001", "2002"), 4)
	expect(t, wa, pop.TypePop, "call-1")
	both(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "call-1", Outcome: screenpop.OutcomeAbandoned, At: time.Now()}, 6)
	expect(t, wa, pop.TypeEnded, "call-1")
	expect(t, wb, pop.TypeEnded, "call-1")
	// A marker seen by one daemon only: had a message of call-1 come twice,
	// the copy would be read before it.
	a.disp.HandleCall(ring("marker", "2001", "2002"))
	expect(t, wa, pop.TypePop, "marker")
	expect(t, wb, pop.TypePop, "marker")
	if n := counter(a.bus.metrics.deduplicated) + counter(b.bus.metrics.deduplicated); n != 6 {
		t.Fatalf("deduplicated = %v, want 6 (every message of call-1, once)", n)
	}
	// Every append Redis answered, appended or found there already, is
	// timed once.
	for name, d := range map[string]*daemon{"a": a, "b": b} {
		waitFor(t, "daemon "+name+"'s appends timed", func() bool {
			n, _ := histogram(d.bus.metrics.appendDelay)
			return n == uint64(sent(d))
		})
		if n, sum := histogram(d.bus.metrics.appendDelay); n < 6 || sum <= 0 {
			t.Errorf("daemon %s: %d appends timed, %v s in all; want every message of call-1 at least, each taking time", name, n, sum)
		}
	}
}

// histogram returns h's sample count and sum.
func histogram(h prometheus.Histogram) (uint64, float64) {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		panic(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// TestResumeOnAnotherDaemon: a browser that leaves one daemon gets what it
// missed from another; one whose since is unknown gets a snapshot.
func TestResumeOnAnotherDaemon(t *testing.T) {
	client := sharedRedis(t)
	prefix := testPrefix(t, client)
	a, b, c := startDaemon(t, "127.0.0.1:6379", prefix), startDaemon(t, "127.0.0.1:6379", prefix), startDaemon(t, "127.0.0.1:6379", prefix)
	for _, d := range []*daemon{a, b, c} {
		waitFor(t, "bus up", func() bool { return d.bus.Ready() == nil })
	}
	ws := browser(t, b, "3001", "")
	expect(t, ws, pop.TypeSnapshot, "")
	a.disp.HandleCall(ring("call-1", "3001"))
	first := expect(t, ws, pop.TypePop, "call-1")
	ws.Close()
	a.disp.HandleCall(ring("call-2", "3001"))
	waitFor(t, "pop appended", func() bool {
		return counter(a.bus.metrics.delivered.WithLabelValues(pathRedis)) == 2
	})
	a.disp.HandleCall(screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: "call-1", Agent: "3001", At: time.Now()})
	waitFor(t, "messages appended", func() bool {
		return counter(a.bus.metrics.delivered.WithLabelValues(pathRedis)) == 3
	})

	ws = browser(t, c, "3001", "since="+strconv.FormatUint(first.Seq, 10))
	m2 := expect(t, ws, pop.TypePop, "call-2")
	m3 := expect(t, ws, pop.TypeAnswered, "call-1")
	if !(first.Seq < m2.Seq && m2.Seq < m3.Seq) {
		t.Fatalf("seqs %d, %d, %d not increasing", first.Seq, m2.Seq, m3.Seq)
	}
	// Live messages follow the replay.
	a.disp.HandleCall(ring("call-3", "3001"))
	expect(t, ws, pop.TypePop, "call-3")
	ws.Close()

	// A since from nowhere: a snapshot of the calls the agent holds.
	ws = browser(t, a, "3001", "since=12345")
	snap := expect(t, ws, pop.TypeSnapshot, "")
	var data pop.SnapshotData
	if err := json.Unmarshal(snap.Data, &data); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range data.Pops {
		got = append(got, p.CallID+":"+p.State)
	}
	if strings.Join(got, ",") != "call-1:answered,call-2:ringing,call-3:ringing" {
		t.Fatalf("snapshot pops = %v", got)
	}
	a.disp.HandleCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "call-2", Outcome: screenpop.OutcomeAbandoned, At: time.Now()})
	if m := expect(t, ws, pop.TypeEnded, "call-2"); m.Seq <= snap.Seq {
		t.Fatalf("message after snapshot has seq %d <= %d", m.Seq, snap.Seq)
	}
}

// TestRedisRestart: Redis killed mid-run; pops keep flowing to the local
// daemon's browsers, readiness and metrics say so; when it comes back
// (empty) everything goes through it again, without restarting the
// daemons: the browser on the other daemon gets, late, the pop it missed,
// and every browser a snapshot holding the calls that still ring.
func TestRedisRestart(t *testing.T) {
	srv := startRedisServer(t)
	a, b := startDaemon(t, srv.addr(), "t:"), startDaemon(t, srv.addr(), "t:")
	for _, d := range []*daemon{a, b} {
		waitFor(t, "bus up", func() bool { return d.bus.Ready() == nil })
	}
	wa, wb := browser(t, a, "4001", ""), browser(t, b, "4002", "")
	expect(t, wa, pop.TypeSnapshot, "")
	expect(t, wb, pop.TypeSnapshot, "")
	a.disp.HandleCall(ring("call-1", "4001", "4002"))
	expect(t, wa, pop.TypePop, "call-1")
	expect(t, wb, pop.TypePop, "call-1")

	srv.kill()
	a.disp.HandleCall(ring("call-2", "4001", "4002"))
	// 4001 is on the daemon that saw the call: it gets it without Redis,
	// once Redis has failed for DownAfter.
	expect(t, wa, pop.TypePop, "call-2")
	// The gauge is set just after the state Ready reads: wait for both.
	waitFor(t, "not ready and screenpop_redis_up 0", func() bool {
		return a.bus.Ready() != nil && b.bus.Ready() != nil && counter(a.bus.metrics.up) == 0
	})
	// The sender hands the held messages over one after the other, then
	// buffers them: 4001's pop may be on its page before 4002's is counted.
	waitFor(t, "both pops of call-2 delivered locally and buffered for Redis", func() bool {
		return counter(a.bus.metrics.delivered.WithLabelValues(pathLocalFallback)) == 2 && counter(a.bus.metrics.buffered) == 2
	})

	srv.start()
	for _, d := range []*daemon{a, b} {
		waitFor(t, "ready again", func() bool { return d.bus.Ready() == nil })
	}
	a.disp.HandleCall(ring("call-3", "4001", "4002"))
	// 4001 got call-2 already (not again); 4002 gets it now. Nobody gets
	// call-1 again, which Redis lost with its data (it is put back: see
	// the snapshot below).
	upTo := func(ws *websocket.Conn, last string) (got []string) {
		t.Helper()
		for {
			m := next(t, ws)
			if m.Type == pop.TypeSnapshot {
				continue
			}
			got = append(got, m.Type+":"+m.CallID)
			if m.CallID == last {
				return got
			}
		}
	}
	if got := upTo(wa, "call-3"); strings.Join(got, " ") != "pop:call-3" {
		t.Errorf("4001 (on the daemon that saw the calls) got %v after the restart", got)
	}
	if got := upTo(wb, "call-3"); strings.Join(got, " ") != "pop:call-2 pop:call-3" {
		t.Errorf("4002 (on the other daemon) got %v after the restart", got)
	}
	// A page opening now gets every call still ringing, from Redis.
	snap := expect(t, browser(t, b, "4001", ""), pop.TypeSnapshot, "")
	var d pop.SnapshotData
	json.Unmarshal(snap.Data, &d)
	var calls []string
	for _, p := range d.Pops {
		calls = append(calls, p.CallID)
	}
	if strings.Join(calls, ",") != "call-1,call-2,call-3" {
		t.Errorf("snapshot after the restart: %v", calls)
	}
	if n := counter(a.bus.metrics.resyncs.WithLabelValues(causeDataLost)); n != 1 {
		t.Errorf("daemon a counted %v resyncs for lost data, want 1", n)
	}
}

// TestDedupNamesForgottenAtEnd: a message's name is the n-th of its type
// for its agent and call (the same on every daemon, as before), and a
// daemon forgets a call's counters once it named the call's end for the
// agent: a busy hour keeps the live calls' counters, not every call's for
// DedupTTL.
func TestDedupNamesForgottenAtEnd(t *testing.T) {
	newBus := func() *Bus {
		bus, err := New(Config{Client: redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), Hub: &countingHub{}, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		return bus
	}
	msg := func(typ, part string) pop.Encoded {
		return pop.Encoded{Type: typ, CallID: "pbx/c1", Part: part}
	}
	want := func(rest string) string {
		sum := sha256.Sum256([]byte("a1\x00pbx/c1\x00" + rest))
		return hex.EncodeToString(sum[:16])
	}
	a, b := newBus(), newBus()
	steps := []struct {
		m    pop.Encoded
		name string
	}{
		{msg(pop.TypePop, ""), want("pop\x00\x001")},
		{msg(pop.TypeSection, "sales"), want("section\x00sales\x001")},
		{msg(pop.TypeWithdrawn, ""), want("withdrawn\x00\x001")},
		{msg(pop.TypePop, ""), want("pop\x00\x002")},
		{msg(pop.TypeEnded, ""), want("ended\x00\x001")},
	}
	for i, s := range steps {
		na, nb := a.dedupName("a1", s.m), b.dedupName("a1", s.m)
		if na != s.name || nb != s.name {
			t.Fatalf("step %d (%s %s): named %s and %s, want %s", i, s.m.Type, s.m.Part, na, nb, s.name)
		}
	}
	if n := a.ordinals.len(); n != 0 {
		t.Fatalf("%d calls' counters kept after the end", n)
	}
	// Another agent's counters of the same call stay until its own end.
	a.dedupName("a2", msg(pop.TypePop, ""))
	a.dedupName("a1", msg(pop.TypeEnded, ""))
	if n := a.ordinals.len(); n != 1 {
		t.Fatalf("%d calls' counters kept, want a2's", n)
	}
}
