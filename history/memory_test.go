package history_test

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"

	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/historytest"
)

func TestMemoryConformance(t *testing.T) {
	historytest.Run(t, func(t *testing.T, cfg history.Config, opts history.Options) history.Store {
		cfg.Type = history.TypeMemory
		s, err := history.NewMemory(cfg, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestMemoryLookupIndexes checks the memory store's indexed Lookup against
// a scan of every call it holds, through records again (merges that move a
// call's ring time or fill in its customer), eviction, purge and erasure.
func TestMemoryLookupIndexes(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	m, err := history.NewMemory(history.Config{MaxCalls: 300}, history.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	phones := []string{"+4930123456", "+4930123457", "+48601234567", "+441632960001"}
	customers := []string{"", "C-1", "C-2", "C-3"}
	var ids []string
	check := func(step int) {
		t.Helper()
		var held []history.Call
		for _, id := range ids {
			if c, err := m.Call(ctx, id); err == nil {
				held = append(held, c)
			}
		}
		for _, phone := range append(phones, "") {
			for _, customer := range customers {
				for _, limit := range []int{0, 1, 3, 1000} {
					q := history.Query{Phone: phone, CustomerID: customer, Limit: limit}
					got, err := m.Lookup(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					var want []history.Call
					count := 0
					for _, c := range held {
						if (phone != "" && c.Phone == phone) || (customer != "" && c.CustomerID == customer) {
							want = append(want, c)
							if !c.RingAt.Before(now.Add(-history.Window)) {
								count++
							}
						}
					}
					slices.SortFunc(want, func(a, b history.Call) int {
						return cmp.Or(b.RingAt.Compare(a.RingAt), cmp.Compare(b.ID, a.ID))
					})
					want = want[:min(limit, len(want))]
					var gotIDs, wantIDs []string
					for _, c := range got.Calls {
						gotIDs = append(gotIDs, c.CallID)
					}
					for _, c := range want {
						wantIDs = append(wantIDs, c.ID)
					}
					if !slices.Equal(gotIDs, wantIDs) || got.Last30Days != count {
						t.Fatalf("step %d, %+v: got %v (%d in 30 days), want %v (%d)", step, q, gotIDs, got.Last30Days, wantIDs, count)
					}
					if len(want) == 0 && got.Calls != nil {
						t.Fatalf("step %d, %+v: calls %#v, want nil", step, q, got.Calls)
					}
				}
			}
		}
	}
	for step := range 1500 {
		switch n := rnd.IntN(100); {
		case n < 80 || len(ids) == 0:
			id := fmt.Sprintf("c%d", rnd.IntN(400))
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
			// Often the same ring time, twice, and often within the 30 days.
			ring := now.Add(-time.Duration(rnd.IntN(60*24)) * time.Hour / 24 * time.Duration(rnd.IntN(2)+1))
			err := m.RecordCall(ctx, history.Call{ID: id, Phone: phones[rnd.IntN(len(phones))], CustomerID: customers[rnd.IntN(len(customers))],
				Agent: "1001", Outcome: screenpop.OutcomeAnswered, RingAt: ring})
			if err != nil {
				t.Fatal(err)
			}
		case n < 90:
			if _, err := m.Erase(ctx, history.Subject{Phone: phones[rnd.IntN(len(phones))], By: "admin"}); err != nil {
				t.Fatal(err)
			}
		case n < 95:
			if _, err := m.Erase(ctx, history.Subject{CustomerID: customers[1+rnd.IntN(len(customers)-1)], By: "admin"}); err != nil {
				t.Fatal(err)
			}
		default:
			now = now.Add(time.Duration(rnd.IntN(48)) * time.Hour)
			if _, err := m.Purge(ctx, now); err != nil {
				t.Fatal(err)
			}
		}
		if step%10 == 0 {
			check(step)
		}
	}
	check(-1)
}
