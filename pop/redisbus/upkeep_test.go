package redisbus

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/pop"
)

// upkeepRig appends 4 KB pops for one agent straight through the append
// script (one stream node each, so that MINID ~ trims entry by entry).
type upkeepRig struct {
	t      *testing.T
	client *redis.Client
	bus    *Bus
	keys   agentKeys
	n      int
}

func newUpkeepRig(t *testing.T, streamTTL time.Duration) *upkeepRig {
	srv := startRedisServer(t)
	client := redis.NewClient(&redis.Options{Addr: srv.addr()})
	t.Cleanup(func() { client.Close() })
	bus, err := New(Config{Client: client, Hub: &countingHub{}, KeyPrefix: "upkeep:", StreamTTL: streamTTL, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return &upkeepRig{t: t, client: client, bus: bus, keys: bus.keys("a1")}
}

// append appends one pop and returns its seq.
func (r *upkeepRig) append() uint64 {
	r.t.Helper()
	r.n++
	m, err := pop.Encode(pop.Message{Type: pop.TypePop, CallID: fmt.Sprint("c", r.n), At: time.Now(), Data: pop.PopData{State: pop.StateRinging, Card: benchCard("c1")}})
	if err != nil {
		r.t.Fatal(err)
	}
	keys, args := r.bus.appendArgs(outgoing{agent: "a1", msg: m, dedup: fmt.Sprint("m", r.n)})
	res, err := deliverScript.Run(context.Background(), r.client, keys, args...).Text()
	if err != nil {
		r.t.Fatal(err)
	}
	seq, _, ok := parseAppended(res)
	if !ok {
		r.t.Fatalf("append answered %q", res)
	}
	return seq
}

func (r *upkeepRig) pttl(key string) time.Duration {
	r.t.Helper()
	d, err := r.client.PTTL(context.Background(), key).Result()
	if err != nil {
		r.t.Fatal(err)
	}
	return d
}

// checkTTLs: every key of the agent has a TTL, none above its own.
func (r *upkeepRig) checkTTLs(streamTTL time.Duration) {
	r.t.Helper()
	for key, max := range map[string]time.Duration{r.keys.stream: streamTTL, r.keys.meta: streamTTL, r.keys.pops: r.bus.cfg.PopsTTL} {
		if d := r.pttl(key); d <= 0 || d > max {
			r.t.Fatalf("%s: TTL %v, want in (0, %v]", key, d, max)
		}
	}
}

// The stream's upkeep runs once per slack (a sixteenth of its TTL), not
// on every append: still, right after every append, no entry is older
// than the stream's TTL (by the seqs, which are Redis's time in µs), and
// old entries go while the agent stays busy.
func TestAppendUpkeepTrimsOldEntries(t *testing.T) {
	const ttl = 1600 * time.Millisecond // slack 100ms
	r := newUpkeepRig(t, ttl)
	ctx := context.Background()
	first := r.append()
	var seq uint64
	for seq < first+uint64(2*ttl/time.Microsecond) { // appends over two TTLs
		time.Sleep(20 * time.Millisecond)
		seq = r.append()
		r.checkTTLs(ttl)
		oldest, err := r.client.XRangeN(ctx, r.keys.stream, "-", "+", 1).Result()
		if err != nil || len(oldest) != 1 {
			t.Fatalf("XRANGE: %v %v", oldest, err)
		}
		o, _ := strconv.ParseUint(strings.TrimSuffix(oldest[0].ID, "-0"), 10, 64)
		if o+uint64(ttl/time.Microsecond) < seq {
			t.Fatalf("entry %d is still there at %d, older than the stream's TTL", o, seq)
		}
	}
	if n, _ := r.client.XLen(ctx, r.keys.stream).Result(); n >= int64(r.n) {
		t.Fatalf("%d entries of %d appended: nothing trimmed", n, r.n)
	}
}

// Between two upkeeps the TTLs are not set again, but they stay within a
// slack of the configured ones; a stream made again while the upkeep is
// not due (evicted, deleted) gets its TTL at once, and a due time far
// ahead (Redis's clock went back) does not hold the upkeep off.
func TestAppendUpkeepKeepsTTLs(t *testing.T) {
	const ttl = time.Hour
	slack := ttl / 16
	r := newUpkeepRig(t, ttl)
	ctx := context.Background()
	for range 30 {
		r.append()
		r.checkTTLs(ttl)
	}
	for _, key := range []string{r.keys.stream, r.keys.meta} {
		if d := r.pttl(key); d < ttl-slack-time.Minute {
			t.Fatalf("%s: TTL %v after 30 appends, want about %v", key, d, ttl)
		}
	}
	// The stream goes (memory eviction), the meta hash stays: the next
	// append makes the stream again, with its TTL.
	if err := r.client.Del(ctx, r.keys.stream).Err(); err != nil {
		t.Fatal(err)
	}
	r.append()
	r.checkTTLs(ttl)
	// A due time far ahead: the upkeep runs anyway.
	if err := r.client.Persist(ctx, r.keys.stream).Err(); err != nil {
		t.Fatal(err)
	}
	far := uint64(time.Now().Add(100 * ttl).UnixMicro())
	if err := r.client.HSet(ctx, r.keys.meta, "u", far).Err(); err != nil {
		t.Fatal(err)
	}
	r.append()
	r.checkTTLs(ttl)
	if u, _ := r.client.HGet(ctx, r.keys.meta, "u").Uint64(); u >= far {
		t.Fatalf("due time %d kept", u)
	}
}
