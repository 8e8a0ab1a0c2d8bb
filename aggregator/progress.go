package aggregator

import (
	"slices"
	"sync"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
)

// progress is what a card built progressively (BuildProgressive) has told
// its listener so far.
type progress struct {
	update  func(screenpop.CardUpdate)
	started bool   // the card went out: the caller is resolved
	told    []bool // per section of state.sections: settled and told, on the card or by itself
	history bool   // the earlier calls were told
}

// tell tells the listener what the card learnt since the last call: the
// card once the caller is resolved, then each section whose sources all
// settled and the earlier calls once read. What settles last is left to
// the complete card, which the build returns at once: told by itself, it
// would reach the agent twice.
func (r *cardRun) tell() {
	p := r.prog
	if p == nil || r.resolving || r.dirAsked {
		return
	}
	settled := make([]bool, len(r.st.sections))
	outstanding := 0
	for s, layout := range r.st.sections {
		settled[s] = !slices.ContainsFunc(layout.sources, func(i int) bool { return !r.settled[i] })
		if !settled[s] {
			outstanding++
		}
	}
	historyRead := r.hist == nil || r.hist.done
	if !historyRead {
		outstanding++
	}
	if outstanding == 0 {
		return // complete: the card itself comes next
	}
	if !p.started {
		p.started, p.history = true, historyRead
		card := *r.card
		card.Sections = make([]screenpop.CardSection, len(r.st.sections))
		for s, layout := range r.st.sections {
			p.told[s] = settled[s]
			if settled[s] {
				card.Sections[s] = r.section(layout)
			} else {
				card.Sections[s] = screenpop.CardSection{Name: layout.name, Title: layout.title, Status: screenpop.SectionLoading, Roles: slices.Clone(layout.roles)}
			}
		}
		card.HistoryLoading = !historyRead
		card.TookMS = time.Since(r.started).Milliseconds()
		p.update(screenpop.CardUpdate{Card: &card})
		return
	}
	for s, layout := range r.st.sections {
		if settled[s] && !p.told[s] {
			p.told[s] = true
			sec := r.section(layout)
			p.update(screenpop.CardUpdate{Section: &sec})
		}
	}
	if historyRead && !p.history {
		p.history = true
		p.update(screenpop.CardUpdate{History: &screenpop.EarlierCalls{Calls: r.card.History, CallsLast30Days: r.card.CallsLast30Days}})
	}
}

// steps keeps what a fan-out shared by several calls (a flight) told, so
// that each call waiting for it is told every step from the first,
// however late it joined.
type steps struct {
	mu      sync.Mutex
	list    []screenpop.CardUpdate
	changed chan struct{} // closed, and replaced, when a step is added
}

func (l *steps) add(u screenpop.CardUpdate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, u)
	if l.changed != nil {
		close(l.changed)
		l.changed = nil
	}
}

// since returns the steps after the first n, and a channel closed when
// there are more.
func (l *steps) since(n int) ([]screenpop.CardUpdate, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.changed == nil {
		l.changed = make(chan struct{})
	}
	return l.list[n:len(l.list):len(l.list)], l.changed
}

// personalStep makes a step of a shared fan-out a step of one call's card,
// as personalise does the card: its own call id and caller, its own
// copies, and earlier calls without the call itself. builtAt is the
// shared card's, told with its first step.
func personalStep(u screenpop.CardUpdate, call screenpop.CallEvent, historyLimit int, builtAt time.Time) screenpop.CardUpdate {
	switch {
	case u.Card != nil:
		c := personalise(*u.Card, call, historyLimit)
		return screenpop.CardUpdate{Card: &c}
	case u.Section != nil:
		s := *u.Section
		s.Roles = slices.Clone(s.Roles)
		return screenpop.CardUpdate{Section: &s}
	case u.History != nil:
		calls, count := ownHistory(u.History.Calls, u.History.CallsLast30Days, builtAt, call.CallID, historyLimit)
		return screenpop.CardUpdate{History: &screenpop.EarlierCalls{Calls: calls, CallsLast30Days: count}}
	}
	return u
}

// ownHistory is the earlier calls of a fan-out shared by several calls as
// one of them shows them: without the call itself (nor counted among the
// calls of the 30 days before builtAt), at most limit.
func ownHistory(shared []screenpop.PastCall, sharedCount *int, builtAt time.Time, callID string, limit int) (calls []screenpop.PastCall, count *int) {
	if sharedCount != nil {
		n := *sharedCount
		count = &n
	}
	since := builtAt.Add(-history.Window)
	for _, h := range shared {
		if h.CallID == callID && callID != "" {
			if count != nil && *count > 0 && !h.At.Before(since) {
				*count--
			}
			continue
		}
		if len(calls) == limit {
			break
		}
		if calls == nil {
			// At its size: every card the dispatcher keeps holds it.
			calls = make([]screenpop.PastCall, 0, max(0, min(limit, len(shared))))
		}
		calls = append(calls, h)
	}
	return calls, count
}
