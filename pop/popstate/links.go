package popstate

import (
	"strings"

	screenpop "github.com/screenpop/screenpop"
)

// linksFor is card's links as agent gets them: those VisibleTo the
// agent's roles, each URL filled in (screenpop.FillLink) with the card's
// customer id, number and call id and the agent's id, without Roles. A
// link whose URL needs a value the card lacks (no customer yet, a withheld
// number) is left out: it would open the wrong record, or none.
func linksFor(card screenpop.Card, roles []string, agent string) []screenpop.CardLink {
	var out []screenpop.CardLink
	for _, l := range card.Links {
		if !l.VisibleTo(roles) {
			continue
		}
		url, ok := screenpop.FillLink(l.URL, func(name string) string {
			switch name {
			case screenpop.LinkCustomerID:
				if card.Customer != nil {
					return card.Customer.ID
				}
			case screenpop.LinkNumber:
				if !card.Caller.Withheld {
					return card.Phone
				}
			case screenpop.LinkCallID:
				return card.CallID
			case screenpop.LinkAgent:
				return agent
			}
			return ""
		})
		if !ok {
			continue
		}
		l.URL, l.Roles = url, nil
		out = append(out, l)
	}
	return out
}

// linksKey tells apart the links two agents get, for audiences: agents
// with the same sections and the same links share one message.
func linksKey(links []screenpop.CardLink) string {
	var b strings.Builder
	for _, l := range links {
		b.WriteString("\x00" + l.Label + "\x01" + l.URL)
	}
	return b.String()
}
