package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
)

// Build builds the card of a call: caller resolution, every source in
// parallel, history. It returns by the configured deadline (or ctx's, when
// earlier) with whatever arrived, whatever the sources do.
func (a *Aggregator) Build(ctx context.Context, call screenpop.CallEvent) screenpop.Card {
	return a.build(ctx, call, "", nil)
}

// BuildFor builds the card for customerID, the candidate the agent picked
// among the customers sharing the caller's number. Sources needing the
// customer start at once; the directory is still asked, for the customer's
// details and the other candidates.
func (a *Aggregator) BuildFor(ctx context.Context, call screenpop.CallEvent, customerID string) screenpop.Card {
	return a.build(ctx, call, strings.TrimSpace(customerID), nil)
}

// BuildProgressive builds the card as Build does (BuildFor, when
// customerID is set) and tells update what the card holds as soon as it
// is known, so that it can be shown before the slowest source answered:
// first the card once the caller is resolved (the directory answered, or
// the caller is known to be withheld or unknown), every section whose
// sources are still asked in status loading; then each of those sections
// once its sources settled, and the earlier calls once read (see
// screenpop.CardUpdate). What settles last is not told by itself: the
// complete card, returned at once, holds it. Nothing is told when the card
// is complete by the time the caller is resolved, nor after the card's
// deadline; while the card waits only for sources with a shared cache and
// the earlier calls, its first step is held back up to firstStepGrace, so
// that a card answered from the cache is not told in steps.
//
// update is called from the goroutine that called BuildProgressive, one
// step at a time and never after it returned; it must not hold it up for
// long. The cards and sections it gets are its own.
func (a *Aggregator) BuildProgressive(ctx context.Context, call screenpop.CallEvent, customerID string, update func(screenpop.CardUpdate)) screenpop.Card {
	return a.build(ctx, call, strings.TrimSpace(customerID), update)
}

// directoryIndex marks the directory's result among the sources' results.
const directoryIndex = -1

// result is one source's outcome, tagged with its index in state.sources.
type result struct {
	index int
	outcome
}

// cardRun is the state of one Build: which sources were started, what
// came back, how the caller resolved.
type cardRun struct {
	a  *Aggregator
	st *state
	// ctx is the card's, with its deadline, and results where the
	// answers asked in goroutines come back: both made by async for the
	// first, nil while every answer came from memory at once.
	ctx    context.Context
	cancel context.CancelFunc
	parent context.Context // the Build's

	started  time.Time
	deadline time.Time
	key      Key
	caller   callerKind
	picked   bool // BuildFor: the customer is known from the start

	card       *screenpop.Card
	resolving  bool   // the directory's answer is awaited
	skipReason string // why customer sources are skipped, once resolved without one

	results  chan result
	inflight int
	limits   []time.Duration // each started source's time budget
	outcomes []outcome
	settled  []bool
	deferred []int // sources waiting for the directory
	dirLimit time.Duration
	dir      *outcome
	// dirAsked: the directory's answer is awaited, to resolve the caller
	// or, for a picked customer, for their details.
	dirAsked bool

	// pre holds the sources' cache entries read in a batch (prefetch),
	// dirPre the directory's; nil when none was.
	pre    []prefetched
	dirPre *prefetched

	hist *historyRun // nil: no history on this card
	prog *progress   // nil: nobody is told before the card is complete
	// hold is the grace the first step waits out while only quick
	// answers are awaited (tellSoon); nil: not held.
	hold     *time.Timer
	holdOver bool
}

// firstStepGrace is how long a card built in steps holds its first step
// back while every part it still waits for may answer at once: a source
// with a shared cache, the earlier calls. A card complete by then (every
// answer cached) goes out once, whole, instead of as a pop with its
// sections loading followed by each section and the complete card again;
// a miss of a shared cache shows its first step this much later.
const firstStepGrace = 2 * time.Millisecond

