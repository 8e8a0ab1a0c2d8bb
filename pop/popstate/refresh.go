package popstate

import (
	"slices"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// refreshState is a live call's part in card refreshes.
type refreshState struct {
	running bool // a rebuild is under way
	again   bool // asked again while it ran: rebuild once more after it
	// superseded: an agent's pick was applied while the rebuild ran; the
	// pick's card is the newer one.
	superseded bool
	// candidates of the card being rebuilt for a picked customer, kept on
	// the new card.
	candidates []screenpop.Customer
	// asked are the refreshes asked for while the first card was still
	// being built: whether they concern this call is known only once its
	// card (with its E.164 number and customer) is there.
	asked []refreshTarget
	// callerLearned: the caller was named while the first card, built for
	// nobody, was being built; it is built again once it is there.
	callerLearned bool
}

type refreshTarget struct{ phone, customerID string }

// maxAskedRefreshes bounds the refreshes remembered for a call whose card
// is being built; more than a few in one build's time is a storm, and one
// rebuild answers all of them.
const maxAskedRefreshes = 8

// Refresh rebuilds the cards of the live calls of phone (E.164) or of
// customerID; every agent holding one gets a TypeCard message with the new
// card (selected_by empty: nobody picked, the data changed). One rebuild
// at a time per call; a card picked by an agent is rebuilt for the same
// customer.
func (m *Machine) Refresh(phone, customerID string, now time.Time) Output {
	if phone == "" && customerID == "" {
		return Output{}
	}
	m.begin(now)
	t := refreshTarget{phone: phone, customerID: customerID}
	for _, id := range sortedKeys(m.calls) {
		c := m.calls[id]
		switch {
		case c.ended:
		case (c.card == nil && c.building) || c.partial == BuildFirst:
			// Rebuilt once the first card is complete: a rebuild now could
			// bring its card before the first one's last sections.
			if len(c.refresh.asked) < maxAskedRefreshes {
				c.refresh.asked = append(c.refresh.asked, t)
			}
		case c.card != nil && t.matches(c.card):
			m.rebuild(c)
		}
	}
	return m.end()
}

func (t refreshTarget) matches(card *screenpop.Card) bool {
	if t.phone != "" && card.Phone == t.phone {
		return true
	}
	if t.customerID == "" {
		return false
	}
	if card.Customer != nil && card.Customer.ID == t.customerID {
		return true
	}
	return slices.ContainsFunc(card.Candidates, func(k screenpop.Customer) bool { return k.ID == t.customerID })
}

// refreshIfAsked runs once the first card of c is there.
func (m *Machine) refreshIfAsked(c *call) {
	asked, learned := c.refresh.asked, c.refresh.callerLearned
	c.refresh.asked, c.refresh.callerLearned = nil, false
	if learned || slices.ContainsFunc(asked, func(t refreshTarget) bool { return t.matches(c.card) }) {
		m.rebuild(c)
	}
}

// rebuild builds c's card again for the agents holding the call.
func (m *Machine) rebuild(c *call) {
	if c.refresh.running || c.pick != nil {
		// The build under way may have read the old data: once more after
		// it. (A pick in progress delivers its own, newer card.)
		c.refresh.again = c.refresh.running
		return
	}
	c.refresh.running = true
	var customerID string
	c.refresh.candidates = c.card.Candidates
	if c.card.Customer != nil && len(c.card.Candidates) > 0 {
		// An agent picked among candidates: keep the pick.
		customerID = c.card.Customer.ID
	}
	m.effect(Build{CallID: c.event.CallID, Purpose: BuildRefresh, Event: c.event, CustomerID: customerID, gen: c.gen})
}

// refreshed applies a rebuilt card, built for customerID when an agent
// had picked one.
func (m *Machine) refreshed(c *call, customerID string, card screenpop.Card) {
	superseded := c.refresh.superseded
	c.refresh.running, c.refresh.superseded = false, false
	if c.ended || c.pick != nil {
		c.refresh.again = false // the pick in progress reads the data afresh
		return
	}
	if !superseded {
		if customerID != "" && len(card.Candidates) == 0 {
			card.Candidates = c.refresh.candidates
		}
		c.card = &card
		m.out.Refreshed++
		m.send(sortedKeys(c.holders), TypeCard, c.event.CallID, CardData{Card: card})
	}
	if c.refresh.again {
		c.refresh.again = false
		m.rebuild(c)
	}
}
