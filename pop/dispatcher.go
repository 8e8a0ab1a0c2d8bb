package pop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop/popstate"
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
// to its own WebSocket connections; redisbus.Bus reaches agents connected
// to another daemon. Deliver must not block: it is called with the
// dispatcher's state locked. It numbers the message (Encoded.Seq) for the
// agent; the same Encoded goes to every agent the message is for.
type Deliverer interface {
	Deliver(agentID string, m Encoded)
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
	// AgentRoles gives an agent's roles (the configured roles table), which
	// decide the card sections the agent gets: a section that names roles
	// goes only to agents holding one of them, and is cut out of the
	// message before it is encoded, so that no log, outbox or Redis stream
	// of another agent holds it. Asked for every agent a card goes to,
	// connected or not, with the dispatcher's state locked: it must answer
	// from memory. nil, or no roles for an agent: only the sections that
	// name no role (deny by default).
	AgentRoles func(agentID string) []string
	// OnShown, when set, is called for every card message (pop, card)
	// delivered to an agent, with the card as the agent got it and the
	// names of its sections: what the access log records. Once per agent
	// and message, whatever the agent's number of tabs; not again for the
	// snapshots and replays that show a page what its agent was sent. It is
	// called with the dispatcher's state locked, like Deliver: it must not
	// block, nor modify card or sections (other agents share them).
	OnShown func(agentID, callID string, card screenpop.Card, sections []string)
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

// Dispatcher follows every call and gets each agent the cards of the calls
// ringing at their phone. It is the shell around popstate.Machine, which
// decides who gets what: the Dispatcher queues call events, feeds them to
// the machine in order, delivers the messages it returns (each encoded
// once) and carries out its effects: card builds under each call's own
// context, and the history. It implements screenpop.CallSink and Requests.
type Dispatcher struct {
	cfg     DispatcherConfig
	logger  *slog.Logger
	metrics *dispatcherMetrics
	now     func() time.Time

	// The queue is separate from mu so that HandleCall never waits for
	// whatever holds mu (a Deliver, a snapshot).
	events *queue.Bounded[screenpop.CallEvent]
	qdone  atomic.Bool
	shed   shedLog

	mu      sync.Mutex
	state   *popstate.Machine
	runCtx  context.Context
	stopped bool
	// calls are the contexts of the calls with a card built: every build
	// for a call (first card, pick, refresh) runs under its context, which
	// is cancelled with a cause when the call ends or is dropped, so that
	// nothing keeps asking the company's systems about a call that is over.
	calls map[string]callContext
	wg    sync.WaitGroup // builds and records in flight
}

type callContext struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

var (
	_ screenpop.CallSink = (*Dispatcher)(nil)
	_ Requests           = (*Dispatcher)(nil)
)

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
	names := cfg.AgentNames
	if names == nil {
		if n, ok := cfg.Deliverer.(interface{ AgentName(string) string }); ok {
			names = n.AgentName
		}
	}
	return &Dispatcher{
		cfg:     cfg,
		logger:  cfg.Logger,
		metrics: m,
		now:     time.Now,
		events: queue.New(queue.Options[screenpop.CallEvent]{
			MaxItems: cfg.MaxQueuedEvents,
			Reserve:  endedReserve(cfg.MaxQueuedEvents),
			Depth:    m.queued,
		}),
		state: popstate.New(popstate.Config{Names: names, Roles: cfg.AgentRoles, StaleAfter: cfg.StaleAfter}),
		calls: map[string]callContext{},
	}, nil
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

// apply runs with d.mu held.
func (d *Dispatcher) apply(ev screenpop.CallEvent) {
	if d.logger.Enabled(context.Background(), slog.LevelDebug) {
		d.logger.Debug("call event", "kind", ev.Kind, "call", ev.CallID, "caller", screenpop.MaskPhone(ev.Caller.Number), "source", ev.Source)
	}
	out := d.state.Apply(ev, d.now())
	if out.Warning != "" {
		d.logger.Warn(out.Warning, "kind", ev.Kind, "call", ev.CallID, "source", ev.Source)
	}
	d.execute(out)
}

// sweep drops the calls gone quiet for StaleAfter; it runs with d.mu held.
func (d *Dispatcher) sweep() { d.execute(d.state.Sweep(d.now())) }

func (d *Dispatcher) setActive() { d.metrics.activeCalls.Set(float64(d.state.Active())) }

// execute delivers what the machine decided and carries out its effects;
// it runs with d.mu held.
func (d *Dispatcher) execute(out popstate.Output) {
	for _, dl := range out.Deliveries {
		d.deliver(dl)
	}
	for _, took := range out.Latencies {
		d.metrics.latency.Observe(took.Seconds())
	}
	d.metrics.refreshedCards.Add(float64(out.Refreshed))
	for _, e := range out.Effects {
		switch e := e.(type) {
		case popstate.Build:
			d.build(e)
		case popstate.Cancel:
			if c, ok := d.calls[e.CallID]; ok {
				c.cancel(e.Cause)
				delete(d.calls, e.CallID)
			}
			if e.Dropped {
				d.logger.Warn("call dropped: no event for too long", "call", e.CallID, "after", d.cfg.StaleAfter.Seconds())
			}
		case popstate.Record:
			d.record(e.Call)
		}
	}
}

// deliver encodes a message once, for all its agents: the machine made
// one delivery per set of card sections its agents may see.
func (d *Dispatcher) deliver(dl popstate.Delivery) {
	enc, err := Encode(dl.Msg)
	if err != nil {
		// Only a card holding a value JSON cannot encode (NaN from a
		// source) gets here.
		d.logger.Error("cannot encode message", "type", dl.Msg.Type, "call", dl.Msg.CallID, "agents", len(dl.To), "err", err)
		return
	}
	card, shown := dl.Card()
	shown = shown && d.cfg.OnShown != nil
	for _, a := range dl.To {
		d.cfg.Deliverer.Deliver(a, enc)
		if shown {
			d.cfg.OnShown(a, dl.Msg.CallID, card, dl.Sections)
		}
	}
}

// build runs a card build the machine asked for, under the call's context,
// and hands the card back to the machine.
func (d *Dispatcher) build(b popstate.Build) {
	if d.stopped || d.runCtx == nil {
		return
	}
	c, ok := d.calls[b.CallID]
	if !ok {
		c.ctx, c.cancel = context.WithCancelCause(d.runCtx)
		d.calls[b.CallID] = c
	}
	ctx := c.ctx
	d.wg.Go(func() {
		card := d.buildCard(ctx, b)
		d.mu.Lock()
		defer d.mu.Unlock()
		d.execute(d.state.CardBuilt(b, card, d.now()))
		d.setActive()
	})
}

// buildCard calls the builder (which owns the deadline). A panicking
// builder costs its card, not the daemon.
func (d *Dispatcher) buildCard(ctx context.Context, b popstate.Build) (card screenpop.Card) {
	ev := b.Event
	defer func() {
		if r := recover(); r != nil {
			d.logger.Error("card builder panicked", "call", ev.CallID, "err", r)
			card = screenpop.Card{CallID: ev.CallID, Caller: ev.Caller, Resolution: screenpop.ResolvedFailed, BuiltAt: d.now()}
		}
	}()
	if b.CustomerID != "" {
		return d.cfg.Builder.BuildFor(ctx, ev, b.CustomerID)
	}
	return d.cfg.Builder.Build(ctx, ev)
}

// record writes an ended call to the history. The write must survive the
// daemon shutting down right after the call: it gets its own timeout, not
// the run context's cancellation.
func (d *Dispatcher) record(past screenpop.PastCall) {
	if d.cfg.Recorder == nil {
		return
	}
	ctx := context.WithoutCancel(d.runCtx)
	d.wg.Go(func() {
		ctx, cancel := context.WithTimeoutCause(ctx, d.cfg.RecordTimeout, fmt.Errorf("record call %s: no answer in %s", past.CallID, d.cfg.RecordTimeout))
		defer cancel()
		if err := d.cfg.Recorder.Record(ctx, past); err != nil {
			d.logger.Error("cannot record call in history", "call", past.CallID, "phone", screenpop.MaskPhone(past.Phone), "err", err)
		}
	})
}

// Snapshot implements Requests.
func (d *Dispatcher) Snapshot(agentID string, attach func(pops []PopView)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	attach(d.state.Snapshot(agentID))
}

// Select implements Requests: only an agent holding the call's pop may pick,
// and only among the card's candidates.
func (d *Dispatcher) Select(agent Agent, callID, customerID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	out, err := d.state.Select(AgentRef{ID: agent.ID, Name: agent.Name}, callID, customerID, d.now())
	if err != nil {
		return err
	}
	if d.stopped {
		return &RequestError{Code: popstate.CodeUnavailable, Message: "the server is shutting down"}
	}
	d.logger.Debug("customer selected", "call", callID, "agent", agent.ID, "customer", customerID)
	d.execute(out)
	return nil
}

// Note implements Requests: an agent may write about a call it holds or
// held, during the call and for StaleAfter after it ended.
func (d *Dispatcher) Note(ctx context.Context, agent Agent, callID, text, ref string) error {
	d.mu.Lock()
	phone, text, err := d.state.Note(agent.ID, callID, text)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if d.cfg.Recorder == nil {
		return &RequestError{Code: popstate.CodeUnavailable, Message: "notes are not kept on this server"}
	}
	note := screenpop.Note{Agent: agent.ID, At: d.now(), Text: text}
	ctx, cancel := context.WithTimeoutCause(ctx, d.cfg.RecordTimeout, fmt.Errorf("save note for call %s: no answer in %s", callID, d.cfg.RecordTimeout))
	defer cancel()
	if err := d.cfg.Recorder.AddNote(ctx, phone, callID, note); err != nil {
		d.logger.Error("cannot save note", "call", callID, "agent", agent.ID, "phone", screenpop.MaskPhone(phone), "err", err)
		return &RequestError{Code: popstate.CodeUnavailable, Message: "the note could not be saved; please try again"}
	}
	d.mu.Lock()
	d.execute(d.state.NoteSaved(callID, note, ref, d.now()))
	d.mu.Unlock()
	return nil
}

// Refresh rebuilds the cards of the live calls of phone (E.164) or of
// customerID, and sends every agent holding one a TypeCard message with the
// new card (selected_by empty: nobody picked, the data changed). The
// aggregator calls it (Options.OnRefresh) when a background refresh brought
// newer data or a source system had a customer's cached data evicted.
//
// Refresh never waits for a card: the rebuild runs in its own goroutine,
// one at a time per call. A card picked by an agent (BuildFor) is rebuilt
// for the same customer.
func (d *Dispatcher) Refresh(phone, customerID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped || d.runCtx == nil {
		return
	}
	d.execute(d.state.Refresh(phone, customerID, d.now()))
}

// Knows reports whether callID is a call this dispatcher follows, or one
// that ended recently enough for notes: another daemon forwards a browser's
// request about such a call here (see RequestForwarder).
func (d *Dispatcher) Knows(callID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state.Knows(callID)
}
