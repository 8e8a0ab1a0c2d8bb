// Package history is screenpop's memory of its callers: every call once,
// the agents' notes, the wrap-up disposition of each handled call, and an
// access log of every card shown. Store is the one interface; Memory keeps
// it in the process (the demo, `make run`), history/postgres keeps it in
// PostgreSQL so that it survives restarts and is shared by every daemon.
//
// A Store also implements the two narrow interfaces the daemon already
// consumes, unchanged: pop.CallRecorder (Record, AddNote) and
// aggregator.History (Recent).
package history

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	screenpop "github.com/screenpop/screenpop"
)

// Store records calls, notes, wrap-ups and card deliveries, and reads a
// caller's history back. Every method is safe for concurrent use.
//
// Writes of calls, wrap-ups and access entries return once the store has
// them (queued, for PostgreSQL); notes and note edits return only once they
// are committed, or with an error, after which they are never written.
type Store interface {
	// Record stores an ended call (pop.CallRecorder). Recording a call id
	// again merges the two: see RecordCall.
	Record(ctx context.Context, c screenpop.PastCall) error
	// AddNote stores a note about a call (pop.CallRecorder), recorded or
	// not yet. phone is empty for a withheld caller: the note is kept by
	// call.
	AddNote(ctx context.Context, phone, callID string, n screenpop.Note) error
	// Recent returns up to limit calls of phone, newest first, with their
	// notes (aggregator.History).
	Recent(ctx context.Context, phone string, limit int) ([]screenpop.PastCall, error)

	// RecordCall stores a call, once per Call.ID whichever daemon records
	// it and however often: a second record fills in what the first lacked
	// (see Merge).
	RecordCall(ctx context.Context, c Call) error
	// Call returns everything stored of one call; ErrCallNotFound when it
	// is not recorded.
	Call(ctx context.Context, callID string) (Call, error)
	// SaveNote stores a new note and returns it with its ID. It returns
	// only when the note is committed; on error the note is not stored,
	// then or later.
	SaveNote(ctx context.Context, n NewNote) (screenpop.Note, error)
	// EditNote replaces a note's text, keeping every earlier version. Like
	// SaveNote, it returns when committed. ErrNoteNotFound for an unknown
	// note.
	EditNote(ctx context.Context, e NoteEdit) error
	// Notes returns the notes of one call, oldest first: the way to the
	// notes of a withheld caller, who has no number to look up.
	Notes(ctx context.Context, callID string) ([]screenpop.Note, error)
	// NoteVersions returns every version of a note, the original first.
	NoteVersions(ctx context.Context, noteID string) ([]NoteVersion, error)
	// WrapUp records the disposition an agent chose for a call; choosing
	// again replaces it. ErrUnknownDisposition for a code that is not
	// configured.
	WrapUp(ctx context.Context, w WrapUp) error
	// AgentState says whether the agent's wrap-up of their last handled
	// call keeps them from being ready at now.
	AgentState(ctx context.Context, agent string, now time.Time) (AgentState, error)
	// Lookup returns the earlier calls of a number and of a customer,
	// newest first, and how many there were in the last 30 days.
	Lookup(ctx context.Context, q Query) (Result, error)

	// LogAccess records that a card was sent to an agent (ActionCard).
	// It never waits for the database.
	LogAccess(ctx context.Context, e AccessEntry) error
	// AccessLog returns the access entries matching q, newest first.
	AccessLog(ctx context.Context, q AccessQuery) ([]AccessEntry, error)

	// Link keeps that a phone number belongs to a customer (an agent
	// linked an unknown caller to the customer they found), replacing the
	// number's earlier link, and writes the access entry saying who linked
	// which number to whom. It returns once both are committed: the next
	// card of the number resolves by the link. It needs the database: it is
	// never queued.
	Link(ctx context.Context, l Link) error
	// LinkOf returns the link of an E.164 number; ErrNotLinked when the
	// number has none.
	LinkOf(ctx context.Context, phone string) (Link, error)

	// Purge deletes calls and notes older than the configured retention,
	// and access entries older than the access retention, at now.
	Purge(ctx context.Context, now time.Time) (Purged, error)
	// Erase deletes the calls, notes, wrap-ups and links of a customer or
	// a phone number and writes one access entry saying erasure was done
	// (not what). It needs the database: it is never queued.
	Erase(ctx context.Context, s Subject) (Erased, error)

	// Flush waits until every write accepted before it is committed (or
	// given up).
	Flush(ctx context.Context) error
	// Status reports the store's health for /readyz and logs.
	Status() Status
	// Healthy is nil while writes reach their storage; otherwise it says
	// why not. Pops keep flowing either way.
	Healthy() error
	// Run does the store's background work (migrations, the write queue)
	// until ctx ends, then writes what is queued for a bounded time.
	Run(ctx context.Context) error
	// Close releases the store's resources. It tolerates a store that
	// never ran.
	Close() error
}

