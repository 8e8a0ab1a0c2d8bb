package pop

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/pop/msglog"
	"github.com/screenpop/screenpop/pop/popstate"
)

// What calls bring agents is decided in popstate, which owns that part of
// the protocol; these names are the package's API.
type (
	Message       = popstate.Message
	AgentRef      = popstate.AgentRef
	PopData       = popstate.PopData
	TransferInfo  = popstate.TransferInfo
	AnsweredData  = popstate.AnsweredData
	WithdrawnData = popstate.WithdrawnData
	EndedData     = popstate.EndedData
	CardData      = popstate.CardData
	SectionData   = popstate.SectionData
	HistoryData   = popstate.HistoryData
	NoteSavedData = popstate.NoteSavedData
	WrappedUpData = popstate.WrappedUpData
	PopView       = popstate.PopView
	// RequestError is a refused browser request. Code is stable for the
	// page (forbidden, unknown_call, not_ready, bad_request, unavailable),
	// Message is fit for the agent.
	RequestError = popstate.RequestError

	// SearchResultsData is what a search of the directory found.
	SearchResultsData = popstate.SearchResultsData
)

// Message types sent to the browser. README.md shows an example of each.
const (
	TypeSnapshot  = "snapshot" // every call currently popped for the agent
	TypePop       = popstate.TypePop
	TypeAnswered  = popstate.TypeAnswered
	TypeWithdrawn = popstate.TypeWithdrawn
	TypeEnded     = popstate.TypeEnded
	TypeCard      = popstate.TypeCard
	TypeSection   = popstate.TypeSection
	TypeHistory   = popstate.TypeHistory
	TypeNoteSaved = popstate.TypeNoteSaved
	TypeWrappedUp = popstate.TypeWrappedUp
	TypeError     = "error" // a request of this connection was refused
	// TypeHello comes first on a connection, when the server has anything
	// to tell the page besides its calls (the wrap-up asked of agents).
	TypeHello = "hello"

	// TypeSearchResults answers a search request, to its agent.
	TypeSearchResults = popstate.TypeSearchResults
)

// Reasons a pop is withdrawn (WithdrawnData.Reason).
const (
	ReasonNotRinging        = popstate.ReasonNotRinging
	ReasonAnsweredElsewhere = popstate.ReasonAnsweredElsewhere
	ReasonTransferred       = popstate.ReasonTransferred
	ReasonRangOut           = popstate.ReasonRangOut
	ReasonTransferCancelled = popstate.ReasonTransferCancelled
	ReasonExpired           = popstate.ReasonExpired
)

// Pop states, as PopData.State and PopView.State.
const (
	StateRinging  = popstate.StateRinging
	StateAnswered = popstate.StateAnswered
)

// MaxNoteLength is the longest note an agent may write, in characters.
const MaxNoteLength = popstate.MaxNoteLength

// Request types sent by the browser.
const (
	RequestSelect   = "select"    // pick one of an ambiguous card's candidates
	RequestNote     = "note"      // write a note about a call
	RequestEditNote = "note_edit" // change the text of one's note
	RequestWrapUp   = "wrapup"    // choose the wrap-up disposition of a call
	// RequestSearch searches the directory for an unknown caller's
	// customer (Text); RequestLink links the caller's number to one the
	// search found (CustomerID).
	RequestSearch = "search"
	RequestLink   = "link"
	// RequestShown acknowledges a pop painted on the agent's screen
	// (Stage StageShown), or painted with every section filled
	// (StageComplete). It gets no answer, not even an error.
	RequestShown = "shown"
)

// SnapshotData is the data of a TypeSnapshot message.
type SnapshotData struct {
	Agent AgentRef  `json:"agent"`
	Pops  []PopView `json:"pops"`
}