// historyRun is the card's one history lookup. It starts once the
// customer is known, or known to be unknown: at once for a picked customer
// or a caller the directory is not asked about, else when the directory
// answers (by number, and by customer when it named one), as the sources
// needing the customer do. One lookup, not a first by number superseded by
// a second: a lookup abandoned halfway costs a database its connection.
type historyRun struct {
	callID  string // left out of the answer: the call being built
	limit   int
	answer  chan historyAnswer
	started bool
	done    bool
}

type historyAnswer struct {
	calls []screenpop.PastCall
	count *int
}

func (a *Aggregator) build(ctx context.Context, call screenpop.CallEvent, customerID string, update func(screenpop.CardUpdate)) screenpop.Card {
	st := a.state.Load()
	started := time.Now()
	deadline := started.Add(st.cfg.Deadline)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	// The display is set here, not in fanOut: calls sharing a fan-out may
	// have dialled different lines, or from different extensions of one
	// number. It is worked out once the fan-out runs (or when the card
	// needs it, if sooner): asking the sources does not wait for it.
	num, kind, display, pending := a.numbers.classifyLater(call.Caller, st.region)
	own := func(card *screenpop.Card) {
		card.Line = st.line(call.DID, &a.numbers)
		card.PhoneDisplay = display()
		card.Links = st.cfg.cardLinks() // filled in for each agent it goes to (links.go)
	}
	if update != nil {
		tell := update
		update = func(u screenpop.CardUpdate) {
			if u.Card != nil {
				own(u.Card)
			}
			tell(u)
		}
	}
	var card screenpop.Card
	if kind != callerPhone {
		// Nothing is looked up by number: there is nothing worth sharing.
		card = a.fanOut(ctx, st, call, customerID, num, kind, started, deadline, false, update)
	} else {
		// The display is worked out while the sources are asked, when
		// there is work in it; a caller calling again has it remembered,
		// and the card then does not step aside for its fan-out (await).
		var waiting func()
		if pending {
			waiting = func() { display() }
		}
		card = a.coalesce(ctx, st, call, customerID, num, started, deadline, update, waiting)
	}
	own(&card)
	return card
}

// line is the card's Line for a call that dialled did; nil without a DID.
// Each card gets its own: the dispatcher keeps and changes cards. The
// number is read as the caller's is: "030 90182100", not "+493090182100".
func (s *state) line(did string, numbers *numberMemo) *screenpop.Line {
	did = strings.TrimSpace(did)
	if did == "" {
		return nil
	}
	l := &screenpop.Line{Number: did, Label: s.lines[did]}
	if _, kind, display := numbers.classify(screenpop.Caller{Number: did}, s.region); kind == callerPhone && display != did {
		l.Display = display
	}
	return l
}

