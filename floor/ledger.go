package floor

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
)

// Ledger follows every call a daemon's dispatcher applies, from every
// telephony source, and what the agents' pages acknowledge of their pops:
// it counts the floor's metrics (calls by source, line and outcome, waits,
// answers and the pops shown before them, blind rings) and keeps what the
// floor view shows of the calls live here. The dispatcher feeds it with
// its state locked (ObserveCall), the hub with acknowledgements (Shown):
// every method answers from memory, never waits.
//
// Times: a call's ring, answer and end are the events' own times (the
// PBX's clock) unless that is later than the daemon's clock when the event
// arrived, then the daemon's; an acknowledgement is timed by the daemon
// when it arrives, never by the browser.
type Ledger struct {
	cfg     LedgerConfig
	metrics *metrics

	mu      sync.Mutex
	calls   map[string]*call
	over    map[string]time.Time   // calls that ended lately: a repeat of their events is no new call
	order   []string               // over, oldest first
	handled map[string]handledCall // agent -> their last call that ended: maybe in wrap-up
	records []Record               // for the day's counts, oldest first
	sources map[string]bool        // source label values made
	changed chan struct{}          // a call changed (1-buffered)

	// live are the live calls in the floor view's order, by first ring
	// (then ID): kept as calls come and go, so that no refresh sorts them.
	// A call that ended stays in it, gone, until dead are many.
	live []*call
	dead int // the calls of live that are gone
	// version counts the changes of the live calls; snap is their views
	// at snapVersion, shared read-only with whoever asked for them.
	version     uint64
	snap        []CallView
	snapVersion uint64
	snapOK      bool
}

// LedgerConfig configures NewLedger.
type LedgerConfig struct {
	// ServiceLevel is the threshold of an answer in time; required.
	ServiceLevel time.Duration
	// Location's midnight starts the day a call's counts go to; default
	// time.Local.
	Location *time.Location
	// Sources and Lines are the telephony sources' names and the
	// configured lines' names: their series are made up front. Others
	// come as they are met (a reload's); a line that is not configured is
	// LineOther.
	Sources []string
	Lines   []string
	// LineName is the configured name of the line a call dialled (its
	// DID), "" when none is configured. It must answer from memory.
	LineName func(did string) string
	// Connected says whether an agent has a page connected on any daemon;
	// nil: nobody (every ring is blind). It must answer from memory.
	Connected func(agentID string) bool
	// StaleAfter forgets a call with no event for this long (its end was
	// lost), counted as expired; default 4h, as the dispatcher's.
	StaleAfter time.Duration
	Registerer prometheus.Registerer
}

// Flags are what the day's counts know of one call. Daemons that see the
// same call (two watching one PBX) add what each knows, bit by bit: a
// call is counted once, with everything any of them saw.
type Flags uint8

const (
	FlagAnswered  Flags = 1 << iota // answered
	FlagInTime                      // answered within the service level of its first ring
	FlagPopped                      // its pop was painted on the answering agent's screen before the answer
	FlagAbandoned                   // the caller hung up before any answer
	FlagEnded                       // over, whatever its outcome
)

// flagNames name each flag's count, in bit order.
var flagNames = []string{"answered", "in_time", "popped", "abandoned", "ended"}

// Record is what one call adds to the counts of a day.
type Record struct {
	Day    string // 2006-01-02 in the configured zone, of the call's first ring
	CallID string
	Flags  Flags
}

// Counts are a day's counts.
type Counts struct {
	Answered  int `json:"answered"`
	InTime    int `json:"in_time"` // answered within the service level
	Popped    int `json:"popped"`  // answered with the pop on the answering agent's screen before
	Abandoned int `json:"abandoned"`
	Ended     int `json:"ended"`
}

// add counts the flags f gains over old.
func (c *Counts) add(old, f Flags) {
	gained := f &^ old
	for i, p := range []*int{&c.Answered, &c.InTime, &c.Popped, &c.Abandoned, &c.Ended} {
		if gained&(1<<i) != 0 {
			*p++
		}
	}
}

