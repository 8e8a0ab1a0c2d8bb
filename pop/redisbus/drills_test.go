package redisbus

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
)

// Drills: calls flow through two daemons sharing a Redis of the test's
// own, with agents' browsers on both, while Redis fails in one of the ways
// production sees. Each drill then checks what every browser got: exactly
// one pop per ring (or the call in a snapshot, never twice), an end for
// every ring (ended, withdrawn, or gone from a snapshot), and no call
// coming back once its browser was told it was over.

// pageLog is what one browser got.
type pageLog struct {
	mu       sync.Mutex
	pops     map[string]int  // call -> pop messages
	seen     map[string]bool // call -> shown (pop, or in a snapshot)
	over     map[string]bool // call -> ended, or withdrawn from this agent
	cameBack []string        // a call shown again after it was over
	snaps    int
	snapAt   []time.Time // when each snapshot came
	err      error
	trail    []string // every message, for a failure's report
}

func (l *pageLog) add(m received) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trail = append(l.trail, fmt.Sprintf("%s:%s@%d", m.Type, m.CallID, m.Seq))
	show := func(call, how string) {
		if l.over[call] {
			l.cameBack = append(l.cameBack, how+" "+call)
		}
		l.seen[call] = true
	}
	switch m.Type {
	case pop.TypeSnapshot:
		// A snapshot replaces what the page shows: a call it shows that
		// the snapshot does not hold is over for the page.
		l.snaps++
		l.snapAt = append(l.snapAt, time.Now())
		var d pop.SnapshotData
		json.Unmarshal(m.Data, &d)
		in := map[string]bool{}
		for _, p := range d.Pops {
			in[p.CallID] = true
			show(p.CallID, "snapshot with")
		}
		for call := range l.seen {
			if !in[call] {
				l.over[call] = true
			}
		}
	case pop.TypePop:
		show(m.CallID, "pop of")
		l.pops[m.CallID]++
	case pop.TypeEnded, pop.TypeWithdrawn:
		l.over[m.CallID] = true
	}
}

// drillPage connects agent to d and records everything it gets.
func drillPage(t *testing.T, d *daemon, agent string) *pageLog {
	ws := browser(t, d, agent, "")
	l := &pageLog{pops: map[string]int{}, seen: map[string]bool{}, over: map[string]bool{}}
	go func() {
		for {
			ws.SetReadDeadline(time.Now().Add(time.Minute))
			var m received
			if err := ws.ReadJSON(&m); err != nil {
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
				return
			}
			l.add(m)
		}
	}()
	return l
}

// drillCall is one call of the drill: who it rings, who answers.
type drillCall struct {
	id       string
	rungAt   time.Time
	agents   []string
	answerer string // "" : rings until it ends
	both     bool   // both daemons watch its PBX (de-duplicated in Redis)
}

// runDrill runs calls for before, then fault (which returns when Redis is
// back), then calls for after; then ends every call and checks each
// browser. It returns the two daemons for the drill's own checks.
func runDrill(t *testing.T, before, after time.Duration, fault func(*redisServer)) (*daemon, *daemon) {
	if testing.Short() {
		t.Skip("drills take seconds")
	}
	srv := startRedisServer(t)
	return runDrillOn(t, srv.addr(), nil, before, after, func(*daemon, *daemon) { fault(srv) })
}

