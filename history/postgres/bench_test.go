package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/historytest"
)

// BenchmarkRecordCall measures the write path of ended calls: queued by
// RecordCall, written in batches by the writer; ns/op is per call,
// committed.
func BenchmarkRecordCall(b *testing.B) {
	s := startStore(b, history.Config{}, historytest.PostgresSchema(b, historytest.TestDSN), history.Options{})
	waitMigrated(b, s)
	ctx := context.Background()
	ring := time.Now()
	b.ResetTimer()
	for i := range b.N {
		if err := s.RecordCall(ctx, history.Call{ID: fmt.Sprintf("pbx/%d", i), Phone: fmt.Sprintf("+4930%07d", i%1000), Agent: "1001", RingAt: ring}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSaveNote measures a note's round trip: queued, committed, and
// confirmed to its caller, one at a time.
func BenchmarkSaveNote(b *testing.B) {
	s := startStore(b, history.Config{}, historytest.PostgresSchema(b, historytest.TestDSN), history.Options{})
	waitMigrated(b, s)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.SaveNote(ctx, history.NewNote{CallID: fmt.Sprintf("pbx/%d", i%100), Agent: "1001", Text: "wants a callback on Tuesday"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookup measures reading a caller's card history (10 newest
// calls by number and customer, their notes and the 30-day count) from a
// table of 20,000 calls.
// BenchmarkLookup measures a card's earlier calls: 20,000 calls of 2,000
// numbers and 1,500 customers (ten calls a number in 14 days), and (busy)
// of 20 numbers and 15 customers, a thousand calls a number: a
// switchboard that calls every day, whose "calls in the last 30 days"
// counts them all.
func BenchmarkLookup(b *testing.B) {
	b.Run("ten-a-number", func(b *testing.B) { benchmarkLookup(b, 2000, 1500) })
	b.Run("busy", func(b *testing.B) { benchmarkLookup(b, 20, 15) })
}

func benchmarkLookup(b *testing.B, numbers, customers int) {
	s := startStore(b, history.Config{}, historytest.PostgresSchema(b, historytest.TestDSN), history.Options{})
	waitMigrated(b, s)
	ctx := context.Background()
	now := time.Now()
	for i := range 20000 {
		c := history.Call{ID: fmt.Sprintf("pbx/%d", i), Phone: fmt.Sprintf("+4930%07d", i%numbers), CustomerID: fmt.Sprintf("C-%d", i%customers),
			Agent: "1001", RingAt: now.Add(-time.Duration(i) * time.Minute)}
		if err := s.RecordCall(ctx, c); err != nil {
			b.Fatal(err)
		}
		if i%4 == 0 {
			n := history.NewNote{CallID: c.ID, Phone: c.Phone, Agent: "1001", At: c.RingAt, Text: "called about the invoice"}
			if err := s.out.push(&op{kind: opNote, note: n, id: history.NewID()}); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := s.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		r, err := s.Lookup(ctx, history.Query{Phone: fmt.Sprintf("+4930%07d", i%numbers), CustomerID: fmt.Sprintf("C-%d", i%customers), Limit: 10})
		if err != nil || len(r.Calls) == 0 {
			b.Fatal(r, err)
		}
	}
}

// BenchmarkLinkOf measures what every card of a number costs before the
// directory is asked: reading the number's link (half of them linked)
// among 10,000 links.
func BenchmarkLinkOf(b *testing.B) {
	s := startStore(b, history.Config{}, historytest.PostgresSchema(b, historytest.TestDSN), history.Options{})
	waitMigrated(b, s)
	ctx := context.Background()
	for i := range 10000 {
		if err := s.Link(ctx, history.Link{Phone: fmt.Sprintf("+4930%07d", 2*i), CustomerID: fmt.Sprintf("C-%d", i), Agent: "1001"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		_, err := s.LinkOf(ctx, fmt.Sprintf("+4930%07d", i%20000))
		if err != nil && !errors.Is(err, history.ErrNotLinked) {
			b.Fatal(err)
		}
	}
}

// BenchmarkLink measures an agent's link: the link and its access entry
// committed in one transaction.
func BenchmarkLink(b *testing.B) {
	s := startStore(b, history.Config{}, historytest.PostgresSchema(b, historytest.TestDSN), history.Options{})
	waitMigrated(b, s)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := s.Link(ctx, history.Link{Phone: fmt.Sprintf("+4930%07d", i%1000), CustomerID: fmt.Sprintf("C-%d", i), Agent: "1001", CallID: "pbx/1"}); err != nil {
			b.Fatal(err)
		}
	}
}
