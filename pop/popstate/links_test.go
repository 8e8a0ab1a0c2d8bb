package popstate

import (
	"slices"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// Each agent gets the card's links filled in for them, only those their
// roles allow, none whose value the card lacks; agents whose links read
// alike share one delivery; the card kept is not changed.
func TestLinksFilledInPerAgent(t *testing.T) {
	roles := map[string][]string{"a1": {"agent"}, "a2": {"agent"}, "a3": {"agent", "supervisor"}}
	m := New(Config{Roles: func(id string) []string { return roles[id] }, StaleAfter: time.Hour})
	now := scenarioStart
	out := m.Apply(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/1", Caller: screenpop.Caller{Number: "+4930111111"}, At: now, Agents: []string{"a1", "a2", "a3"}}, now)
	b := out.Effects[0].(Build)
	templates := []screenpop.CardLink{
		{Label: "Open in CRM", Labels: map[string]string{"pl": "Otwórz w CRM"}, URL: "https://crm.example.com/c/{customer_id}?call={call_id}", OpenOnAnswer: true},
		{Label: "Audit", URL: "https://audit.example.com/{customer_id}", Roles: []string{"supervisor"}},
		{Label: "Mine", URL: "https://crm.example.com/agents/{agent}/calls?n={number}"},
	}
	card := screenpop.Card{CallID: "pbx/1", Phone: "+4930111111", Resolution: screenpop.ResolvedCustomer,
		Customer: &screenpop.Customer{ID: "C-1&x"}, Links: slices.Clone(templates)}
	out = m.CardBuilt(b, card, now)
	got := map[string][]screenpop.CardLink{}
	for _, d := range out.Deliveries {
		if len(d.To) != 1 {
			t.Errorf("agents with their own {agent} links share a delivery: %v", d.To)
		}
		for _, a := range d.To {
			got[a] = d.Msg.Data.(PopData).Card.Links
		}
	}
	want := func(agent string, audit bool) []screenpop.CardLink {
		links := []screenpop.CardLink{{Label: "Open in CRM", Labels: map[string]string{"pl": "Otwórz w CRM"}, URL: "https://crm.example.com/c/C-1&x?call=pbx%2F1", OpenOnAnswer: true}}
		if audit {
			links = append(links, screenpop.CardLink{Label: "Audit", URL: "https://audit.example.com/C-1&x"})
		}
		return append(links, screenpop.CardLink{Label: "Mine", URL: "https://crm.example.com/agents/" + agent + "/calls?n=%2B4930111111"})
	}
	for agent, audit := range map[string]bool{"a1": false, "a2": false, "a3": true} {
		if !slices.EqualFunc(got[agent], want(agent, audit), equalLink) {
			t.Errorf("%s's links:\n got %+v\nwant %+v", agent, got[agent], want(agent, audit))
		}
	}
	if !slices.EqualFunc(card.Links, templates, equalLink) {
		t.Errorf("the card kept changed: %+v", card.Links)
	}
	snap := m.Snapshot("a3")
	if len(snap) != 1 || !slices.EqualFunc(snap[0].Card.Links, want("a3", true), equalLink) {
		t.Errorf("a3's snapshot: %+v", snap)
	}

	// Without {agent}, agents with the same roles share one delivery; an
	// unknown caller's card has no customer id: no link needing it.
	m = New(Config{StaleAfter: time.Hour})
	out = m.Apply(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/2", Caller: screenpop.Caller{Number: "+4930999999"}, At: now, Agents: []string{"a1", "a2"}}, now)
	out = m.CardBuilt(out.Effects[0].(Build), screenpop.Card{CallID: "pbx/2", Phone: "+4930999999", Resolution: screenpop.ResolvedUnknown, Links: templates[:2]}, now)
	if len(out.Deliveries) != 1 || len(out.Deliveries[0].To) != 2 || out.Deliveries[0].Msg.Data.(PopData).Card.Links != nil {
		t.Errorf("an unknown caller's card: %+v", out.Deliveries)
	}
}

func equalLink(a, b screenpop.CardLink) bool {
	return a.Label == b.Label && a.URL == b.URL && a.OpenOnAnswer == b.OpenOnAnswer &&
		slices.Equal(a.Roles, b.Roles) && len(a.Labels) == len(b.Labels) && a.Labels["pl"] == b.Labels["pl"]
}
