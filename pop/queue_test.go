package pop

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/internal/logbuf"
)

// stallDeliverer holds the first message for one agent until released.
// Deliver runs with the dispatcher's state locked, so Run stalls with it.
type stallDeliverer struct {
	*fakeDeliverer
	agent   string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	freed   sync.Once
}

func (s *stallDeliverer) free() { s.freed.Do(func() { close(s.release) }) }

func (s *stallDeliverer) Deliver(agent string, m Encoded) {
	if agent == s.agent {
		s.once.Do(func() {
			close(s.entered)
			<-s.release
		})
	}
	s.fakeDeliverer.Deliver(agent, m)
}

// TestDispatcherShedsWhenFull stalls Run, hands the dispatcher more events
// than it may queue, and checks the policy: HandleCall never blocks, new
// events beyond the limit are shed and counted, an ended event still gets
// in through the reserve, and once Run moves again everything queued is
// applied and new calls pop.
func TestDispatcherShedsWhenFull(t *testing.T) {
	const capacity = 4 // reserve for ended events: 1
	del := &stallDeliverer{fakeDeliverer: newFakeDeliverer(), agent: "gatekeeper",
		entered: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(del.free)
	logs := &logbuf.Buffer{}
	reg := prometheus.NewRegistry()
	d, err := NewDispatcher(DispatcherConfig{
		Builder: newFakeBuilder(), Deliverer: del, MaxQueuedEvents: capacity,
		Logger: slog.New(slog.NewTextHandler(logs, nil)), Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	now := time.Now()

	// x pops at alice before the stall: its ended event comes during it.
	d.HandleCall(ringing("x", now, "alice"))
	del.waitTypes(t, "alice", "x", TypePop)

	// The gatekeeper's pop blocks in Deliver, holding the dispatcher's
	// state; the next event Run takes leaves it blocked with an empty queue.
	d.HandleCall(ringing("gate", now, "gatekeeper"))
	select {
	case <-del.entered:
	case <-time.After(patience):
		t.Fatal("the gatekeeper's pop was never delivered")
	}
	d.HandleCall(ringing("probe", now, "bob"))
	waitFor(t, "Run to take the probe", func() bool { return d.events.Len() == 0 })

	for i := range capacity + 3 {
		d.HandleCall(ringing(fmt.Sprintf("c%d", i), now, "bob")) // c0..c3 fit, c4..c6 are shed
	}
	d.HandleCall(ended("x", "", screenpop.OutcomeAbandoned, now))  // the reserve
	d.HandleCall(ended("c0", "", screenpop.OutcomeAbandoned, now)) // the reserve is full: shed

	shed := func(kind string) float64 {
		return metricValue(t, reg, "screenpop_pop_shed_events_total", map[string]string{"kind": kind})
	}
	if got := shed("ringing"); got != 3 {
		t.Errorf("shed ringing events = %v, want 3", got)
	}
	if got := shed("ended"); got != 1 {
		t.Errorf("shed ended events = %v, want 1", got)
	}
	if got := metricValue(t, reg, "screenpop_pop_queued_events", nil); got != capacity+1 {
		t.Errorf("queued_events = %v, want %d (capacity and reserve)", got, capacity+1)
	}
	if n := strings.Count(logs.String(), "call events are shed"); n != 1 {
		t.Errorf("%d error logs for one burst of shedding, want 1:\n%s", n, logs.String())
	}

	del.free()
	// Everything queued is applied: the probe and c0..c3 pop at bob, x
	// ends at alice; the shed calls never pop.
	del.waitTypes(t, "alice", "x", TypePop, TypeEnded)
	for _, id := range []string{"probe", "c0", "c1", "c2", "c3"} {
		del.waitTypes(t, "bob", id, TypePop)
	}
	for _, id := range []string{"c4", "c5", "c6"} {
		if got := del.types("bob", id); len(got) != 0 {
			t.Errorf("shed call %s reached bob: %v", id, got)
		}
	}
	// The dispatcher goes on: a new call pops and ends.
	d.HandleCall(ringing("after", now, "bob"))
	del.waitTypes(t, "bob", "after", TypePop)
	d.HandleCall(ended("after", "", screenpop.OutcomeAbandoned, now))
	del.waitTypes(t, "bob", "after", TypePop, TypeEnded)
	waitFor(t, "the queue to drain", func() bool {
		return metricValue(t, reg, "screenpop_pop_queued_events", nil) == 0
	})
	waitFor(t, "the caught-up log", func() bool { return strings.Contains(logs.String(), "caught up") })
	if !strings.Contains(logs.String(), "shed=4") {
		t.Errorf("the caught-up log does not count the 4 shed events:\n%s", logs.String())
	}
	// c0's ended event was shed: its pop stays until the StaleAfter sweep.
	if got := del.types("bob", "c0"); len(got) != 1 {
		t.Errorf("c0 got %v, want only its pop", got)
	}
}

func TestDispatcherQueueLimitValidated(t *testing.T) {
	_, err := NewDispatcher(DispatcherConfig{Builder: newFakeBuilder(), Deliverer: newFakeDeliverer(), MaxQueuedEvents: -1})
	if want := "pop: dispatcher: max_queued_events must not be negative, got -1"; err == nil || err.Error() != want {
		t.Errorf("NewDispatcher: %v, want %q", err, want)
	}
}

// runDispatcher runs d until the test ends.
func runDispatcher(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(patience):
			t.Error("Run did not return after cancel")
		}
	})
}

// waitFor polls cond until it holds, or fails the test after patience.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
