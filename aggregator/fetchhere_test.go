package aggregator

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// TestAnswerRacingItsTimeout: a source answering the very moment its time
// runs out (it answers once its context ends, ignoring it) gives each
// card one outcome, timeout or answer, counted once in the source's
// duration histogram, with its slot free once it returned. The source
// runs in the lookup's own goroutine and the timeout is given by another
// (fetchHere): only one of them may hand the card its outcome.
func TestAnswerRacingItsTimeout(t *testing.T) {
	var running atomic.Int32
	src := sourceFunc(func(ctx context.Context, _ Key) ([]Record, error) {
		running.Add(1)
		defer running.Add(-1)
		<-ctx.Done()
		return []Record{{"n": 1}}, nil
	})
	f := newFixture(t, Config{
		Region: "DE", Deadline: 5 * time.Second,
		Sources: []SourceSpec{{Name: "racy", Needs: "phone", Timeout: time.Millisecond, MaxConcurrent: 1,
			Breaker: BreakerSpec{Disabled: true}, Source: src}},
	}, Options{})
	const cards = 50
	for range cards {
		card := f.agg.Build(context.Background(), ringing(knownPhone))
		switch s := section(t, card, "racy"); s.Status {
		case screenpop.SectionTimeout, screenpop.SectionOK:
		default:
			// unavailable: the slot was still held by the previous card's
			// lookup, which had not returned yet. Wait for it.
			if s.Status != screenpop.SectionUnavailable {
				t.Fatalf("status %s (%s), want timeout or ok", s.Status, s.Error)
			}
		}
		for running.Load() != 0 {
			time.Sleep(time.Millisecond)
		}
	}
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var observed uint64
	for _, mf := range mfs {
		if mf.GetName() != "screenpop_aggregator_source_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "source" && l.GetValue() == "racy" {
					observed += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	if observed != cards {
		t.Errorf("%d lookups observed for %d cards, want one each", observed, cards)
	}
}

// TestHungSourceGivesTimeoutAndKeepsItsSlot: a source that never returns
// gets its timeout on the card from its own budget, not the card's
// deadline, and holds its slot until it returns.
func TestHungSourceGivesTimeoutAndKeepsItsSlot(t *testing.T) {
	release := make(chan struct{})
	src := count(blockUntil(release, Record{"x": 1}))
	f := newFixture(t, Config{
		Region: "DE", Deadline: MaxDeadline,
		Sources: []SourceSpec{{Name: "hung", Needs: "phone", Timeout: 20 * time.Millisecond, MaxConcurrent: 1, Source: src}},
	}, Options{})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	if s := section(t, card, "hung"); s.Status != screenpop.SectionTimeout || s.Error != "hung did not answer within 20ms" {
		t.Fatalf("first card: %s %q", s.Status, s.Error)
	}
	card = f.agg.Build(context.Background(), ringing(knownPhone))
	if s := section(t, card, "hung"); s.Status != screenpop.SectionUnavailable {
		t.Errorf("second card while the first lookup hangs: %s %q, want unavailable", s.Status, s.Error)
	}
	close(release)
	for {
		card = f.agg.Build(context.Background(), ringing(knownPhone))
		if s := section(t, card, "hung"); s.Status != screenpop.SectionUnavailable {
			if s.Status != screenpop.SectionOK {
				t.Errorf("once the lookup returned: %s %q, want ok", s.Status, s.Error)
			}
			break
		}
		time.Sleep(time.Millisecond) // the slot is freed as the hung lookup returns
	}
	if n := src.calls.Load(); n != 2 {
		t.Errorf("source asked %d times, want 2", n)
	}
}
