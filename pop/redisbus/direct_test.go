package redisbus

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/pop"
)

// seqHub records, per agent, the seq and call of every message handed
// over numbered.
type seqHub struct {
	mu   sync.Mutex
	got  map[string][]pop.Encoded
	self int // Deliver calls: numbered by the hub (Redis down)
}

func (h *seqHub) Deliver(string, pop.Encoded) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.self++
}

func (h *seqHub) DeliverNumbered(agent string, m pop.Encoded) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got[agent] = append(h.got[agent], m)
}

func (h *seqHub) of(agent string) []pop.Encoded {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]pop.Encoded(nil), h.got[agent]...)
}

// A daemon hands its own appends to its browsers without reading them
// back (handDirect) only when they follow what the browsers have; with
// two daemons appending for the same agent at once, every daemon's hub
// still gets every message once, in the stream's order, and each
// daemon's messages in the order they were delivered.
func TestDirectHandOverInterleaved(t *testing.T) {
	srv := startRedisServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	var buses [2]*Bus
	var hubs [2]*seqHub
	for d := range buses {
		c := redis.NewClient(&redis.Options{Addr: srv.addr()})
		t.Cleanup(func() { c.Close() })
		hubs[d] = &seqHub{got: map[string][]pop.Encoded{}}
		bus, err := New(Config{Client: c, Hub: hubs[d], KeyPrefix: "direct:", BatchSize: 7, Registerer: prometheus.NewRegistry()})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { bus.Run(ctx) })
		buses[d] = bus
	}
	for _, bus := range buses {
		waitFor(t, "bus ready", func() bool { return bus.Ready() == nil })
	}
	// x is connected to both daemons, y to the first only.
	for _, open := range []struct {
		d     int
		agent string
	}{{0, "x"}, {1, "x"}, {0, "y"}} {
		if _, _, err := buses[open.d].Open(ctx, pop.Agent{ID: open.agent}, 0, false); err != nil {
			t.Fatal(err)
		}
	}
	const n = 300
	var senders sync.WaitGroup
	for d, bus := range buses {
		senders.Go(func() {
			for i := range n {
				bus.Deliver("x", withdrawn(t, fmt.Sprintf("d%d-%03d", d, i)))
				if d == 0 {
					bus.Deliver("y", withdrawn(t, fmt.Sprintf("y-%03d", i)))
				}
				if i%50 == 0 {
					time.Sleep(time.Millisecond) // batches of all sizes
				}
			}
		})
	}
	senders.Wait()
	for d, h := range hubs {
		waitFor(t, fmt.Sprintf("daemon %d has every message of x", d), func() bool { return len(h.of("x")) >= 2*n })
	}
	waitFor(t, "daemon 0 has every message of y", func() bool { return len(hubs[0].of("y")) >= n })
	check := func(d int, agent string, want int) {
		t.Helper()
		got := hubs[d].of(agent)
		if len(got) != want {
			t.Errorf("daemon %d, agent %s: %d messages, want %d", d, agent, len(got), want)
		}
		seen := map[string]bool{}
		next := map[string]int{}
		var last uint64
		for _, m := range got {
			if m.Seq <= last {
				t.Fatalf("daemon %d, agent %s: seq %d after %d", d, agent, m.Seq, last)
			}
			last = m.Seq
			if seen[m.CallID] {
				t.Fatalf("daemon %d, agent %s: %s twice", d, agent, m.CallID)
			}
			seen[m.CallID] = true
			from, i, _ := strings.Cut(m.CallID, "-")
			if want := fmt.Sprintf("%03d", next[from]); i != want {
				t.Fatalf("daemon %d, agent %s: %s, want %s-%s", d, agent, m.CallID, from, want)
			}
			next[from]++
		}
	}
	check(0, "x", 2*n)
	check(1, "x", 2*n)
	check(0, "y", n)
	if hubs[1].of("y") != nil {
		t.Error("daemon 1 got messages of y, not connected there")
	}
	// Both hubs have the same seqs for x.
	a, b := hubs[0].of("x"), hubs[1].of("x")
	for i := range min(len(a), len(b)) {
		if a[i].Seq != b[i].Seq || a[i].CallID != b[i].CallID {
			t.Fatalf("message %d: daemon 0 has %d %s, daemon 1 %d %s", i, a[i].Seq, a[i].CallID, b[i].Seq, b[i].CallID)
		}
	}
	if buses[0].directs.Load() == 0 || buses[1].directs.Load() == 0 {
		t.Errorf("no message handed over directly (%d, %d): the test proves nothing", buses[0].directs.Load(), buses[1].directs.Load())
	}
	t.Logf("handed over directly: %d of %d, %d of %d", buses[0].directs.Load(), 3*n, buses[1].directs.Load(), n)
	for d, h := range hubs {
		if h.self != 0 {
			t.Errorf("daemon %d delivered %d messages itself (Redis taken for down)", d, h.self)
		}
	}
}
