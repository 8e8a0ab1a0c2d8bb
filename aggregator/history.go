package aggregator

import (
	"container/list"
	"context"
	"errors"
	"slices"
	"sync"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
)

// History gives the earlier calls of a number, most recent first, for the
// card. MemoryHistory implements it, and so does every history.Store.
type History interface {
	Recent(ctx context.Context, phone string, limit int) ([]screenpop.PastCall, error)
}

// HistoryLookup is what a History may offer beyond Recent (every
// history.Store does): the calls of a number and of a customer at once
// (a customer calling from another phone), newest first without
// duplicates, and how many rang in the last 30 days. When Options.History
// has it, the card's history comes from one Lookup, asked once the
// customer is known (picked, or named by the directory) or known to be
// unknown: by number, and by customer when there is one.
type HistoryLookup interface {
	Lookup(ctx context.Context, q history.Query) (history.Result, error)
}

// MemoryHistory keeps the last calls of each number in memory, with their
// notes. It forgets everything when the process ends: enough for a demo or
// a single daemon that may lose history on restart.
//
// Notes may arrive before the call is recorded (agents write while they
// talk; the call is recorded when it ends): they are kept and attached when
// the call is recorded.
type MemoryHistory struct {
	perNumber int
	maxPhones int

	mu     sync.Mutex
	phones map[string]*list.Element // of *phoneHistory
	lru    *list.List               // least recently written at the front
}

type phoneHistory struct {
	phone string
	calls []screenpop.PastCall // most recent first
	// early holds notes of calls not recorded yet, by call id, in the
	// order their first note came.
	early      map[string][]screenpop.Note
	earlyOrder []string
}

var _ History = (*MemoryHistory)(nil)

// DefaultHistoryPerNumber is what NewMemoryHistory keeps per number when
// given zero or less.
const DefaultHistoryPerNumber = 50

// maxHistoryPhones bounds how many numbers a MemoryHistory remembers; the
// number written to least recently is forgotten first.
const maxHistoryPhones = 100000

// ErrNoPhone is returned when a call or note comes without a phone number:
// history is kept per number.
var ErrNoPhone = errors.New("no phone number: history is kept per number")

// NewMemoryHistory keeps the last perNumber calls of each number
// (DefaultHistoryPerNumber when perNumber <= 0).
func NewMemoryHistory(perNumber int) *MemoryHistory {
	if perNumber <= 0 {
		perNumber = DefaultHistoryPerNumber
	}
	return &MemoryHistory{
		perNumber: perNumber,
		maxPhones: maxHistoryPhones,
		phones:    make(map[string]*list.Element),
		lru:       list.New(),
	}
}

// Record stores an ended call. Recording a call id again replaces the call
// and keeps its notes.
func (h *MemoryHistory) Record(_ context.Context, c screenpop.PastCall) error {
	if c.Phone == "" {
		return ErrNoPhone
	}
	c.Notes = slices.Clone(c.Notes)
	h.mu.Lock()
	defer h.mu.Unlock()
	ph := h.touch(c.Phone)
	if early, ok := ph.early[c.CallID]; ok {
		c.Notes = append(c.Notes, early...)
		delete(ph.early, c.CallID)
		ph.earlyOrder = slices.DeleteFunc(ph.earlyOrder, func(id string) bool { return id == c.CallID })
	}
	if i := slices.IndexFunc(ph.calls, func(p screenpop.PastCall) bool { return p.CallID == c.CallID }); i >= 0 {
		c.Notes = append(ph.calls[i].Notes, c.Notes...)
		ph.calls = slices.Delete(ph.calls, i, i+1)
	}
	// Calls end roughly in order, so the new one almost always goes first.
	i := 0
	for i < len(ph.calls) && ph.calls[i].At.After(c.At) {
		i++
	}
	ph.calls = slices.Insert(ph.calls, i, c)
	if len(ph.calls) > h.perNumber {
		ph.calls = slices.Delete(ph.calls, h.perNumber, len(ph.calls))
	}
	return nil
}

// AddNote attaches a note to a call of phone, recorded or not yet.
func (h *MemoryHistory) AddNote(_ context.Context, phone, callID string, n screenpop.Note) error {
	if phone == "" {
		return ErrNoPhone
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	ph := h.touch(phone)
	if i := slices.IndexFunc(ph.calls, func(p screenpop.PastCall) bool { return p.CallID == callID }); i >= 0 {
		ph.calls[i].Notes = append(ph.calls[i].Notes, n)
		return nil
	}
	if _, ok := ph.early[callID]; !ok {
		ph.earlyOrder = append(ph.earlyOrder, callID)
		// Notes of calls that are never recorded (a daemon restart lost
		// the call) must not pile up.
		if len(ph.earlyOrder) > h.perNumber {
			delete(ph.early, ph.earlyOrder[0])
			ph.earlyOrder = ph.earlyOrder[1:]
		}
	}
	ph.early[callID] = append(ph.early[callID], n)
	return nil
}

// Recent implements History: up to limit calls of phone, most recent
// first, with their notes. The result is a copy.
func (h *MemoryHistory) Recent(_ context.Context, phone string, limit int) ([]screenpop.PastCall, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	el, ok := h.phones[phone]
	if !ok || limit <= 0 {
		return nil, nil
	}
	calls := el.Value.(*phoneHistory).calls
	out := make([]screenpop.PastCall, 0, min(limit, len(calls)))
	for _, c := range calls[:min(limit, len(calls))] {
		c.Notes = slices.Clone(c.Notes)
		out = append(out, c)
	}
	return out, nil
}

// touch returns the history of phone, creating it, and marks it as the
// most recently written.
func (h *MemoryHistory) touch(phone string) *phoneHistory {
	if el, ok := h.phones[phone]; ok {
		h.lru.MoveToBack(el)
		return el.Value.(*phoneHistory)
	}
	ph := &phoneHistory{phone: phone, early: make(map[string][]screenpop.Note)}
	h.phones[phone] = h.lru.PushBack(ph)
	for h.lru.Len() > h.maxPhones {
		front := h.lru.Front()
		delete(h.phones, front.Value.(*phoneHistory).phone)
		h.lru.Remove(front)
	}
	return ph
}
