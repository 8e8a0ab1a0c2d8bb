package aggregator

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/internal/logbuf"
)

// sourceFunc adapts a function to Source.
type sourceFunc func(ctx context.Context, key Key) ([]Record, error)

func (f sourceFunc) Fetch(ctx context.Context, key Key) ([]Record, error) { return f(ctx, key) }

var _ Source = sourceFunc(nil)

// counted counts the calls of a source.
type counted struct {
	calls atomic.Int64
	fn    sourceFunc
}

func (c *counted) Fetch(ctx context.Context, key Key) ([]Record, error) {
	c.calls.Add(1)
	return c.fn(ctx, key)
}

func count(fn sourceFunc) *counted { return &counted{fn: fn} }

// static answers the same records to everyone.
func static(records ...Record) sourceFunc {
	return func(context.Context, Key) ([]Record, error) { return records, nil }
}

// byCustomer answers the records of the key's customer.
func byCustomer(data map[string][]Record) sourceFunc {
	return func(_ context.Context, key Key) ([]Record, error) { return data[key.CustomerID], nil }
}

// directoryOf answers the records whose "phone" is the key's phone.
func directoryOf(records ...Record) sourceFunc {
	return func(_ context.Context, key Key) ([]Record, error) {
		var out []Record
		for _, r := range records {
			if r["phone"] == key.Phone {
				out = append(out, r)
			}
		}
		return out, nil
	}
}

// blockUntil waits for release, ignoring ctx, like a driver stuck in a
// read without deadline.
func blockUntil(release <-chan struct{}, records ...Record) sourceFunc {
	return func(context.Context, Key) ([]Record, error) {
		<-release
		return records, nil
	}
}

type fixture struct {
	agg  *Aggregator
	reg  *prometheus.Registry
	logs *logbuf.Buffer
}

// newFixture builds an aggregator with a fresh registry and a captured log;
// opts' Registerer and Logger are replaced.
func newFixture(t *testing.T, cfg Config, opts Options) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), logs: &logbuf.Buffer{}}
	opts.Registerer = f.reg
	opts.Logger = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	agg, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.agg = agg
	return f
}

const (
	knownPhone = "+4930123456"
	otherPhone = "+48601234567"
)

func ringing(number string) screenpop.CallEvent {
	return screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "call-1", Caller: screenpop.Caller{Number: number}, At: time.Now()}
}

func section(t *testing.T, card screenpop.Card, name string) screenpop.CardSection {
	t.Helper()
	for _, s := range card.Sections {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("card has no section %q (sections: %+v)", name, card.Sections)
	return screenpop.CardSection{}
}

func fieldValue(t *testing.T, s screenpop.CardSection, key string) any {
	t.Helper()
	for _, f := range s.Fields {
		if f.Key == key {
			return f.Value
		}
	}
	t.Fatalf("section %s has no field %q (fields: %+v)", s.Name, key, s.Fields)
	return nil
}

// metric returns a counter's value or a histogram's sample count, and
// whether the series exists.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	if len(m.GetLabel()) != len(want) {
		return false
	}
	for _, l := range m.GetLabel() {
		if want[l.GetName()] != l.GetValue() {
			return false
		}
	}
	return true
}

func mustMetric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	v, ok := metric(t, reg, name, labels)
	if !ok {
		t.Fatalf("no series %s%v", name, labels)
	}
	return v
}
