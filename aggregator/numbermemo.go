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
	shown   bool // display is set: it is worked out when first asked for
}

// maxNumberMemo bounds the numbers remembered; when full, the memo starts
// afresh. Some 200 bytes a number.
const maxNumberMemo = 4096

// classify is classify(c, region) and phoneDisplay of the result.
func (m *numberMemo) classify(c screenpop.Caller, region string) (Number, callerKind, string) {
	n, kind, display, _ := m.classifyLater(c, region)
	return n, kind, display()
}

// classifyLater is classify(c, region), and a func giving phoneDisplay of
// the result, which is worked out (a parse and a format, as costly as the
// classification itself on a number not remembered) when first called:
// a card asks its sources with the number, and shows the display only
// once their answers come. The func is for one goroutine. pending says
// whether it has work left: false when the display is remembered.
func (m *numberMemo) classifyLater(c screenpop.Caller, region string) (n Number, kind callerKind, display func() string, pending bool) {
	if c.Withheld {
		n, kind := classify(c, region)
		return n, kind, func() string { return phoneDisplay(c, n, kind, region) }, true
	}
	k := numberMemoKey{c.Number, region}
	m.mu.Lock()
	e, ok := m.entries[k]
	m.mu.Unlock()
	if !ok {
		e.num, e.kind = classify(c, region)
		m.put(k, e)
	}
	if e.shown {
		return e.num, e.kind, func() string { return e.display }, false
	}
	return e.num, e.kind, func() string {
		if !e.shown {
			e.display, e.shown = phoneDisplay(c, e.num, e.kind, region), true
			m.put(k, e)
		}
		return e.display
	}, true
}

func (m *numberMemo) put(k numberMemoKey, e numberMemoEntry) {
	m.mu.Lock()
	if len(m.entries) >= cmp.Or(m.max, maxNumberMemo) || m.entries == nil {
		m.entries = make(map[numberMemoKey]numberMemoEntry)
	}
	m.entries[k] = e
	m.mu.Unlock()
}
