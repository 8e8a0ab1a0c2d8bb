package aggregator

import (
	"cmp"
	"sync"

	screenpop "github.com/screenpop/screenpop"
)

// numberMemo remembers how the callers' numbers of the last cards
// normalised (classify) and read (phoneDisplay): libphonenumber's parsing
// and formatting is a large part of a card answered from the cache, and
// the callers whose answers are cached are those calling again.
type numberMemo struct {
	max int // 0: maxNumberMemo

	mu      sync.Mutex
	entries map[numberMemoKey]numberMemoEntry
}

type numberMemoKey struct{ raw, region string }

type numberMemoEntry struct {
	num     Number
	kind    callerKind
	display string
}

// maxNumberMemo bounds the numbers remembered; when full, the memo starts
// afresh. Some 200 bytes a number.
const maxNumberMemo = 4096

// classify is classify(c, region) and phoneDisplay of the result.
func (m *numberMemo) classify(c screenpop.Caller, region string) (Number, callerKind, string) {
	if c.Withheld {
		n, kind := classify(c, region)
		return n, kind, phoneDisplay(c, n, kind, region)
	}
	k := numberMemoKey{c.Number, region}
	m.mu.Lock()
	e, ok := m.entries[k]
	m.mu.Unlock()
	if ok {
		return e.num, e.kind, e.display
	}
	e.num, e.kind = classify(c, region)
	e.display = phoneDisplay(c, e.num, e.kind, region)
	m.mu.Lock()
	if len(m.entries) >= cmp.Or(m.max, maxNumberMemo) || m.entries == nil {
		m.entries = make(map[numberMemoKey]numberMemoEntry)
	}
	m.entries[k] = e
	m.mu.Unlock()
	return e.num, e.kind, e.display
}