// call is what the ledger knows of one live call.
type call struct {
	id, source, line string
	caller           string    // masked; "" when withheld or unknown
	ringAt           time.Time // first ring
	day              string
	ringing          map[string]time.Time // agents whose phones ring now, since when
	since            map[string]time.Time // agents who needed the pop, since when: what shown measures from
	shown            map[string]time.Time // agents whose page acknowledged the pop painted
	complete         map[string]bool      // ... painted with every section filled
	handled          map[string]bool      // agents who had the call (answered, or transferred to)
	agent            string               // who has it now; "" while it rings
	answered         bool                 // the first answer is counted
	answeredAt       time.Time
	flags            Flags // recorded so far
	lastSeen         time.Time
	view             CallView // as the floor view shows it, when viewOK
	viewOK           bool
	gone             bool // ended (or expired): out of live at the next compaction
}

type handledCall struct {
	callID string
	ended  time.Time
}

// NewLedger checks cfg and returns a Ledger following no call.
func NewLedger(cfg LedgerConfig) (*Ledger, error) {
	if cfg.ServiceLevel <= 0 {
		return nil, errors.New("floor: ledger: the service level must be positive")
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 4 * time.Hour
	}
	if cfg.LineName == nil {
		cfg.LineName = func(string) string { return "" }
	}
	if cfg.Connected == nil {
		cfg.Connected = func(string) bool { return false }
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	l := &Ledger{
		cfg:     cfg,
		metrics: m,
		calls:   map[string]*call{},
		over:    map[string]time.Time{},
		handled: map[string]handledCall{},
		sources: map[string]bool{},
		changed: make(chan struct{}, 1),
	}
	for _, s := range cfg.Sources {
		l.addSource(s)
	}
	return l, nil
}

// addSource makes a source's series once; it runs with l.mu held, or
// before l is shared.
func (l *Ledger) addSource(source string) {
	if l.sources[source] {
		return
	}
	l.sources[source] = true
	l.metrics.addSource(source, l.cfg.Lines)
}

// eventTime is when an event happened: its own time, unless that is
// missing or ahead of the daemon's clock (a PBX clock running fast).
func eventTime(ev screenpop.CallEvent, at time.Time) time.Time {
	if ev.At.IsZero() || ev.At.After(at) {
		return at
	}
	return ev.At
}

// ObserveCall implements pop.CallObserver: the dispatcher hands over
// every event it applies, in order, at the daemon's time at.
func (l *Ledger) ObserveCall(ev screenpop.CallEvent, at time.Time) {
	if ev.CallID == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.over[ev.CallID]; ok {
		// A source repairing its state after a reconnect repeats the
		// events of a call that is over: it must not come back to life
		// (the dispatcher ignores them too).
		return
	}
	switch ev.Kind {
	case screenpop.EventRinging:
		l.ringing(ev, at)
	case screenpop.EventAnswered:
		l.takeOver(ev, at, true)
	case screenpop.EventTransferred:
		if ev.Agent != "" {
			l.takeOver(ev, at, false)
		}
	case screenpop.EventEnded:
		l.ended(ev, at)
	default:
		return
	}
	l.version++
	l.notify()
}

func (l *Ledger) notify() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// Changed is signalled (at most one pending) when a call changed.
func (l *Ledger) Changed() <-chan struct{} { return l.changed }

// follow returns ev's call, following it from now on.
func (l *Ledger) follow(ev screenpop.CallEvent, at time.Time) *call {
	c := l.calls[ev.CallID]
	if c == nil {
		ringAt := eventTime(ev, at)
		c = &call{
			id:       ev.CallID,
			source:   ev.Source,
			line:     l.lineOf(ev.DID),
			ringAt:   ringAt,
			day:      ringAt.In(l.cfg.Location).Format(time.DateOnly),
			ringing:  map[string]time.Time{},
			since:    map[string]time.Time{},
			shown:    map[string]time.Time{},
			complete: map[string]bool{},
			handled:  map[string]bool{},
		}
		l.addSource(ev.Source)
		l.calls[ev.CallID] = c
		i, _ := slices.BinarySearchFunc(l.live, c, liveOrder)
		l.live = slices.Insert(l.live, i, c)
	}
	c.viewOK = false // whatever the event, it may change what the view shows
	if c.caller == "" && !ev.Caller.Withheld && ev.Caller.Number != "" {
		c.caller = screenpop.MaskPhone(ev.Caller.Number)
	}
	if c.line == LineOther && ev.DID != "" {
		c.line = l.lineOf(ev.DID)
	}
	c.lastSeen = at
	return c
}

func (l *Ledger) lineOf(did string) string {
	if did == "" {
		return LineOther
	}
	if name := l.cfg.LineName(did); name != "" {
		return name
	}
	return LineOther
}

// ringing applies the complete set of agents whose phones ring now. A
// call someone has rings again only for a transfer: blind (the agent let
// go) or a consultation (the agent keeps it).
func (l *Ledger) ringing(ev screenpop.CallEvent, at time.Time) {
	c := l.follow(ev, at)
	if c.agent != "" {
		if ev.Transfer == nil {
			return // the PBX reporting other phones' ringing after the answer
		}
		if !ev.Transfer.Consult {
			c.agent = ""
		}
	}
	now := map[string]bool{}
	for _, a := range ev.Agents {
		if a != "" && a != c.agent {
			now[a] = true
		}
	}
	for a := range c.ringing {
		if !now[a] {
			delete(c.ringing, a)
		}
	}
	rang := eventTime(ev, at)
	for _, a := range slices.Sorted(maps.Keys(now)) {
		if _, ok := c.ringing[a]; ok {
			continue
		}
		c.ringing[a] = rang
		if _, ok := c.since[a]; !ok {
			c.since[a] = rang
		}
		if !l.cfg.Connected(a) {
			l.metrics.blind.WithLabelValues(c.source).Inc()
		}
	}
}

// takeOver gives the call to ev.Agent: answered (the first answer is
// counted), or transferred.
func (l *Ledger) takeOver(ev screenpop.CallEvent, at time.Time, answer bool) {
	c := l.follow(ev, at)
	a := ev.Agent
	if a == "" || c.agent == a {
		return
	}
	when := eventTime(ev, at)
	c.agent = a
	c.handled[a] = true
	clear(c.ringing)
	if _, ok := c.since[a]; !ok {
		c.since[a] = when
	}
	if !answer || c.answered {
		return
	}
	c.answered, c.answeredAt = true, when
	f := FlagAnswered
	wait := max(when.Sub(c.ringAt), 0)
	if wait <= l.cfg.ServiceLevel {
		f |= FlagInTime
	}
	l.metrics.answered.WithLabelValues(c.source).Inc()
	l.metrics.answerWait.WithLabelValues(c.source).Observe(wait.Seconds())
	if _, ok := c.shown[a]; ok {
		f |= FlagPopped
		l.metrics.popped.WithLabelValues(c.source).Inc()
	}
	l.record(c, f)
}

// ended counts the call by its outcome and forgets it. An end for a call
// never rung here is ignored, as the dispatcher ignores it.
func (l *Ledger) ended(ev screenpop.CallEvent, at time.Time) {
	c := l.calls[ev.CallID]
	if c == nil {
		return
	}
	delete(l.calls, ev.CallID)
	l.unlive(c)
	l.remember(ev.CallID, at)
	when := eventTime(ev, at)
	outcome := string(ev.Outcome)
	switch {
	case outcome == "" && c.answered:
		outcome = string(screenpop.OutcomeAnswered)
	case outcome == "":
		outcome = string(screenpop.OutcomeNoAnswer)
	case !slices.Contains(Outcomes, outcome):
		outcome = OutcomeOther
	}
	f := FlagEnded
	if outcome == string(screenpop.OutcomeAnswered) && !c.answered {
		// Answered, says the end, without an answer event (a CTI that
		// posts only ring and end): counted, its wait unknown.
		f |= FlagAnswered
		l.metrics.answered.WithLabelValues(c.source).Inc()
	}
	if outcome == string(screenpop.OutcomeAbandoned) && !c.answered {
		f |= FlagAbandoned
		l.metrics.abandonedWait.WithLabelValues(c.source).Observe(max(when.Sub(c.ringAt), 0).Seconds())
	}
	l.metrics.calls.WithLabelValues(c.source, c.line, outcome).Inc()
	l.record(c, f)
	agent := ev.Agent
	if agent == "" {
		agent = c.agent
	}
	if agent != "" {
		c.handled[agent] = true
	}
	for a := range c.handled {
		l.handled[a] = handledCall{callID: c.id, ended: at}
	}
}

// liveOrder is the floor view's order of calls: the first rung first,
// then by ID. A call's first ring never changes once it is followed.
func liveOrder(a, b *call) int {
	if c := a.ringAt.Compare(b.ringAt); c != 0 {
		return c
	}
	return strings.Compare(a.id, b.id)
}

// unlive takes c out of the live calls: marked gone at once (the
// dispatcher waits while the ledger works), taken out of the order with
// every other gone call once they are half of it.
func (l *Ledger) unlive(c *call) {
	c.gone = true
	l.dead++
	if l.dead > 32 && 2*l.dead > len(l.live) {
		l.live = slices.DeleteFunc(l.live, func(c *call) bool { return c.gone })
		l.dead = 0
	}
}

// maxOver bounds the ended calls remembered (as the dispatcher's).
const maxOver = 10000

// remember keeps callID as over until StaleAfter, or until maxOver
// newer calls ended.
func (l *Ledger) remember(callID string, at time.Time) {
	l.over[callID] = at
	l.order = append(l.order, callID)
	for len(l.order) > maxOver {
		delete(l.over, l.order[0])
		l.order = l.order[1:]
	}
}

// record queues what f adds to the call's day.
func (l *Ledger) record(c *call, f Flags) {
	if f&^c.flags == 0 {
		return
	}
	c.flags |= f
	if len(l.records) >= maxRecords {
		// Nothing took them for this long: the oldest go. The metrics
		// still counted them.
		l.records = slices.Delete(l.records, 0, len(l.records)/10+1)
	}
	l.records = append(l.records, Record{Day: c.day, CallID: c.id, Flags: c.flags})
}

// maxRecords bounds the records waiting to be added to the day's counts
// (a Redis down for long).
const maxRecords = 100000

// TakeRecords returns the records queued since the last call, oldest
// first.
func (l *Ledger) TakeRecords() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.records
	l.records = nil
	return out
}

