package screenpop

import (
	"slices"
	"time"
)

// SectionStatus says whether a card section holds what its sources know.
type SectionStatus string

const (
	SectionOK    SectionStatus = "ok"    // every source answered
	SectionEmpty SectionStatus = "empty" // answered, but knows nothing of this caller
	// SectionTimeout: a source did not answer before its own timeout or the
	// call's deadline. Whatever other sources of the section returned is kept.
	SectionTimeout SectionStatus = "timeout"
	SectionError   SectionStatus = "error" // a source failed (or panicked)
	// SectionUnavailable: the source was not asked, because its circuit
	// breaker is open or its concurrency limit is reached.
	SectionUnavailable SectionStatus = "unavailable"
	// SectionSkipped: the source needs a resolved customer and there is none.
	SectionSkipped SectionStatus = "skipped"
	// SectionLoading: its sources are still being asked. Only on a card
	// sent while it is built (shown as soon as the caller is resolved);
	// the section comes by itself once settled, or with the complete card.
	SectionLoading SectionStatus = "loading"
)

// Resolution says how the caller's number was matched to a customer.
type Resolution string

const (
	ResolvedCustomer  Resolution = "customer"  // exactly one customer
	ResolvedAmbiguous Resolution = "ambiguous" // several: the agent picks one
	ResolvedUnknown   Resolution = "unknown"   // a number nobody knows
	ResolvedWithheld  Resolution = "withheld"  // no number to look up
	ResolvedFailed    Resolution = "failed"    // the directory did not answer
)

// Customer is who a phone number belongs to: a person, or a contact person of
// a company account (then Contact and Role name the person and Name the
// company).
type Customer struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Kind    string   `json:"kind,omitempty"` // "person" or "company"
	Contact string   `json:"contact,omitempty"`
	Role    string   `json:"role,omitempty"`
	Email   string   `json:"email,omitempty"`
	City    string   `json:"city,omitempty"`
	Country string   `json:"country,omitempty"`
	Tags    []string `json:"tags,omitempty"` // "supplier", "vip", ...
}

// Field is one labelled value of a section.
type Field struct {
	Key    string `json:"key"`
	Label  string `json:"label"`
	Value  any    `json:"value"`
	Format string `json:"format,omitempty"` // text, money, number, date, percent
}

// Column describes one column of a List.
type Column struct {
	Key    string `json:"key"`
	Label  string `json:"label"`
	Format string `json:"format,omitempty"`
}

// List is a table inside a section: overdue invoices, recent purchases.
type List struct {
	Key     string           `json:"key"`
	Label   string           `json:"label"`
	Columns []Column         `json:"columns"`
	Rows    []map[string]any `json:"rows"`
	// Truncated is true when the source returned more rows than are shown.
	Truncated bool `json:"truncated,omitempty"`
}

// CardSection is what one part of the company knows: accounting, sales,
// credit, or any section IT adds. Each section carries its own status, so a
// slow or broken system costs its own section and nothing else.
type CardSection struct {
	Name   string        `json:"name"`
	Title  string        `json:"title"`
	Status SectionStatus `json:"status"`
	// Error explains a non-ok status in words fit for an agent; it never holds
	// credentials or query text.
	Error  string  `json:"error,omitempty"`
	Fields []Field `json:"fields,omitempty"`
	Lists  []List  `json:"lists,omitempty"`
	// TookMS is how long the slowest source of the section took.
	TookMS int64 `json:"took_ms"`
	// Cached is true when the data came from the cache.
	Cached bool `json:"cached,omitempty"`
	// CachedAt is when the oldest cached answer shown was fetched from its
	// source ("from cache, 12 minutes old"); zero unless Cached, and when
	// the cache did not say.
	CachedAt time.Time `json:"cached_at,omitzero"`
	// Roles are the roles that may see the section (its configuration's
	// roles: [credit, supervisor]); empty: every agent. A card keeps them
	// while it is the server's (in JSON too: a card that lost them on the
	// way would show the section to everyone); the copy an agent gets
	// holds only the sections VisibleTo the agent, without Roles.
	Roles []string `json:"roles,omitempty"`
}