// HelloData is the data of a TypeHello message.
type HelloData struct {
	Agent AgentRef `json:"agent"`
	// NotesByCall: a call without a number (withheld) takes notes too,
	// kept by its call id.
	NotesByCall bool `json:"notes_by_call,omitempty"`
	// WrapUp is the wrap-up asked of agents after a handled call.
	WrapUp *WrapUpSettings `json:"wrapup,omitempty"`
	// State is the agent's wrap-up state as the history says now (its
	// last handled call still to wrap up, until when); nil when unknown.
	State *history.AgentState `json:"state,omitempty"`
	// Search is what a search of the directory takes, when an unknown
	// caller's customer can be searched for and linked; nil: not here.
	Search *screenpop.SearchLimits `json:"search,omitempty"`
}

// WrapUpSettings is the wrap-up asked of agents after a call they
// answered: one disposition among Dispositions per call. Required: the
// agent is not ready (the page says "in wrap-up") until they chose one;
// Time, the after-call time, ends the wrap-up by itself unless Required
// (then the wrap-up is overdue). Pops are never held back: a call that
// rings meanwhile pops as always, marked on the page.
type WrapUpSettings struct {
	Dispositions []history.Disposition `json:"dispositions"`
	Required     bool                  `json:"required,omitempty"`
	// Time is in nanoseconds in JSON, like PastCall.Duration; 0: none.
	Time time.Duration `json:"time,omitempty"`
}

// ErrorData is the data of a TypeError message.
type ErrorData struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Request string `json:"request,omitempty"` // the type of the refused request
	Ref     string `json:"ref,omitempty"`
}

// Request is what a browser sends.
type Request struct {
	Type       string `json:"type"`
	CallID     string `json:"call_id"`
	CustomerID string `json:"customer_id,omitempty"` // select, link
	Text       string `json:"text,omitempty"`        // note, note_edit, search
	NoteID     string `json:"note_id,omitempty"`     // note_edit
	Code       string `json:"code,omitempty"`        // wrapup: the disposition
	// Ref is chosen by the browser and echoed in the reply, so that the page
	// knows which notes box a note_saved or error belongs to.
	Ref string `json:"ref,omitempty"`
	// Stage is what a shown request acknowledges: StageShown or
	// StageComplete.
	Stage string `json:"stage,omitempty"`
}

// Encoded is a Message in the form it travels in, marshalled once where
// the message is made: every agent it goes to, each agent's log, each
// tab's outbox and the Redis stream share the same bytes. The seq is the
// only part that differs between agents, so it is not in those bytes but
// written in front of them: {"seq":N, then the rest of the object.
type Encoded struct {
	Type   string
	CallID string
	At     time.Time
	// Seq is the agent's number of the message, set by whoever delivers it;
	// 0: none (a reply to one connection).
	Seq uint64
	// Part names what of the call the message is about when a call has
	// several of its type: the section of a TypeSection message. It is
	// not sent (the data says it too); redisbus names messages by it.
	Part string
	raw  []byte // the message as a JSON object without seq
}

var _ msglog.Sized = Encoded{}

// encoders write the messages of Encode: each keeps its scratch buffer
// between messages.
var encoders = sync.Pool{New: func() any { return new(popstate.Encoder) }}

// Encode marshals m, without its seq: the bytes json.Marshal gives, made
// without its reflection for the messages of calls (popstate.Encoder).
func Encode(m Message) (Encoded, error) {
	enc := encoders.Get().(*popstate.Encoder)
	defer encoders.Put(enc)
	defer enc.Reset() // the next message may be another's: remember no section
	return encodeWith(enc, m)
}

// encodeWith is Encode with enc, which may write again the bytes of
// sections it wrote before (the dispatcher's, for the messages of one
// input).
func encodeWith(enc *popstate.Encoder, m Message) (Encoded, error) {
	m.Seq = 0
	raw, err := enc.Marshal(m)
	if err != nil {
		return Encoded{}, err
	}
	e := Encoded{Type: m.Type, CallID: m.CallID, At: m.At, raw: raw}
	if d, ok := m.Data.(popstate.SectionData); ok {
		e.Part = d.Section.Name
	}
	return e, nil
}