// fanOut builds one card: directory, sources, history. shared marks a card
// built for every call of a coalesced flight: its history then keeps the
// calls of every one of them, and each caller drops its own (personalise).
//
// update, when not nil, is told the card while it is built
// (BuildProgressive).
func (a *Aggregator) fanOut(ctx context.Context, st *state, call screenpop.CallEvent, customerID string, num Number, kind callerKind, started, deadline time.Time, shared bool, update func(screenpop.CardUpdate)) screenpop.Card {
	card := screenpop.Card{CallID: call.CallID, Caller: call.Caller, BuiltAt: a.now()}
	card.Phone = num.E164
	r := &cardRun{
		a: a, st: st, parent: ctx, started: started, deadline: deadline, caller: kind, card: &card,
		key:      Key{Phone: num.E164, National: num.National, Region: num.Region, CustomerID: customerID},
		picked:   customerID != "",
		limits:   make([]time.Duration, len(st.sources)),
		outcomes: make([]outcome, len(st.sources)),
		settled:  make([]bool, len(st.sources)),
	}
	defer r.stop()
	if update != nil {
		r.prog = &progress{update: update, told: make([]bool, len(st.sections))}
	}

	switch {
	case r.picked:
		card.Resolution = screenpop.ResolvedCustomer
		card.Customer = &screenpop.Customer{ID: customerID}
	case kind == callerWithheld:
		r.resolved(screenpop.ResolvedWithheld, "the caller withheld their number")
	case kind == callerNotPhone:
		r.resolved(screenpop.ResolvedUnknown, "the caller's number is not a phone number")
	case st.directory == nil:
		r.resolved(screenpop.ResolvedUnknown, "no directory is configured to identify callers")
	default:
		r.resolving = true
	}
	// With a shared cache that reads in batches, the cache entries of the
	// directory and the sources, in one round trip.
	r.prefetch(kind == callerPhone)
	// The directory first: with phone-keyed sources it runs in parallel,
	// and sources needing the customer wait for its answer.
	if d := st.directory; d != nil && kind == callerPhone {
		if _, ok := r.key.Param(d.spec.Needs); ok {
			r.dirLimit = r.limit(d)
			r.dirAsked = true
			if p := r.dirPre; p != nil {
				r.dirPre = nil
				r.dirLimit = p.limit
				if o, ok := a.answerPrefetched(d, r.key, p); ok {
					r.directoryAnswered(o)
				} else {
					r.spawn(directoryIndex, d, p.remaining(), p.ck)
				}
			} else if o, missed, ok := a.askInProcess(ctx, d, r.key); ok {
				r.directoryAnswered(o) // before the sources: they start knowing the customer
			} else {
				r.spawn(directoryIndex, d, r.dirLimit, missed)
			}
		} else if r.resolving {
			r.resolving = false
			r.resolved(screenpop.ResolvedUnknown, "the caller's number cannot be looked up in the directory")
		}
	}
	for i := range st.sources {
		r.startOrDefer(i)
	}

	if a.history != nil && kind == callerPhone {
		r.hist = &historyRun{callID: call.CallID, limit: st.cfg.HistoryLimit, answer: make(chan historyAnswer, 1)}
		if shared {
			// One more, for the call each sharer drops from its copy.
			r.hist.callID, r.hist.limit = "", r.hist.limit+1
		}
		if !r.resolving {
			r.lookUpHistory()
		} // else when the directory answers
	}

	r.tellSoon()
	r.collect()
	card.Sections = r.sections()
	card.TookMS = time.Since(started).Milliseconds()

	a.metrics.cardDuration.Observe(time.Since(started).Seconds())
	a.metrics.resolution(card.Resolution)
	r.checkRequired()
	return card
}

// collect waits for every started source and the history, and stops
// waiting at the deadline: a source that ignores its context cannot hold
// the card back.
func (r *cardRun) collect() {
	var answer chan historyAnswer
	if r.hist != nil {
		answer = r.hist.answer
	}
	defer func() {
		if r.hold != nil {
			r.hold.Stop()
		}
	}()
	for r.inflight > 0 || (r.hist != nil && r.hist.started && !r.hist.done) {
		var held <-chan time.Time
		if r.hold != nil && !r.holdOver {
			held = r.hold.C
		}
		select {
		case <-held:
			r.holdOver = true
		case res := <-r.results:
			r.inflight--
			if res.index == directoryIndex {
				r.directoryAnswered(res.outcome)
			} else {
				r.outcomes[res.index] = res.outcome
				r.settled[res.index] = true
			}
		case h := <-answer:
			r.hist.done = true
			r.card.History, r.card.CallsLast30Days = h.calls, h.count
		case <-r.ctx.Done():
			r.giveUp()
			return
		}
		r.tellSoon()
	}
}

