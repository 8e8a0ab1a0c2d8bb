package rediscache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/internal/logbuf"
	"github.com/screenpop/screenpop/internal/redistest"
)

// patience bounds every wait below: what has not happened by then never
// will (nothing is timed).
const patience = 20 * time.Second

// waitFor polls ok until it holds, or fails the test after patience.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("still not so after %s: %s", patience, what)
}

// setHeard sets key on from and waits until to heard of it: the news
// of a change also drops what a read sent before it returns.
func setHeard(t *testing.T, from, to *Cache, key, value string) {
	t.Helper()
	heard := counterValue(to.metrics.nearHeard)
	if err := from.Set(context.Background(), key, []byte(value), time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the change is heard", func() bool { return counterValue(to.metrics.nearHeard) != heard })
}

// runNear starts c's listener until the test ends and waits until it
// hears invalidations.
func runNear(t *testing.T, c *Cache) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the near cache listens", func() bool { return c.near.begin() != 0 })
}

func TestNearUnit(t *testing.T) {
	n := newNear(10, time.Minute)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	if n.begin() != 0 {
		t.Fatal("not listening yet: nothing may be kept")
	}
	n.put("k", []byte("v"), time.Hour, 1, at)
	if _, ok := n.get("k", at); ok {
		t.Fatal("kept a value read before the subscription was confirmed")
	}
	n.reset(true)

	// A read whose key was invalidated while it was in flight is not kept.
	g := n.begin()
	n.invalidate("other")
	n.put("k", []byte("old"), time.Hour, g, at)
	if _, ok := n.get("k", at); ok {
		t.Fatal("kept a read overtaken by an invalidation")
	}

	// Kept for the key's TTL in Redis, at most maxAge.
	g = n.begin()
	n.put("short", []byte("s"), 2*time.Second, g, at)
	n.put("long", []byte("l"), time.Hour, g, at)
	if v, ok := n.get("short", at.Add(time.Second)); !ok || string(v) != "s" {
		t.Fatalf("short within its TTL: %q %v", v, ok)
	}
	if _, ok := n.get("short", at.Add(2*time.Second)); ok {
		t.Fatal("short outlived its TTL in Redis")
	}
	if _, ok := n.get("long", at.Add(59*time.Second)); !ok {
		t.Fatal("long gone before maxAge")
	}
	if _, ok := n.get("long", at.Add(time.Minute)); ok {
		t.Fatal("long outlived maxAge")
	}

	// What get returns is the caller's.
	g = n.begin()
	n.put("mine", []byte("abc"), time.Hour, g, at)
	v, _ := n.get("mine", at)
	v[0] = 'X'
	if v, _ := n.get("mine", at); string(v) != "abc" {
		t.Fatalf("a caller's change reached the cache: %q", v)
	}

	// Bounded.
	for i := range 25 {
		n.put(fmt.Sprint(i), []byte("v"), time.Hour, n.begin(), at)
		if n.size() > 10 {
			t.Fatalf("%d entries, bound 10", n.size())
		}
	}

	// A broken subscription empties it and keeps nothing more.
	g = n.begin()
	n.reset(false)
	if n.size() != 0 || n.begin() != 0 {
		t.Fatalf("after reset(false): %d entries, begin %d", n.size(), n.begin())
	}
	n.put("k", []byte("v"), time.Hour, g, at)
	if n.size() != 0 {
		t.Fatal("kept a read sent before the subscription broke")
	}
}

