package redisbus

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/pop"
)

// hearsAll reports whether bus's news subscription is confirmed, and the
// subscription to the news channel of every agent it watches.
func hearsAll(bus *Bus) bool {
	if !bus.subscribed.Load() {
		return false
	}
	bus.mu.Lock()
	defer bus.mu.Unlock()
	for _, w := range bus.watching {
		if !bus.newsOn[w.keys.tag] {
			return false
		}
	}
	return true
}

// TestNewsOnlyForWatchedAgents: each daemon hears the entries of the
// agents it watches, and nothing of the others'; it stops hearing an
// agent when the agent's last browser there leaves; and an agent that
// becomes watched after entries were published gets them all the same.
func TestNewsOnlyForWatchedAgents(t *testing.T) {
	client := sharedRedis(t)
	prefix := testPrefix(t, client)
	ctx := context.Background()
	a, b := startDaemon(t, "127.0.0.1:6379", prefix), startDaemon(t, "127.0.0.1:6379", prefix)
	for _, d := range []*daemon{a, b} {
		waitFor(t, "bus up and subscribed to news", func() bool { return d.bus.Ready() == nil && d.bus.subscribed.Load() })
	}
	// 5001 and 5002 on a, 5003 and 5004 on b.
	ws := map[string]*websocket.Conn{}
	for agent, d := range map[string]*daemon{"5001": a, "5002": a, "5003": b, "5004": b} {
		ws[agent] = browser(t, d, agent, "")
		expect(t, ws[agent], pop.TypeSnapshot, "")
	}
	for _, d := range []*daemon{a, b} {
		waitFor(t, "subscribed to the news of the agents watched", func() bool { return hearsAll(d.bus) })
	}
	channel := func(agent string) string { return a.bus.newsChannelOf(tagOf(agent)) }
	numsub := func() map[string]int64 {
		var chans []string
		for _, agent := range []string{"5001", "5002", "5003", "5004", "5005"} {
			chans = append(chans, channel(agent))
		}
		n, err := client.PubSubNumSub(ctx, chans...).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := numsub(); n[channel("5001")] != 1 || n[channel("5003")] != 1 || n[channel("5005")] != 0 {
		t.Fatalf("subscribers per agent channel: %v; want one for each agent watched, none for 5005", n)
	}

	// heardUpTo waits until each daemon has heard want news messages in
	// all, then checks that it heard no more. The caller's last call pops
	// an agent watched on each daemon, after every earlier entry was
	// appended: an entry heard that should not have been comes before.
	heardUpTo := func(what string, wantA, wantB uint64) {
		t.Helper()
		waitFor(t, what, func() bool { return a.bus.newsIn.Load() >= wantA && b.bus.newsIn.Load() >= wantB })
		if na, nb := a.bus.newsIn.Load(), b.bus.newsIn.Load(); na != wantA || nb != wantB {
			t.Fatalf("%s: news heard by a %d, by b %d; want %d and %d (only the entries of the agents each watches)", what, na, nb, wantA, wantB)
		}
	}
	// rings has d ring call for agents, and waits until the browsers
	// connected (all but 5005's) have its pop: one entry per agent.
	rings := func(d *daemon, call string, agents ...string) {
		t.Helper()
		d.disp.HandleCall(ring(call, agents...))
		for _, agent := range agents {
			if w := ws[agent]; w != nil {
				expect(t, w, pop.TypePop, call)
			}
		}
	}
	rings(a, "c1", "5001", "5003")
	rings(a, "c2", "5002", "5004")
	rings(b, "c3", "5001", "5003", "5004")
	rings(a, "last-1", "5001", "5003")
	// a watches 5001 (c1, c3, last-1) and 5002 (c2); b 5003 (c1, c3,
	// last-1) and 5004 (c2, c3). With one channel for all, each would have
	// heard all 9.
	heardUpTo("the entries of the agents watched", 4, 5)
	// b got entries a appended as their news came, with no read.
	if b.bus.heard.Load() == 0 {
		t.Error("no entry handed over as its news came on b")
	}

	// 5002's last browser leaves a: a stops hearing it.
	ws["5002"].Close()
	delete(ws, "5002")
	waitFor(t, "a unsubscribed from 5002's news", func() bool { return numsub()[channel("5002")] == 0 })
	rings(b, "c4", "5002", "5001", "5003")
	heardUpTo("no news of 5002 once it left a", 5, 6)

	// 5005, watched nowhere, gets a pop no daemon hears; then a browser
	// of 5005 connects to b: it gets that call, and b hears 5005's next
	// entries.
	rings(a, "c5", "5005")
	rings(a, "last-2", "5001", "5003")
	heardUpTo("no news of 5005, watched nowhere", 6, 7)
	// Each call's pop goes out when its card is built, and cards are
	// built in parallel: last-2's may come before c5's. A browser of 5005
	// that connected before c5's pop reached Redis would get it as a pop,
	// not in its snapshot; this test is about the snapshot.
	waitFor(t, "c5's pop for 5005 in Redis", func() bool {
		n, err := client.XLen(ctx, a.bus.keys("5005").stream).Result()
		return err == nil && n >= 1
	})
	w5 := browser(t, b, "5005", "")
	var snap pop.SnapshotData
	if err := json.Unmarshal(expect(t, w5, pop.TypeSnapshot, "").Data, &snap); err != nil {
		t.Fatal(err)
	}
	if len(snap.Pops) != 1 || snap.Pops[0].CallID != "c5" {
		t.Fatalf("5005 connecting after c5 rang: snapshot %+v, want c5", snap.Pops)
	}
	waitFor(t, "b subscribed to 5005's news", func() bool { return hearsAll(b.bus) })
	a.disp.HandleCall(ring("c6", "5005"))
	expect(t, w5, pop.TypePop, "c6")
	heardUpTo("5005's news on b once watched there", 6, 8)
}

// TestNewsCatchUpOnSubscribe: entries published after an agent started
// being watched, but before the subscription to its news channel was
// confirmed, are heard by nobody: the confirmation makes the reader read
// them from the stream.
func TestNewsCatchUpOnSubscribe(t *testing.T) {
	client := sharedRedis(t)
	prefix := testPrefix(t, client)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	const agent = "6001"
	held, release := make(chan struct{}), make(chan struct{})
	var hubs [2]*seqHub
	var buses [2]*Bus
	for d := range buses {
		c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
		t.Cleanup(func() { c.Close() })
		hubs[d] = &seqHub{got: map[string][]pop.Encoded{}}
		bus, err := New(Config{Client: c, Hub: hubs[d], KeyPrefix: prefix, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		if d == 1 {
			// Set before Run: the subscriber reads it.
			bus.holdSubscribe = func(channels []string) {
				if slices.Contains(channels, bus.newsChannelOf(tagOf(agent))) {
					close(held)
					select {
					case <-release:
					case <-ctx.Done():
					}
				}
			}
		}
		buses[d] = bus
	}
	for _, bus := range buses {
		wg.Go(func() { bus.Run(ctx) })
	}
	for _, bus := range buses {
		waitFor(t, "bus up and subscribed to news", func() bool { return bus.Ready() == nil && bus.subscribed.Load() })
	}
	// The agent becomes watched on the second daemon, positioned before
	// any entry, with no read asked (Open would read once at once): only
	// the confirmation of its channel can make the reader read it.
	reader := buses[1]
	reader.watch(agent, reader.keys(agent), 0, false)
	<-held
	const n = 3
	for i := range n {
		buses[0].Deliver(agent, withdrawn(t, fmt.Sprint("c-", i)))
	}
	waitFor(t, "entries appended", func() bool {
		return counter(buses[0].metrics.delivered.WithLabelValues(pathRedis)) == n
	})
	if got := len(hubs[1].of(agent)); got != 0 || reader.newsIn.Load() != 0 {
		t.Fatalf("%d entries handed over, %d heard, before the subscription", got, reader.newsIn.Load())
	}
	close(release)
	waitFor(t, "the entries published before the subscription, read", func() bool { return len(hubs[1].of(agent)) == n })
	for i, m := range hubs[1].of(agent) {
		if want := fmt.Sprint("c-", i); m.CallID != want {
			t.Fatalf("entry %d is %s, want %s", i, m.CallID, want)
		}
	}
	if reader.heard.Load() != 0 {
		t.Errorf("%d entries heard; they were published before the subscription", reader.heard.Load())
	}
	// Once confirmed, the next entries come as news.
	waitFor(t, "subscribed to the agent's news", func() bool { return hearsAll(reader) })
	buses[0].Deliver(agent, withdrawn(t, "c-after"))
	waitFor(t, "the entry after the subscription", func() bool { return len(hubs[1].of(agent)) == n+1 })
	if reader.heard.Load() != 1 {
		t.Errorf("%d entries heard, want the one published after the subscription", reader.heard.Load())
	}
}
