package redisbus

import (
	"context"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/pop"
)

// localHub records what the bus hands to this daemon's hub.
type localHub struct {
	mu    sync.Mutex
	calls []string // call ids, in delivery order
}

func (h *localHub) Deliver(_ string, m pop.Encoded) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, m.CallID)
}

func (h *localHub) DeliverNumbered(agent string, m pop.Encoded) { h.Deliver(agent, m) }

func (h *localHub) delivered() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

func withdrawn(t *testing.T, callID string) pop.Encoded {
	t.Helper()
	m, err := pop.Encode(pop.Message{Type: pop.TypeWithdrawn, CallID: callID, At: time.Now(), Data: pop.WithdrawnData{Reason: pop.ReasonNotRinging}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// queueMetric reads one sample of reg (labels: name=value pairs).
func queueMetric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(lp *dto.LabelPair) bool {
					return lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}) {
					continue next
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s%v not found", name, labels)
	return 0
}

// TestFullQueueFallsBackToLocalHub needs no Redis: the bus points at a
// closed port. With Run not started the queue fills; messages beyond it go
// straight to the local hub and are counted; once Run starts, the queued
// ones follow (locally, Redis being down, and kept in the outage buffer
// for when it is back), and the bus goes on.
func TestFullQueueFallsBackToLocalHub(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	client := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { client.Close() })

	hub := &localHub{}
	reg := prometheus.NewRegistry()
	bus, err := New(Config{Client: client, Hub: hub, MaxQueuedMessages: 2, HealthInterval: 20 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c1", "c2", "c3", "c4", "c5"} {
		bus.Deliver("alice", withdrawn(t, id))
	}
	if got := hub.delivered(); !slices.Equal(got, []string{"c3", "c4", "c5"}) {
		t.Fatalf("delivered at once %v, want the 3 the queue of 2 refused", got)
	}
	if got := queueMetric(t, reg, "screenpop_redisbus_dropped_messages_total", "reason", "queue_full"); got != 3 {
		t.Errorf("dropped_messages_total = %v, want 3", got)
	}
	if got := queueMetric(t, reg, "screenpop_redisbus_queued_messages"); got != 2 {
		t.Errorf("queued_messages = %v, want 2", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bus.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	waitDelivered := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for len(hub.delivered()) < n {
			if time.Now().After(deadline) {
				t.Fatalf("the hub got %v, want %d messages", hub.delivered(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitDelivered(5)
	// The bus goes on: the next message is queued again, not dropped.
	bus.Deliver("alice", withdrawn(t, "c6"))
	waitDelivered(6)
	if got := hub.delivered(); !slices.Equal(got, []string{"c3", "c4", "c5", "c1", "c2", "c6"}) {
		t.Errorf("the hub got %v", got)
	}
	if got := queueMetric(t, reg, "screenpop_redisbus_queued_messages"); got != 0 {
		t.Errorf("queued_messages = %v once drained, want 0", got)
	}
	if got := queueMetric(t, reg, "screenpop_redisbus_dropped_messages_total", "reason", "queue_full"); got != 3 {
		t.Errorf("dropped_messages_total = %v, want still 3", got)
	}
	if got := queueMetric(t, reg, "screenpop_redisbus_buffered_messages"); got != 3 {
		t.Errorf("buffered_messages = %v, want the 3 queued ones, kept for Redis", got)
	}
	if got := queueMetric(t, reg, "screenpop_redisbus_delivered_total", "path", "local_fallback"); got != 6 {
		t.Errorf("delivered_total{local_fallback} = %v, want 6", got)
	}
}
