package pop

import (
	"slices"

	screenpop "github.com/screenpop/screenpop"
)

// refreshState is a live call's part in card refreshes.
type refreshState struct {
	running bool // a rebuild is under way
	again   bool // asked again while it ran: rebuild once more after it
	// asked are the refreshes asked for while the first card was still
	// being built: whether they concern this call is known only once its
	// card (with its E.164 number and customer) is there.
	asked []refreshTarget
}

type refreshTarget struct{ phone, customerID string }

// maxAskedRefreshes bounds the refreshes remembered for a call whose card
// is being built; more than a few in one build's time is a storm, and one
// rebuild answers all of them.
const maxAskedRefreshes = 8

// Refresh rebuilds the cards of the live calls of phone (E.164) or of
// customerID, and sends every agent holding one a TypeCard message with the
// new card (selected_by empty: nobody picked, the data changed). The
// aggregator calls it (Options.OnRefresh) when a background refresh brought
// newer data or a source system had a customer's cached data evicted.
//
// Refresh never waits for a card: the rebuild runs in its own goroutine,
// one at a time per call. A card picked by an agent (BuildFor) is rebuilt
// for the same customer.
func (d *Dispatcher) Refresh(phone, customerID string) {
	if phone == "" && customerID == "" {
		return
	}
	t := refreshTarget{phone: phone, customerID: customerID}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || d.runCtx == nil {
		return
	}
	for _, c := range d.calls {
		switch {
		case c.ended:
		case c.card == nil && c.building:
			if len(c.refresh.asked) < maxAskedRefreshes {
				c.refresh.asked = append(c.refresh.asked, t)
			}
		case c.card != nil && t.matches(c.card):
			d.rebuild(c)
		}
	}
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

// refreshIfAsked runs with d.mu held once the first card of c is there.
func (d *Dispatcher) refreshIfAsked(c *callState) {
	asked := c.refresh.asked
	c.refresh.asked = nil
	if slices.ContainsFunc(asked, func(t refreshTarget) bool { return t.matches(c.card) }) {
		d.rebuild(c)
	}
}

// rebuild runs with d.mu held: it builds c's card again and sends it to
// the agents holding the call.
func (d *Dispatcher) rebuild(c *callState) {
	if d.stopped {
		return
	}
	if c.refresh.running || c.selecting {
		// The build under way may have read the old data: once more after
		// it. (A pick in progress delivers its own, newer card.)
		c.refresh.again = c.refresh.running
		return
	}
	c.refresh.running = true
	ev, ctx := c.event, c.ctx
	var customerID string
	candidates := c.card.Candidates
	if c.card.Customer != nil && len(candidates) > 0 {
		// An agent picked among candidates: keep the pick.
		customerID = c.card.Customer.ID
	}
	callID := ev.CallID
	d.wg.Go(func() {
		card := d.build(ctx, ev, customerID)
		d.mu.Lock()
		defer d.mu.Unlock()
		c.refresh.running = false
		if d.calls[callID] != c || c.ended || c.selecting {
			return
		}
		if card.CallID == "" {
			card.CallID = callID
		}
		if customerID != "" && len(card.Candidates) == 0 {
			card.Candidates = candidates
		}
		c.card = &card
		d.metrics.refreshedCards.Inc()
		for _, h := range sortedKeys(c.holders) {
			d.send(h, Message{Type: TypeCard, CallID: callID, Data: CardData{Card: card}})
		}
		if c.refresh.again {
			c.refresh.again = false
			d.rebuild(c)
		}
	})
}
