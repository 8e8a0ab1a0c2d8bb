package popstate

import (
	"slices"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// CardProgress applies a step of the card b asked for, told while it is
// being built (a CardBuilder that reports progress): the card once the
// caller is resolved, its sections still loading; a section once its
// sources settled; the earlier calls once read (screenpop.CardUpdate).
//
// The card goes out at once, as a complete one would: a pop to the agents
// whose phones ring (or who answered), or, for an agent's pick, a card
// message to the holders. Each section and the earlier calls then go to
// the holders as a section or history message, a section only to those
// who may see it; the complete card follows as a card message
// (CardBuilt). Steps of a call that ended, of a card a pick replaced, and
// of a refresh (whose holders keep the card they have until the new one
// is complete) change nothing.
func (m *Machine) CardProgress(b Build, u screenpop.CardUpdate, now time.Time) Output {
	m.begin(now)
	c := m.calls[b.CallID]
	if c == nil || c.gen != b.gen || c.ended {
		return m.end()
	}
	switch {
	case u.Card != nil:
		m.cardStarted(c, b, *u.Card)
	case c.card == nil || c.partial != b.Purpose:
		// Not the card on screen: superseded by a pick.
	case u.Section != nil:
		m.sectionSettled(c, *u.Section)
	case u.History != nil:
		m.historyRead(c, *u.History)
	}
	return m.end()
}

// cardStarted applies the card of b sent before it is complete.
func (m *Machine) cardStarted(c *call, b Build, card screenpop.Card) {
	if card.CallID == "" {
		card.CallID = b.CallID
	}
	switch b.Purpose {
	case BuildFirst:
		if c.card != nil || !c.building {
			return
		}
		c.card, c.partial = &card, BuildFirst
		if c.answeredBy != "" {
			m.handOver(c, false)
		}
		m.popRinging(c)
	case BuildPick:
		p := c.pick
		if p == nil {
			return
		}
		if len(card.Candidates) == 0 {
			card.Candidates = p.candidates
		}
		c.card, c.partial = &card, BuildPick
		// A rebuild that started before the pick would bring the card
		// without it.
		c.refresh.superseded = c.refresh.running
		m.send(sortedKeys(c.holders), TypeCard, c.event.CallID, CardData{Card: card, SelectedBy: p.by})
	}
}

// sectionSettled puts a settled section in the card being filled in and
// tells the holders who may see it.
func (m *Machine) sectionSettled(c *call, s screenpop.CardSection) {
	i := slices.IndexFunc(c.card.Sections, func(x screenpop.CardSection) bool { return x.Name == s.Name })
	if i < 0 {
		return // not a section of this card
	}
	// A new card: the old one may be in a message or snapshot still being
	// encoded.
	card := *c.card
	card.Sections = slices.Clone(card.Sections)
	card.Sections[i] = s
	c.card = &card

	var to []string
	for _, a := range sortedKeys(c.holders) {
		if s.VisibleTo(m.roles(a)) {
			to = append(to, a)
		}
	}
	if len(to) == 0 {
		return
	}
	s.Roles = nil
	part := m.part(c)
	part.Sections = []screenpop.CardSection{s}
	m.out.Deliveries = append(m.out.Deliveries, Delivery{
		To:       to,
		Msg:      Message{Type: TypeSection, CallID: c.event.CallID, At: m.now, Data: SectionData{Section: s}},
		Sections: []string{s.Name},
		part:     &part,
	})
}

// historyRead puts the earlier calls in the card being filled in and tells
// every holder.
func (m *Machine) historyRead(c *call, h screenpop.EarlierCalls) {
	card := *c.card
	card.History, card.CallsLast30Days, card.HistoryLoading = h.Calls, h.CallsLast30Days, false
	c.card = &card
	to := sortedKeys(c.holders)
	if len(to) == 0 {
		return
	}
	part := m.part(c)
	part.History, part.CallsLast30Days = h.Calls, h.CallsLast30Days
	m.out.Deliveries = append(m.out.Deliveries, Delivery{
		To:       to,
		Msg:      Message{Type: TypeHistory, CallID: c.event.CallID, At: m.now, Data: HistoryData{History: h.Calls, CallsLast30Days: h.CallsLast30Days}},
		Sections: []string{},
		part:     &part,
	})
}

// part is c's card without its sections, candidates and earlier calls:
// what a section or history message adds to, for the access log.
func (m *Machine) part(c *call) screenpop.Card {
	card := *c.card
	card.Sections, card.Candidates, card.History, card.CallsLast30Days = nil, nil, nil, nil
	return card
}

// firstCompleted applies the complete first card of c, sent before as it
// was being built: every holder gets it whole (a card message), so that
// the message log, a shared stream's snapshot and a page that missed a
// step all end with the card as it is. When a pick replaced it meanwhile,
// the pick's card stays.
func (m *Machine) firstCompleted(c *call, card screenpop.Card) {
	if c.partial == BuildFirst {
		c.card, c.partial = &card, ""
		if !c.ended {
			m.send(sortedKeys(c.holders), TypeCard, c.event.CallID, CardData{Card: card})
		}
	}
	if c.ended {
		m.finish(c)
		return
	}
	m.refreshIfAsked(c) // fresher data came while this card was built
}
