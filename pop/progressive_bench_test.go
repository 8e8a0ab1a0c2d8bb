package pop

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
)

// latencySource answers after its latency (or gives up with ctx): a
// company system that takes its time.
type latencySource struct {
	latency time.Duration
	records []aggregator.Record
}

func (s latencySource) Fetch(ctx context.Context, _ aggregator.Key) ([]aggregator.Record, error) {
	t := time.NewTimer(s.latency)
	defer t.Stop()
	select {
	case <-t.C:
		return s.records, nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// wholeBuilder hides BuildProgressive: the dispatcher waits for the whole
// card, as before cards were sent in steps.
type wholeBuilder struct{ agg *aggregator.Aggregator }

func (w wholeBuilder) Build(ctx context.Context, ev screenpop.CallEvent) screenpop.Card {
	return w.agg.Build(ctx, ev)
}

func (w wholeBuilder) BuildFor(ctx context.Context, ev screenpop.CallEvent, id string) screenpop.Card {
	return w.agg.BuildFor(ctx, ev, id)
}

// timingDeliverer notes when each call's first message and its complete
// card (a pop or card message without a loading section) reach the agent.
type timingDeliverer struct {
	mu       sync.Mutex
	first    map[string]time.Time
	complete map[string]chan time.Time
}

func (d *timingDeliverer) expect(callID string) chan time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	ch := make(chan time.Time, 1)
	d.complete[callID] = ch
	return ch
}

func (d *timingDeliverer) Deliver(_ string, m Encoded) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.first[m.CallID]; !ok && m.Type == TypePop {
		d.first[m.CallID] = now
	}
	if (m.Type == TypePop || m.Type == TypeCard) && !bytes.Contains(m.Unnumbered(), []byte(`"status":"loading"`)) {
		if ch := d.complete[m.CallID]; ch != nil {
			ch <- now
			delete(d.complete, m.CallID)
		}
	}
}

func (d *timingDeliverer) firstAt(callID string) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.first[callID]
}

// BenchmarkRingToFirstPop measures, through the real aggregator and
// dispatcher (no network), the time from a ring to the agent's first pop
// and to the complete card, for a card with a fast section and one whose
// source takes 50ms or 500ms. Sent in steps (the default with the
// aggregator), the first pop does not wait for the slow source; sent whole,
// it does.
//
//	go test -run '^$' -bench RingToFirstPop -benchtime 20x ./pop/
func BenchmarkRingToFirstPop(b *testing.B) {
	for _, latency := range []time.Duration{50 * time.Millisecond, 500 * time.Millisecond} {
		for _, progressive := range []bool{true, false} {
			mode := "steps"
			if !progressive {
				mode = "whole"
			}
			b.Run(fmt.Sprintf("slow=%s/%s", latency, mode), func(b *testing.B) {
				benchRingToFirstPop(b, latency, progressive)
			})
		}
	}
}

func benchRingToFirstPop(b *testing.B, latency time.Duration, progressive bool) {
	agg, err := aggregator.New(aggregator.Config{
		Region: "DE", Deadline: 5 * time.Second,
		Directory: &aggregator.SourceSpec{Name: "directory", Source: staticSource{{"id": "C-1", "name": "ACME GmbH"}}},
		Sources: []aggregator.SourceSpec{
			{Name: "fast", Source: staticSource{{"balance": 1234.5, "currency": "EUR"}}},
			{Name: "slow", Timeout: 2 * time.Second, Source: latencySource{latency: latency, records: []aggregator.Record{{"limit": 5000}}}},
		},
	}, aggregator.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var builder CardBuilder = agg
	if !progressive {
		builder = wholeBuilder{agg}
	}
	del := &timingDeliverer{first: map[string]time.Time{}, complete: map[string]chan time.Time{}}
	d, err := NewDispatcher(DispatcherConfig{Builder: builder, Deliverer: del})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var toFirst, toComplete time.Duration
	n := 0
	for b.Loop() {
		id := fmt.Sprintf("bench-%d", n)
		complete := del.expect(id)
		rang := time.Now()
		d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: id, Caller: screenpop.Caller{Number: "+4930123456"},
			Agents: []string{"1001"}, At: rang, Source: "bench"})
		var at time.Time
		select {
		case at = <-complete:
		case <-time.After(10 * time.Second):
			b.Fatalf("call %s: no complete card", id)
		}
		toComplete += at.Sub(rang)
		toFirst += del.firstAt(id).Sub(rang)
		d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: id, Outcome: screenpop.OutcomeAnswered, At: time.Now(), Source: "bench"})
		n++
	}
	b.ReportMetric(float64(toFirst.Microseconds())/1000/float64(n), "ms/first-pop")
	b.ReportMetric(float64(toComplete.Microseconds())/1000/float64(n), "ms/complete")
	b.ReportMetric(0, "ns/op") // the metrics above say it; ns/op counts the whole loop
}
