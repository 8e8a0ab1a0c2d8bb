package floor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator/rediscache"
	"github.com/screenpop/screenpop/pop"
)

const testRedis = "127.0.0.1:6379"

// testShare is a RedisShare under a prefix of its own, removed when the
// test ends.
func testShare(t *testing.T, sealer Sealer) (*RedisShare, redis.UniversalClient, string) {
	t.Helper()
	client := redis.NewClient(&redis.Options{Addr: testRedis})
	if err := client.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis at %s (make test starts it): %v", testRedis, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	prefix := "screenpop-floor-test-" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
		client.Close()
	})
	s, err := NewRedisShare(client, prefix, sealer)
	if err != nil {
		t.Fatal(err)
	}
	return s, client, prefix
}

func testKeyring(t *testing.T) *rediscache.Keyring {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	k, err := rediscache.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Views stand for their TTL, sealed; the day's counts take a call once
// however many daemons add it, each with what it knew.
func TestRedisShare(t *testing.T) {
	s, client, prefix := testShare(t, testKeyring(t))
	ctx := context.Background()
	a := DaemonView{ID: "a#1", Daemon: "a", At: t0, Pages: []string{"alice"}, Calls: []CallView{{ID: "pbx/1", Caller: "+*******456"}}}
	if err := s.Publish(ctx, a, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctx, DaemonView{ID: "b#2", Daemon: "b"}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	views, err := s.Views(ctx)
	if err != nil || len(views) != 2 {
		t.Fatalf("views: %+v %v", views, err)
	}
	// Sealed: neither the agent nor the masked caller is in Redis in clear.
	raw, err := client.Get(ctx, prefix+"{floor}:v:a#1").Result()
	if err != nil || strings.Contains(raw, "alice") || strings.Contains(raw, "456") {
		t.Errorf("the view in Redis: %q %v", raw, err)
	}
	time.Sleep(100 * time.Millisecond) // b's view expires; a wall-clock wait, no assertion on it
	views, err = s.Views(ctx)
	if err != nil || len(views) != 1 || views[0].ID != "a#1" || views[0].Pages[0] != "alice" {
		t.Fatalf("views after b's expired: %+v %v", views, err)
	}

	// Two daemons add the same calls at once.
	var wg sync.WaitGroup
	for d := range 2 {
		wg.Go(func() {
			recs := []Record{
				{Day: "2026-03-04", CallID: "c1", Flags: FlagAnswered | FlagInTime},
				{Day: "2026-03-04", CallID: "c2", Flags: FlagAbandoned | FlagEnded},
			}
			if d == 1 {
				recs[0].Flags |= FlagPopped | FlagEnded // d1 heard the acknowledgement
			}
			if err := s.Add(ctx, recs); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.Counts(ctx, "2026-03-04")
	if want := (Counts{Answered: 1, InTime: 1, Popped: 1, Abandoned: 1, Ended: 2}); err != nil || got != want {
		t.Errorf("counts: %+v %v, want %+v", got, err, want)
	}
	if ttl := client.PTTL(ctx, prefix+"{floor}:d:2026-03-04:n").Val(); ttl <= 47*time.Hour {
		t.Errorf("the day's counts expire in %s, want 48h", ttl)
	}
	if got, _ := s.Counts(ctx, "2026-03-05"); got != (Counts{}) {
		t.Errorf("another day: %+v", got)
	}
}

// Acknowledgements reach every daemon listening, sealed; one that does
// not open is counted as bad and skipped.
func TestRedisShareAcks(t *testing.T) {
	s, client, prefix := testShare(t, testKeyring(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan Ack, 4)
	bad := make(chan struct{}, 4)
	done := make(chan error, 1)
	go func() { done <- s.Acks(ctx, func(a Ack) { got <- a }, func() { bad <- struct{}{} }) }()
	// Published until the subscription hears one: it starts asynchronously.
	want := Ack{From: "a#1", Agent: "alice", CallID: "pbx/1", Stage: pop.StageShown, At: t0}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for heard := false; !heard; {
		if err := s.PublishAck(ctx, want); err != nil {
			t.Fatal(err)
		}
		select {
		case a := <-got:
			if a != want {
				t.Fatalf("heard %+v, want %+v", a, want)
			}
			heard = true
		case <-tick.C:
		case <-time.After(10 * time.Second):
			t.Fatal("no acknowledgement heard")
		}
	}
	client.Publish(ctx, prefix+"floor:acks", "not sealed")
	select {
	case <-bad:
	case <-time.After(10 * time.Second):
		t.Fatal("a message that does not open was not reported")
	}
	cancel()
	<-done
}

// fakePages are agent pages connected to a daemon.
type fakePages struct {
	mu    sync.Mutex
	pages map[string]bool
}

func (p *fakePages) set(agent string, open bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pages == nil {
		p.pages = map[string]bool{}
	}
	p.pages[agent] = open
}

func (p *fakePages) Connected(a string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pages[a]
}

func (p *fakePages) ConnectedAgents() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for a, open := range p.pages {
		if open {
			out = append(out, a)
		}
	}
	slices.Sort(out)
	return out
}

type testFloor struct {
	*Floor
	pages *fakePages
	reg   *prometheus.Registry
}

// startFloor runs a Floor named daemon on share (nil: alone), refreshing
// every 50ms, its options tweaked.
func startFloor(t *testing.T, daemon string, share Share, tweak ...func(*Options)) testFloor {
	t.Helper()
	pages := &fakePages{}
	reg := prometheus.NewRegistry()
	opts := Options{
		Config:     Config{ServiceLevelSeconds: 20, TimeZone: "UTC"},
		Daemon:     daemon,
		Sources:    []string{"pbx"},
		Pages:      pages,
		Agents:     func() map[string]string { return map[string]string{"alice": "Alice", "bob": "Bob"} },
		Share:      share,
		Interval:   50 * time.Millisecond,
		Registerer: reg,
	}
	for _, tw := range tweak {
		tw(&opts)
	}
	f, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return testFloor{f, pages, reg}
}

// waitView polls f's view until cond holds.
func waitView(t *testing.T, f *Floor, what string, cond func(View) bool) View {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		v := f.Current()
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the view never showed it; last: %+v", what, v)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Two daemons on one Redis: daemon A follows the calls, the agents' pages
// are on daemon B. Both show the same floor; A counts the ring as not
// blind, since the page is open on B; the acknowledgement B's hub hears
// reaches A, which counts the pop as shown before the answer; the day's
// counts come once, from both.
func TestTwoFloorsShareOneRedis(t *testing.T) {
	share, _, _ := testShare(t, nil)
	a := startFloor(t, "a", share)
	b := startFloor(t, "b", share)
	b.pages.set("alice", true)
	waitView(t, a.Floor, "alice's page on b, seen by a", func(v View) bool { return len(v.Daemons) == 2 && a.Connected("alice") })

	now := time.Now()
	call := screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/1", Source: "pbx", At: now, Agents: []string{"alice", "bob"}}
	a.ObserveCall(call, now)
	if got := value(a.metrics.blind.WithLabelValues("pbx")); got != 1 {
		t.Errorf("blind rings on a = %v, want 1 (bob only: alice's page is on b)", got)
	}
	for _, f := range []testFloor{a, b} {
		waitView(t, f.Floor, "the call ringing on "+f.opts.Daemon, func(v View) bool {
			return len(v.Waiting) == 1 && v.Waiting[0].ID == "pbx/1" && len(v.Waiting[0].Agents) == 2 && v.Waiting[0].Agents[0].Connected
		})
	}
	// alice's page, on b, paints the pop.
	b.Shown("alice", "pbx/1", pop.StageComplete, time.Now())
	deadline := time.Now().Add(20 * time.Second)
	shownOnA := func() bool {
		a.ledger.mu.Lock()
		defer a.ledger.mu.Unlock()
		c := a.ledger.calls["pbx/1"]
		if c == nil {
			return false
		}
		_, shown := c.shown["alice"]
		return shown
	}
	for !shownOnA() {
		if time.Now().After(deadline) {
			t.Fatal("b's acknowledgement never reached a")
		}
		time.Sleep(20 * time.Millisecond)
	}
	answer := screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: "pbx/1", Source: "pbx", At: time.Now(), Agent: "alice"}
	a.ObserveCall(answer, time.Now())
	if got := value(a.metrics.popped.WithLabelValues("pbx")); got != 1 {
		t.Errorf("answered popped on a = %v, want 1", got)
	}
	// b watches the same PBX too: it applies the same events, later.
	b.ObserveCall(call, now)
	b.ObserveCall(answer, time.Now())
	end := screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "pbx/1", Source: "pbx", At: time.Now(), Outcome: screenpop.OutcomeAnswered}
	a.ObserveCall(end, time.Now())
	b.ObserveCall(end, time.Now())
	for _, f := range []testFloor{a, b} {
		v := waitView(t, f.Floor, "today's counts on "+f.opts.Daemon, func(v View) bool { return v.Today.Ended == 1 && len(v.Waiting) == 0 })
		if want := (Counts{Answered: 1, InTime: 1, Popped: 1, Ended: 1}); v.Today != want || *v.PoppedShare != 1 || *v.ServiceLevel != 1 {
			t.Errorf("%s: today %+v, popped share %v, service level %v; want %+v, 1, 1", f.opts.Daemon, v.Today, *v.PoppedShare, *v.ServiceLevel, want)
		}
	}
	// The gauges are the whole floor's, the same on both.
	for _, f := range []testFloor{a, b} {
		if got := value(f.metrics.agents.WithLabelValues(StateSignedIn)); got != 1 {
			t.Errorf("%s: agents signed in = %v, want 1", f.opts.Daemon, got)
		}
		if got := value(f.metrics.daemons); got != 2 {
			t.Errorf("%s: daemons = %v, want 2", f.opts.Daemon, got)
		}
	}
}

// A daemon alone, or whose Redis fails, shows its own part, marked
// partial when Redis fails.
func TestFloorWithoutRedis(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 50 * time.Millisecond})
	defer client.Close()
	broken, err := NewRedisShare(client, "x:", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		share   Share
		partial bool
	}{{"alone", nil, false}, {"redis down", broken, true}} {
		t.Run(c.name, func(t *testing.T) {
			f := startFloor(t, "a", c.share)
			f.pages.set("bob", true)
			now := time.Now()
			f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/1", Source: "pbx", At: now, Agents: []string{"bob"}}, now)
			f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "pbx/1", Source: "pbx", At: now, Outcome: screenpop.OutcomeAbandoned}, now)
			v := waitView(t, f.Floor, "the abandoned call counted", func(v View) bool { return v.Today.Abandoned == 1 })
			if v.Partial != c.partial || fmt.Sprint(v.Daemons) != "[a]" {
				t.Errorf("partial %v daemons %v, want partial %v, [a]", v.Partial, v.Daemons, c.partial)
			}
		})
	}
}