// VisibleTo reports whether an agent holding roles may see the section:
// it names no role, or one of roles.
func (s CardSection) VisibleTo(roles []string) bool {
	if len(s.Roles) == 0 {
		return true
	}
	return slices.ContainsFunc(s.Roles, func(r string) bool { return slices.Contains(roles, r) })
}

// Line is the company's number a call came in on (a DID: which line or
// campaign the customer dialled) and what the configuration calls it. It is
// the company's own number, not the caller's, so it is never masked.
type Line struct {
	Number string `json:"number"`
	Label  string `json:"label,omitempty"` // e.g. "Support DE"; empty when not configured
	// Display is the number as the agent reads it, formatted as the
	// caller's is (Card.PhoneDisplay: national in the daemon's region);
	// empty when that is Number as it is (an internal extension).
	Display string `json:"display,omitempty"`
}

// Card is everything shown to the agent for one call.
type Card struct {
	CallID string `json:"call_id"`
	Caller Caller `json:"caller"`
	// Phone is the caller's number in E.164, empty when withheld or not a
	// phone number.
	Phone string `json:"phone,omitempty"`
	// PhoneDisplay is the caller's number as the agent reads it: in
	// national format when it belongs to the daemon's region ("030
	// 1234567" with region DE), else international ("+48 601 234 567"),
	// as libphonenumber groups it; a caller ID that is not a phone number
	// ("1001", "0000000") as the PBX sent it; empty when withheld.
	PhoneDisplay string     `json:"phone_display,omitempty"`
	Resolution   Resolution `json:"resolution"`
	Customer     *Customer  `json:"customer,omitempty"`
	// Line is the company's number the customer dialled (CallEvent.DID),
	// nil when the PBX did not say.
	Line *Line `json:"line,omitempty"`
	// Candidates are the customers the number matched when Resolution is
	// ResolvedAmbiguous; the card completes when the agent picks one.
	Candidates []Customer `json:"candidates,omitempty"`
	// Links open the caller's record in other systems: the configured
	// templates on the server's card, filled in for each agent on theirs
	// (see CardLink).
	Links    []CardLink    `json:"links,omitempty"`
	Sections []CardSection `json:"sections"`
	// Incomplete names what is missing because a source configured as
	// required did not answer ("directory", or a section name): the agent
	// must not quote figures from this card as if they were whole.
	Incomplete []string `json:"incomplete,omitempty"`
	// History is the caller's earlier calls, newest first: those of the
	// number and, once the customer is known, the customer's from any of
	// their numbers.
	History []PastCall `json:"history,omitempty"`
	// CallsLast30Days counts the caller's earlier calls (the number's and
	// the customer's) that rang in the 30 days before the card, however
	// few History shows; nil when the history could not say (none kept,
	// not read in time, or a caller without a number).
	CallsLast30Days *int `json:"calls_last_30_days,omitempty"`
	// HistoryLoading is true on a card sent while it is built, before the
	// earlier calls were read: they come by themselves, or with the
	// complete card.
	HistoryLoading bool      `json:"history_loading,omitempty"`
	BuiltAt        time.Time `json:"built_at"`
	TookMS         int64     `json:"took_ms"`
}

// CardUpdate is one step of a card built progressively, told as soon as
// it is known (aggregator.BuildProgressive): first the card once the
// caller is resolved (Card), every section whose sources are still asked
// in status SectionLoading and HistoryLoading set while the earlier calls
// are read; then each of those sections once settled (Section) and the
// earlier calls once read (History). Exactly one field is set. The
// complete card, which the build returns, follows the last step.
type CardUpdate struct {
	Card    *Card
	Section *CardSection
	History *EarlierCalls
}

// EarlierCalls are a card's History and CallsLast30Days, told by
// themselves while the card is built.
type EarlierCalls struct {
	Calls           []PastCall
	CallsLast30Days *int
}
