package pop

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/queue"
)

// CardBuilder builds the card of a call. *aggregator.Aggregator implements
// it. The builder owns the card's deadline (the aggregator's configured
// one, which follows a reload): Build must return whatever it has by then,
// and at once when ctx is cancelled — the call ended, or was dropped.
type CardBuilder interface {
	Build(ctx context.Context, call screenpop.CallEvent) screenpop.Card
	// BuildFor builds the card for a customer the agent picked among the
	// candidates of an ambiguous number.
	BuildFor(ctx context.Context, call screenpop.CallEvent, customerID string) screenpop.Card
}

// CallRecorder keeps the history of calls and their notes.
// *aggregator.MemoryHistory implements it, PostgreSQL will.
//
// Agents write notes while they talk, so AddNote for a call may come before
// Record of that call; an implementation must keep such notes and show
// them with the call once it is recorded.
type CallRecorder interface {
	Record(ctx context.Context, c screenpop.PastCall) error
	AddNote(ctx context.Context, phone, callID string, n screenpop.Note) error
}

// Deliverer gets a message to every browser of one agent. The Hub delivers
// to its own WebSocket connections; a Redis Streams deliverer will reach
// agents connected to another daemon. Deliver must not block: it is called
// with the dispatcher's state locked. It assigns the message's Seq.
type Deliverer interface {
	Deliver(agentID string, m Message)
}

// Requests is what the Hub needs from the Dispatcher: what browsers ask for,
// and the snapshot of a connecting browser.
type Requests interface {
	// Snapshot calls attach with the calls agentID currently holds, while
	// no message for agentID can be delivered: whatever attach registers
	// sees every later message and none that the snapshot already covers.
	Snapshot(agentID string, attach func(pops []PopView))
	// Select asks for the card of one candidate of an ambiguous caller;
	// the new card arrives as a TypeCard message.
	Select(agent Agent, callID, customerID string) error
	// Note stores a note; the agent gets TypeNoteSaved with ref.
	Note(ctx context.Context, agent Agent, callID, text, ref string) error
}

// RequestError is a refused browser request. Code is stable for the page
// (forbidden, unknown_call, not_ready, bad_request, unavailable), Message is
// fit for the agent.
type RequestError struct {
	Code    string
	Message string
}

func (e *RequestError) Error() string { return e.Code + ": " + e.Message }

// codeUnknownCall is the RequestError code of a call this dispatcher does
// not know; the Hub then asks the other daemons (RequestForwarder).
const codeUnknownCall = "unknown_call"