// ParseEncoded takes back what Unnumbered gave: a message as a JSON object
// without seq (from a Redis stream). The JSON is checked, so that nothing
// a browser cannot parse reaches it.
func ParseEncoded(raw []byte) (Encoded, error) {
	var head struct {
		Type   string    `json:"type"`
		Seq    uint64    `json:"seq"`
		CallID string    `json:"call_id"`
		At     time.Time `json:"at"`
	}
	if len(raw) == 0 || raw[0] != '{' {
		return Encoded{}, errors.New("pop: a message must be a JSON object")
	}
	if e, ok := parseHead(raw); ok {
		return e, nil
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return Encoded{}, fmt.Errorf("pop: message: %w", err)
	}
	if head.Type == "" || head.Seq != 0 {
		return Encoded{}, errors.New("pop: a message needs a type and no seq of its own")
	}
	return Encoded{Type: head.Type, CallID: head.CallID, At: head.At, raw: raw}, nil
}

// parseHead is ParseEncoded's answer for a message as Encode writes it:
// {"type":..,"call_id":..,"at":..,"data":..} with plain strings, no seq
// and no white space. It reads the head by hand and checks the data with
// json.Valid, which also proves that nothing (a seq) follows it: the data
// followed by another key is not one JSON value. Anything else is left to
// json.Unmarshal. A message read back from Redis was 40% of the bus's CPU
// on the other daemon's side, most of it decoding a card nobody looked at.
func parseHead(raw []byte) (Encoded, bool) {
	var e Encoded
	rest, ok := headField(raw, `{"type":`, &e.Type)
	if !ok || e.Type == "" {
		return Encoded{}, false
	}
	if r, ok := headField(rest, `,"call_id":`, &e.CallID); ok {
		rest = r
	}
	var at string
	if rest, ok = headField(rest, `,"at":`, &at); !ok {
		return Encoded{}, false
	}
	if err := e.At.UnmarshalText([]byte(at)); err != nil {
		return Encoded{}, false
	}
	switch {
	case len(rest) == 1 && rest[0] == '}':
	case len(rest) > len(`,"data":}`) && string(rest[:len(`,"data":`)]) == `,"data":` && rest[len(rest)-1] == '}':
		if !json.Valid(rest[len(`,"data":`) : len(rest)-1]) {
			return Encoded{}, false
		}
	default:
		return Encoded{}, false
	}
	e.raw = raw
	return e, true
}

// headField reads key (with its leading { or ,) and a string of printable
// ASCII without escapes into dst, and returns what follows.
func headField(b []byte, key string, dst *string) ([]byte, bool) {
	if len(b) < len(key)+2 || string(b[:len(key)]) != key || b[len(key)] != '"' {
		return nil, false
	}
	b = b[len(key)+1:]
	for i, c := range b {
		switch {
		case c == '"':
			*dst = string(b[:i])
			return b[i+1:], true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// Unnumbered is the message as JSON without its seq. The bytes are shared:
// never modify them.
func (e Encoded) Unnumbered() []byte { return e.raw }

// Size is the length of the encoded message, seq left out.
func (e Encoded) Size() int { return len(e.raw) }

// AppendJSON appends the message as the browser gets it, seq included.
func (e Encoded) AppendJSON(dst []byte) []byte {
	if e.Seq == 0 {
		return append(dst, e.raw...)
	}
	return append(e.appendHead(dst), e.rest()...)
}

// MarshalJSON is AppendJSON for encoding/json.
func (e Encoded) MarshalJSON() ([]byte, error) {
	if len(e.raw) == 0 {
		return nil, errors.New("pop: an Encoded message is made by Encode")
	}
	return e.AppendJSON(nil), nil
}

// appendHead appends what comes before rest when the message is
// numbered: the opening of the object and its seq. (An encoded message
// always has fields after it: type and at are never left out.)
func (e Encoded) appendHead(dst []byte) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, e.Seq, 10)
	return append(dst, ',')
}

// rest is the encoded object after its opening brace.
func (e Encoded) rest() []byte { return e.raw[1:] }
