package history_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
)

// BenchmarkMemoryLookup measures the card's history lookup (by number and
// customer, the card's limit of 10 plus the call itself) in a memory store
// holding 10,000 calls, ringing one an hour back from now: spread over 300
// numbers, each its own customer (the bench harness's callers), and all of
// one customer calling from two numbers (a switchboard). One op is one
// Lookup.
//
//	go test -run '^$' -bench MemoryLookup -benchmem ./history/
func BenchmarkMemoryLookup(b *testing.B) {
	const calls = 10000
	for _, c := range []struct {
		name    string
		numbers int
		shared  bool // one customer for every number
	}{
		{"300-callers", 300, false},
		{"1-customer", 2, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			m, err := history.NewMemory(history.Config{}, history.Options{})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			now := time.Now()
			phone := func(n int) string { return fmt.Sprintf("+49301%06d", n) }
			customer := func(n int) string {
				if c.shared {
					return "C-1"
				}
				return fmt.Sprintf("C-%d", n)
			}
			for i := range calls {
				n := i % c.numbers
				if err := m.RecordCall(ctx, history.Call{ID: fmt.Sprintf("c%d", i), Phone: phone(n), CustomerID: customer(n), Agent: "1001",
					Outcome: screenpop.OutcomeAnswered, RingAt: now.Add(-time.Duration(calls-i) * time.Hour), EndAt: now.Add(-time.Duration(calls-i)*time.Hour + time.Minute)}); err != nil {
					b.Fatal(err)
				}
			}
			q := history.Query{Phone: phone(1), CustomerID: customer(1), Limit: 11}
			r, err := m.Lookup(ctx, q)
			if err != nil || len(r.Calls) != 11 || r.Last30Days == 0 {
				b.Fatalf("%d calls, %d in 30 days, %v", len(r.Calls), r.Last30Days, err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Lookup(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemoryRecordCall measures recording a call in a memory store
// that is full (its oldest call goes for each new one), the calls of 300
// numbers. One op is one RecordCall.
//
//	go test -run '^$' -bench MemoryRecordCall -benchmem ./history/
func BenchmarkMemoryRecordCall(b *testing.B) {
	m, err := history.NewMemory(history.Config{MaxCalls: 10000}, history.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now().Add(-1000 * time.Hour)
	i := 0
	record := func() {
		n := i % 300
		if err := m.RecordCall(ctx, history.Call{ID: fmt.Sprintf("c%d", i), Phone: fmt.Sprintf("+49301%06d", n), CustomerID: fmt.Sprintf("C-%d", n), Agent: "1001",
			Outcome: screenpop.OutcomeAnswered, RingAt: start.Add(time.Duration(i) * time.Second)}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	for range 10000 {
		record()
	}
	b.ReportAllocs()
	for b.Loop() {
		record()
	}
}