// TestNearTwoDaemons: a value one daemon read is served from its memory,
// and another daemon's change or removal (an erasure) reaches it.
func TestNearTwoDaemons(t *testing.T) {
	ctx := context.Background()
	a, client, prefix := newTestCache(t, nil)
	b, err := New(Config{Client: client, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	runNear(t, a)
	runNear(t, b)

	setHeard(t, a, b, "card", "v1")
	if v, err := b.Get(ctx, "card"); err != nil || string(v) != "v1" {
		t.Fatalf("b.Get = %q, %v", v, err)
	}
	// Changed behind screenpop's back (no news): b answers from memory.
	client.Set(ctx, prefix+"card", "changed-outside", time.Minute)
	if v, err := b.Get(ctx, "card"); err != nil || string(v) != "v1" {
		t.Fatalf("b.Get = %q, %v: want v1 from the near cache", v, err)
	}
	if n := counterValue(b.metrics.nearHits); n != 1 {
		t.Fatalf("near hits = %v, want 1", n)
	}
	if n := counterValue(b.metrics.lookups.WithLabelValues(resultHit)); n != 2 {
		t.Fatalf("hits = %v, want 2 (a near hit is a hit)", n)
	}

	// Another daemon's change: b reads the new value.
	if err := a.Set(ctx, "card", []byte("v2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b sees a's change", func() bool {
		v, err := b.Get(ctx, "card")
		return err == nil && string(v) == "v2"
	})
	// Another daemon's erasure: b stops serving the value.
	if err := a.Delete(ctx, "card", "other"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b sees a's erasure", func() bool {
		_, err := b.Get(ctx, "card")
		return errors.Is(err, aggregator.ErrCacheMiss)
	})

	// GetMany: held keys are not asked for, the others are, each in its place.
	for _, k := range []string{"x", "y", "z"} {
		setHeard(t, a, b, k, "v-"+k)
	}
	b.Get(ctx, "y")
	vals, errs := b.GetMany(ctx, []string{"x", "y", "absent", "z"})
	want := []string{"v-x", "v-y", "", "v-z"}
	for i := range want {
		if string(vals[i]) != want[i] || (want[i] == "") != errors.Is(errs[i], aggregator.ErrCacheMiss) {
			t.Fatalf("GetMany[%d] = %q, %v; want %q", i, vals[i], errs[i], want[i])
		}
	}
}

// TestNearForgetsWhenRedisRestarts: Redis restarting empty (or any broken
// subscription) empties the near cache; afterwards values are read again.
func TestNearForgetsWhenRedisRestarts(t *testing.T) {
	srv := redistest.StartServer(t)
	client, err := NewClient(ClientConfig{Addr: srv.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var logs logbuf.Buffer
	c, err := New(Config{Client: client, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	c.retry = 50 * time.Millisecond
	runNear(t, c)
	ctx := context.Background()
	setHeard(t, c, c, "card", "before")
	if v, err := c.Get(ctx, "card"); err != nil || string(v) != "before" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if c.near.size() != 1 {
		t.Fatalf("near entries = %d, want 1", c.near.size())
	}

	srv.Kill()
	waitFor(t, "the near cache is emptied", func() bool { return c.near.size() == 0 && c.near.begin() == 0 })
	// Retried every 50ms while Redis is away; warned once.
	waitFor(t, "three failed subscriptions", func() bool { return counterValue(c.metrics.errors.WithLabelValues(opListen)) >= 3 })
	if n := strings.Count(logs.String(), "invalidations not heard"); n != 1 {
		t.Errorf("%d warnings for one outage, want 1:\n%s", n, logs.String())
	}
	srv.Start(t)
	plain := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer plain.Close()
	if err := plain.Set(ctx, DefaultKeyPrefix+"card", "after", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "it listens again", func() bool { return c.near.begin() != 0 })
	if !strings.Contains(logs.String(), "invalidations heard again") {
		t.Errorf("the end of the outage not logged:\n%s", logs.String())
	}
	if v, err := c.Get(ctx, "card"); err != nil || string(v) != "after" {
		t.Fatalf("Get after the restart = %q, %v; want what Redis holds now", v, err)
	}
}

func TestNearOff(t *testing.T) {
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:7000"}})
	defer cluster.Close()
	if c, err := New(Config{Client: cluster}); err != nil || c.near != nil {
		t.Fatalf("on a cluster: near %v, err %v; want off", c.near, err)
	}
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer plain.Close()
	if c, err := New(Config{Client: plain, NearEntries: -1}); err != nil || c.near != nil {
		t.Fatalf("NearEntries -1: near %v, err %v; want off", c.near, err)
	}
}
