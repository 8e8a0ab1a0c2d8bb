package aggregator_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/historytest"
	"github.com/screenpop/screenpop/history/postgres"
)

type sourceFunc func(ctx context.Context, key aggregator.Key) ([]aggregator.Record, error)

func (f sourceFunc) Fetch(ctx context.Context, key aggregator.Key) ([]aggregator.Record, error) {
	return f(ctx, key)
}

// BenchmarkCardHistory measures a card whose directory names the customer:
// without history, and with the history's two lookups (by number at once,
// then by number and customer) in the memory store and in PostgreSQL (the
// `make test` one), each holding 1000 calls of the customer from two
// numbers.
//
//	go test -run '^$' -bench CardHistory -benchtime 2000x ./aggregator/
func BenchmarkCardHistory(b *testing.B) {
	const phone, other = "+4930123456", "+48601234567"
	cfg := aggregator.Config{
		Region: "DE",
		Directory: &aggregator.SourceSpec{Name: "directory", Needs: "phone", Source: sourceFunc(func(context.Context, aggregator.Key) ([]aggregator.Record, error) {
			return []aggregator.Record{{"id": "C-1", "name": "ACME"}}, nil
		})},
		Sources: []aggregator.SourceSpec{{Name: "balance", Needs: "customer_id", Source: sourceFunc(func(context.Context, aggregator.Key) ([]aggregator.Record, error) {
			return []aggregator.Record{{"balance": 1}}, nil
		})}},
	}
	for _, kind := range []string{"none", history.TypeMemory, history.TypePostgres} {
		b.Run(kind, func(b *testing.B) {
			opts := aggregator.Options{Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)}
			if kind != "none" {
				store := benchStore(b, kind)
				now := time.Now()
				for i := range 1000 {
					number := phone
					if i%2 == 1 {
						number = other
					}
					if err := store.RecordCall(context.Background(), history.Call{ID: fmt.Sprintf("c%d", i), Phone: number, CustomerID: "C-1", Agent: "1001",
						Outcome: screenpop.OutcomeAnswered, RingAt: now.Add(-time.Duration(i) * time.Hour)}); err != nil {
						b.Fatal(err)
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := store.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				opts.History = store
			}
			agg, err := aggregator.New(cfg, opts)
			if err != nil {
				b.Fatal(err)
			}
			call := screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "bench", Caller: screenpop.Caller{Number: phone}, At: time.Now()}
			b.ReportAllocs()
			for b.Loop() {
				card := agg.Build(context.Background(), call)
				if kind != "none" && (len(card.History) != 10 || *card.CallsLast30Days != 720) {
					b.Fatalf("history of %d calls, %d in 30 days", len(card.History), *card.CallsLast30Days)
				}
			}
		})
	}
}

// benchStore is a running history store of kind, closed when b ends.
func benchStore(b *testing.B, kind string) history.Store {
	b.Helper()
	if kind == history.TypeMemory {
		s, err := history.NewMemory(history.Config{}, history.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	dsn := historytest.PostgresSchema(b, historytest.TestDSN)
	s, err := postgres.New(history.Config{Type: history.TypePostgres}, dsn, history.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done; s.Close() })
	return s
}
