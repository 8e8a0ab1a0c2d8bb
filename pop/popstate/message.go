package popstate

import (
	"fmt"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// Types of the messages the machine sends to agents. The pop package adds
// the two that concern a connection rather than a call (snapshot, error);
// pop/README.md shows an example of each.
const (
	TypePop       = "pop"        // show this card
	TypeAnswered  = "answered"   // you have the call now
	TypeWithdrawn = "withdrawn"  // this pop is not yours any more
	TypeEnded     = "ended"      // the call is over
	TypeCard      = "card"       // a new card for a call you hold (a pick, a refresh, a card complete)
	TypeSection   = "section"    // a section of a card being built, now settled
	TypeHistory   = "history"    // the earlier calls of a card being built, now read
	TypeNoteSaved = "note_saved" // your note is stored (or its edit)
	TypeWrappedUp = "wrapped_up" // the disposition you chose is kept
	// TypeSearchResults: what your search of the directory found for an
	// unknown caller (SearchResultsData).
	TypeSearchResults = "search_results"
)

// Reasons a pop is withdrawn.
const (
	ReasonNotRinging        = "not_ringing"        // the queue moved on
	ReasonAnsweredElsewhere = "answered_elsewhere" // another agent picked up
	ReasonTransferred       = "transferred"        // the call went to another agent
	// ReasonRangOut: the phone stopped ringing unanswered (the dial or
	// queue timeout, busy, declined); the call may go on elsewhere, e.g. to
	// voicemail.
	ReasonRangOut = "rang_out"
	// ReasonTransferCancelled: the colleague consulting about an attended
	// transfer was not handed the call; the agent kept it.
	ReasonTransferCancelled = "transfer_cancelled"
	// ReasonExpired: no event for the call for Config.StaleAfter; the PBX's
	// "ended" was lost (a reconnect), and a pop must not stay on an agent's
	// screen forever.
	ReasonExpired = "expired"
)

// Pop states, as PopData.State and PopView.State.
const (
	StateRinging  = "ringing"
	StateAnswered = "answered"
)

// MaxNoteLength is the longest note an agent may write, in characters.
const MaxNoteLength = 2000

// Message is the envelope of everything the server sends. Seq is assigned
// by whoever delivers it (per agent, increasing); replies to one
// connection carry no seq because they are not replayed.
type Message struct {
	Type   string    `json:"type"`
	Seq    uint64    `json:"seq,omitempty"`
	CallID string    `json:"call_id,omitempty"`
	At     time.Time `json:"at"`
	Data   any       `json:"data,omitempty"`
}

// AgentRef names an agent in a message ("answered by Bob").
type AgentRef struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// PopData is the data of a TypePop message.
type PopData struct {
	State      string         `json:"state"` // StateRinging or StateAnswered
	Card       screenpop.Card `json:"card"`
	AnsweredBy *AgentRef      `json:"answered_by,omitempty"`
	// Transfer is set on a ringing pop when the call rings because a
	// colleague transfers it to this agent.
	Transfer *TransferInfo `json:"transfer,omitempty"`
}

// TransferInfo says who is transferring a call to the agent whose phone
// rings: "transferred by Alice", or, Consult, "Alice is consulting you
// about this caller" (Alice keeps the caller until the transfer completes).
type TransferInfo struct {
	From    AgentRef `json:"from"`
	Consult bool     `json:"consult,omitempty"`
}

// AnsweredData is the data of a TypeAnswered message.
type AnsweredData struct {
	Agent AgentRef `json:"agent"`
	// Transferred is true when the call came to the agent by a transfer.
	Transferred bool `json:"transferred,omitempty"`
}

// WithdrawnData is the data of a TypeWithdrawn message.
type WithdrawnData struct {
	Reason string `json:"reason"`
	// By is who answered or now has the call, when known.
	By *AgentRef `json:"by,omitempty"`
}

// EndedData is the data of a TypeEnded message.
type EndedData struct {
	Outcome screenpop.Outcome `json:"outcome"`
	// Agent is who had the call when it ended, when anyone did.
	Agent *AgentRef `json:"agent,omitempty"`
}

// CardData is the data of a TypeCard message.
type CardData struct {
	Card screenpop.Card `json:"card"`
	// SelectedBy is the agent who picked the customer; empty when the card
	// came again because its data changed.
	SelectedBy AgentRef `json:"selected_by"`
}

// SectionData is the data of a TypeSection message: a section of the
// call's card that was sent loading (a card sent as soon as the caller
// was resolved), as it is now that its sources settled. It replaces the
// section of the same name.
type SectionData struct {
	Section screenpop.CardSection `json:"section"`
}

// HistoryData is the data of a TypeHistory message: the earlier calls of
// a card that was sent before they were read (history_loading).
type HistoryData struct {
	History         []screenpop.PastCall `json:"history"`
	CallsLast30Days *int                 `json:"calls_last_30_days,omitempty"`
}

// NoteSavedData is the data of a TypeNoteSaved message.
type NoteSavedData struct {
	Note screenpop.Note `json:"note"`
	Ref  string         `json:"ref,omitempty"`
}

// WrappedUpData is the data of a TypeWrappedUp message: the disposition
// the agent chose for the call (its code and its label as configured).
type WrappedUpData struct {
	Code  string `json:"code"`
	Label string `json:"label"`
	Ref   string `json:"ref,omitempty"`
}

// SearchResultsData is the data of a TypeSearchResults message: the
// customers the agent's search found, the ones it may link the caller's
// number to. The text searched for is not repeated: Ref says which search
// it answers.
type SearchResultsData struct {
	screenpop.SearchResult
	Ref string `json:"ref,omitempty"`
}

// PopView is one call an agent currently holds, as a snapshot lists it.
type PopView struct {
	CallID     string         `json:"call_id"`
	State      string         `json:"state"`
	Card       screenpop.Card `json:"card"`
	AnsweredBy *AgentRef      `json:"answered_by,omitempty"`
	Transfer   *TransferInfo  `json:"transfer,omitempty"`
}

// RequestError is a refused browser request. Code is stable for the page
// (forbidden, unknown_call, not_ready, bad_request, unavailable), Message is
// fit for the agent.
type RequestError struct {
	Code    string
	Message string
}

func (e *RequestError) Error() string { return e.Code + ": " + e.Message }

// Codes of RequestError.
const (
	CodeForbidden   = "forbidden"
	CodeUnknownCall = "unknown_call" // pop then asks the other daemons
	CodeNotReady    = "not_ready"
	CodeBadRequest  = "bad_request"
	CodeUnavailable = "unavailable"
	// CodeRateLimited: the agent asked too often (searches); try again in
	// a moment.
	CodeRateLimited = "rate_limited"
)

func refuse(code, format string, args ...any) error {
	return &RequestError{Code: code, Message: fmt.Sprintf(format, args...)}
}
