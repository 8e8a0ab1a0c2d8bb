package history

import (
	"cmp"
	"container/list"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// Memory is the Store that keeps everything in the process: the demo's and
// a single daemon's that may forget on restart. It is bounded: at most
// Config.MaxCalls calls (those with only notes or a wrap-up so far count
// too; the oldest go first), as many links (a link beyond is refused),
// DefaultAccessEntries access entries, maxNotesPerCall notes per call and
// maxVersions versions per note.
//
// It is the demo's store, and its bounds are generous: a daemon at
// 500 calls/s, ringing three agents each, fills the access log (about
// 350 bytes an entry: some 35 MB full) in about a minute, and the calls
// in a few minutes. A daemon whose history must last uses PostgreSQL.
type Memory struct {
	cfg       Config
	opts      Options
	maxAccess int

	mu     sync.Mutex
	closed bool
	calls  map[string]*memCall
	order  *list.List // of *memCall, the first written first
	// The recorded calls of each number, customer, and number and
	// customer together, in ring order (ringOrder), so that Lookup costs
	// what it answers: a binary search for the 30 days' count, and the
	// newest few calls from the ends.
	byPhone    map[string]ringOrder
	byCustomer map[string]ringOrder
	byBoth     map[phoneCustomer]ringOrder
	byAgent    map[string]map[string]bool // Call.Agent, for AgentState
	notes      map[string]*memNote
	access     []AccessEntry   // oldest first
	links      map[string]Link // by phone
}

// memCall is what the store knows of one call id: the call once it is
// recorded, notes and a wrap-up that may come before.
type memCall struct {
	id     string
	call   *Call
	notes  []*memNote
	wrapup *WrapUp
	el     *list.Element
}

type memNote struct {
	id, callID, phone string
	agent, agentName  string
	at                time.Time
	versions          []NoteVersion // the original first
}

const (
	maxNotesPerCall = 1000
	maxVersions     = 100
)

var _ Store = (*Memory)(nil)

// NewMemory returns an empty memory store. cfg.Type must be memory or
// empty; the other options are validated as for any store.
func NewMemory(cfg Config, opts Options) (*Memory, error) {
	cfg.ApplyDefaults()
	if cfg.Type != TypeMemory {
		return nil, fmt.Errorf("history: NewMemory given type %q", cfg.Type)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Memory{
		cfg:        cfg,
		opts:       opts.WithDefaults(),
		maxAccess:  DefaultAccessEntries,
		calls:      make(map[string]*memCall),
		order:      list.New(),
		byPhone:    make(map[string]ringOrder),
		byCustomer: make(map[string]ringOrder),
		byBoth:     make(map[phoneCustomer]ringOrder),
		byAgent:    make(map[string]map[string]bool),
		notes:      make(map[string]*memNote),
		links:      make(map[string]Link),
	}, nil
}

// Record implements Store.
func (m *Memory) Record(ctx context.Context, p screenpop.PastCall) error {
	if err := m.RecordCall(ctx, CallFromPast(p)); err != nil {
		return err
	}
	for _, n := range p.Notes {
		if err := m.addNote(PastNoteID(p.CallID, n), NewNote{CallID: p.CallID, Phone: p.Phone, Agent: n.Agent, AgentName: n.AgentName, At: n.At, Text: n.Text}); err != nil {
			return err
		}
	}
	return nil
}

// AddNote implements Store.
func (m *Memory) AddNote(ctx context.Context, phone, callID string, n screenpop.Note) error {
	_, err := m.SaveNote(ctx, NewNote{CallID: callID, Phone: phone, Agent: n.Agent, AgentName: n.AgentName, At: n.At, Text: n.Text})
	return err
}

// Recent implements Store.
func (m *Memory) Recent(ctx context.Context, phone string, limit int) ([]screenpop.PastCall, error) {
	if phone == "" {
		return nil, nil
	}
	r, err := m.Lookup(ctx, Query{Phone: phone, Limit: limit})
	return r.Calls, err
}

// RecordCall implements Store.
func (m *Memory) RecordCall(_ context.Context, c Call) error {
	c, err := NormalizeCall(c)
	if err != nil {
		return err
	}
	c.Daemons = []string{m.opts.Daemon}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	e := m.entry(c.ID)
	old := e.call
	if old != nil {
		c = Merge(*old, c)
		if old.Phone == c.Phone && old.CustomerID == c.CustomerID && old.Agent == c.Agent && old.RingAt.Compare(c.RingAt) == 0 {
			e.call = &c // where it is indexed is unchanged
			return nil
		}
		m.unindex(e) // by the old call's number, customer and ring time
	}
	e.call = &c
	m.index(e)
	return nil
}

// Call implements Store.
func (m *Memory) Call(_ context.Context, callID string) (Call, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.calls[callID]
	if e == nil || e.call == nil {
		return Call{}, fmt.Errorf("%w: %s", ErrCallNotFound, callID)
	}
	c := *e.call
	c.Rung, c.Daemons, c.Transfers = slices.Clone(c.Rung), slices.Clone(c.Daemons), slices.Clone(c.Transfers)
	return c, nil
}

// SaveNote implements Store.
func (m *Memory) SaveNote(_ context.Context, n NewNote) (screenpop.Note, error) {
	id := NewID()
	if err := m.addNote(id, n); err != nil {
		return screenpop.Note{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.notes[id].view(), nil
}

func (m *Memory) addNote(id string, n NewNote) error {
	n, err := NormalizeNote(n, m.opts.Now())
	if err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if m.notes[id] != nil {
		return nil // a PastCall's note recorded again
	}
	e := m.entry(n.CallID)
	if len(e.notes) >= maxNotesPerCall {
		return invalid("call %s has %d notes already", n.CallID, len(e.notes))
	}
	mn := &memNote{
		id: id, callID: n.CallID, phone: n.Phone, agent: n.Agent, agentName: n.AgentName, at: n.At,
		versions: []NoteVersion{{Agent: n.Agent, AgentName: n.AgentName, At: n.At, Text: n.Text}},
	}
	e.notes = append(e.notes, mn)
	m.notes[id] = mn
	return nil
}

// EditNote implements Store.
func (m *Memory) EditNote(_ context.Context, ed NoteEdit) error {
	ed, err := NormalizeEdit(ed, m.opts.Now())
	if err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	n := m.notes[ed.NoteID]
	switch {
	case n == nil:
		return fmt.Errorf("%w: %s", ErrNoteNotFound, ed.NoteID)
	case len(n.versions) >= maxVersions:
		return invalid("note %s has %d versions already", ed.NoteID, len(n.versions))
	}
	n.versions = append(n.versions, NoteVersion{Agent: ed.Agent, AgentName: ed.AgentName, At: ed.At, Text: ed.Text})
	return nil
}

// Notes implements Store.
func (m *Memory) Notes(_ context.Context, callID string) ([]screenpop.Note, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.calls[callID]
	if e == nil {
		return nil, nil
	}
	return notesOf(e), nil
}

// NoteVersions implements Store.
func (m *Memory) NoteVersions(_ context.Context, noteID string) ([]NoteVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.notes[noteID]
	if n == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoteNotFound, noteID)
	}
	return slices.Clone(n.versions), nil
}

// WrapUp implements Store.
func (m *Memory) WrapUp(_ context.Context, w WrapUp) error {
	w, err := m.cfg.NormalizeWrapUp(w, m.opts.Now())
	if err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	e := m.entry(w.CallID)
	// Two daemons' or retried wrap-ups: the latest choice wins, as in
	// PostgreSQL.
	if e.wrapup == nil || !w.At.Before(e.wrapup.At) {
		e.wrapup = &w
	}
	return nil
}

// AgentState implements Store.
func (m *Memory) AgentState(_ context.Context, agent string, now time.Time) (AgentState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var last *LastHandled
	for id := range m.byAgent[agent] {
		e := m.calls[id]
		c := e.call
		if c.Outcome != screenpop.OutcomeAnswered || c.EndAt.IsZero() {
			continue
		}
		if last == nil || c.EndAt.After(last.EndAt) || (c.EndAt.Equal(last.EndAt) && c.ID > last.CallID) {
			last = &LastHandled{CallID: c.ID, EndAt: c.EndAt, Wrapped: e.wrapup != nil}
		}
	}
	return m.cfg.AgentState(last, now), nil
}

// Lookup implements Store. It costs what it answers, whatever the store
// holds: the calls of the number and of the customer are kept in ring
// order (see ringOrder), the newest come from their ends, and the calls of
// the 30 days are counted by binary search (those of the number, plus
// those of the customer, less those of both: counted twice).
func (m *Memory) Lookup(_ context.Context, q Query) (Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var byPhone, byCustomer, byBoth ringOrder
	if q.Phone != "" {
		byPhone = m.byPhone[q.Phone]
	}
	if q.CustomerID != "" {
		byCustomer = m.byCustomer[q.CustomerID]
	}
	if q.Phone != "" && q.CustomerID != "" {
		byBoth = m.byBoth[phoneCustomer{q.Phone, q.CustomerID}]
	}
	var r Result
	since := m.opts.Now().Add(-Window)
	r.Last30Days = byPhone.since(since) + byCustomer.since(since) - byBoth.since(since)
	// Newest first: both lists are in the same order, so a call of the
	// number and the customer is at the end of both at once.
	i, j := len(byPhone)-1, len(byCustomer)-1
	for n := 0; n < q.Limit && (i >= 0 || j >= 0); n++ {
		var e *memCall
		switch {
		case j < 0 || (i >= 0 && compareRing(byPhone[i], byCustomer[j]) > 0):
			e = byPhone[i]
			i--
		case i < 0 || byPhone[i] != byCustomer[j]:
			e = byCustomer[j]
			j--
		default: // the same call
			e = byPhone[i]
			i, j = i-1, j-1
		}
		if r.Calls == nil {
			r.Calls = make([]screenpop.PastCall, 0, min(q.Limit, len(byPhone)+len(byCustomer)))
		}
		r.Calls = append(r.Calls, PastCall(*e.call, notesOf(e), e.wrapup))
	}
	return r, nil
}

// LogAccess implements Store.
func (m *Memory) LogAccess(_ context.Context, e AccessEntry) error {
	e, err := NormalizeAccess(e, m.opts.Daemon, m.opts.Now())
	if err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	m.logAccess(e)
	return nil
}

func (m *Memory) logAccess(e AccessEntry) {
	m.access = append(m.access, e)
	if n := len(m.access) - m.maxAccess; n > 0 {
		// Trim in steps of a tenth, so that a full log does not copy
		// itself on every entry.
		n = max(n, m.maxAccess/10)
		m.access = slices.Delete(m.access, 0, min(n, len(m.access)))
	}
}

// AccessLog implements Store.
func (m *Memory) AccessLog(_ context.Context, q AccessQuery) ([]AccessEntry, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultAccessLimit
	}
	hash := HashPhone(q.Phone)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []AccessEntry
	for i := len(m.access) - 1; i >= 0; i-- {
		e := m.access[i]
		if (q.CustomerID != "" && e.CustomerID != q.CustomerID) || (q.Agent != "" && e.Agent != q.Agent) ||
			(hash != "" && e.PhoneHash != hash) || e.At.Before(q.Since) {
			continue
		}
		e.Sections = slices.Clone(e.Sections)
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b AccessEntry) int { return b.At.Compare(a.At) })
	return out[:min(q.Limit, len(out))], nil
}