func requestError(code, format string, args ...any) error {
	return &RequestError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// DispatcherConfig configures NewDispatcher.
type DispatcherConfig struct {
	Builder CardBuilder // required
	// Recorder stores ended calls and notes; nil: no history, notes refused.
	Recorder  CallRecorder
	Deliverer Deliverer // required
	// RecordTimeout bounds Record and AddNote; default 5s.
	RecordTimeout time.Duration
	// AgentNames gives an agent's display name ("answered by Bob"). When
	// nil, the names the Deliverer learnt from tokens are used, if it knows
	// any (the Hub does).
	AgentNames func(agentID string) string
	// StaleAfter drops a call with no event for this long (its "ended" was
	// lost); default 4h. Notes can be written this long after a call ended.
	StaleAfter time.Duration
	// MaxQueuedEvents bounds the call events HandleCall queued and Run has
	// not taken yet; default 100000. Past it, new events are shed (counted
	// and logged), except ended events, which may use a reserve of a tenth
	// more: a shed "ended" leaves its pops on screen until StaleAfter.
	MaxQueuedEvents int
	Logger          *slog.Logger
	Registerer      prometheus.Registerer
}

// Dispatcher follows every call and decides which agent sees which card.
// It implements screenpop.CallSink and Requests.
type Dispatcher struct {
	cfg     DispatcherConfig
	logger  *slog.Logger
	metrics *dispatcherMetrics
	names   func(string) string
	now     func() time.Time

	// The queue is separate from mu so that HandleCall never waits for
	// whatever holds mu (a Deliver, a snapshot).
	events *queue.Bounded[screenpop.CallEvent]
	qdone  atomic.Bool
	shed   shedLog

	mu      sync.Mutex
	runCtx  context.Context
	stopped bool
	calls   map[string]*callState
	recent  map[string]*endedCall // ended calls agents may still write notes about
	order   []*endedCall          // recent, oldest first
	wg      sync.WaitGroup        // builds and records in flight
}

var (
	_ screenpop.CallSink = (*Dispatcher)(nil)
	_ Requests           = (*Dispatcher)(nil)
)

// maxRecent bounds the ended calls kept for late notes.
const maxRecent = 10000

// callState is what the dispatcher knows of one live call.
type callState struct {
	event      screenpop.CallEvent  // the first event, what cards are built from
	ringing    map[string]time.Time // agent -> At of the event that rang them
	holders    map[string]bool      // agents showing the pop now
	had        map[string]bool      // agents that ever held it (may write notes)
	answeredBy string               // who has the call now ("" while it rings, or after a blind transfer)
	answeredAt time.Time
	lastAgent  string // who had it last: answeredBy, or the agent who transferred it away
	// transfer is why the call rings now, when a colleague transfers it
	// (shown on the ringing pops).
	transfer *screenpop.Transfer
	// released is the agent who let go by a blind transfer and was told
	// "transferred" before the target's phone rang: told again, with the
	// target's name, when it does.
	released  string
	card      *screenpop.Card
	building  bool
	ended     bool
	endEvent  screenpop.CallEvent
	selecting bool      // a BuildFor is running
	lastSeen  time.Time // dispatcher clock, for StaleAfter
	refresh   refreshState
	// ctx is the call's own: every build for it (first card, pick,
	// refresh) runs under it, and it is cancelled with a cause when the
	// call ends or is dropped, so nothing keeps asking the company's
	// systems about a call that is over.
	ctx    context.Context
	cancel context.CancelCauseFunc
}

type endedCall struct {
	callID string
	phone  string
	had    map[string]bool
	at     time.Time
}

// NewDispatcher checks cfg and returns a Dispatcher. Run must be running
// for events to be processed; HandleCall queues them until then.
func NewDispatcher(cfg DispatcherConfig) (*Dispatcher, error) {
	if cfg.Builder == nil {
		return nil, errors.New("pop: dispatcher: Builder is required")
	}
	if cfg.Deliverer == nil {
		return nil, errors.New("pop: dispatcher: Deliverer is required")
	}
	if cfg.RecordTimeout < 0 || cfg.StaleAfter < 0 {
		return nil, errors.New("pop: dispatcher: durations must not be negative")
	}
	if cfg.MaxQueuedEvents < 0 {
		return nil, fmt.Errorf("pop: dispatcher: max_queued_events must not be negative, got %d", cfg.MaxQueuedEvents)
	}
	if cfg.MaxQueuedEvents == 0 {
		cfg.MaxQueuedEvents = DefaultMaxQueuedEvents
	}
	if cfg.RecordTimeout == 0 {
		cfg.RecordTimeout = 5 * time.Second
	}
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = 4 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newDispatcherMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("pop: dispatcher metrics: %w", err)
	}
	d := &Dispatcher{
		cfg:     cfg,
		logger:  cfg.Logger,
		metrics: m,
		names:   cfg.AgentNames,
		now:     time.Now,
		events: queue.New(queue.Options[screenpop.CallEvent]{
			MaxItems: cfg.MaxQueuedEvents,
			Reserve:  endedReserve(cfg.MaxQueuedEvents),
			Depth:    m.queued,
		}),
		calls:  map[string]*callState{},
		recent: map[string]*endedCall{},
	}
	if d.names == nil {
		if n, ok := cfg.Deliverer.(interface{ AgentName(string) string }); ok {
			d.names = n.AgentName
		}
	}
	return d, nil
}

// DefaultMaxQueuedEvents is DispatcherConfig.MaxQueuedEvents' default:
// far more than a burst of simultaneous calls brings (a thousand calls are
// a few thousand events), far less than would exhaust memory (a few
// hundred bytes each).
const DefaultMaxQueuedEvents = 100000

// endedReserve is the room ended events have beyond MaxQueuedEvents: a
// tenth, at least one.
func endedReserve(maxQueued int) int { return max(1, maxQueued/10) }

// shedLogEvery bounds the error logs of shedding: one when a burst starts,
// at most one a minute however often bursts come.
const shedLogEvery = time.Minute

