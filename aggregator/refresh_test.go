package aggregator

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// fakeClock is Options.Now under the test's control.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type refreshNote struct{ phone, customerID string }

func TestStaleWhileRevalidate(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)}
	var limit atomic.Int64
	limit.Store(1000)
	credit := count(func(_ context.Context, k Key) ([]Record, error) {
		return []Record{{"limit": limit.Load()}}, nil
	})
	refreshed := make(chan refreshNote, 10)
	f := newFixture(t, Config{
		Region:    "DE",
		Directory: &SourceSpec{Name: "directory", Source: directoryOf(brandt)},
		Sources:   []SourceSpec{{Name: "credit", CacheTTL: 10 * time.Minute, FreshFor: time.Minute, Source: credit}},
	}, Options{
		Cache: NewMemoryCache(0), Now: clock.Now,
		OnRefresh: func(phone, customerID string) { refreshed <- refreshNote{phone, customerID} },
	})
	build := func() screenpop.CardSection {
		t.Helper()
		return section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "credit")
	}
	limitOf := func(s screenpop.CardSection) string {
		t.Helper()
		return fieldValue(t, s, "limit").(interface{ String() string }).String()
	}

	if s := build(); s.Cached || credit.calls.Load() != 1 {
		t.Fatalf("first card: cached %v, calls %d", s.Cached, credit.calls.Load())
	}
	// Fresh: served from the cache, nothing asked.
	clock.Advance(30 * time.Second)
	if s := build(); !s.Cached || limitOf(s) != "1000" {
		t.Fatalf("fresh card: cached %v %v", s.Cached, s.Fields)
	}
	if n := credit.calls.Load(); n != 1 {
		t.Fatalf("a fresh answer was refreshed: calls %d", n)
	}

	// Stale: the old answer at once, the new one in the background, and
	// the dispatcher told.
	clock.Advance(2 * time.Minute)
	limit.Store(2500)
	if s := build(); !s.Cached || limitOf(s) != "1000" {
		t.Fatalf("stale card must show the cached answer: cached %v %v", s.Cached, s.Fields)
	}
	select {
	case n := <-refreshed:
		if n.phone != knownPhone || n.customerID != "C-1" {
			t.Errorf("OnRefresh(%q, %q)", n.phone, n.customerID)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("OnRefresh was not called")
	}
	if n := credit.calls.Load(); n != 2 {
		t.Errorf("calls %d, want 2", n)
	}
	// The refreshed answer is cached and fresh: no further refresh.
	if s := build(); !s.Cached || limitOf(s) != "2500" {
		t.Errorf("card after refresh: cached %v %v", s.Cached, s.Fields)
	}

	// Stale again, same data: refreshed, nobody told.
	clock.Advance(2 * time.Minute)
	build()
	waitMetric(t, f.reg, "screenpop_aggregator_background_refreshes_total", map[string]string{"result": "unchanged"}, 1)
	if err := f.agg.Close(); err != nil {
		t.Fatal(err)
	}
	if n := credit.calls.Load(); n != 3 {
		t.Errorf("calls %d, want 3", n)
	}
	select {
	case n := <-refreshed:
		t.Errorf("OnRefresh(%q, %q) for unchanged data", n.phone, n.customerID)
	default:
	}

	// Closed: stale answers are still shown, never refreshed.
	clock.Advance(2 * time.Minute)
	if s := build(); !s.Cached {
		t.Errorf("closed: not served from the cache")
	}
	if n := credit.calls.Load(); n != 3 {
		t.Errorf("refreshed after Close: calls %d", n)
	}
	for result, want := range map[string]float64{"changed": 1, "unchanged": 1, "failed": 0, "dropped": 1} {
		if v := mustMetric(t, f.reg, "screenpop_aggregator_background_refreshes_total", map[string]string{"result": result}); v != want {
			t.Errorf("refreshes{%s} = %v, want %v", result, v, want)
		}
	}
}