// tellSoon tells the listener what the card learnt (tell), but holds the
// first step back for firstStepGrace while every part still awaited may
// answer at once (quick): on a cache hit the card is then complete before
// anything is told, and goes out whole.
func (r *cardRun) tellSoon() {
	waiting := r.inflight > 0 || (r.hist != nil && r.hist.started && !r.hist.done)
	if waiting && r.prog != nil && !r.prog.started && !r.holdOver && !r.resolving && !r.dirAsked && r.quick() {
		if r.hold == nil {
			r.hold = time.NewTimer(firstStepGrace)
		}
		return
	}
	r.tell()
}

// quick says whether every source still asked has a shared cache (Redis:
// a round trip away), which answers at once when it holds the answer; the
// earlier calls are quick too. A source asked despite an in-process cache
// missed it (askInProcess), or after its batch read (prefetch): not quick.
func (r *cardRun) quick() bool {
	_, inProcess := r.a.cache.(*MemoryCache)
	for i, rt := range r.st.sources {
		if r.limits[i] != 0 && !r.settled[i] && (r.a.cache == nil || inProcess || rt.spec.CacheTTL <= 0 || (r.pre != nil && r.pre[i].read)) {
			return false
		}
	}
	return true
}

// giveUp settles what has not answered by the deadline.
func (r *cardRun) giveUp() {
	r.dirAsked = false
	if r.resolving {
		r.resolving = false
		timedOut := r.timeoutOutcome(r.st.directory, r.dirLimit)
		r.dir = &timedOut
		r.resolved(screenpop.ResolvedFailed, "the caller could not be identified in time")
		deferred := r.deferred
		r.deferred = nil
		for _, i := range deferred {
			r.startOrDefer(i) // skipped: there is no customer
		}
	}
	for i, rt := range r.st.sources {
		if !r.settled[i] && r.limits[i] != 0 {
			r.outcomes[i] = r.timeoutOutcome(rt, r.limits[i])
			r.settled[i] = true
		}
	}
}

// limit is a source's time budget: its own timeout, capped by what is left
// of the card's deadline.
func (r *cardRun) limit(rt *sourceRuntime) time.Duration {
	return max(min(rt.spec.Timeout, time.Until(r.deadline)), time.Nanosecond)
}

// startOrDefer starts source i, or skips it when the call lacks what it
// needs, or parks it until the directory has answered.
func (r *cardRun) startOrDefer(i int) {
	rt := r.st.sources[i]
	if _, ok := r.key.Param(rt.spec.Needs); ok {
		if r.pre != nil && r.pre[i].read {
			// Its entry came in the card's batch (prefetch).
			p := r.pre[i]
			r.pre[i].data = nil
			r.limits[i] = p.limit
			if o, ok := r.a.answerPrefetched(rt, r.key, &p); ok {
				r.outcomes[i], r.settled[i] = o, true
				return
			}
			r.spawn(i, rt, p.remaining(), p.ck)
			return
		}
		r.limits[i] = r.limit(rt)
		o, missed, ok := r.a.askInProcess(r.parent, rt, r.key)
		if ok {
			r.outcomes[i], r.settled[i] = o, true
			return
		}
		r.spawn(i, rt, r.limits[i], missed)
		return
	}
	if rt.spec.Needs == "customer_id" && r.resolving {
		r.deferred = append(r.deferred, i)
		return
	}
	reason := r.skipReason
	if rt.spec.Needs != "customer_id" {
		switch r.caller {
		case callerWithheld:
			reason = "the caller withheld their number"
		case callerNotPhone:
			reason = "the caller's number is not a phone number"
		default:
			reason = fmt.Sprintf("the caller's number has no %s", strings.ReplaceAll(rt.spec.Needs, "_", " "))
		}
	}
	r.outcomes[i] = outcome{status: screenpop.SectionSkipped, reason: reason}
	r.settled[i] = true
}

// spawn asks source i (directoryIndex: the directory) in a goroutine of
// its own, within limit; missed is as for askHere. Its outcome comes back on
// r.results as soon as there is one: the source's answer, or its timeout
// while it still runs.
func (r *cardRun) spawn(i int, rt *sourceRuntime, limit time.Duration, missed string) {
	r.inflight++
	// The goroutine gets copies: the key gains the customer id later.
	ctx, key, results := r.async(), r.key, r.results
	go r.a.askHere(ctx, rt, key, limit, missed, func(o outcome) { results <- result{i, o} })
}