// HandleCall queues ev and returns at once: telephony sources call it from
// the loop that reads the PBX socket. When Run is too far behind
// (MaxQueuedEvents), ev is shed: counted, and logged once per burst. An
// ended event may use a reserve beyond the limit, since nothing but the
// StaleAfter sweep would withdraw its pops.
func (d *Dispatcher) HandleCall(ev screenpop.CallEvent) {
	if d.qdone.Load() {
		return
	}
	var ok bool
	if ev.Kind == screenpop.EventEnded {
		ok = d.events.PushReserve(ev)
	} else {
		ok = d.events.Push(ev)
	}
	if ok {
		return
	}
	d.metrics.shedEvent(ev.Kind)
	if d.shed.start(time.Now()) {
		d.logger.Error("dispatcher too far behind: call events are shed until it catches up; "+
			"pops of shed events may be missing, stale pops go after stale_after",
			"max_queued_events", d.cfg.MaxQueuedEvents, "kind", ev.Kind, "call", ev.CallID, "source", ev.Source)
	}
}

// shedLog rate-limits the error log of shedding to one per burst (a burst
// ends when Run has emptied the queue) and one per shedLogEvery.
type shedLog struct {
	mu     sync.Mutex
	inside bool      // in a burst
	loud   bool      // this burst's start was logged
	shed   int       // events shed since the burst began
	logged time.Time // last error log
}

// start counts one shed event and reports whether to log it.
func (s *shedLog) start(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.shed++
	if s.inside {
		return false
	}
	s.inside = true
	s.loud = s.logged.IsZero() || now.Sub(s.logged) >= shedLogEvery
	if s.loud {
		s.logged = now
	}
	return s.loud
}

// end closes a burst; it returns how many events the burst shed if its
// start was logged, and 0 otherwise (the metric counts them all).
func (s *shedLog) end() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.shed
	if !s.loud {
		n = 0
	}
	s.inside, s.loud, s.shed = false, false, 0
	return n
}

// Run processes call events until ctx ends. Events are taken in the order
// they were handed over, so the events of one call are applied in order;
// card building runs outside, so a slow card delays no other call. Run
// returns once the builds and history writes it started are done.
func (d *Dispatcher) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.runCtx != nil {
		d.mu.Unlock()
		return errors.New("pop: dispatcher: Run called twice")
	}
	d.runCtx = ctx
	d.mu.Unlock()

	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	for {
		batch := d.events.Take()
		if len(batch) > 0 {
			d.mu.Lock()
			for _, ev := range batch {
				d.apply(ev)
			}
			d.setActive()
			d.mu.Unlock()
			continue
		}
		if n := d.shed.end(); n > 0 {
			d.logger.Warn("dispatcher caught up after shedding call events", "shed", n)
		}
		select {
		case <-ctx.Done():
			d.qdone.Store(true)
			d.events.Take()
			d.mu.Lock()
			d.stopped = true
			d.mu.Unlock()
			d.wg.Wait()
			return nil
		case <-d.events.Ready():
		case <-sweep.C:
			d.mu.Lock()
			d.sweep()
			d.setActive()
			d.mu.Unlock()
		}
	}
}

func (d *Dispatcher) setActive() {
	n := 0
	for _, c := range d.calls {
		if !c.ended {
			n++
		}
	}
	d.metrics.activeCalls.Set(float64(n))
}

// apply runs with d.mu held.
func (d *Dispatcher) apply(ev screenpop.CallEvent) {
	if ev.CallID == "" {
		d.logger.Warn("call event without call ID ignored", "kind", ev.Kind, "source", ev.Source)
		return
	}
	if _, over := d.recent[ev.CallID]; over {
		// A repeat from a telephony source repairing its state after a
		// reconnect: the call is over and must not come back to life.
		d.logger.Debug("event for an ended call ignored", "kind", ev.Kind, "call", ev.CallID)
		return
	}
	switch ev.Kind {
	case screenpop.EventRinging:
		d.onRinging(ev)
	case screenpop.EventAnswered:
		d.onAnswered(ev)
	case screenpop.EventTransferred:
		d.onTransferred(ev)
	case screenpop.EventEnded:
		d.onEnded(ev)
	default:
		d.logger.Warn("unknown call event kind ignored", "kind", ev.Kind, "call", ev.CallID, "source", ev.Source)
	}
}

func (d *Dispatcher) call(ev screenpop.CallEvent) *callState {
	c := d.calls[ev.CallID]
	if c == nil {
		c = &callState{
			event:   ev,
			ringing: map[string]time.Time{},
			holders: map[string]bool{},
			had:     map[string]bool{},
		}
		c.ctx, c.cancel = context.WithCancelCause(cmp.Or(d.runCtx, context.Background()))
		d.calls[ev.CallID] = c
		d.logger.Debug("call", "call", ev.CallID, "caller", screenpop.MaskPhone(ev.Caller.Number), "source", ev.Source)
	}
	c.lastSeen = d.now()
	return c
}

