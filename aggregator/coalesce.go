package aggregator

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// flightKey identifies the fan-outs that can be shared: same configuration
// (a Reload starts new flights), same number, same picked customer.
type flightKey struct {
	st         *state
	phone      string // E.164
	customerID string // BuildFor's pick; empty for Build
}

// flight is one fan-out shared by every card of the same number asked for
// while it runs: a burst of calls from one caller (a redial storm, a caller
// ringing several queues at once) asks each source once.
type flight struct {
	done     chan struct{}
	card     screenpop.Card // set before done is closed
	deadline time.Time
	// waiters counts the Builds waiting; guarded by Aggregator.flightsMu.
	// The last one to give up (cancelled context) cancels the fan-out.
	waiters int
	cancel  context.CancelCauseFunc
	// steps are what the fan-out told while it built the card, for the
	// calls waiting that want to know (BuildProgressive).
	steps steps
}

// coalesceSlack is how much later than its own deadline a card may come
// when it shares a fan-out: calls that arrive together compute their
// deadlines microseconds to milliseconds apart (goroutine scheduling), and
// the one that starts the fan-out is not always the one that looked at the
// clock first. 5% of the card deadline, at most 100ms.
func coalesceSlack(st *state) time.Duration {
	return min(st.cfg.Deadline/20, 100*time.Millisecond)
}

// coalesce builds the card of a call whose number is known, sharing the
// fan-out already running for the same number and customer when there is
// one that ends no later than this call's deadline (give or take
// coalesceSlack).
//
// waiting, when not nil, is called once the card's fan-out runs (this
// call's or the one it shares), before the card is waited for: work of
// this call's own that asking the sources need not wait for.
func (a *Aggregator) coalesce(ctx context.Context, st *state, call screenpop.CallEvent, customerID string, num Number, started, deadline time.Time, update func(screenpop.CardUpdate), waiting func()) screenpop.Card {
	k := flightKey{st: st, phone: num.E164, customerID: customerID}
	a.flightsMu.Lock()
	f := a.flights[k]
	switch {
	case f != nil && !f.deadline.After(deadline.Add(coalesceSlack(st))):
		f.waiters++
		a.flightsMu.Unlock()
		a.metrics.coalesced.Inc()
		return a.await(ctx, k, f, st, call, num, update, waiting)
	case f != nil:
		// The running fan-out would answer after this call's deadline (its
		// context is shorter): this card cannot wait for it.
		a.flightsMu.Unlock()
		return a.fanOut(ctx, st, call, customerID, num, callerPhone, started, deadline, false, update)
	}
	// The fan-out outlives the Build that started it: others may be
	// waiting for it when this caller gives up. It keeps ctx's values and
	// gets its own cancellation, pulled when the last waiter leaves.
	fctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	f = &flight{done: make(chan struct{}), deadline: deadline, waiters: 1, cancel: cancel}
	a.flights[k] = f
	a.flightsMu.Unlock()
	go func() {
		defer cancel(nil)
		defer close(f.done)
		defer func() {
			a.flightsMu.Lock()
			if a.flights[k] == f {
				delete(a.flights, k)
			}
			a.flightsMu.Unlock()
		}()
		// Its steps are kept when this call wants them, for every call
		// joining it (the dispatcher asks for steps on every first card and
		// pick); a call joining a plain Build's fan-out gets the card only.
		var keep func(screenpop.CardUpdate)
		if update != nil {
			keep = f.steps.add
		}
		f.card = a.fanOut(fctx, st, call, customerID, num, callerPhone, started, deadline, true, keep)
	}()
	return a.await(ctx, k, f, st, call, num, update, waiting)
}

// await waits for a flight's card and personalises it for call. update,
// when not nil, is told the flight's steps, each personalised, as they
// come.
func (a *Aggregator) await(ctx context.Context, k flightKey, f *flight, st *state, call screenpop.CallEvent, num Number, update func(screenpop.CardUpdate), waiting func()) screenpop.Card {
	if waiting != nil {
		// The fan-out first, when it has just been started on this
		// processor: it asks its sources, then waits for them.
		runtime.Gosched()
		waiting()
	}
	var (
		told    int
		builtAt time.Time // the shared card's, from its first step
	)
wait:
	for {
		var changed <-chan struct{}
		if update != nil {
			var news []screenpop.CardUpdate
			news, changed = f.steps.since(told)
			told += len(news)
			for _, u := range news {
				if u.Card != nil {
					builtAt = u.Card.BuiltAt
				}
				update(personalStep(u, call, st.cfg.HistoryLimit, builtAt))
			}
		}
		select {
		case <-f.done:
			return personalise(f.card, call, st.cfg.HistoryLimit)
		case <-changed:
		case <-ctx.Done():
			break wait
		}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// The flight ends by this deadline, give or take coalesceSlack
		// (coalesce checked): it is returning what arrived, as this Build
		// would have.
		<-f.done
		return personalise(f.card, call, st.cfg.HistoryLimit)
	}
	a.flightsMu.Lock()
	f.waiters--
	last := f.waiters == 0
	if last && a.flights[k] == f {
		// Nobody else may join a fan-out that is being cancelled.
		delete(a.flights, k)
	}
	a.flightsMu.Unlock()
	if last {
		// Nobody waits any more (every call ended): stop asking. The
		// sources are marked abandoned, not failed, as without coalescing.
		f.cancel(context.Cause(ctx))
		<-f.done
		return personalise(f.card, call, st.cfg.HistoryLimit)
	}
	return a.abandonedCard(st, call, num)
}

// personalise makes the shared card of a flight the card of one call: its
// own call id and caller as the PBX presented them, its own copy of every
// list (the dispatcher keeps and changes cards), and a history without the
// call itself.
func personalise(shared screenpop.Card, call screenpop.CallEvent, historyLimit int) screenpop.Card {
	c := shared
	c.CallID, c.Caller = call.CallID, call.Caller
	if shared.Customer != nil {
		cust := *shared.Customer
		c.Customer = &cust
	}
	c.Candidates = slices.Clone(shared.Candidates)
	c.Sections = slices.Clone(shared.Sections)
	for i := range c.Sections {
		c.Sections[i].Roles = slices.Clone(c.Sections[i].Roles)
	}
	c.Incomplete = slices.Clone(shared.Incomplete)
	c.History, c.CallsLast30Days = ownHistory(shared.History, shared.CallsLast30Days, shared.BuiltAt, call.CallID, historyLimit)
	return c
}

// abandonedCard is what a Build cancelled by its caller returns while the
// fan-out it shared goes on for the others: every section unfinished.
func (a *Aggregator) abandonedCard(st *state, call screenpop.CallEvent, num Number) screenpop.Card {
	card := screenpop.Card{CallID: call.CallID, Caller: call.Caller, Phone: num.E164, Resolution: screenpop.ResolvedFailed, BuiltAt: a.now()}
	for _, s := range st.sections {
		card.Sections = append(card.Sections, screenpop.CardSection{
			Name: s.name, Title: s.title, Status: screenpop.SectionTimeout,
			Error: "the card was abandoned before it was built",
			// Restricted even with nothing in it: the section's name and
			// status are for the roles that may see it.
			Roles: slices.Clone(s.roles),
		})
	}
	return card
}
