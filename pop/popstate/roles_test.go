package popstate

import (
	"slices"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// TestCardCutPerAgentLeavesTheCardWhole: the card the machine keeps (and
// that the aggregator may share between calls) is not changed by cutting
// it, and agents sharing a set of sections share one delivery.
func TestCardCutPerAgentLeavesTheCardWhole(t *testing.T) {
	roles := map[string][]string{"a1": {"credit"}, "a2": {"credit"}, "a3": nil, "a4": {"audit", "credit"}}
	m := New(Config{Roles: func(id string) []string { return roles[id] }, StaleAfter: time.Hour})
	now := scenarioStart
	out := m.Apply(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "c1", At: now, Agents: []string{"a1", "a2", "a3", "a4"}}, now)
	b := out.Effects[0].(Build)
	card := screenpop.Card{CallID: "c1", Sections: []screenpop.CardSection{
		{Name: "open"},
		{Name: "credit", Roles: []string{"credit"}},
		{Name: "audit", Roles: []string{"audit"}},
	}}
	whole := slices.Clone(card.Sections)
	out = m.CardBuilt(b, card, now)
	var got [][]string
	for _, d := range out.Deliveries {
		got = append(got, append(slices.Clone(d.To), d.Sections...))
	}
	want := [][]string{{"a1", "a2", "open", "credit"}, {"a3", "open"}, {"a4", "open", "credit", "audit"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("deliveries (agents, then sections) %v, want %v", got, want)
	}
	for i, s := range card.Sections {
		if s.Name != whole[i].Name || !slices.Equal(s.Roles, whole[i].Roles) {
			t.Fatalf("the built card changed: %+v", card.Sections)
		}
	}
	if snap := m.Snapshot("a3"); len(snap) != 1 || len(snap[0].Card.Sections) != 1 || snap[0].Card.Sections[0].Name != "open" {
		t.Errorf("a3's snapshot: %+v", snap)
	}
	// Without a roles table nobody gets a restricted section.
	m = New(Config{StaleAfter: time.Hour})
	out = m.Apply(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "c1", At: now, Agents: []string{"a1"}}, now)
	out = m.CardBuilt(out.Effects[0].(Build), card, now)
	if len(out.Deliveries) != 1 || !slices.Equal(out.Deliveries[0].Sections, []string{"open"}) {
		t.Errorf("no roles table: %+v", out.Deliveries)
	}
}