// onRinging applies the complete set of agents whose phones ring now. On a
// call an agent has, only a transfer rings: a blind one (the agent let go:
// their pop is withdrawn as transferred, naming the target once it rings)
// or a consultation (the agent keeps the call; the colleague sees the card
// while their phone rings and while they talk).
func (d *Dispatcher) onRinging(ev screenpop.CallEvent) {
	c := d.call(ev)
	if c.ended {
		return
	}
	tr := ev.Transfer
	released := ""
	if c.answeredBy != "" {
		if tr == nil {
			// Late ringing of a call someone already has: the PBX reports the
			// other phones' ringing after the answer. Nothing rings any more.
			return
		}
		if !tr.Consult {
			released = c.answeredBy
			c.lastAgent, c.answeredBy, c.answeredAt = released, "", time.Time{}
			if !c.holders[released] {
				released = "" // their pop is gone already
			}
		}
	}
	c.transfer = tr
	now := map[string]bool{}
	for _, a := range ev.Agents {
		if a != "" && a != c.answeredBy {
			now[a] = true
		}
	}
	reason := ReasonNotRinging
	switch {
	case ev.RangOut:
		reason = ReasonRangOut
	case tr != nil && tr.Consult:
		reason = ReasonTransferCancelled
	}
	for _, a := range sortedKeys(c.ringing) {
		if !now[a] {
			delete(c.ringing, a)
			if c.holders[a] {
				d.withdraw(c, a, reason, nil)
			}
		}
	}
	for a := range now {
		if _, ok := c.ringing[a]; !ok {
			c.ringing[a] = ev.At
		}
	}
	if released == "" && len(now) > 0 && c.released != "" && !now[c.released] {
		released = c.released // told "transferred" already; now to whom
	}
	if released != "" {
		var to *AgentRef
		if targets := sortedKeys(now); len(targets) > 0 {
			to = d.ref(targets[0])
			c.released = ""
		} else {
			c.released = released
		}
		d.withdraw(c, released, ReasonTransferred, to)
	}
	if len(c.ringing) == 0 {
		return
	}
	if c.card == nil {
		d.startBuild(c)
		return
	}
	for _, a := range sortedKeys(c.ringing) {
		if !c.holders[a] {
			d.pop(c, a, StateRinging, c.ringing[a])
		}
	}
}

func (d *Dispatcher) onAnswered(ev screenpop.CallEvent) {
	c := d.call(ev)
	if c.ended || (c.answeredBy != "" && c.answeredBy == ev.Agent) {
		return
	}
	d.takeOver(c, ev, ReasonAnsweredElsewhere, false)
}

func (d *Dispatcher) onTransferred(ev screenpop.CallEvent) {
	if ev.Agent == "" {
		d.logger.Warn("transfer without target agent ignored", "call", ev.CallID, "source", ev.Source)
		return
	}
	c := d.call(ev)
	if c.ended || c.answeredBy == ev.Agent {
		return
	}
	d.takeOver(c, ev, ReasonTransferred, true)
}

// takeOver gives the call to ev.Agent, whether they answered it or it was
// transferred to them: nobody rings any more, every other holder loses the
// pop for reason, and the new holder gets the card.
func (d *Dispatcher) takeOver(c *callState, ev screenpop.CallEvent, reason string, transferred bool) {
	c.answeredBy, c.answeredAt, c.lastAgent = ev.Agent, ev.At, ev.Agent
	c.transfer, c.released = nil, ""
	clear(c.ringing)
	by := d.ref(ev.Agent)
	for _, h := range sortedKeys(c.holders) {
		if h != ev.Agent {
			d.withdraw(c, h, reason, by)
		}
	}
	d.handOver(c, transferred)
}

// handOver gives the card to the agent who has the call now, or builds it.
func (d *Dispatcher) handOver(c *callState, transferred bool) {
	if c.card == nil {
		d.startBuild(c)
		return
	}
	a := c.answeredBy
	if a == "" {
		return
	}
	if !c.holders[a] {
		d.pop(c, a, StateAnswered, c.answeredAt)
	}
	d.send(a, Message{Type: TypeAnswered, CallID: c.event.CallID, Data: AnsweredData{Agent: *d.ref(a), Transferred: transferred}})
}