// Link implements Store.
func (m *Memory) Link(_ context.Context, l Link) error {
	l, err := NormalizeLink(l, m.opts.Daemon, m.opts.Now())
	if err != nil {
		return err
	}
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if len(m.links) >= m.cfg.MaxCalls && m.links[l.Phone].Phone == "" {
		return invalid("the memory history keeps at most %d links", m.cfg.MaxCalls)
	}
	m.links[l.Phone] = l
	m.logAccess(LinkEntry(l, m.opts.Now()))
	return nil
}

// LinkOf implements Store.
func (m *Memory) LinkOf(_ context.Context, phone string) (Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.links[phone]
	if !ok || phone == "" {
		return Link{}, ErrNotLinked
	}
	return l, nil
}

// Purge implements Store: calls that rang before the retention, then the
// notes and wrap-ups older than it whose call is gone (a note written after
// an old call goes when it is old itself), then old access entries.
func (m *Memory) Purge(_ context.Context, now time.Time) (Purged, error) {
	cutoff, accessCutoff := now.Add(-m.cfg.Retention), now.Add(-m.cfg.AccessRetention)
	m.mu.Lock()
	defer m.mu.Unlock()
	var p Purged
	for _, e := range m.calls {
		if e.call != nil && e.call.RingAt.Before(cutoff) {
			m.unindex(e)
			e.call = nil
			p.Calls++
		}
		if e.call != nil {
			continue
		}
		e.notes = slices.DeleteFunc(e.notes, func(n *memNote) bool {
			if n.at.Before(cutoff) {
				delete(m.notes, n.id)
				p.Notes++
				return true
			}
			return false
		})
		if e.wrapup != nil && e.wrapup.At.Before(cutoff) {
			e.wrapup = nil
			p.WrapUps++
		}
		if len(e.notes) == 0 && e.wrapup == nil {
			m.remove(e)
		}
	}
	before := len(m.access)
	m.access = slices.DeleteFunc(m.access, func(e AccessEntry) bool { return e.At.Before(accessCutoff) })
	p.Access = int64(before - len(m.access))
	return p, nil
}

