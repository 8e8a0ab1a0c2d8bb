package popstate

import (
	"errors"
	"slices"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// unknownCallers rings c1 (an unknown number) at a1 and a2 and c2 (a
// withheld caller) and c3 (a known customer) at a1, with their cards.
func unknownCallers(t *testing.T) *Machine {
	t.Helper()
	m := New(Config{StaleAfter: time.Hour})
	now := scenarioStart
	cards := map[string]screenpop.Card{
		"c1": {CallID: "c1", Phone: "+4930999999", Resolution: screenpop.ResolvedUnknown},
		"c2": {CallID: "c2", Caller: screenpop.Caller{Withheld: true}, Resolution: screenpop.ResolvedWithheld},
		"c3": {CallID: "c3", Phone: "+4930111111", Resolution: screenpop.ResolvedCustomer, Customer: &screenpop.Customer{ID: "C-1"}},
	}
	for _, id := range []string{"c1", "c2", "c3"} {
		agents := []string{"a1"}
		caller := screenpop.Caller{Number: cards[id].Phone, Withheld: cards[id].Caller.Withheld}
		if id == "c1" {
			agents = append(agents, "a2")
		}
		out := m.Apply(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: id, Caller: caller, At: now, Agents: agents}, now)
		m.CardBuilt(out.Effects[0].(Build), cards[id], now)
	}
	return m
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var re *RequestError
	if !errors.As(err, &re) || re.Code != code {
		t.Errorf("%s: %v, want %s", what, err, code)
	}
}

// Only an agent holding the live pop of a caller who sent a number the
// directory did not know may search for them.
func TestMaySearch(t *testing.T) {
	m := unknownCallers(t)
	if err := m.MaySearch("a1", "c1"); err != nil {
		t.Errorf("a1 holding c1: %v", err)
	}
	if err := m.MaySearch("a2", "c1"); err != nil {
		t.Errorf("a2 holding c1: %v", err)
	}
	wantCode(t, "an agent c1 never rang for", m.MaySearch("a3", "c1"), CodeForbidden)
	wantCode(t, "a withheld caller", m.MaySearch("a1", "c2"), CodeBadRequest)
	wantCode(t, "a known customer", m.MaySearch("a1", "c3"), CodeBadRequest)
	wantCode(t, "a call nobody follows", m.MaySearch("a1", "c9"), CodeUnknownCall)
	// a2 answers: a1's pop is withdrawn, and with it the search.
	now := scenarioStart.Add(time.Second)
	m.Apply(screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: "c1", Agent: "a2", At: now}, now)
	wantCode(t, "a1 after a2 answered", m.MaySearch("a1", "c1"), CodeForbidden)
	if err := m.MaySearch("a2", "c1"); err != nil {
		t.Errorf("a2 who answered: %v", err)
	}
	m.Apply(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "c1", Agent: "a2", Outcome: screenpop.OutcomeAnswered, At: now}, now)
	wantCode(t, "after the call ended", m.MaySearch("a2", "c1"), CodeUnknownCall)
}

// What an agent's search found goes to that agent only, and is what the
// agent may link the number to; the link builds the card for the
// customer, which every holder gets, picked by the agent.
func TestFoundAndLinked(t *testing.T) {
	m := unknownCallers(t)
	now := scenarioStart.Add(time.Second)
	res := screenpop.SearchResult{Customers: []screenpop.Customer{{ID: "C-7", Name: "Anna Kowalska"}, {ID: "C-8", Name: "Anna Kowalski"}}, More: true}
	out, err := m.Found("a1", "c1", res, "s1", now)
	if err != nil || len(out.Deliveries) != 1 || !slices.Equal(out.Deliveries[0].To, []string{"a1"}) || out.Deliveries[0].Msg.Type != TypeSearchResults {
		t.Fatalf("deliveries: %+v", out.Deliveries)
	}
	if d := out.Deliveries[0].Msg.Data.(SearchResultsData); d.Ref != "s1" || !d.More || len(d.Customers) != 2 || d.Customers[0].Name != "Anna Kowalska" {
		t.Errorf("data: %+v", d)
	}
	out, err = m.Found("a3", "c1", res, "s2", now)
	wantCode(t, "results for an agent not holding the call", err, CodeForbidden)
	if len(out.Deliveries) != 0 {
		t.Errorf("results for an agent not holding the call: %+v", out.Deliveries)
	}
	empty, _ := m.Found("a2", "c1", screenpop.SearchResult{}, "s3", now)
	if d := empty.Deliveries[0].Msg.Data.(SearchResultsData); d.Customers == nil {
		t.Error("no results are sent as nil: the page wants a list")
	}

	if phone, err := m.MayLink("a1", "c1", "C-8"); err != nil || phone != "+4930999999" {
		t.Errorf("MayLink(a1, C-8) = %q, %v", phone, err)
	}
	_, err = m.MayLink("a2", "c1", "C-7")
	wantCode(t, "a2 linking what a1 found", err, CodeBadRequest)
	_, err = m.MayLink("a1", "c1", "C-9")
	wantCode(t, "a customer no search found", err, CodeBadRequest)
	_, err = m.MayLink("a3", "c1", "C-7")
	wantCode(t, "an agent not holding the call", err, CodeForbidden)

	out, err = m.Linked(AgentRef{ID: "a1", Name: "Alice"}, "c1", "C-7", now)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := out.Effects[0].(Build)
	if !ok || b.Purpose != BuildPick || b.CustomerID != "C-7" || len(out.Deliveries) != 0 {
		t.Fatalf("Linked: %+v", out)
	}
	_, err = m.Linked(AgentRef{ID: "a1"}, "c1", "C-7", now)
	wantCode(t, "linking while the card for the link builds", err, CodeBadRequest)
	card := screenpop.Card{CallID: "c1", Phone: "+4930999999", Resolution: screenpop.ResolvedCustomer, Customer: &screenpop.Customer{ID: "C-7", Name: "Anna Kowalska"}}
	out = m.CardBuilt(b, card, now)
	if len(out.Deliveries) != 1 || !slices.Equal(out.Deliveries[0].To, []string{"a1", "a2"}) || out.Deliveries[0].Msg.Type != TypeCard {
		t.Fatalf("the linked card: %+v", out.Deliveries)
	}
	if d := out.Deliveries[0].Msg.Data.(CardData); d.SelectedBy.ID != "a1" || d.Card.Customer.ID != "C-7" {
		t.Errorf("card data: %+v", d)
	}
	// Resolved now: no more searching for this caller.
	wantCode(t, "search after the link", m.MaySearch("a2", "c1"), CodeBadRequest)
}