func (d *Dispatcher) onEnded(ev screenpop.CallEvent) {
	c := d.calls[ev.CallID]
	if c == nil || c.ended {
		// Never rung here (no card, nothing to record), or a duplicate.
		return
	}
	c.lastSeen = d.now()
	c.ended, c.endEvent = true, ev
	// A card still being built is not needed by anyone now; the history
	// takes what it has.
	c.cancel(fmt.Errorf("call %s ended (%s)", ev.CallID, ev.Outcome))
	agent := ev.Agent
	if agent == "" {
		agent = c.answeredBy
	}
	data := EndedData{Outcome: ev.Outcome, Agent: d.ref(agent)}
	for _, h := range sortedKeys(c.holders) {
		d.send(h, Message{Type: TypeEnded, CallID: ev.CallID, Data: data})
	}
	clear(c.holders)
	clear(c.ringing)
	if !c.building {
		d.finish(c)
	}
	// else: the card is still being built; cardReady records the call.
}

// finish forgets a call that ended and records it in the history.
func (d *Dispatcher) finish(c *callState) {
	id := c.event.CallID
	c.cancel(fmt.Errorf("call %s ended", id))
	if d.calls[id] == c {
		delete(d.calls, id)
	}
	var phone string
	if c.card != nil && !c.card.Caller.Withheld {
		phone = c.card.Phone
	}
	d.remember(&endedCall{callID: id, phone: phone, had: c.had, at: d.now()})
	if phone == "" || c.card == nil || d.cfg.Recorder == nil {
		return
	}
	end := c.endEvent
	past := screenpop.PastCall{
		CallID:  id,
		Phone:   phone,
		At:      c.event.At,
		Agent:   end.Agent,
		Outcome: end.Outcome,
	}
	if past.Agent == "" {
		past.Agent = c.lastAgent
	}
	if past.Outcome == "" {
		past.Outcome = screenpop.OutcomeNoAnswer
		if c.answeredBy != "" {
			past.Outcome = screenpop.OutcomeAnswered
		}
	}
	if !c.event.At.IsZero() && end.At.After(c.event.At) {
		past.Duration = end.At.Sub(c.event.At)
	}
	// The history write must survive the daemon shutting down right after
	// the call: it gets its own timeout, not the run context's cancellation.
	ctx := context.WithoutCancel(d.runCtx)
	d.wg.Go(func() {
		ctx, cancel := context.WithTimeoutCause(ctx, d.cfg.RecordTimeout, fmt.Errorf("record call %s: no answer in %s", id, d.cfg.RecordTimeout))
		defer cancel()
		if err := d.cfg.Recorder.Record(ctx, past); err != nil {
			d.logger.Error("cannot record call in history", "call", id, "phone", screenpop.MaskPhone(phone), "err", err)
		}
	})
}

func (d *Dispatcher) remember(e *endedCall) {
	if old := d.recent[e.callID]; old != nil {
		d.order = slices.DeleteFunc(d.order, func(x *endedCall) bool { return x == old })
	}
	d.recent[e.callID] = e
	d.order = append(d.order, e)
	for len(d.order) > maxRecent {
		delete(d.recent, d.order[0].callID)
		d.order = d.order[1:]
	}
}

func (d *Dispatcher) startBuild(c *callState) {
	if c.building || c.card != nil || d.stopped {
		return
	}
	c.building = true
	ev, ctx := c.event, c.ctx
	d.wg.Go(func() {
		card := d.build(ctx, ev, "")
		d.mu.Lock()
		defer d.mu.Unlock()
		d.cardReady(c, card)
		d.setActive()
	})
}

// build calls the builder under the call's context (the builder owns the
// deadline). A panicking builder costs its card, not the daemon.
func (d *Dispatcher) build(ctx context.Context, ev screenpop.CallEvent, customerID string) (card screenpop.Card) {
	defer func() {
		if r := recover(); r != nil {
			d.logger.Error("card builder panicked", "call", ev.CallID, "err", r)
			card = screenpop.Card{CallID: ev.CallID, Caller: ev.Caller, Resolution: screenpop.ResolvedFailed, BuiltAt: d.now()}
		}
	}()
	if customerID != "" {
		return d.cfg.Builder.BuildFor(ctx, ev, customerID)
	}
	return d.cfg.Builder.Build(ctx, ev)
}