// Erase implements Store.
func (m *Memory) Erase(_ context.Context, s Subject) (Erased, error) {
	if err := CheckSubject(s); err != nil {
		return Erased{}, err
	}
	if err := m.lock(); err != nil {
		return Erased{}, err
	}
	defer m.mu.Unlock()
	var gone Erased
	for _, e := range m.calls {
		if e.call != nil && ((s.CustomerID != "" && e.call.CustomerID == s.CustomerID) || (s.Phone != "" && e.call.Phone == s.Phone)) {
			gone.Calls++
			gone.Notes += int64(len(e.notes))
			for _, n := range e.notes {
				delete(m.notes, n.id)
			}
			m.remove(e)
			continue
		}
		if s.Phone == "" {
			continue
		}
		e.notes = slices.DeleteFunc(e.notes, func(n *memNote) bool {
			if n.phone == s.Phone {
				delete(m.notes, n.id)
				gone.Notes++
				return true
			}
			return false
		})
		if e.call == nil && len(e.notes) == 0 && e.wrapup == nil {
			m.remove(e)
		}
	}
	for phone, l := range m.links {
		if (s.CustomerID != "" && l.CustomerID == s.CustomerID) || (s.Phone != "" && phone == s.Phone) {
			delete(m.links, phone)
			gone.Links++
		}
	}
	m.logAccess(ErasureEntry(s, m.opts.Daemon, m.opts.Now()))
	return gone, nil
}

