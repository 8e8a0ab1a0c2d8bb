package aggregator

import (
	"context"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
)

// lookupStore is a history store holding the calls of customer C-1 from
// two numbers, one of them old, and the call being built (recorded by a
// rebuild after it was stored).
func lookupStore(t *testing.T) history.Store {
	t.Helper()
	s, err := history.NewMemory(history.Config{Dispositions: []history.Disposition{{Code: "order", Label: "Order placed"}}}, history.Options{Daemon: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Now()
	for _, c := range []history.Call{
		{ID: "by-number", Phone: knownPhone, CustomerID: "C-1", Agent: "1001", AgentName: "Alice Agent", Outcome: screenpop.OutcomeAnswered, RingAt: now.Add(-48 * time.Hour), EndAt: now.Add(-48*time.Hour + time.Minute)},
		{ID: "other-number", Phone: otherPhone, CustomerID: "C-1", Agent: "1002", AgentName: "Bob Agent", Outcome: screenpop.OutcomeAnswered, RingAt: now.Add(-24 * time.Hour)},
		{ID: "old", Phone: knownPhone, CustomerID: "C-1", Outcome: screenpop.OutcomeAbandoned, RingAt: now.Add(-40 * 24 * time.Hour)},
		{ID: "call-1", Phone: knownPhone, CustomerID: "C-1", RingAt: now.Add(-time.Minute)},
	} {
		if err := s.RecordCall(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SaveNote(ctx, history.NewNote{CallID: "by-number", Phone: knownPhone, Agent: "1001", AgentName: "Alice Agent", Text: "wants a call-back"}); err != nil {
		t.Fatal(err)
	}
	if err := s.WrapUp(ctx, history.WrapUp{CallID: "by-number", Agent: "1001", Code: "order"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func historyIDs(calls []screenpop.PastCall) []string {
	var ids []string
	for _, c := range calls {
		ids = append(ids, c.CallID)
	}
	return ids
}

// The card shows the calls of the number and, once the directory named
// the customer, the customer's calls from other numbers: newest first,
// with agent names, outcome, disposition and notes, and the count of the
// last 30 days, without the call being built.
func TestCardHistoryByNumberAndCustomer(t *testing.T) {
	store := lookupStore(t)
	cfg := Config{
		Region:       "DE",
		HistoryLimit: 10,
		Directory:    &SourceSpec{Name: "directory", Needs: "phone", Source: directoryOf(Record{"id": "C-1", "name": "ACME", "phone": knownPhone})},
	}
	f := newFixture(t, cfg, Options{History: store})

	card := f.agg.Build(context.Background(), ringing(knownPhone))
	if got := historyIDs(card.History); len(got) != 3 || got[0] != "other-number" || got[1] != "by-number" || got[2] != "old" {
		t.Fatalf("history %v, want other-number, by-number, old", got)
	}
	if card.CallsLast30Days == nil || *card.CallsLast30Days != 2 {
		t.Fatalf("calls in the last 30 days: %v, want 2", card.CallsLast30Days)
	}
	byNumber := card.History[1]
	if byNumber.AgentName != "Alice Agent" || byNumber.Outcome != screenpop.OutcomeAnswered || byNumber.Disposition != "order" ||
		byNumber.DispositionLabel != "Order placed" || len(byNumber.Notes) != 1 || byNumber.Notes[0].Text != "wants a call-back" || byNumber.Duration != time.Minute {
		t.Errorf("the call by number: %+v", byNumber)
	}
	if card.History[0].AgentName != "Bob Agent" {
		t.Errorf("the call from the other number: %+v", card.History[0])
	}

	// A caller the directory does not know: the number's calls only.
	f2 := newFixture(t, Config{Region: "DE", HistoryLimit: 1}, Options{History: store})
	card = f2.agg.Build(context.Background(), ringing(knownPhone))
	if got := historyIDs(card.History); len(got) != 1 || got[0] != "by-number" || card.CallsLast30Days == nil || *card.CallsLast30Days != 1 {
		t.Errorf("by number only, limit 1: %v, count %v", got, card.CallsLast30Days)
	}

	// The agent picked the customer: looked up by customer from the start.
	card = f2.agg.BuildFor(context.Background(), ringing("+4940123456"), "C-1")
	if got := historyIDs(card.History); len(got) != 1 || got[0] != "other-number" || *card.CallsLast30Days != 2 {
		t.Errorf("picked customer: %v, count %v", got, *card.CallsLast30Days)
	}
}

// With a History that cannot look up by customer (MemoryHistory), the card
// shows the number's calls and no count.
func TestCardHistoryWithoutLookup(t *testing.T) {
	hist := NewMemoryHistory(10)
	hist.Record(context.Background(), screenpop.PastCall{CallID: "x", Phone: knownPhone, At: time.Now().Add(-time.Hour), Outcome: screenpop.OutcomeAnswered})
	f := newFixture(t, Config{Region: "DE"}, Options{History: hist})
	card := f.agg.Build(context.Background(), ringing(knownPhone))
	if len(card.History) != 1 || card.CallsLast30Days != nil {
		t.Errorf("history %v, count %v", historyIDs(card.History), card.CallsLast30Days)
	}
}