// cardReady runs with d.mu held when the first card of c is built.
func (d *Dispatcher) cardReady(c *callState, card screenpop.Card) {
	c.building = false
	if card.CallID == "" {
		card.CallID = c.event.CallID
	}
	c.card = &card
	if d.calls[c.event.CallID] != c {
		return // dropped as stale while building
	}
	if c.ended {
		// Answered and hung up, or abandoned, while the card was built:
		// nobody needs it now, but the history does.
		d.finish(c)
		return
	}
	d.refreshIfAsked(c) // fresher data came while this card was built
	if c.answeredBy != "" {
		d.handOver(c, false)
	}
	// Phones ringing: before an answer, or a colleague consulted about it.
	for _, a := range sortedKeys(c.ringing) {
		if !c.holders[a] {
			d.pop(c, a, StateRinging, c.ringing[a])
		}
	}
}

// pop sends the card to agent and measures how long it took from the event
// that made the agent need it.
func (d *Dispatcher) pop(c *callState, agent, state string, since time.Time) {
	data := PopData{State: state, Card: *c.card}
	if state == StateAnswered {
		data.AnsweredBy = d.ref(c.answeredBy)
	} else {
		data.Transfer = d.transferInfo(c)
	}
	d.send(agent, Message{Type: TypePop, CallID: c.event.CallID, Data: data})
	c.holders[agent], c.had[agent] = true, true
	if !since.IsZero() {
		if took := d.now().Sub(since); took >= 0 {
			d.metrics.latency.Observe(took.Seconds())
		}
	}
}

// transferInfo is what a ringing pop says of the transfer it rings for.
func (d *Dispatcher) transferInfo(c *callState) *TransferInfo {
	if c.transfer == nil || c.transfer.From == "" {
		return nil
	}
	return &TransferInfo{From: *d.ref(c.transfer.From), Consult: c.transfer.Consult}
}

func (d *Dispatcher) withdraw(c *callState, agent, reason string, by *AgentRef) {
	delete(c.holders, agent)
	d.send(agent, Message{Type: TypeWithdrawn, CallID: c.event.CallID, Data: WithdrawnData{Reason: reason, By: by}})
}

func (d *Dispatcher) send(agent string, m Message) {
	if m.At.IsZero() {
		m.At = d.now()
	}
	d.cfg.Deliverer.Deliver(agent, m)
}

func (d *Dispatcher) ref(agent string) *AgentRef {
	if agent == "" {
		return nil
	}
	r := &AgentRef{ID: agent}
	if d.names != nil {
		r.Name = d.names(agent)
	}
	return r
}

// sweep drops calls nothing happened to for StaleAfter: their "ended" was
// lost, and their pops would otherwise stay on screen forever.
func (d *Dispatcher) sweep() {
	now := d.now()
	for id, c := range d.calls {
		if now.Sub(c.lastSeen) < d.cfg.StaleAfter {
			continue
		}
		for _, h := range sortedKeys(c.holders) {
			d.withdraw(c, h, ReasonExpired, nil)
		}
		c.cancel(fmt.Errorf("call %s dropped: no event for %s", id, d.cfg.StaleAfter))
		delete(d.calls, id)
		d.logger.Warn("call dropped: no event for too long", "call", id, "after", d.cfg.StaleAfter.Seconds())
	}
	for len(d.order) > 0 && now.Sub(d.order[0].at) >= d.cfg.StaleAfter {
		delete(d.recent, d.order[0].callID)
		d.order = d.order[1:]
	}
}

// Snapshot implements Requests.
func (d *Dispatcher) Snapshot(agentID string, attach func(pops []PopView)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pops := []PopView{}
	for _, c := range d.calls {
		if !c.holders[agentID] || c.card == nil {
			continue
		}
		v := PopView{CallID: c.event.CallID, State: StateRinging, Card: *c.card}
		if c.answeredBy == agentID {
			v.State, v.AnsweredBy = StateAnswered, d.ref(c.answeredBy)
		} else {
			v.Transfer = d.transferInfo(c)
		}
		pops = append(pops, v)
	}
	// Oldest call first, as the page stacks them.
	slices.SortFunc(pops, func(a, b PopView) int {
		if c := d.calls[a.CallID].event.At.Compare(d.calls[b.CallID].event.At); c != 0 {
			return c
		}
		return strings.Compare(a.CallID, b.CallID)
	})
	attach(pops)
}