// Flush implements Store: the memory store writes at once.
func (m *Memory) Flush(context.Context) error { return nil }

// Status implements Store.
func (m *Memory) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Status{Backend: TypeMemory, Up: !m.closed, Migrated: true}
}

// Healthy implements Store.
func (m *Memory) Healthy() error {
	if m.Status().Up {
		return nil
	}
	return ErrClosed
}

// Run implements Store: there is no background work.
func (m *Memory) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// Close implements Store: later writes are refused.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// lock locks the store for a write, or returns ErrClosed (not locked).
func (m *Memory) lock() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// entry returns the entry of a call id, creating it and making room.
func (m *Memory) entry(id string) *memCall {
	if e := m.calls[id]; e != nil {
		return e
	}
	e := &memCall{id: id}
	e.el = m.order.PushBack(e)
	m.calls[id] = e
	for m.order.Len() > m.cfg.MaxCalls {
		m.remove(m.order.Front().Value.(*memCall))
	}
	return e
}

func (m *Memory) remove(e *memCall) {
	m.unindex(e)
	for _, n := range e.notes {
		delete(m.notes, n.id)
	}
	m.order.Remove(e.el)
	delete(m.calls, e.id)
}

func (m *Memory) unindex(e *memCall) {
	if e.call == nil {
		return
	}
	c := e.call
	unindexRing(m.byPhone, c.Phone, e)
	unindexRing(m.byCustomer, c.CustomerID, e)
	if c.Phone != "" && c.CustomerID != "" {
		unindexRing(m.byBoth, phoneCustomer{c.Phone, c.CustomerID}, e)
	}
	unindex(m.byAgent, c.Agent, e.id)
}

