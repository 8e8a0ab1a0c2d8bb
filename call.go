package screenpop

import "time"

// CallEventKind says what happened to a call.
type CallEventKind string

const (
	// EventRinging: the call rings at the agents in CallEvent.Agents. The set is
	// the complete set ringing now, not a delta: a later ringing event for the
	// same call with another set (a queue moving on to the next member) means
	// "pop for the new ones, withdraw from the ones no longer listed". Sending
	// the same set twice is harmless, which is what lets a telephony source
	// repair its state after a reconnect without producing duplicate pops.
	//
	// The set may be empty: nobody's phone rings any more while the caller
	// is still on the line (every phone rang out and the call went on to
	// voicemail or an announcement, a blind transfer let go of the agent
	// before the target's phone rang, a consultation was given up).
	EventRinging CallEventKind = "ringing"
	// EventAnswered: CallEvent.Agent picked the call up. Every other agent
	// whose phone rang loses the pop.
	EventAnswered CallEventKind = "answered"
	// EventTransferred: the call now belongs to CallEvent.Agent (blind or
	// attended transfer); the card follows it.
	EventTransferred CallEventKind = "transferred"
	// EventEnded: the call is over; CallEvent.Outcome says how.
	EventEnded CallEventKind = "ended"
)

// Outcome is how a call ended.
type Outcome string

const (
	OutcomeAnswered  Outcome = "answered"  // an agent talked to the caller
	OutcomeAbandoned Outcome = "abandoned" // the caller hung up while it rang
	OutcomeBusy      Outcome = "busy"      // every agent was busy
	OutcomeNoAnswer  Outcome = "noanswer"  // it rang out without an answer
	OutcomeFailed    Outcome = "failed"    // the PBX could not place it
	// OutcomeInterrupted: the call was cut by the PBX going down or
	// restarting (or the daemon losing sight of it), not by anybody on it.
	OutcomeInterrupted Outcome = "interrupted"
)

// Outcomes lists every Outcome, for metrics that pre-create their label
// values.
var Outcomes = []Outcome{
	OutcomeAnswered, OutcomeAbandoned, OutcomeBusy, OutcomeNoAnswer, OutcomeFailed, OutcomeInterrupted,
}

// Transfer says who is handing a call over while it rings at other agents.
type Transfer struct {
	// From is the agent transferring the call.
	From string `json:"from"`
	// Consult is true for an attended transfer still in consultation: From
	// keeps the caller (on hold) while talking to the ringing agent first,
	// and the call moves only when the transfer completes (EventTransferred).
	// An empty ringing set then means the consultation was given up. False
	// for a blind transfer: From has let go of the call already.
	Consult bool `json:"consult,omitempty"`
}

// Caller is who is calling, as the PBX presented them.
type Caller struct {
	// Number as the PBX gave it (not normalised). Empty when Withheld: a
	// telephony source must drop the number of a caller who restricted
	// presentation, so that no later stage can show it by mistake.
	Number string `json:"number,omitempty"`
	Name   string `json:"name,omitempty"`
	// Withheld is true when the caller restricted presentation, or the
	// PBX said it had no number for them (httpin: a caller sent without
	// one). A call whose PBX never named its caller (first heard of
	// mid-call) has neither Number nor Withheld: an unknown caller.
	Withheld bool `json:"withheld,omitempty"`
}

// CallEvent is one step in the life of an inbound call, already translated
// from the PBX's own vocabulary (ARI events, CTI posts, the demo generator)
// into the model the rest of the daemon uses.
type CallEvent struct {
	Kind CallEventKind `json:"kind"`
	// CallID names the call in the whole daemon: the dispatcher, the Redis
	// de-duplication and the history key on it. A telephony source writes
	// its PBX's own ID ("1795435000.0"); the daemon's wiring
	// (telephony.Namespaced) then always prefixes it with the source's
	// configured name and a slash ("pbx-a/1795435000.0"), so that two PBXs
	// with the same channel ID are two calls. Configuration keeps names
	// unique and free of '/'; daemons sharing Redis must give the same PBX
	// the same name.
	CallID string `json:"call_id"`
	Caller Caller `json:"caller"`
	// DID is the number the customer dialled (which line, which campaign).
	DID string `json:"did,omitempty"`
	// Agents are the agent IDs whose phones ring (EventRinging only).
	Agents []string `json:"agents,omitempty"`
	// RangOut (EventRinging) is true when agents left the set because their
	// phones stopped ringing unanswered (the Dial's or the queue's timeout,
	// busy, declined), not because somebody answered or the caller left:
	// their pops are withdrawn as rung out.
	RangOut bool `json:"rang_out,omitempty"`
	// Transfer (EventRinging) is set when the call rings because an agent
	// is transferring it.
	Transfer *Transfer `json:"transfer,omitempty"`
	// Agent is who answered (EventAnswered) or now has the call
	// (EventTransferred), or who had it when it ended (EventEnded).
	Agent string `json:"agent,omitempty"`
	// Outcome is set on EventEnded.
	Outcome Outcome `json:"outcome,omitempty"`
	// Source names the telephony source that saw the call ("ari", "demo", ...).
	Source string    `json:"source,omitempty"`
	At     time.Time `json:"at"`
}

// CallSink receives call events from a telephony source.
//
// HandleCall must not block: telephony sources call it inline from the loop
// that reads the PBX's socket, and Asterisk drops a reader that stalls.
// Events for one call must be handed over in the order they happened.
type CallSink interface {
	HandleCall(CallEvent)
}

// CallSinkFunc adapts a function to CallSink.
type CallSinkFunc func(CallEvent)

// HandleCall calls f(ev).
func (f CallSinkFunc) HandleCall(ev CallEvent) { f(ev) }

// PastCall is one earlier call of a number, shown in the card's history.
type PastCall struct {
	CallID  string    `json:"call_id"`
	Phone   string    `json:"phone"` // E.164; the key the history is kept under
	At      time.Time `json:"at"`
	Agent   string    `json:"agent,omitempty"`
	Outcome Outcome   `json:"outcome"`
	// Duration is how long the call lasted from the first ring.
	Duration time.Duration `json:"duration"`
	Notes    []Note        `json:"notes,omitempty"`
	// CustomerID is the customer the caller was resolved to, or the one
	// the agent picked; a customer's calls are found from any of their
	// phones by it.
	CustomerID string `json:"customer_id,omitempty"`
	// DID is the company's number the customer dialled.
	DID string `json:"did,omitempty"`
	// AgentName is Agent's display name when the call was recorded.
	AgentName string `json:"agent_name,omitempty"`
	// Disposition is the wrap-up code the agent chose for the call, and
	// DispositionLabel its label as configured then; empty when none was.
	Disposition      string `json:"disposition,omitempty"`
	DispositionLabel string `json:"disposition_label,omitempty"`
}

// Note is what an agent wrote about a call.
type Note struct {
	Agent string    `json:"agent"`
	At    time.Time `json:"at"`
	Text  string    `json:"text"`
	// ID names the note in the history store, for edits; empty for a
	// note that was not stored.
	ID        string `json:"id,omitempty"`
	AgentName string `json:"agent_name,omitempty"`
	// EditedAt and EditedBy say who changed Text last and when; zero for a
	// note never edited. At and Agent stay those of the original, which
	// the history store keeps too.
	EditedAt time.Time `json:"edited_at,omitzero"`
	EditedBy string    `json:"edited_by,omitempty"`
}