// Shown applies a page's acknowledgement that agentID's pop of callID is
// painted (pop.StageShown) or painted with every section filled
// (pop.StageComplete), at the daemon's time at. Only an agent holding the call
// counts (their phone rings for it, or they have it); a repeat counts
// nothing. It reports whether the acknowledgement counted.
func (l *Ledger) Shown(agentID, callID, stage string, at time.Time) bool {
	_, counted := l.shown(agentID, callID, stage, at)
	return counted
}

// shown is Shown, saying also whether the call is followed here.
func (l *Ledger) shown(agentID, callID, stage string, at time.Time) (known, counted bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls[callID]
	if c == nil {
		return false, false
	}
	if _, ringing := c.ringing[agentID]; agentID == "" || (!ringing && c.agent != agentID) {
		return true, false
	}
	since := c.since[agentID]
	if _, ok := c.shown[agentID]; !ok {
		// A complete pop is shown too, whichever acknowledgement came first.
		c.shown[agentID] = at
		l.metrics.shown.WithLabelValues(c.source).Observe(max(at.Sub(since), 0).Seconds())
		counted = true
	}
	if stage == pop.StageComplete && !c.complete[agentID] {
		c.complete[agentID] = true
		l.metrics.complete.WithLabelValues(c.source).Observe(max(at.Sub(since), 0).Seconds())
		counted = true
	}
	return true, counted
}

