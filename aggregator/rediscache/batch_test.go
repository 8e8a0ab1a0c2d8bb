package rediscache_test

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/aggregator/rediscache"
)

// roundTrips counts what a go-redis client sends: one per command sent
// alone, one per pipeline, and the GETs in either. The commands that set
// up a new connection (HELLO, CLIENT, AUTH, SELECT) are not the card's:
// reads one at a time open connections as they go.
type roundTrips struct{ trips, gets atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if connectionSetup([]redis.Cmder{cmd}) {
			return next(ctx, cmd)
		}
		h.trips.Add(1)
		if cmd.Name() == "get" {
			h.gets.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if connectionSetup(cmds) { // go-redis's own, on a new connection
			return next(ctx, cmds)
		}
		h.trips.Add(1)
		for _, c := range cmds {
			if c.Name() == "get" {
				h.gets.Add(1)
			}
		}
		return next(ctx, cmds)
	}
}

// connectionSetup: cmds only set up a connection.
func connectionSetup(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		switch c.Name() {
		case "hello", "client", "auth", "select":
		default:
			return false
		}
	}
	return len(cmds) > 0
}

// plainCache hides GetMany: the aggregator reads it one source at a time,
// as it did before batches.
type plainCache struct{ aggregator.Cache }

type fixedSource struct {
	calls   atomic.Int64
	records []aggregator.Record
}

func (s *fixedSource) Fetch(context.Context, aggregator.Key) ([]aggregator.Record, error) {
	s.calls.Add(1)
	return s.records, nil
}

// batchFixture is an aggregator on cache with a directory, three sources
// keyed by the number and one by the customer, all cached in Redis.
type batchFixture struct {
	agg     *aggregator.Aggregator
	reg     *prometheus.Registry
	sources []*fixedSource
}

func newBatchFixture(t testing.TB, cache aggregator.Cache, customerSource bool) *batchFixture {
	return newBatchFixtureFresh(t, cache, customerSource, time.Minute)
}

// newBatchFixtureFresh is newBatchFixture with every answer fresh for
// fresh.
func newBatchFixtureFresh(t testing.TB, cache aggregator.Cache, customerSource bool, fresh time.Duration) *batchFixture {
	t.Helper()
	f := &batchFixture{reg: prometheus.NewRegistry()}
	src := func(records ...aggregator.Record) *fixedSource {
		s := &fixedSource{records: records}
		f.sources = append(f.sources, s)
		return s
	}
	specs := []aggregator.SourceSpec{
		{Name: "credit", Needs: "phone", Timeout: 10 * time.Second, CacheTTL: time.Minute, FreshFor: fresh, Source: src(aggregator.Record{"limit": 12000})},
		{Name: "orders", Needs: "phone", Timeout: 10 * time.Second, CacheTTL: time.Minute, FreshFor: fresh, Source: src(aggregator.Record{"order": "A-1"}, aggregator.Record{"order": "A-2"}), Mapping: aggregator.Mapping{Mode: aggregator.ModeList}},
		{Name: "tickets", Needs: "phone", Timeout: 10 * time.Second, CacheTTL: time.Minute, FreshFor: fresh, Source: src(aggregator.Record{"open": 2})},
	}
	if customerSource {
		specs = append(specs, aggregator.SourceSpec{Name: "contracts", Needs: "customer_id", Timeout: 10 * time.Second, CacheTTL: time.Minute, FreshFor: fresh, Source: src(aggregator.Record{"contract": "K-9"})})
	}
	agg, err := aggregator.New(aggregator.Config{
		Region: "PL", Deadline: 20 * time.Second,
		Directory: &aggregator.SourceSpec{Name: "directory", Timeout: 10 * time.Second, CacheTTL: time.Minute, FreshFor: fresh, Source: src(aggregator.Record{"id": "C-7", "name": "Kowalski Sp. z o.o."})},
		Sources:   specs,
	}, aggregator.Options{Cache: cache, Registerer: f.reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = agg.Close() })
	f.agg = agg
	return f
}

func (f *batchFixture) build(id string) screenpop.Card {
	return f.agg.Build(context.Background(), screenpop.CallEvent{
		Kind: screenpop.EventRinging, CallID: id,
		Caller: screenpop.Caller{Number: "+48 601 234 567"}, At: time.Now(),
	})
}

