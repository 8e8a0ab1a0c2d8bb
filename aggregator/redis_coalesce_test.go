package aggregator_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/aggregator/rediscache"
)

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

func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// TestBurstWithRedisCacheIsOneFanOut: with the real Redis as the cache, a
// burst of 100 calls from one number asks every source once, the answers
// land in Redis under hashed keys, and the next burst is served from there.
func TestBurstWithRedisCacheIsOneFanOut(t *testing.T) {
	client, err := rediscache.NewClient(rediscache.ClientConfig{Addr: "127.0.0.1:6379"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("the test needs Redis on 127.0.0.1:6379: %v", err)
	}
	prefix := fmt.Sprintf("test:aggregator:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		keys, _ := client.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			client.Del(ctx, keys...)
		}
		client.Close()
	})
	cache, err := rediscache.New(rediscache.Config{Client: client, KeyPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}

	release := make(chan struct{})
	dir := &countingSource{release: release, records: []aggregator.Record{{"id": "C-7", "name": "Kowalski Sp. z o.o."}}}
	credit := &countingSource{release: release, records: []aggregator.Record{{"limit": 12000}}}
	orders := &countingSource{release: release, records: []aggregator.Record{{"order": "A-1"}, {"order": "A-2"}}}
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
	t.Cleanup(func() { _ = agg.Close() })

	burst := func(round int) {
		t.Helper()
		const calls = 100
		cards := make(chan screenpop.Card, calls)
		for i := range calls {
			go func() {
				cards <- agg.Build(ctx, screenpop.CallEvent{
					Kind: screenpop.EventRinging, CallID: fmt.Sprintf("r%d-call-%d", round, i),
					Caller: screenpop.Caller{Number: "+48 601 234 567"}, At: time.Now(),
				})
			}()
		}
		for range calls {
			card := <-cards
			if card.Customer == nil || card.Customer.ID != "C-7" {
				t.Fatalf("%s: customer %+v", card.CallID, card.Customer)
			}
			for _, s := range card.Sections {
				if s.Status != screenpop.SectionOK {
					t.Errorf("%s: section %s %s %q", card.CallID, s.Name, s.Status, s.Error)
				}
			}
		}
	}

	// Round one: the sources hold their answers until every call has
	// joined the first one's fan-out.
	done := make(chan struct{})
	go func() { defer close(done); burst(1) }()
	give := time.Now().Add(20 * time.Second) // only bounds a hung test
	for counterValue(t, reg, "screenpop_aggregator_coalesced_total") < 99 {
		if time.Now().After(give) {
			t.Fatalf("%v of 99 calls joined the first one's fan-out", counterValue(t, reg, "screenpop_aggregator_coalesced_total"))
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	<-done
	for name, s := range map[string]*countingSource{"directory": dir, "credit": credit, "orders": orders} {
		if n := s.calls.Load(); n != 1 {
			t.Errorf("%s asked %d times for 100 calls, want 1", name, n)
		}
	}
	keys, err := client.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Errorf("keys in Redis: %v, want 3 (one per source)", keys)
	}
	for _, k := range keys {
		if v, _ := client.Get(ctx, k).Result(); strings.Contains(k, "601234567") || strings.Contains(v, "601234567") {
			t.Errorf("the caller's number is in Redis: %s", k)
		}
	}

	// Round two: served from Redis, nobody asked.
	burst(2)
	if n := dir.calls.Load() + credit.calls.Load() + orders.calls.Load(); n != 3 {
		t.Errorf("sources asked %d times in all, want 3", n)
	}

	// The source system says C-7 changed: only the customer's answers go.
	if err := agg.Evict(ctx, "C-7", ""); err != nil {
		t.Fatal(err)
	}
	if keys, _ := client.Keys(ctx, prefix+"*").Result(); len(keys) != 2 {
		t.Errorf("keys after evicting the customer: %v, want 2", keys)
	}
	if err := agg.Evict(ctx, "", "+48601234567"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := client.Keys(ctx, prefix+"*").Result(); len(keys) != 0 {
		t.Errorf("keys after evicting the number: %v, want none", keys)
	}
}