// Sweep forgets the calls with no event for StaleAfter, counted as
// expired, and the ended calls too old to keep anyone in wrap-up.
func (l *Ledger) Sweep(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	swept := false
	for id, c := range l.calls {
		if now.Sub(c.lastSeen) >= l.cfg.StaleAfter {
			l.metrics.calls.WithLabelValues(c.source, c.line, OutcomeExpired).Inc()
			delete(l.calls, id)
			l.unlive(c)
			l.remember(id, now)
			swept = true
		}
	}
	if swept {
		l.version++
		l.notify()
	}
	for a, h := range l.handled {
		if now.Sub(h.ended) >= l.cfg.StaleAfter {
			delete(l.handled, a)
		}
	}
	for len(l.order) > 0 && now.Sub(l.over[l.order[0]]) >= l.cfg.StaleAfter {
		delete(l.over, l.order[0])
		l.order = l.order[1:]
	}
}

// CallView is a live call as the floor view shows it.
type CallView struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Line   string `json:"line"`
	// Caller is the number masked but for its last three digits; empty
	// when withheld or not known.
	Caller string    `json:"caller,omitempty"`
	RingAt time.Time `json:"ring_at"`
	// Ringing are the agents whose phones ring for it now, sorted.
	Ringing []string `json:"ringing,omitempty"`
	// Agent has the call; empty while it waits for an answer.
	Agent string `json:"agent,omitempty"`
	// AnsweredAt is the first answer's time.
	AnsweredAt time.Time `json:"answered_at,omitzero"`
}

