package rediscache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/aggregator/rediscache"
	"github.com/screenpop/screenpop/internal/redistest"
)

// TestCacheOnCluster: the cache on a Redis Cluster of three masters of
// the test's own, reached through one seed node: entries spread over the
// masters, deletes of keys in different slots in one call, and the
// aggregator's coalescing and eviction on top.
func TestCacheOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	cl := redistest.StartCluster(t, 3)
	client, err := rediscache.NewClient(rediscache.ClientConfig{ClusterAddrs: cl.Addrs()[:1]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if _, ok := client.(*redis.ClusterClient); !ok {
		t.Fatalf("NewClient with cluster addresses made a %T", client)
	}

	t.Run("GetSetDelete", func(t *testing.T) {
		ctx := context.Background()
		keys, err := rediscache.NewKeyring(bytes.Repeat([]byte{9}, 32))
		if err != nil {
			t.Fatal(err)
		}
		const prefix = "sp:get:"
		c, err := rediscache.New(rediscache.Config{Client: client, KeyPrefix: prefix, Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, 30)
		nodes := map[*redistest.Node]bool{}
		for i := range names {
			names[i] = fmt.Sprintf("src:directory:%02d", i)
			if err := c.Set(ctx, names[i], []byte(fmt.Sprint(`{"n":`, i, `}`)), time.Minute); err != nil {
				t.Fatal(err)
			}
			nodes[cl.NodeOf(t, prefix+names[i])] = true
		}
		if len(nodes) != 3 {
			t.Fatalf("30 entries on %d masters, want all 3", len(nodes))
		}
		for i, n := range names {
			got, err := c.Get(ctx, n)
			if err != nil || string(got) != fmt.Sprint(`{"n":`, i, `}`) {
				t.Fatalf("Get %s = %q, %v", n, got, err)
			}
		}
		// One GetMany of keys in many slots, on all three masters: one
		// MGET would be refused (CROSSSLOT).
		values, errs := c.GetMany(ctx, append(names[:len(names):len(names)], "src:absent"))
		for i, n := range names {
			if errs[i] != nil || string(values[i]) != fmt.Sprint(`{"n":`, i, `}`) {
				t.Fatalf("GetMany %s = %q, %v", n, values[i], errs[i])
			}
		}
		if err := errs[len(names)]; !errors.Is(err, aggregator.ErrCacheMiss) {
			t.Fatalf("GetMany of an absent key: %v, want a miss", err)
		}
		// One Delete of keys in many slots: one DEL would be refused
		// (CROSSSLOT).
		if err := c.Delete(ctx, names...); err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if _, err := c.Get(ctx, n); !errors.Is(err, aggregator.ErrCacheMiss) {
				t.Fatalf("Get %s after Delete: %v, want a miss", n, err)
			}
		}
		if left := cl.Keys(t, prefix+"*"); len(left) != 0 {
			t.Fatalf("left after Delete: %v", left)
		}
	})

	t.Run("BurstAndEvict", func(t *testing.T) {
		ctx := context.Background()
		const prefix = "sp:burst:"
		cache, err := rediscache.New(rediscache.Config{Client: client, KeyPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		dir := &countingSource{release: release, records: []aggregator.Record{{"id": "C-7", "name": "Kowalski Sp. z o.o."}}}
		credit := &countingSource{release: release, records: []aggregator.Record{{"limit": 12000}}}
		orders := &countingSource{release: release, records: []aggregator.Record{{"order": "A-1"}}}
		reg := prometheus.NewRegistry()
		agg, err := aggregator.New(aggregator.Config{
			Region: "PL", Deadline: 30 * time.Second,
			Directory: &aggregator.SourceSpec{Name: "directory", Timeout: 30 * time.Second, CacheTTL: time.Minute, Source: dir},
			Sources: []aggregator.SourceSpec{
				{Name: "credit", Timeout: 30 * time.Second, CacheTTL: time.Minute, Source: credit},
				{Name: "orders", Needs: "phone", Timeout: 30 * time.Second, CacheTTL: time.Minute, Source: orders, Mapping: aggregator.Mapping{Mode: aggregator.ModeList}},
			},
		}, aggregator.Options{Cache: cache, Registerer: reg})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { agg.Close() })

		const calls = 50
		burst := func(round int) {
			t.Helper()
			cards := make(chan screenpop.Card, calls)
			for i := range calls {
				go func() {
					cards <- agg.Build(ctx, screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: fmt.Sprintf("r%d-%d", round, i),
						Caller: screenpop.Caller{Number: "+48 601 234 567"}, At: time.Now()})
				}()
			}
			for range calls {
				if card := <-cards; card.Customer == nil || card.Customer.ID != "C-7" {
					t.Errorf("%s: customer %+v", card.CallID, card.Customer)
				}
			}
		}
		done := make(chan struct{})
		go func() { defer close(done); burst(1) }()
		for give := time.Now().Add(20 * time.Second); coalesced(t, reg) < calls-1; time.Sleep(time.Millisecond) {
			if time.Now().After(give) { // only bounds a hung test
				t.Fatalf("%v of %d calls joined the first one's fan-out", coalesced(t, reg), calls-1)
			}
		}
		close(release)
		<-done
		burst(2) // from the cluster: nobody asked
		for name, s := range map[string]*countingSource{"directory": dir, "credit": credit, "orders": orders} {
			if n := s.calls.Load(); n != 1 {
				t.Errorf("%s asked %d times for two bursts of %d calls, want 1", name, n, calls)
			}
		}
		keys := cl.Keys(t, prefix+"*")
		if len(keys) != 3 {
			t.Fatalf("keys in the cluster: %v, want one per source", keys)
		}
		for _, k := range keys {
			if strings.Contains(k, "601234567") {
				t.Errorf("the caller's number is in a key: %s", k)
			}
		}
		if err := agg.Evict(ctx, "C-7", ""); err != nil {
			t.Fatal(err)
		}
		if keys := cl.Keys(t, prefix+"*"); len(keys) != 2 {
			t.Errorf("keys after evicting the customer: %v, want 2", keys)
		}
		if err := agg.Evict(ctx, "", "+48601234567"); err != nil {
			t.Fatal(err)
		}
		if keys := cl.Keys(t, prefix+"*"); len(keys) != 0 {
			t.Errorf("keys after evicting the number: %v, want none", keys)
		}
	})
}

// countingSource counts its fetches and answers once release is closed.
type countingSource struct {
	calls   atomic.Int64
	release <-chan struct{}
	records []aggregator.Record
}

func (s *countingSource) Fetch(ctx context.Context, _ aggregator.Key) ([]aggregator.Record, error) {
	s.calls.Add(1)
	select {
	case <-s.release:
		return s.records, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func coalesced(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "screenpop_aggregator_coalesced_total" && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