// index indexes e by its call, which must not change while indexed:
// RecordCall unindexes it first.
func (m *Memory) index(e *memCall) {
	c := e.call
	if c.Phone != "" {
		indexRing(m.byPhone, c.Phone, e)
	}
	if c.CustomerID != "" {
		indexRing(m.byCustomer, c.CustomerID, e)
	}
	if c.Phone != "" && c.CustomerID != "" {
		indexRing(m.byBoth, phoneCustomer{c.Phone, c.CustomerID}, e)
	}
	index(m.byAgent, c.Agent, e.id)
}

// phoneCustomer keys the calls of a number that named a customer.
type phoneCustomer struct{ phone, customerID string }

// ringOrder is recorded calls (call not nil) by ring time, then by id,
// the oldest first: Lookup's order backwards. Calls are mostly recorded
// in that order (they are appended), and the oldest go first (they are
// sliced off the front).
type ringOrder []*memCall

// compareRing orders calls as ringOrder does.
func compareRing(a, b *memCall) int {
	return cmp.Or(a.call.RingAt.Compare(b.call.RingAt), cmp.Compare(a.id, b.id))
}

// since counts the calls that rang at t or later.
func (o ringOrder) since(t time.Time) int {
	i, _ := slices.BinarySearchFunc(o, t, func(e *memCall, t time.Time) int {
		if e.call.RingAt.Before(t) {
			return -1
		}
		return 1
	})
	return len(o) - i
}

func indexRing[K comparable](idx map[K]ringOrder, key K, e *memCall) {
	o := idx[key]
	i, found := slices.BinarySearchFunc(o, e, compareRing)
	switch {
	case found:
		return
	case i == len(o):
		o = append(o, e)
	default:
		o = slices.Insert(o, i, e)
	}
	idx[key] = o
}

func unindexRing[K comparable](idx map[K]ringOrder, key K, e *memCall) {
	o, ok := idx[key]
	if !ok {
		return
	}
	i, found := slices.BinarySearchFunc(o, e, compareRing)
	switch {
	case !found:
		return
	case len(o) == 1:
		delete(idx, key)
		return
	case i == 0:
		// The oldest, the usual one to go: no copy. The array is
		// reallocated, with only what is left, when an append fills it.
		o[0] = nil
		o = o[1:]
	default:
		o = slices.Delete(o, i, i+1)
	}
	idx[key] = o
}

func index(idx map[string]map[string]bool, key, id string) {
	if key == "" {
		return
	}
	if idx[key] == nil {
		idx[key] = make(map[string]bool)
	}
	idx[key][id] = true
}

func unindex(idx map[string]map[string]bool, key, id string) {
	if ids := idx[key]; ids != nil {
		delete(ids, id)
		if len(ids) == 0 {
			delete(idx, key)
		}
	}
}

func notesOf(e *memCall) []screenpop.Note {
	if len(e.notes) == 0 {
		return nil
	}
	out := make([]screenpop.Note, len(e.notes))
	for i, n := range e.notes {
		out[i] = n.view()
	}
	slices.SortFunc(out, CompareNotes)
	return out
}

// CompareNotes orders notes as both stores list them: oldest first, by ID
// when written at the same time.
func CompareNotes(a, b screenpop.Note) int {
	return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.ID, b.ID))
}

func (n *memNote) view() screenpop.Note {
	last := n.versions[len(n.versions)-1]
	v := screenpop.Note{ID: n.id, Agent: n.agent, AgentName: n.agentName, At: n.at, Text: last.Text}
	if len(n.versions) > 1 {
		v.EditedAt, v.EditedBy = last.At, last.Agent
	}
	return v
}