// Calls lists the live calls, first rung first.
func (l *Ledger) Calls() []CallView {
	calls, _ := l.snapshot()
	return slices.Clone(calls)
}

// snapshot is the live calls, first rung first, and the version they
// are of: the same slice while no call changed. It is shared: read only.
// Only the calls that changed since the last snapshot are made anew, and
// nothing is sorted (live keeps the order).
func (l *Ledger) snapshot() ([]CallView, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.snapOK && l.snapVersion == l.version {
		return l.snap, l.version
	}
	out := make([]CallView, 0, len(l.live)-l.dead)
	for _, c := range l.live {
		if c.gone {
			continue
		}
		if !c.viewOK {
			c.view = c.makeView()
			c.viewOK = true
		}
		out = append(out, c.view)
	}
	l.snap, l.snapVersion, l.snapOK = out, l.version, true
	return out, l.version
}

// makeView is the call as the floor view shows it.
func (c *call) makeView() CallView {
	v := CallView{ID: c.id, Source: c.source, Line: c.line, Caller: c.caller, RingAt: c.ringAt, Agent: c.agent}
	if c.answered {
		v.AnsweredAt = c.answeredAt
	}
	if len(c.ringing) > 0 {
		v.Ringing = slices.Sorted(maps.Keys(c.ringing))
	}
	return v
}

// Handled is, per agent, the last call they had that ended (within
// StaleAfter): an agent the history may hold in wrap-up.
func (l *Ledger) Handled() map[string]HandledCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]HandledCall, len(l.handled))
	for a, h := range l.handled {
		out[a] = HandledCall{CallID: h.callID, Ended: h.ended}
	}
	return out
}

// HandledCall is an agent's last call that ended.
type HandledCall struct {
	CallID string
	Ended  time.Time
}

// Settled forgets that agentID's call callID may keep them in wrap-up:
// the history says they are ready.
func (l *Ledger) Settled(agentID, callID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h, ok := l.handled[agentID]; ok && h.callID == callID {
		delete(l.handled, agentID)
	}
}