// Select implements Requests: only an agent holding the call's pop may pick,
// and only among the card's candidates.
func (d *Dispatcher) Select(agent Agent, callID, customerID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls[callID]
	if c == nil || c.ended {
		return requestError(codeUnknownCall, "this call is over")
	}
	if !c.holders[agent.ID] {
		return requestError("forbidden", "this call is not shown to you")
	}
	if c.card == nil {
		return requestError("not_ready", "the card is still being built")
	}
	if !slices.ContainsFunc(c.card.Candidates, func(k screenpop.Customer) bool { return k.ID == customerID }) {
		return requestError("bad_request", "that customer is not one of the candidates for this number")
	}
	if d.stopped || d.runCtx == nil {
		return requestError("unavailable", "the server is shutting down")
	}
	if c.selecting {
		// One pick at a time per call: each costs a round of queries to
		// every company system.
		return requestError("not_ready", "the previous choice is still loading")
	}
	c.selecting = true
	ev, ctx := c.event, c.ctx
	candidates := c.card.Candidates
	d.logger.Debug("customer selected", "call", callID, "agent", agent.ID, "customer", customerID)
	d.wg.Go(func() {
		card := d.build(ctx, ev, customerID)
		d.mu.Lock()
		defer d.mu.Unlock()
		c.selecting = false
		if d.calls[callID] != c || c.ended {
			return // over: nobody holds the pop any more
		}
		if card.CallID == "" {
			card.CallID = callID
		}
		if len(card.Candidates) == 0 {
			// Keep the list so that an agent who picked the wrong person can
			// pick again.
			card.Candidates = candidates
		}
		c.card = &card
		by := AgentRef{ID: agent.ID, Name: agent.Name}
		for _, h := range sortedKeys(c.holders) {
			d.send(h, Message{Type: TypeCard, CallID: callID, Data: CardData{Card: card, SelectedBy: by}})
		}
	})
	return nil
}

// Note implements Requests: an agent may write about a call it holds or
// held, during the call and for StaleAfter after it ended.
func (d *Dispatcher) Note(ctx context.Context, agent Agent, callID, text, ref string) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return requestError("bad_request", "the note is empty")
	}
	if n := utf8.RuneCountInString(text); n > MaxNoteLength {
		return requestError("bad_request", "the note is %d characters long; the limit is %d", n, MaxNoteLength)
	}
	d.mu.Lock()
	var phone string
	if c := d.calls[callID]; c != nil {
		if !c.had[agent.ID] {
			d.mu.Unlock()
			return requestError("forbidden", "this call was not shown to you")
		}
		if c.card == nil {
			d.mu.Unlock()
			return requestError("not_ready", "the card is still being built")
		}
		if !c.card.Caller.Withheld {
			phone = c.card.Phone
		}
	} else if e := d.recent[callID]; e != nil {
		if !e.had[agent.ID] {
			d.mu.Unlock()
			return requestError("forbidden", "this call was not shown to you")
		}
		phone = e.phone
	} else {
		d.mu.Unlock()
		return requestError(codeUnknownCall, "this call is not known (any more)")
	}
	d.mu.Unlock()
	if phone == "" {
		return requestError("bad_request", "notes are kept per phone number, and this caller has none")
	}
	if d.cfg.Recorder == nil {
		return requestError("unavailable", "notes are not kept on this server")
	}
	note := screenpop.Note{Agent: agent.ID, At: d.now(), Text: text}
	ctx, cancel := context.WithTimeoutCause(ctx, d.cfg.RecordTimeout, fmt.Errorf("save note for call %s: no answer in %s", callID, d.cfg.RecordTimeout))
	defer cancel()
	if err := d.cfg.Recorder.AddNote(ctx, phone, callID, note); err != nil {
		d.logger.Error("cannot save note", "call", callID, "agent", agent.ID, "phone", screenpop.MaskPhone(phone), "err", err)
		return requestError("unavailable", "the note could not be saved; please try again")
	}
	d.mu.Lock()
	d.send(agent.ID, Message{Type: TypeNoteSaved, CallID: callID, Data: NoteSavedData{Note: note, Ref: ref}})
	d.mu.Unlock()
	return nil
}

// Knows reports whether callID is a call this dispatcher follows, or one
// that ended recently enough for notes: another daemon forwards a browser's
// request about such a call here (see RequestForwarder).
func (d *Dispatcher) Knows(callID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[callID] != nil || d.recent[callID] != nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