func (f *batchFixture) asked() (n int64) {
	for _, s := range f.sources {
		n += s.calls.Load()
	}
	return n
}

func (f *batchFixture) cacheRequests(t *testing.T, source, result string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "screenpop_cache_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["source"] == source && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// comparable is what a card says, without what differs between two builds
// of it (ids, timings).
func comparable(c screenpop.Card) screenpop.Card {
	c.CallID, c.BuiltAt, c.TookMS = "", time.Time{}, 0
	c.Sections = append([]screenpop.CardSection(nil), c.Sections...)
	for i := range c.Sections {
		c.Sections[i].TookMS = 0
	}
	return c
}

func newBatchCache(t *testing.T, prefix string) (*rediscache.Cache, *roundTrips) {
	t.Helper()
	client, err := rediscache.NewClient(rediscache.ClientConfig{Addr: "127.0.0.1:6379"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("the test needs Redis on 127.0.0.1:6379: %v", err)
	}
	t.Cleanup(func() {
		if keys, _ := client.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			client.Del(ctx, keys...)
		}
		client.Close()
	})
	hook := &roundTrips{}
	client.AddHook(hook)
	c, err := rediscache.New(rediscache.Config{Client: client, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return c, hook
}

// TestCardReadsRedisInOneRoundTrip: a card whose directory and three
// sources are cached in Redis reads the four entries in one round trip,
// asks nobody, and is the card read one source at a time; a source keyed
// by the customer costs one round trip more (it waits for the directory).
func TestCardReadsRedisInOneRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name         string
		customer     bool
		trips, gets  int64
		cachedGroups int
	}{
		{name: "ByNumber", trips: 1, gets: 4},
		{name: "AndByCustomer", customer: true, trips: 2, gets: 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := fmt.Sprintf("test:rediscache:%s:%d:", t.Name(), time.Now().UnixNano())
			cache, hook := newBatchCache(t, prefix)
			batched := newBatchFixture(t, cache, tc.customer)
			cold := batched.build("cold")
			if n, want := batched.asked(), int64(len(batched.sources)); n != want {
				t.Fatalf("first card asked %d sources, want %d", n, want)
			}
			for _, s := range cold.Sections {
				if s.Status != screenpop.SectionOK || s.Cached {
					t.Fatalf("first card: section %s %s cached=%v %q", s.Name, s.Status, s.Cached, s.Error)
				}
			}

			hook.trips.Store(0)
			hook.gets.Store(0)
			warm := batched.build("warm")
			if n, want := batched.asked(), int64(len(batched.sources)); n != want {
				t.Errorf("sources asked %d times in all, want %d (the second card from Redis)", n, want)
			}
			if n := hook.trips.Load(); n != tc.trips {
				t.Errorf("the card from Redis took %d round trips, want %d", n, tc.trips)
			}
			if n := hook.gets.Load(); n != tc.gets {
				t.Errorf("the card from Redis read %d keys, want %d", n, tc.gets)
			}
			for _, s := range warm.Sections {
				if s.Status != screenpop.SectionOK || !s.Cached {
					t.Errorf("second card: section %s %s cached=%v %q", s.Name, s.Status, s.Cached, s.Error)
				}
			}
			for _, name := range []string{"directory", "credit", "orders", "tickets"} {
				if n := batched.cacheRequests(t, name, "hit"); n != 1 {
					t.Errorf("screenpop_cache_requests_total{source=%q,result=hit} = %v, want 1", name, n)
				}
				if n := batched.cacheRequests(t, name, "miss"); n != 1 {
					t.Errorf("screenpop_cache_requests_total{source=%q,result=miss} = %v, want 1", name, n)
				}
			}

			// The same entries read one source at a time, as before batches.
			plain := newBatchFixture(t, plainCache{cache}, tc.customer)
			hook.trips.Store(0)
			one := plain.build("one-by-one")
			if n := plain.asked(); n != 0 {
				t.Errorf("read one at a time: sources asked %d times, want 0", n)
			}
			if n, want := hook.trips.Load(), tc.gets; n != want {
				t.Errorf("read one at a time: %d round trips, want %d", n, want)
			}
			if got, want := comparable(warm), comparable(one); !reflect.DeepEqual(got, want) {
				t.Errorf("card read in a batch:\n%+v\nread one source at a time:\n%+v", got, want)
			}
		})
	}
}