// Errors a Store returns; test with errors.Is.
var (
	// ErrInvalid wraps every refusal of a malformed write or query.
	ErrInvalid = errors.New("invalid")
	// ErrUnknownDisposition: the wrap-up code is not in the configuration.
	ErrUnknownDisposition = errors.New("unknown disposition")
	// ErrCallNotFound: no call has that ID (yet, or any more).
	ErrCallNotFound = errors.New("call not found")
	// ErrNoteNotFound: no note has that ID (any more).
	ErrNoteNotFound = errors.New("note not found")
	// ErrBufferFull: the store's write buffer is full (the database has
	// been away for long); the write was refused.
	ErrBufferFull = errors.New("history write buffer is full")
	// ErrNotSaved: a note could not be committed before the caller's
	// deadline; it is not stored and will not be.
	ErrNotSaved = errors.New("the note was not saved")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("history store is closed")
	// ErrNotLinked: no agent linked the number to a customer.
	ErrNotLinked = errors.New("the number is not linked to a customer")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Transfer is one hand-over of a call from an agent to another.
type Transfer struct {
	From     string    `json:"from"`
	To       string    `json:"to"`
	At       time.Time `json:"at"`
	Attended bool      `json:"attended,omitempty"`
}

// Call is everything the history keeps of one call.
type Call struct {
	// ID is the namespaced call id ("pbx-a/1795435000.0"): the same call
	// seen by two daemons has the same ID and is stored once.
	ID string
	// Phone is the caller's number in E.164; empty when Withheld.
	Phone    string
	Withheld bool
	// CustomerID is the customer resolved from the number, or the one the
	// agent picked.
	CustomerID string
	// DID is the company's line the customer dialled.
	DID string
	// Rung are the agents whose phones rang, sorted; nil for none.
	Rung []string
	// AnsweredBy is the agent who answered first; Agent the one who had
	// the call at its end (after transfers), shown in the history.
	AnsweredBy string
	Agent      string
	AgentName  string
	Transfers  []Transfer
	Outcome    screenpop.Outcome
	// RingAt (required) is when the call first rang; PopAt when the first
	// card was shown; AnswerAt and EndAt speak for themselves. Zero when
	// unknown.
	RingAt   time.Time
	PopAt    time.Time
	AnswerAt time.Time
	EndAt    time.Time
	// Source is the telephony source's name.
	Source string
	// Daemons are the daemons that recorded the call; the store sets it
	// from Options.Daemon, a read returns them all.
	Daemons []string
}

// NewNote is a note to save.
type NewNote struct {
	CallID string
	// Phone is the caller's E.164 number; empty for a withheld caller.
	Phone     string
	Agent     string
	AgentName string
	// At is when it was written; zero means now.
	At   time.Time
	Text string
}

// NoteEdit replaces the text of a note.
type NoteEdit struct {
	NoteID    string
	Agent     string
	AgentName string
	At        time.Time // zero means now
	Text      string
}

// NoteVersion is one version of a note's text.
type NoteVersion struct {
	Agent     string    `json:"agent"`
	AgentName string    `json:"agent_name,omitempty"`
	At        time.Time `json:"at"`
	Text      string    `json:"text"`
}

// WrapUp is the disposition an agent chose for a call.
type WrapUp struct {
	CallID string
	Agent  string
	Code   string
	// Label is set by the store from the configuration.
	Label string
	At    time.Time // zero means now
}

// AgentState is an agent's wrap-up state.
type AgentState struct {
	// Ready is false while the agent is in wrap-up after a handled call.
	Ready bool `json:"ready"`
	// CallID is the call being wrapped up, when not Ready.
	CallID string `json:"call_id,omitempty"`
	// Until is when the configured wrap-up time ends; zero without one.
	// With wrapup_required the agent stays not ready past Until until a
	// disposition is chosen: the page shows the wrap-up as overdue.
	Until time.Time `json:"until,omitzero"`
}

// Query asks for a caller's history: the calls of Phone and those of
// CustomerID (a customer calling from another phone), either may be empty.
type Query struct {
	Phone      string
	CustomerID string
	// Limit bounds the calls returned; 0 or less returns none (the count
	// is still given).
	Limit int
}

// Result is a caller's history.
type Result struct {
	Calls []screenpop.PastCall
	// Last30Days counts the calls of the number or customer that rang in
	// the 30 days before the query.
	Last30Days int
}

// Access log actions.
const (
	ActionCard  = "card"  // a card (or part of one) was sent to an agent: to their open pages, or kept for the page they open
	ActionErase = "erase" // a person's history was erased
	ActionLink  = "link"  // an agent linked a number to a customer
)

// Link says that a phone number belongs to a customer because an agent
// said so: the caller was unknown to the directory, the agent searched it
// and linked the number to the customer they found. The aggregator then
// resolves the number to the customer, before the directory is asked.
type Link struct {
	// Phone is the number in E.164, as the calls keep it: one customer
	// per number, a new link replaces the old.
	Phone      string `json:"phone"`
	CustomerID string `json:"customer_id"`
	// Agent linked it, during CallID, at At (zero: now).
	Agent     string    `json:"agent"`
	AgentName string    `json:"agent_name,omitempty"`
	CallID    string    `json:"call_id,omitempty"`
	At        time.Time `json:"at"`
	// Daemon is the daemon through which it was linked; the store sets
	// it from Options.Daemon when empty.
	Daemon string `json:"daemon,omitempty"`
}

// AccessEntry is one line of the access log.
type AccessEntry struct {
	// ID is set by the store.
	ID string `json:"id"`
	// At is when it happened; zero means now.
	At time.Time `json:"at"`
	// Action is ActionCard (the default) or ActionErase.
	Action string `json:"action"`
	// Agent saw the card, or (ActionErase) is who ordered the erasure.
	Agent      string `json:"agent"`
	CustomerID string `json:"customer_id,omitempty"`
	// Phone is the caller's number on the way in. It is never stored:
	// the store keeps PhoneHash, which a query by phone matches.
	Phone     string `json:"-"`
	PhoneHash string `json:"phone_hash,omitempty"`
	CallID    string `json:"call_id,omitempty"`
	// Sections are the card sections sent ("accounting", "history", ...).
	Sections []string `json:"sections,omitempty"`
	// Daemon is which daemon delivered it; the store fills it from
	// Options.Daemon when empty.
	Daemon string `json:"daemon"`
}

// AccessQuery selects access entries. Empty fields do not filter.
type AccessQuery struct {
	CustomerID string
	Agent      string
	// Phone matches entries by the hash of this E.164 number.
	Phone string
	Since time.Time
	// Limit bounds the entries returned; 0 means DefaultAccessLimit.
	Limit int
}

// DefaultAccessLimit is what AccessLog returns at most when the query says
// no limit.
const DefaultAccessLimit = 1000

// Subject is whose history Erase deletes: a customer, a phone number, or
// both. By names who ordered it, for the access log.
type Subject struct {
	CustomerID string
	Phone      string
	By         string
}

// Erased counts what Erase deleted, for the operator (the access log does
// not say).
type Erased struct {
	Calls int64 `json:"calls"`
	Notes int64 `json:"notes"`
	// Links counts the number's or customer's links agents had made.
	Links int64 `json:"links,omitempty"`
}

// Purged counts what Purge deleted.
type Purged struct {
	Calls   int64 `json:"calls"`
	Notes   int64 `json:"notes"`
	WrapUps int64 `json:"wrapups"`
	Access  int64 `json:"access"`
}

// Status is a store's health.
type Status struct {
	Backend string `json:"backend"` // "memory" or "postgres"
	// Up is true while writes reach the storage (the last attempt or ping
	// succeeded).
	Up bool `json:"up"`
	// Migrated is true once the schema is at this binary's version.
	Migrated bool `json:"migrated"`
	// Queued writes are waiting for the database; Capacity is the most
	// the buffer holds.
	Queued   int `json:"queued"`
	Capacity int `json:"capacity"`
	// Refused counts writes refused because the buffer was full, since
	// start.
	Refused uint64 `json:"refused"`
	// LastError is the last write or ping error, without credentials.
	LastError string `json:"last_error,omitempty"`
	// DownSince is when writes started failing; zero while Up.
	DownSince time.Time `json:"down_since,omitzero"`
}

// Err is nil when s is healthy, otherwise an error saying why.
func (s Status) Err() error {
	switch {
	case !s.Up && !s.DownSince.IsZero():
		return fmt.Errorf("history %s unreachable since %s, %d write(s) queued: %s", s.Backend, s.DownSince.UTC().Format(time.RFC3339), s.Queued, s.LastError)
	case !s.Up:
		return fmt.Errorf("history %s not reached yet, %d write(s) queued", s.Backend, s.Queued)
	case !s.Migrated:
		return fmt.Errorf("history %s schema not migrated yet, %d write(s) queued", s.Backend, s.Queued)
	}
	return nil
}

// Limits on what a store accepts, so that a client cannot fill it.
const (
	// MaxNoteLength is the longest note text, in characters (pop's own
	// limit is lower).
	MaxNoteLength = 10000
	// maxField bounds every identifier and name (call ids, agent ids,
	// customer ids, codes), in bytes.
	maxField = 256
	// maxList bounds the agents rung, transfers and sections of one
	// call or entry.
	maxList = 100
)

// HashPhone is the pseudonym of a phone number in the access log: the log
// can say "this number's card was shown" and be searched by number without
// holding the number. It is a plain hash, so it is a pseudonym, not
// anonymous: anyone with the log can test a number against it.
func HashPhone(e164 string) string {
	if e164 == "" {
		return ""
	}
	sum := sha256.Sum256([]byte("screenpop/phone\x00" + e164))
	return hex.EncodeToString(sum[:16])
}

// NewID returns a random UUID (version 4), the form PostgreSQL's uuid type
// takes.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ValidID reports whether id has the form NewID returns.
func ValidID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, r := range id {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdef", r) {
				return false
			}
		}
	}
	return true
}