// resolved records how the caller resolved when no customer came of it.
func (r *cardRun) resolved(res screenpop.Resolution, skipReason string) {
	r.card.Resolution = res
	r.skipReason = skipReason
}

// directoryAnswered resolves the caller from the directory's answer and
// starts the sources that waited for it.
func (r *cardRun) directoryAnswered(o outcome) {
	r.dir = &o
	r.dirAsked = false
	var customers []screenpop.Customer
	if o.status == screenpop.SectionOK {
		customers = customersFrom(o.records)
	}
	if r.picked {
		// The agent chose; the directory adds the details and the other
		// candidates, so that a wrong pick can be corrected.
		if i := slices.IndexFunc(customers, func(c screenpop.Customer) bool { return c.ID == r.key.CustomerID }); i >= 0 {
			c := customers[i]
			r.card.Customer = &c
		}
		if len(customers) > 1 {
			r.card.Candidates = customers
		}
		return
	}
	if !r.resolving {
		return
	}
	r.resolving = false
	switch {
	case o.status == screenpop.SectionOK || o.status == screenpop.SectionEmpty:
		switch len(customers) {
		case 0:
			r.resolved(screenpop.ResolvedUnknown, "the number belongs to no known customer")
		case 1:
			r.card.Resolution = screenpop.ResolvedCustomer
			r.card.Customer = &customers[0]
			r.key.CustomerID = customers[0].ID
		default:
			r.resolved(screenpop.ResolvedAmbiguous, "several customers share this number: pick the caller")
			r.card.Candidates = customers
		}
	default:
		r.resolved(screenpop.ResolvedFailed, "the caller could not be identified ("+o.reason+")")
	}
	r.prefetch(false) // the sources that waited for the customer
	deferred := r.deferred
	r.deferred = nil
	for _, i := range deferred {
		r.startOrDefer(i)
	}
	// After the sources, which wait for their systems: an in-process
	// history is read at once, here.
	if r.hist != nil {
		r.lookUpHistory() // by number, and the customer's calls from their other numbers
	}
}

// lookUpHistory starts the lookup of the caller's history with what the
// card knows: the number, and the customer when known.
func (r *cardRun) lookUpHistory() {
	h := r.hist
	if h.started {
		return
	}
	h.started = true
	key := r.key
	if r.a.historyInProcess {
		// No I/O, and a lookup costs what it answers: read at once.
		h.done = true
		r.card.History, r.card.CallsLast30Days = r.a.earlierCalls(r.parent, key.Phone, key.CustomerID, h.callID, h.limit)
		return
	}
	ctx := r.async()
	go func() {
		calls, count := r.a.earlierCalls(ctx, key.Phone, key.CustomerID, h.callID, h.limit)
		h.answer <- historyAnswer{calls: calls, count: count}
	}()
}

// async returns the card's context, with the card's deadline, for what is
// asked in a goroutine of its own; made, with the channel their answers
// come back on, the first time: a card whose every answer was in memory
// needs neither, nor the timer. Whatever collect waits for was started
// with it.
func (r *cardRun) async() context.Context {
	if r.ctx == nil {
		r.ctx, r.cancel = context.WithDeadlineCause(r.parent, r.deadline, &cardDeadlineError{r.card.CallID, r.st.cfg.Deadline})
		r.results = make(chan result, len(r.st.sources)+1)
	}
	return r.ctx
}

// stop releases the card's context once the card is built.
func (r *cardRun) stop() {
	if r.cancel != nil {
		r.cancel()
	}
}

// cardDeadlineError is the cause of a card's deadline, put in words only
// when asked.
type cardDeadlineError struct {
	callID   string
	deadline time.Duration
}

