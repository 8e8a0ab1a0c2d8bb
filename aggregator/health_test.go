package aggregator

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// The breaker's state follows in screenpop_source_breaker_state and in
// Health: closed, failing (closed, with failures in a row), open, and
// half-open once its open time is over, also while no card asks.
func TestBreakerStateAndHealth(t *testing.T) {
	var failing atomic.Bool
	failing.Store(true)
	src := sourceFunc(func(context.Context, Key) ([]Record, error) {
		if failing.Load() {
			return nil, errors.New("down")
		}
		return []Record{{"x": 1}}, nil
	})
	f := newFixture(t, Config{Region: "DE", Sources: []SourceSpec{
		{Name: "flaky", Needs: "phone", Source: src, Breaker: BreakerSpec{Failures: 2, OpenFor: 50 * time.Millisecond}},
		{Name: "steady", Needs: "phone", Source: static(Record{"x": 1}), Breaker: BreakerSpec{Disabled: true}},
	}}, Options{})
	state := func() float64 {
		t.Helper()
		mfs, err := f.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == "screenpop_source_breaker_state" && labelsMatch(m, map[string]string{"source": "flaky"}) {
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatal("no breaker state of flaky")
		return 0
	}
	health := func() map[string]SourceHealth {
		out := map[string]SourceHealth{}
		for _, h := range f.agg.Health() {
			out[h.Name] = h
		}
		return out
	}
	if state() != 0 || health()["flaky"] != (SourceHealth{Name: "flaky", Breaker: BreakerClosed}) {
		t.Fatalf("at start: state %v, health %+v", state(), health())
	}
	build := func() { f.agg.Build(context.Background(), ringing(knownPhone)) }
	build()
	if h := health()["flaky"]; h.Breaker != BreakerClosed || h.Failures != 1 {
		t.Errorf("after one failure: %+v", h)
	}
	build()
	if state() != 2 || health()["flaky"].Breaker != BreakerOpen {
		t.Errorf("after two failures: state %v, health %+v; want open (2)", state(), health()["flaky"])
	}
	// The open time passes; nobody builds a card, the floor asks.
	deadline := time.Now().Add(10 * time.Second)
	for health()["flaky"].Breaker != BreakerHalfOpen {
		if time.Now().After(deadline) {
			t.Fatal("the breaker never went half-open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if state() != 1 {
		t.Errorf("half-open: state %v, want 1", state())
	}
	failing.Store(false)
	build()
	if state() != 0 || health()["flaky"] != (SourceHealth{Name: "flaky", Breaker: BreakerClosed}) {
		t.Errorf("recovered: state %v, health %+v", state(), health()["flaky"])
	}
	if h := health()["steady"]; h != (SourceHealth{Name: "steady", Breaker: BreakerClosed}) {
		t.Errorf("a source without a breaker: %+v", h)
	}
}

// The cache per source: a miss, a fresh hit, a stale answer served while
// it is refreshed.
func TestCacheRequestsPerSource(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)}
	credit := count(func(context.Context, Key) ([]Record, error) { return []Record{{"limit": 1000}}, nil })
	f := newFixture(t, Config{
		Region:    "DE",
		Directory: &SourceSpec{Name: "directory", Source: directoryOf(brandt)},
		Sources:   []SourceSpec{{Name: "credit", CacheTTL: 10 * time.Minute, FreshFor: time.Minute, Source: credit}},
	}, Options{Cache: NewMemoryCache(0), Now: clock.Now})
	build := func() { f.agg.Build(context.Background(), ringing(knownPhone)) }
	build()
	clock.Advance(30 * time.Second)
	build()
	clock.Advance(2 * time.Minute)
	build()
	f.agg.Close() // the background refresh is done
	for result, want := range map[string]float64{"miss": 1, "hit": 1, "stale": 1, "error": 0} {
		if got := mustMetric(t, f.reg, "screenpop_cache_requests_total", map[string]string{"source": "credit", "result": result}); got != want {
			t.Errorf("credit %s = %v, want %v", result, got, want)
		}
	}
}