// Time is t as both stores keep it: UTC, to the microsecond (PostgreSQL's
// precision), so that what is read back equals what was written.
func Time(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// minTime and maxTime bound the times a store accepts; PostgreSQL's range
// is wider, this keeps a bogus clock from writing nonsense.
var (
	minTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

func checkTime(name string, t time.Time) error {
	if !t.IsZero() && (t.Before(minTime) || t.After(maxTime)) {
		return invalid("%s %s is out of range", name, t.Format(time.RFC3339))
	}
	return nil
}

// Text is s as both stores keep it: valid UTF-8 without NUL bytes (which
// PostgreSQL's text refuses), so that no write is refused for its bytes.
func Text(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}

func checkField(name, v string, required bool) error {
	switch {
	case required && v == "":
		return invalid("%s is required", name)
	case len(v) > maxField:
		return invalid("%s is %d bytes long; the limit is %d", name, len(v), maxField)
	}
	return nil
}

// NormalizeCall checks a call and returns it as stored: times in UTC to
// the microsecond, strings cleaned, a withheld call without number, agents
// rung sorted without duplicates, empty lists nil. Daemons is cleared: the
// store sets it.
func NormalizeCall(c Call) (Call, error) {
	c.ID, c.Phone, c.CustomerID, c.DID = Text(c.ID), Text(c.Phone), Text(c.CustomerID), Text(c.DID)
	c.AnsweredBy, c.Agent, c.AgentName, c.Source = Text(c.AnsweredBy), Text(c.Agent), Text(c.AgentName), Text(c.Source)
	c.Outcome = screenpop.Outcome(Text(string(c.Outcome)))
	if c.Withheld {
		c.Phone = ""
	}
	errs := []error{
		checkField("call id", c.ID, true),
		checkField("phone", c.Phone, false),
		checkField("customer id", c.CustomerID, false),
		checkField("did", c.DID, false),
		checkField("answered_by", c.AnsweredBy, false),
		checkField("agent", c.Agent, false),
		checkField("agent name", c.AgentName, false),
		checkField("outcome", string(c.Outcome), false),
		checkField("source", c.Source, false),
	}
	if c.RingAt.IsZero() {
		errs = append(errs, invalid("call %s has no ring time", c.ID))
	}
	c.RingAt, c.PopAt, c.AnswerAt, c.EndAt = Time(c.RingAt), Time(c.PopAt), Time(c.AnswerAt), Time(c.EndAt)
	errs = append(errs, checkTime("ring time", c.RingAt), checkTime("pop time", c.PopAt), checkTime("answer time", c.AnswerAt), checkTime("end time", c.EndAt))
	if len(c.Rung) > maxList || len(c.Transfers) > maxList {
		errs = append(errs, invalid("call %s has more than %d agents rung or transfers", c.ID, maxList))
	}
	var rung []string
	for _, a := range c.Rung {
		a = Text(a)
		errs = append(errs, checkField("agent rung", a, true))
		rung = append(rung, a)
	}
	slices.Sort(rung)
	c.Rung = slices.Compact(rung)
	var transfers []Transfer
	for _, t := range c.Transfers {
		t.From, t.To, t.At = Text(t.From), Text(t.To), Time(t.At)
		errs = append(errs, checkField("transfer from", t.From, false), checkField("transfer to", t.To, false), checkTime("transfer time", t.At))
		transfers = append(transfers, t)
	}
	c.Transfers = transfers
	c.Daemons = nil
	return c, errors.Join(errs...)
}

// Merge is what a store keeps when a call it has (old) is recorded again
// (c), by another daemon or after a retry: the first non-empty value of
// each field stays and later records fill in the blanks; agents rung and
// daemons are merged; the earliest ring, pop and answer times and the latest
// end time win; the longer list of transfers wins; an answered outcome wins
// over any other. Recording the same call twice changes nothing. The
// PostgreSQL store does the same in its upsert.
func Merge(old, c Call) Call {
	m := old
	first := func(a, b string) string {
		if a != "" {
			return a
		}
		return b
	}
	m.Phone = first(old.Phone, c.Phone)
	m.Withheld = old.Withheld || c.Withheld
	m.CustomerID = first(old.CustomerID, c.CustomerID)
	m.DID = first(old.DID, c.DID)
	m.AnsweredBy = first(old.AnsweredBy, c.AnsweredBy)
	m.Agent = first(old.Agent, c.Agent)
	m.AgentName = first(old.AgentName, c.AgentName)
	m.Source = first(old.Source, c.Source)
	m.Rung = union(old.Rung, c.Rung)
	m.Daemons = union(old.Daemons, c.Daemons)
	if len(c.Transfers) > len(old.Transfers) {
		m.Transfers = slices.Clone(c.Transfers)
	}
	if c.Outcome == screenpop.OutcomeAnswered || old.Outcome == "" {
		m.Outcome = c.Outcome
	}
	m.RingAt = earliest(old.RingAt, c.RingAt)
	m.PopAt = earliest(old.PopAt, c.PopAt)
	m.AnswerAt = earliest(old.AnswerAt, c.AnswerAt)
	if c.EndAt.After(old.EndAt) {
		m.EndAt = c.EndAt
	}
	return m
}

// union is a followed by the elements of b it lacks, sorted, like the
// PostgreSQL store's array union.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// CallFromPast is the call Record stores for a pop.CallRecorder's
// PastCall: PastCall.At is the ring time, Agent who had the call at its
// end (and answered it, when the outcome says answered).
func CallFromPast(p screenpop.PastCall) Call {
	c := Call{
		ID:         p.CallID,
		Phone:      p.Phone,
		CustomerID: p.CustomerID,
		DID:        p.DID,
		Agent:      p.Agent,
		AgentName:  p.AgentName,
		Outcome:    p.Outcome,
		RingAt:     p.At,
		EndAt:      p.At.Add(max(p.Duration, 0)),
	}
	if p.Outcome == screenpop.OutcomeAnswered {
		c.AnsweredBy = p.Agent
	}
	if p.Phone == "" {
		c.Withheld = true
	}
	return c
}

// PastNoteID gives a note that came inside a recorded PastCall an ID from
// its content, so that recording the call again does not store it twice.
func PastNoteID(callID string, n screenpop.Note) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d\x00%s", callID, n.Agent, n.At.UnixMicro(), n.Text))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// PastCall is how a stored call appears in a card's history.
func PastCall(c Call, notes []screenpop.Note, w *WrapUp) screenpop.PastCall {
	p := screenpop.PastCall{
		CallID:     c.ID,
		Phone:      c.Phone,
		At:         c.RingAt,
		Agent:      c.Agent,
		AgentName:  c.AgentName,
		Outcome:    c.Outcome,
		CustomerID: c.CustomerID,
		DID:        c.DID,
		Notes:      notes,
	}
	if !c.EndAt.IsZero() && c.EndAt.After(c.RingAt) {
		p.Duration = c.EndAt.Sub(c.RingAt)
	}
	if w != nil {
		p.Disposition, p.DispositionLabel = w.Code, w.Label
	}
	return p
}

// NormalizeNote checks a new note and returns it as stored.
func NormalizeNote(n NewNote, now time.Time) (NewNote, error) {
	n.CallID, n.Phone, n.Agent, n.AgentName = Text(n.CallID), Text(n.Phone), Text(n.Agent), Text(n.AgentName)
	n.Text = Text(n.Text)
	if n.At.IsZero() {
		n.At = now
	}
	n.At = Time(n.At)
	return n, errors.Join(
		checkField("call id", n.CallID, true),
		checkField("phone", n.Phone, false),
		checkField("agent", n.Agent, true),
		checkField("agent name", n.AgentName, false),
		checkTime("note time", n.At),
		checkNoteText(n.Text),
	)
}

// NormalizeEdit checks a note edit and returns it as stored.
func NormalizeEdit(e NoteEdit, now time.Time) (NoteEdit, error) {
	e.Agent, e.AgentName, e.Text = Text(e.Agent), Text(e.AgentName), Text(e.Text)
	if e.At.IsZero() {
		e.At = now
	}
	e.At = Time(e.At)
	var idErr error
	if !ValidID(e.NoteID) {
		idErr = fmt.Errorf("%w: %q is no note ID", ErrNoteNotFound, e.NoteID)
	}
	return e, errors.Join(
		idErr,
		checkField("agent", e.Agent, true),
		checkField("agent name", e.AgentName, false),
		checkTime("edit time", e.At),
		checkNoteText(e.Text),
	)
}

func checkNoteText(text string) error {
	switch n := utf8.RuneCountInString(text); {
	case strings.TrimSpace(text) == "":
		return invalid("the note is empty")
	case n > MaxNoteLength:
		return invalid("the note is %d characters long; the limit is %d", n, MaxNoteLength)
	}
	return nil
}

// NormalizeAccess checks an access entry and returns it as stored: an ID,
// a time, the action, the daemon, the phone replaced by its hash.
func NormalizeAccess(e AccessEntry, daemon string, now time.Time) (AccessEntry, error) {
	if e.ID == "" {
		e.ID = NewID()
	}
	if e.At.IsZero() {
		e.At = now
	}
	e.At = Time(e.At)
	if e.Action == "" {
		e.Action = ActionCard
	}
	if e.Daemon == "" {
		e.Daemon = daemon
	}
	e.Agent, e.CustomerID, e.CallID, e.Daemon = Text(e.Agent), Text(e.CustomerID), Text(e.CallID), Text(e.Daemon)
	if e.Phone != "" {
		e.PhoneHash = HashPhone(Text(e.Phone))
		e.Phone = ""
	}
	errs := []error{
		checkField("agent", e.Agent, true),
		checkField("customer id", e.CustomerID, false),
		checkField("call id", e.CallID, false),
		checkField("daemon", e.Daemon, false),
		checkTime("access time", e.At),
	}
	if !ValidID(e.ID) {
		errs = append(errs, invalid("access entry id %q is no UUID", e.ID))
	}
	if e.Action != ActionCard && e.Action != ActionErase && e.Action != ActionLink {
		errs = append(errs, invalid("unknown access action %q", e.Action))
	}
	if len(e.Sections) > maxList {
		errs = append(errs, invalid("more than %d sections", maxList))
	}
	var sections []string
	for _, s := range e.Sections {
		s = Text(s)
		errs = append(errs, checkField("section", s, true))
		sections = append(sections, s)
	}
	e.Sections = sections
	return e, errors.Join(errs...)
}

// NormalizeLink checks a link and returns it as stored: text cleaned,
// the time in UTC to the microsecond (now when zero), the daemon set.
func NormalizeLink(l Link, daemon string, now time.Time) (Link, error) {
	l.Phone, l.CustomerID, l.Agent, l.AgentName, l.CallID = Text(l.Phone), Text(l.CustomerID), Text(l.Agent), Text(l.AgentName), Text(l.CallID)
	if l.At.IsZero() {
		l.At = now
	}
	l.At = Time(l.At)
	if l.Daemon == "" {
		l.Daemon = daemon
	}
	l.Daemon = Text(l.Daemon)
	errs := []error{
		checkField("phone", l.Phone, true),
		checkField("customer id", l.CustomerID, true),
		checkField("agent", l.Agent, true),
		checkField("agent name", l.AgentName, false),
		checkField("call id", l.CallID, false),
		checkField("daemon", l.Daemon, false),
		checkTime("link time", l.At),
	}
	if l.Phone != "" && !strings.HasPrefix(l.Phone, "+") {
		errs = append(errs, invalid("phone %s is not in E.164 (+ and the country code)", screenpop.MaskPhone(l.Phone)))
	}
	return l, errors.Join(errs...)
}

// LinkEntry is the access entry a link writes: who linked which number
// (its hash) to which customer, during which call.
func LinkEntry(l Link, now time.Time) AccessEntry {
	e, _ := NormalizeAccess(AccessEntry{Action: ActionLink, At: l.At, Agent: l.Agent, CustomerID: l.CustomerID, Phone: l.Phone, CallID: l.CallID, Daemon: l.Daemon}, l.Daemon, now)
	return e
}

// CheckSubject checks an erasure's subject.
func CheckSubject(s Subject) error {
	if s.CustomerID == "" && s.Phone == "" {
		return invalid("erase needs a customer id or a phone number")
	}
	return errors.Join(checkField("customer id", s.CustomerID, false), checkField("phone", s.Phone, false), checkField("by", s.By, true))
}

// ErasureEntry is the one access entry an erasure writes: who ordered it,
// and whose history it was (the customer id, the number's hash), never
// what was erased.
func ErasureEntry(s Subject, daemon string, now time.Time) AccessEntry {
	e, _ := NormalizeAccess(AccessEntry{Action: ActionErase, Agent: s.By, CustomerID: s.CustomerID, Phone: s.Phone}, daemon, now)
	return e
}

// Window is how far back Result.Last30Days counts.
const Window = 30 * 24 * time.Hour