// runDrillOn is runDrill on the Redis at addr, or the one client finds.
func runDrillOn(t *testing.T, addr string, client func() redis.UniversalClient, before, after time.Duration, fault func(a, b *daemon)) (*daemon, *daemon) {
	// A drill packs hours of a call centre into seconds: an agent gets a
	// message every 40ms, and a page may be sent seconds of them at once
	// when Redis is taken for down. The outbox must hold them.
	opts := daemonOpts{client: client, hub: func(c *pop.HubConfig) { c.OutboxSize = 4096 }}
	a, b := startDaemonOpts(t, addr, "drill:", opts), startDaemonOpts(t, addr, "drill:", opts)
	for _, d := range []*daemon{a, b} {
		waitFor(t, "bus up", func() bool { return d.bus.Ready() == nil })
	}
	// Agents 1 and 2 have their browsers on daemon a, 3 and 4 on daemon b.
	agents := []string{"d1", "d2", "d3", "d4"}
	pages := map[string]*pageLog{}
	for i, ag := range agents {
		d := a
		if i >= 2 {
			d = b
		}
		pages[ag] = drillPage(t, d, ag)
	}
	waitFor(t, "every page's first snapshot", func() bool {
		for _, l := range pages {
			l.mu.Lock()
			n := l.snaps
			l.mu.Unlock()
			if n == 0 {
				return false
			}
		}
		return true
	})

	var calls []drillCall
	send := func(c drillCall, ev screenpop.CallEvent) {
		a.disp.HandleCall(ev)
		if c.both {
			b.disp.HandleCall(ev)
		}
	}
	// Each step rings a new call (one agent on each daemon), answers the
	// call of three steps before (every other call), and ends the call of
	// eight steps before: some calls ring across the fault, some start or
	// end inside it.
	step := func(i int) {
		c := drillCall{id: fmt.Sprint("call-", i), agents: []string{agents[i%2], agents[2+(i/2)%2]}, both: i%3 == 0}
		if i%2 == 0 {
			c.answerer = c.agents[i%4/2]
		}
		c.rungAt = time.Now()
		calls = append(calls, c)
		send(c, ring(c.id, c.agents...))
		if j := i - 3; j >= 0 && calls[j].answerer != "" {
			send(calls[j], screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: calls[j].id, Agent: calls[j].answerer, At: time.Now()})
		}
		if j := i - 8; j >= 0 {
			send(calls[j], screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: calls[j].id, Outcome: screenpop.OutcomeAnswered, At: time.Now()})
		}
	}
	i := 0
	run := func(d time.Duration) {
		for end := time.Now().Add(d); time.Now().Before(end); i++ {
			step(i)
			time.Sleep(40 * time.Millisecond)
		}
	}
	run(before)
	faultFrom := time.Now()
	faulted := make(chan struct{})
	go func() {
		defer close(faulted)
		fault(a, b)
	}()
	for {
		select {
		case <-faulted:
		default:
			run(40 * time.Millisecond)
			continue
		}
		break
	}
	faultTo := time.Now()
	run(after)
	for j := max(0, i-8); j < i; j++ {
		send(calls[j], screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: calls[j].id, Outcome: screenpop.OutcomeAbandoned, At: time.Now()})
	}

	// Every browser must be told every call it rang for is over.
	rang := map[string][]string{}
	rungAt := map[string]time.Time{}
	for _, c := range calls {
		rungAt[c.id] = c.rungAt
		for _, ag := range c.agents {
			rang[ag] = append(rang[ag], c.id)
		}
	}
	// covered: the ring came about the fault, when Redis may lose what it
	// took before any reader read it, and a snapshot came after it (and did
	// not hold the call, or it would be shown): the page's state after it is
	// right, though the ring never showed.
	covered := func(l *pageLog, id string) bool {
		at := rungAt[id]
		if at.Before(faultFrom.Add(-time.Second)) || at.After(faultTo.Add(time.Second)) {
			return false
		}
		for _, s := range l.snapAt[1:] {
			if s.After(at) {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(time.Minute)
	for _, ag := range agents {
		l := pages[ag]
		for {
			l.mu.Lock()
			missing := []string{}
			for _, id := range rang[ag] {
				if !l.over[id] && (l.seen[id] || !covered(l, id)) {
					missing = append(missing, id)
				}
			}
			err := l.err
			l.mu.Unlock()
			if len(missing) == 0 {
				break
			}
			if err != nil || time.Now().After(deadline) {
				for _, d := range []*daemon{a, b} {
					d.bus.mu.Lock()
					w := d.bus.watching[ag]
					d.bus.mu.Unlock()
					if w == nil {
						continue
					}
					es, _ := d.bus.client.XRevRangeN(context.Background(), w.keys.stream, "+", "-", 3).Result()
					meta, _ := d.bus.client.HGetAll(context.Background(), w.keys.meta).Result()
					t.Logf("%s: pos %d serving %v state %d stream top %v meta %v", ag, w.pos, d.bus.serving(), d.bus.state.Load(), es, meta)
				}
				l.mu.Lock()
				t.Logf("%s got %d messages: %v", ag, len(l.trail), l.trail)
				l.mu.Unlock()
				t.Fatalf("%s was never told %d calls ended (%v), err %v", ag, len(missing), missing[:min(5, len(missing))], err)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	total := 0
	for _, ag := range agents {
		l := pages[ag]
		l.mu.Lock()
		var twice, never, inSnapshot, passed []string
		for _, id := range rang[ag] {
			switch {
			case l.pops[id] > 1:
				twice = append(twice, id)
			case l.pops[id] == 0 && !l.seen[id] && covered(l, id):
				passed = append(passed, id)
			case l.pops[id] == 0 && !l.seen[id]:
				never = append(never, id)
			case l.pops[id] == 0:
				inSnapshot = append(inSnapshot, id)
			}
		}
		sort.Strings(l.cameBack)
		if len(twice) > 0 || len(never) > 0 || len(l.cameBack) > 0 {
			t.Errorf("%s: %d rings: popped twice %v, never shown %v, shown again after their end %v",
				ag, len(rang[ag]), twice, never, l.cameBack)
		}
		if len(inSnapshot)+len(passed) > 0 {
			t.Logf("%s: rings Redis lost before this daemon read them, put right by a snapshot: shown %v, over by then %v", ag, inSnapshot, passed)
		}
		total += len(rang[ag])
		l.mu.Unlock()
	}
	t.Logf("%d calls, %d rings checked", len(calls), total)
	return a, b
}

// TestDrillRedisKilled: Redis is killed (SIGKILL) for several seconds,
// well past DownAfter, and comes back empty.
func TestDrillRedisKilled(t *testing.T) {
	a, b := runDrill(t, time.Second, 2*time.Second, func(srv *redisServer) {
		srv.kill()
		time.Sleep(4 * time.Second)
		srv.start()
	})
	for _, d := range []*daemon{a, b} {
		if counter(d.bus.metrics.delivered.WithLabelValues(pathLocalFallback)) == 0 {
			t.Error("a daemon never took Redis for down")
		}
		if counter(d.bus.metrics.dropped.WithLabelValues(dropBufferFull)) != 0 {
			t.Error("messages dropped from the outage buffer")
		}
	}
}

// TestDrillRedisRestartedEmpty: Redis restarts at once, empty, sooner than
// DownAfter: nothing falls back, but the daemons must notice the data is
// gone and put back the calls still ringing.
func TestDrillRedisRestartedEmpty(t *testing.T) {
	a, b := runDrill(t, 1500*time.Millisecond, 2*time.Second, func(srv *redisServer) {
		srv.kill()
		srv.start()
	})
	lost := counter(a.bus.metrics.resyncs.WithLabelValues(causeDataLost)) + counter(b.bus.metrics.resyncs.WithLabelValues(causeDataLost)) +
		counter(a.bus.metrics.resyncs.WithLabelValues(causeRecovered)) + counter(b.bus.metrics.resyncs.WithLabelValues(causeRecovered))
	if lost < 2 {
		t.Errorf("%v resyncs after Redis lost its data, want one per daemon at least", lost)
	}
}

// TestDrillRedisStalls: Redis freezes (SIGSTOP) three times for 700ms,
// longer than the client's 300ms read timeout and shorter than DownAfter:
// pops are late, nothing falls back, nothing is lost or doubled.
func TestDrillRedisStalls(t *testing.T) {
	a, b := runDrill(t, time.Second, time.Second, func(srv *redisServer) {
		for range 3 {
			srv.pause()
			time.Sleep(700 * time.Millisecond)
			srv.resume()
			time.Sleep(500 * time.Millisecond)
		}
	})
	for name, d := range map[string]*daemon{"a": a, "b": b} {
		if n := counter(d.bus.metrics.delivered.WithLabelValues(pathLocalFallback)); n != 0 {
			t.Errorf("daemon %s fell back for %v messages during stalls shorter than DownAfter", name, n)
		}
		if n := counter(d.bus.metrics.resyncs.WithLabelValues(causeRecovered)); n != 0 {
			t.Errorf("daemon %s took Redis for down %v times", name, n)
		}
	}
	if counter(a.bus.metrics.retries)+counter(b.bus.metrics.retries) == 0 {
		t.Log("no append was retried: the stalls fell between appends")
	}
}

var _ = strings.Join
var _ = websocket.TextMessage
