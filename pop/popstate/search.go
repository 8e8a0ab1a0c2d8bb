package popstate

import (
	"slices"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// An agent may search the directory for the customer of a caller it did
// not know by number, and link the number to the customer found: the next
// call of the number resolves to them, and the card of this call is built
// for them at once (like a pick). Only an agent holding the live call's
// pop may, only for a caller who sent a number the directory did not know,
// and only to a customer its own last search found.

// MaySearch checks that agentID may search the directory for the caller
// of callID.
func (m *Machine) MaySearch(agentID, callID string) error {
	_, err := m.searchable(agentID, callID)
	return err
}

// searchable returns the call agentID may search for, or why not.
func (m *Machine) searchable(agentID, callID string) (*call, error) {
	c := m.calls[callID]
	switch {
	case c == nil || c.ended:
		return nil, refuse(CodeUnknownCall, "this call is over")
	case !c.holders[agentID]:
		return nil, refuse(CodeForbidden, "this call is not shown to you")
	case c.card == nil:
		return nil, refuse(CodeNotReady, "the card is still being built")
	case c.event.Caller.Withheld || c.card.Caller.Withheld || c.card.Phone == "":
		return nil, refuse(CodeBadRequest, "a withheld number cannot be linked to a customer")
	case c.card.Resolution != screenpop.ResolvedUnknown:
		return nil, refuse(CodeBadRequest, "this caller is not unknown: the directory resolved the number")
	}
	return c, nil
}

// Found remembers what agentID's search found for callID — the customers
// it may link the number to, replacing those of its earlier search — and
// tells the agent (every tab of theirs), with ref. A call the agent may no
// longer search for (it ended, was answered elsewhere, or resolved while
// the directory was asked) is refused as MaySearch would.
func (m *Machine) Found(agentID, callID string, res screenpop.SearchResult, ref string, now time.Time) (Output, error) {
	c, err := m.searchable(agentID, callID)
	if err != nil {
		return Output{}, err
	}
	m.begin(now)
	if c.found == nil {
		c.found = map[string][]screenpop.Customer{}
	}
	c.found[agentID] = slices.Clone(res.Customers)
	if res.Customers == nil {
		res.Customers = []screenpop.Customer{}
	}
	m.send([]string{agentID}, TypeSearchResults, callID, SearchResultsData{SearchResult: res, Ref: ref})
	return m.end(), nil
}

// MayLink checks that agentID may link the number of callID to
// customerID, one its last search for the call found, and returns the
// number (E.164).
func (m *Machine) MayLink(agentID, callID, customerID string) (phone string, err error) {
	c, err := m.mayLink(agentID, callID, customerID)
	if err != nil {
		return "", err
	}
	return c.card.Phone, nil
}

func (m *Machine) mayLink(agentID, callID, customerID string) (*call, error) {
	c, err := m.searchable(agentID, callID)
	switch {
	case err != nil:
		return nil, err
	case customerID == "" || !slices.ContainsFunc(c.found[agentID], func(k screenpop.Customer) bool { return k.ID == customerID }):
		return nil, refuse(CodeBadRequest, "that customer is not one your search found")
	case c.pick != nil:
		return nil, refuse(CodeNotReady, "the previous choice is still loading")
	}
	return c, nil
}

// Linked builds the card of callID for customerID, to whom agent linked
// the caller's number (the history keeps the link): like a pick, the new
// card goes to every holder as TypeCard, selected by the agent.
func (m *Machine) Linked(agent AgentRef, callID, customerID string, now time.Time) (Output, error) {
	c, err := m.mayLink(agent.ID, callID, customerID)
	if err != nil {
		return Output{}, err
	}
	m.begin(now)
	c.found = nil // the number is linked: nothing else to link it to
	c.pick = &pick{by: agent}
	m.effect(Build{CallID: callID, Purpose: BuildPick, Event: c.event, CustomerID: customerID, gen: c.gen})
	return m.end(), nil
}