func (e *cardDeadlineError) Error() string {
	return fmt.Sprintf("card of call %s: deadline of %s reached", e.callID, e.deadline)
}

// earlierCalls fetches the caller's earlier calls (by number, and by
// customer when the History can) without the current one (a card rebuilt
// after the call was recorded must not list it as earlier), and how many
// rang in the last 30 days; count is nil when the History cannot say.
func (a *Aggregator) earlierCalls(ctx context.Context, phone, customerID, callID string, limit int) (calls []screenpop.PastCall, count *int) {
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("call history panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			calls, count = nil, nil
		}
	}()
	var err error
	if l, ok := a.history.(HistoryLookup); ok {
		var res history.Result
		res, err = l.Lookup(ctx, history.Query{Phone: phone, CustomerID: customerID, Limit: limit + 1})
		calls, count = res.Calls, &res.Last30Days
	} else {
		calls, err = a.history.Recent(ctx, phone, limit+1)
	}
	if err != nil {
		if ctx.Err() == nil && a.historyErrLog.allow() {
			a.log.Warn("cannot read the call history; cards go without it (logged at most once a minute)",
				"phone", screenpop.MaskPhone(phone), "customer", customerID, "err", err)
		}
		return nil, nil
	}
	since := a.now().Add(-history.Window)
	calls = slices.DeleteFunc(calls, func(c screenpop.PastCall) bool {
		own := c.CallID == callID && callID != ""
		if own && count != nil && !c.At.Before(since) && *count > 0 {
			*count--
		}
		return own
	})
	if len(calls) > limit {
		calls = calls[:limit]
	}
	return calls, count
}

// checkRequired counts and logs a card sent without a required source.
func (r *cardRun) checkRequired() {
	var missing []string
	if d := r.st.directory; d != nil && d.spec.Required && r.dir != nil && failing(r.dir.status) {
		missing = append(missing, d.spec.Name)
		r.card.Incomplete = append(r.card.Incomplete, "directory")
	}
	for i, rt := range r.st.sources {
		if rt.spec.Required && r.settled[i] && failing(r.outcomes[i].status) {
			missing = append(missing, rt.spec.Name)
			if !slices.Contains(r.card.Incomplete, rt.spec.Section) {
				r.card.Incomplete = append(r.card.Incomplete, rt.spec.Section)
			}
		}
	}
	if len(missing) == 0 {
		return
	}
	r.a.metrics.incompleteCards.Inc()
	r.a.log.Warn("card incomplete: required sources missing", "call", r.card.CallID, "sources", strings.Join(missing, ", "))
}

func failing(s screenpop.SectionStatus) bool {
	switch s {
	case screenpop.SectionTimeout, screenpop.SectionError, screenpop.SectionUnavailable:
		return true
	}
	return false
}

// customersFrom maps directory records to customers by fixed column names,
// one customer per distinct id, in the directory's order. Records without
// an id cannot key the other sources and are left out.
func customersFrom(records []Record) []screenpop.Customer {
	var out []screenpop.Customer
	seen := map[string]bool{}
	for _, rec := range records {
		id := text(rec["id"])
		if id == "" {
			id = text(rec["customer_id"])
		}
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, screenpop.Customer{
			ID:      id,
			Name:    text(rec["name"]),
			Kind:    text(rec["kind"]),
			Contact: text(rec["contact"]),
			Role:    text(rec["role"]),
			Email:   text(rec["email"]),
			City:    text(rec["city"]),
			Country: text(rec["country"]),
			Tags:    tags(rec["tags"]),
		})
	}
	return out
}

// logLevel is where a source's failure is logged: a required source's
// failure is a warning, an optional one's is information.
func (rt *sourceRuntime) logLevel() slog.Level {
	if rt.spec.Required {
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

var errAbandoned = errors.New("the card was abandoned before the source answered")