// TestCardBatchWithRedisDown: with Redis unreachable the batch fails for
// every entry: each is counted an error and its source asked, and the
// card is complete.
func TestCardBatchWithRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more
	client, err := rediscache.NewClient(rediscache.ClientConfig{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	cache, err := rediscache.New(rediscache.Config{Client: client})
	if err != nil {
		t.Fatal(err)
	}
	f := newBatchFixture(t, cache, true)
	card := f.build("down")
	if n, want := f.asked(), int64(len(f.sources)); n != want {
		t.Errorf("sources asked %d times, want %d", n, want)
	}
	if card.Customer == nil || card.Customer.ID != "C-7" {
		t.Errorf("customer %+v", card.Customer)
	}
	for _, s := range card.Sections {
		if s.Status != screenpop.SectionOK || s.Cached {
			t.Errorf("section %s %s cached=%v %q", s.Name, s.Status, s.Cached, s.Error)
		}
	}
	for _, name := range []string{"directory", "credit", "orders", "tickets", "contracts"} {
		if n := f.cacheRequests(t, name, "error"); n != 1 {
			t.Errorf("screenpop_cache_requests_total{source=%q,result=error} = %v, want 1", name, n)
		}
	}
}

// BenchmarkRedisCachedCard measures a card whose directory and three
// sources are all in the Redis cache on 127.0.0.1:6379: "batch" reads the
// four entries in one round trip, "one-by-one" hides GetMany, so that the
// aggregator reads them as before batches (a GET per source, each in its
// own goroutine). One op is one card.
//
//	go test -run '^$' -bench RedisCachedCard -benchmem ./aggregator/rediscache/
func BenchmarkRedisCachedCard(b *testing.B) {
	prefix := fmt.Sprintf("bench:rediscache:%d:", time.Now().UnixNano())
	client, err := rediscache.NewClient(rediscache.ClientConfig{Addr: "127.0.0.1:6379"})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := client.Ping(ctx).Err(); err != nil {
		b.Fatalf("the benchmark needs Redis on 127.0.0.1:6379: %v", err)
	}
	b.Cleanup(func() {
		if keys, _ := client.Keys(ctx, prefix+"*").Result(); len(keys) > 0 {
			client.Del(ctx, keys...)
		}
		client.Close()
	})
	cache, err := rediscache.New(rediscache.Config{Client: client, KeyPrefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		cache aggregator.Cache
	}{
		{"batch", cache},
		{"one-by-one", plainCache{cache}},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := newBatchFixture(b, c.cache, false)
			f.build("warm-up") // fills the cache
			b.ReportAllocs()
			for b.Loop() {
				if card := f.build("bench"); !card.Sections[0].Cached {
					b.Fatal("the card is not from the cache")
				}
			}
		})
	}
}

// TestCardBatchStale: entries read in a batch past their fresh_for are
// served, counted stale, and refreshed in the background, as entries read
// one at a time are.
func TestCardBatchStale(t *testing.T) {
	prefix := fmt.Sprintf("test:rediscache:%s:%d:", t.Name(), time.Now().UnixNano())
	cache, _ := newBatchCache(t, prefix)
	f := newBatchFixtureFresh(t, cache, false, time.Nanosecond)
	f.build("cold")
	card := f.build("stale")
	for _, s := range card.Sections {
		if s.Status != screenpop.SectionOK || !s.Cached {
			t.Errorf("section %s %s cached=%v %q", s.Name, s.Status, s.Cached, s.Error)
		}
	}
	for _, name := range []string{"directory", "credit", "orders", "tickets"} {
		if n := f.cacheRequests(t, name, "stale"); n != 1 {
			t.Errorf("screenpop_cache_requests_total{source=%q,result=stale} = %v, want 1", name, n)
		}
	}
	// Each refreshed once, in the background; waited for, not timed.
	for give := time.Now().Add(20 * time.Second); f.asked() < 2*int64(len(f.sources)); time.Sleep(time.Millisecond) {
		if time.Now().After(give) {
			t.Fatalf("sources asked %d times, want %d (each refreshed once)", f.asked(), 2*len(f.sources))
		}
	}
}