// TestRefreshesAreCoalescedAndBounded: many cards with the same stale
// answer start one refresh; beyond MaxRefreshes none starts; Close cancels
// the ones in flight.
func TestRefreshesAreCoalescedAndBounded(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)}
	var hold atomic.Bool
	blocked := make(chan struct{}, 10)
	slow := func() sourceFunc {
		return func(ctx context.Context, _ Key) ([]Record, error) {
			if hold.Load() {
				blocked <- struct{}{}
				<-ctx.Done() // until Close
				return nil, ctx.Err()
			}
			return []Record{{"v": 1}}, nil
		}
	}
	a, b := count(slow()), count(slow())
	f := newFixture(t, Config{
		Region: "DE",
		Sources: []SourceSpec{
			{Name: "a", Needs: "phone", CacheTTL: time.Hour, FreshFor: time.Minute, Timeout: MaxTimeout, Source: a},
			{Name: "b", Needs: "phone", CacheTTL: time.Hour, FreshFor: time.Minute, Timeout: MaxTimeout, Source: b},
		},
	}, Options{Cache: NewMemoryCache(0), Now: clock.Now, MaxRefreshes: 1})
	f.agg.Build(context.Background(), ringing(knownPhone))
	hold.Store(true)
	clock.Advance(5 * time.Minute)
	f.agg.Build(context.Background(), ringing(knownPhone))
	<-blocked // one refresh runs and holds the only slot
	for range 10 {
		card := f.agg.Build(context.Background(), ringing(knownPhone))
		if s := section(t, card, "a"); !s.Cached || s.Status != screenpop.SectionOK {
			t.Fatalf("a: %s cached %v", s.Status, s.Cached)
		}
	}
	if n := a.calls.Load() + b.calls.Load(); n != 3 {
		t.Errorf("source calls %d, want 3 (two first, one refresh)", n)
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_background_refreshes_total", map[string]string{"result": "dropped"}); v != 11 {
		t.Errorf("dropped = %v, want 11 (the other source, every card)", v)
	}
	if err := f.agg.Close(); err != nil {
		t.Fatal(err)
	}
	if v := mustMetric(t, f.reg, "screenpop_aggregator_background_refreshes_total", map[string]string{"result": "failed"}); v != 1 {
		t.Errorf("failed = %v, want 1 (cancelled by Close)", v)
	}
}

func TestLegacyCacheValueIsServedAndRefreshed(t *testing.T) {
	cache := NewMemoryCache(0)
	_ = cache.Set(context.Background(), cacheKey("s", "phone", knownPhone), []byte(`[{"v":1}]`), time.Hour)
	src := count(static(Record{"v": 2}))
	refreshed := make(chan refreshNote, 1)
	f := newFixture(t, Config{Region: "DE", Sources: []SourceSpec{{Name: "s", Needs: "phone", CacheTTL: time.Hour, Source: src}}},
		Options{Cache: cache, OnRefresh: func(p, c string) { refreshed <- refreshNote{p, c} }})
	s := section(t, f.agg.Build(context.Background(), ringing(knownPhone)), "s")
	if !s.Cached || fieldValue(t, s, "v").(interface{ String() string }).String() != "1" {
		t.Errorf("legacy value not served: %+v", s)
	}
	select {
	case <-refreshed:
	case <-time.After(20 * time.Second): // only bounds a hung test
		t.Fatal("OnRefresh was not called")
	}
	_ = f.agg.Close()
	if n := src.calls.Load(); n != 1 {
		t.Errorf("calls %d", n)
	}
}

func TestFreshForValidation(t *testing.T) {
	for _, tc := range []struct {
		spec SourceSpec
		want string
	}{
		{SourceSpec{Name: "s", Source: static(), CacheTTL: time.Minute, FreshFor: -time.Second}, "sources[0] (s): fresh_for: -1s is outside 0..cache_ttl (1m)"},
		{SourceSpec{Name: "s", Source: static(), CacheTTL: time.Minute, FreshFor: 2 * time.Minute}, "sources[0] (s): fresh_for: 2m is outside 0..cache_ttl (1m)"},
	} {
		_, err := New(Config{Sources: []SourceSpec{tc.spec}}, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
	agg, err := New(Config{Sources: []SourceSpec{{Name: "s", Source: static(), CacheTTL: time.Minute}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := agg.Config().Sources[0].FreshFor; got != 30*time.Second {
		t.Errorf("default FreshFor %s, want 30s", got)
	}
}
