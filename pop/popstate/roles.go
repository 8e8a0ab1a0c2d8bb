package popstate

import screenpop "github.com/screenpop/screenpop"

// audience is the agents of one message who may see the same sections of
// its card, and the card as they get it.
type audience struct {
	agents   []string
	card     screenpop.Card
	sections []string
}

// audiences splits agents (sorted) by the sections of card they may see,
// in the order of each group's first agent: one message, encoded once,
// per distinct set, however many agents share it.
func (m *Machine) audiences(card screenpop.Card, agents []string) []audience {
	if !restricted(card) && len(card.Links) == 0 {
		c, names := visibleCard(card, nil)
		return []audience{{agents: agents, card: c, sections: names}}
	}
	var groups []audience
	index := map[string]int{}
	key := make([]byte, len(card.Sections))
	for _, a := range agents {
		roles := m.roles(a)
		for i, s := range card.Sections {
			key[i] = '0'
			if s.VisibleTo(roles) {
				key[i] = '1'
			}
		}
		// Links filled in for an agent ({agent}) make their card theirs.
		links := linksFor(card, roles, a)
		k := string(key) + linksKey(links)
		if i, ok := index[k]; ok {
			groups[i].agents = append(groups[i].agents, a)
			continue
		}
		index[k] = len(groups)
		c, names := visibleCard(card, roles)
		c.Links = links
		groups = append(groups, audience{agents: []string{a}, card: c, sections: names})
	}
	return groups
}

func (m *Machine) roles(agent string) []string {
	if m.cfg.Roles == nil {
		return nil
	}
	return m.cfg.Roles(agent)
}

// restricted reports whether some section of card names roles.
func restricted(card screenpop.Card) bool {
	for _, s := range card.Sections {
		if len(s.Roles) > 0 {
			return true
		}
	}
	return false
}

// visibleCard is card as an agent holding roles gets it: only the sections
// VisibleTo those roles, their Roles left out (which roles may see what is
// the server's business), and the names of the sections kept that show
// their content (not those still loading). The links are left out: they
// are filled in for each agent (linksFor). The card's own slices are not
// modified: cards are shared between calls.
func visibleCard(card screenpop.Card, roles []string) (screenpop.Card, []string) {
	card.Links = nil
	names := make([]string, 0, len(card.Sections))
	if !restricted(card) {
		for _, s := range card.Sections {
			if s.Status != screenpop.SectionLoading {
				names = append(names, s.Name)
			}
		}
		return card, names
	}
	sections := make([]screenpop.CardSection, 0, len(card.Sections))
	for _, s := range card.Sections {
		if s.VisibleTo(roles) {
			s.Roles = nil
			sections = append(sections, s)
			if s.Status != screenpop.SectionLoading {
				names = append(names, s.Name)
			}
		}
	}
	card.Sections = sections
	return card, names
}

// cardOf returns the card a message's data carries, if any.
func cardOf(data any) (screenpop.Card, bool) {
	switch d := data.(type) {
	case PopData:
		return d.Card, true
	case CardData:
		return d.Card, true
	}
	return screenpop.Card{}, false
}

// withCard returns data with its card replaced.
func withCard(data any, card screenpop.Card) any {
	switch d := data.(type) {
	case PopData:
		d.Card = card
		return d
	case CardData:
		d.Card = card
		return d
	}
	return data
}

// Card returns the card the delivery's message carries (pop, card), as
// its agents get it; for a section or history message, the card it adds
// to with only what it carries (its one section, or the earlier calls).
func (d Delivery) Card() (screenpop.Card, bool) {
	if d.part != nil {
		return *d.part, true
	}
	return cardOf(d.Msg.Data)
}
