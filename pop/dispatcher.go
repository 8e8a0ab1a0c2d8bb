package pop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
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

// ProgressiveBuilder is what a CardBuilder may offer besides (the
// *aggregator.Aggregator does): building a card while telling update what
// it holds as soon as it is known — the card once the caller is resolved,
// its sections still asked in status loading, then each of them once
// settled and the earlier calls once read (screenpop.CardUpdate) — and
// returning the complete card. update is called from the goroutine that
// called BuildProgressive, never after it returned. With such a Builder,
// a call's first card and an agent's pick go out as soon as the caller is
// resolved, each section following as a section message, then the
// complete card; a refresh is still sent whole.
type ProgressiveBuilder interface {
	BuildProgressive(ctx context.Context, call screenpop.CallEvent, customerID string, update func(screenpop.CardUpdate)) screenpop.Card
}

// CallRecorder keeps the history of calls and their notes.
// *aggregator.MemoryHistory implements it, and so does every history.Store.
//
// Agents write notes while they talk, so AddNote for a call may come before
// Record of that call; an implementation must keep such notes and show
// them with the call once it is recorded.
type CallRecorder interface {
	Record(ctx context.Context, c screenpop.PastCall) error
	AddNote(ctx context.Context, phone, callID string, n screenpop.Note) error
}

// CallHistory is a CallRecorder that keeps everything of a call
// (history.Store is one). When the Recorder is a CallHistory, the
// dispatcher records the whole call (RecordCall: customer, line, agents
// rung, who answered, transfers, the times of ring, pop, answer and end),
// also a withheld caller's, keeps notes by call with their IDs (SaveNote,
// so a withheld caller's call has notes too), lets their authors edit them
// (EditNote keeps the original), and takes wrap-ups.
type CallHistory interface {
	CallRecorder
	RecordCall(ctx context.Context, c history.Call) error
	// SaveNote returns once the note is committed.
	SaveNote(ctx context.Context, n history.NewNote) (screenpop.Note, error)
	EditNote(ctx context.Context, e history.NoteEdit) error
	Notes(ctx context.Context, callID string) ([]screenpop.Note, error)
	WrapUp(ctx context.Context, w history.WrapUp) error
	AgentState(ctx context.Context, agent string, now time.Time) (history.AgentState, error)
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
	// EditNote changes the text of a note the agent wrote about callID
	// (the original is kept); the agent gets TypeNoteSaved with ref.
	EditNote(ctx context.Context, agent Agent, callID, noteID, text, ref string) error
	// WrapUp keeps the disposition the agent chose for callID; the agent
	// gets TypeWrappedUp with ref.
	WrapUp(ctx context.Context, agent Agent, callID, code, ref string) error
	// Search looks the directory through for the customer of callID's
	// unknown caller; the agent gets TypeSearchResults with ref.
	Search(ctx context.Context, agent Agent, callID, text, ref string) error
	// Link links callID's number to customerID, one the agent's search
	// found; the card built for them arrives as a TypeCard message.
	Link(ctx context.Context, agent Agent, callID, customerID, ref string) error
}

// Greeter is what a Requests may add: the hello a page gets first on
// every connection (TypeHello), when there is anything to tell it. The
// Dispatcher is one when its Recorder is a CallHistory: it tells that
// notes are kept by call, the wrap-up asked of agents and the agent's
// wrap-up state. It may do I/O, bounded by ctx; ok false sends nothing.
type Greeter interface {
	Hello(ctx context.Context, agent Agent) (hello HelloData, ok bool)
}

// DispatcherConfig configures NewDispatcher.
type DispatcherConfig struct {
	Builder CardBuilder // required
	// Recorder stores ended calls and notes; nil: no history, notes refused.
	// A CallHistory (history.Store) gets the whole call, notes by call,
	// note edits and wrap-ups; a plain CallRecorder only calls with a
	// number and their notes.
	Recorder  CallRecorder
	Deliverer Deliverer // required
	// RecordTimeout bounds Record and AddNote; default 5s.
	RecordTimeout time.Duration
	// WrapUp is the wrap-up asked of agents after a handled call (the
	// history's dispositions, wrapup_required, wrapup_time), told to
	// every page in its hello. No dispositions: no wrap-up, no hello.
	// Needs a CallHistory Recorder.
	WrapUp WrapUpSettings
	// Directory lets an agent search the customer directory for an
	// unknown caller and link the number to the customer found
	// (*aggregator.Aggregator); nil: no search (search.go).
	Directory CustomerDirectory
	// SearchesPerMinute bounds each agent's searches; default
	// DefaultSearchesPerMinute, with bursts of searchBurst.
	SearchesPerMinute int
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
	// OnShown, when set, is called for every message with a card or a
	// part of one (pop, card, section, history) delivered to an agent,
	// with the card as the agent got it and the names of the sections
	// whose content it showed: what the access log records. A card sent
	// while it is built names only its settled sections (a loading one
	// shows nothing of its sources); a section message comes with the
	// card's head (caller, customer) and its one section, a history
	// message with the head and the earlier calls. Once per agent and
	// message, whatever the agent's number of tabs; not again for the
	// snapshots and replays that show a page what its agent was sent. It is
	// called with the dispatcher's state locked, like Deliver: it must not
	// block, nor modify card or sections (other agents share them).
	OnShown func(agentID, callID string, card screenpop.Card, sections []string)
	// Observer, when set, hears every call event the dispatcher applies,
	// in the order applied, with the daemon's time: where every telephony
	// source meets, what the floor view counts (floor.Ledger). It is
	// called with the dispatcher's state locked: it must not block.
	Observer CallObserver
	// Connected says whether an agent has a page open to take a pop, on
	// any daemon. A pop to an agent without one was not delivered, so
	// screenpop_pop_latency_seconds does not measure it (the floor counts
	// such a ring as blind). It is asked with the dispatcher's state
	// locked: it must answer from memory. nil: the Deliverer's own
	// Connected when it has one (the Hub), else every pop is measured.
	Connected func(agentID string) bool
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
	history CallHistory // the Recorder, when it is one
	names   func(agentID string) string
	logger  *slog.Logger
	metrics *dispatcherMetrics
	now     func() time.Time

	// The queue is separate from mu so that HandleCall never waits for
	// whatever holds mu (a Deliver, a snapshot).
	events *queue.Bounded[screenpop.CallEvent]
	qdone  atomic.Bool
	shed   shedLog

	mu    sync.Mutex
	state *popstate.Machine
	// enc encodes the messages of one input (execute): the audiences of
	// a card share the bytes of the sections they all get.
	enc     popstate.Encoder
	runCtx  context.Context
	stopped bool
	// calls are the contexts of the calls with a card built: every build
	// for a call (first card, pick, refresh) runs under its context, which
	// is cancelled with a cause when the call ends or is dropped, so that
	// nothing keeps asking the company's systems about a call that is over.
	calls map[string]callContext
	wg    sync.WaitGroup // builds and records in flight

	searches searchLimiter // each agent's searches (search.go)
}

type callContext struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

var (
	_ screenpop.CallSink = (*Dispatcher)(nil)
	_ Requests           = (*Dispatcher)(nil)
	_ Greeter            = (*Dispatcher)(nil)
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
	if cfg.Connected == nil {
		if c, ok := cfg.Deliverer.(interface{ Connected(string) bool }); ok {
			cfg.Connected = c.Connected
		}
	}
	hist, _ := cfg.Recorder.(CallHistory)
	if len(cfg.WrapUp.Dispositions) > 0 && hist == nil {
		return nil, errors.New("pop: dispatcher: wrap-up dispositions need a Recorder that keeps wrap-ups (a history.Store)")
	}
	return &Dispatcher{
		cfg:     cfg,
		history: hist,
		names:   names,
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

// CallObserver hears the call events a Dispatcher applies (see
// DispatcherConfig.Observer).
type CallObserver interface {
	ObserveCall(ev screenpop.CallEvent, at time.Time)
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
	now := d.now()
	if d.cfg.Observer != nil {
		d.cfg.Observer.ObserveCall(ev, now)
	}
	out := d.state.Apply(ev, now)
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
	if len(out.Deliveries) > 0 {
		defer d.enc.Reset()
	}
	for _, dl := range out.Deliveries {
		d.deliver(dl)
	}
	for _, l := range out.Latencies {
		if d.cfg.Connected == nil || d.cfg.Connected(l.Agent) {
			d.metrics.latency.Observe(l.Took.Seconds())
		}
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
			d.logOutcome(e)
			d.record(e)
		}
	}
}

// deliver encodes a message once, for all its agents: the machine made
// one delivery per set of card sections its agents may see, and the
// sections they share are encoded once too (d.enc).
func (d *Dispatcher) deliver(dl popstate.Delivery) {
	enc, err := encodeWith(&d.enc, dl.Msg)
	if err != nil {
		// Only a card holding a value JSON cannot encode (NaN from a
		// source) gets here.
		d.logger.Error("cannot encode message", "type", dl.Msg.Type, "call", dl.Msg.CallID, "agents", len(dl.To), "err", err)
		return
	}
	card, shown := dl.Card()
	shown = shown && d.cfg.OnShown != nil
	for _, a := range dl.To {
		// Logged before it is sent: no browser holds a card the access
		// log has not heard of.
		if shown {
			d.cfg.OnShown(a, dl.Msg.CallID, card, dl.Sections)
		}
		d.cfg.Deliverer.Deliver(a, enc)
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
	if pb, ok := d.cfg.Builder.(ProgressiveBuilder); ok && b.Purpose != popstate.BuildRefresh {
		// Each step goes to the machine as it comes: the first pop does not
		// wait for the slowest source.
		return pb.BuildProgressive(ctx, ev, b.CustomerID, func(u screenpop.CardUpdate) {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.execute(d.state.CardProgress(b, u, d.now()))
		})
	}
	if b.CustomerID != "" {
		return d.cfg.Builder.BuildFor(ctx, ev, b.CustomerID)
	}
	return d.cfg.Builder.Build(ctx, ev)
}

// record writes an ended call to the history: the whole call to a
// CallHistory, the card's view of it to a plain CallRecorder (which keeps
// calls by number: a call without one is not recorded there). The write
// must survive the daemon shutting down right after the call: it gets its
// own timeout, not the run context's cancellation.
func (d *Dispatcher) record(r popstate.Record) {
	past := r.Call
	if d.cfg.Recorder == nil || (d.history == nil && past.Phone == "") {
		return
	}
	ctx := context.WithoutCancel(d.runCtx)
	d.wg.Go(func() {
		ctx, cancel := context.WithTimeoutCause(ctx, d.cfg.RecordTimeout, fmt.Errorf("record call %s: no answer in %s", past.CallID, d.cfg.RecordTimeout))
		defer cancel()
		var err error
		if d.history != nil {
			err = d.history.RecordCall(ctx, historyCall(r))
		} else {
			err = d.cfg.Recorder.Record(ctx, past)
		}
		if err != nil {
			d.logger.Error("cannot record call in history", "call", past.CallID, "phone", screenpop.MaskPhone(past.Phone), "err", err)
		}
	})
}

// historyCall is everything the machine knows of an ended call, as the
// history keeps it.
func historyCall(r popstate.Record) history.Call {
	p := r.Call
	c := history.Call{
		ID:         p.CallID,
		Phone:      p.Phone,
		Withheld:   r.Withheld,
		CustomerID: p.CustomerID,
		DID:        p.DID,
		Rung:       r.Rung,
		AnsweredBy: r.AnsweredBy,
		Agent:      p.Agent,
		AgentName:  p.AgentName,
		Outcome:    p.Outcome,
		RingAt:     p.At,
		PopAt:      r.PoppedAt,
		AnswerAt:   r.AnsweredAt,
		EndAt:      r.EndedAt,
		Source:     r.Source,
	}
	for _, h := range r.Transfers {
		c.Transfers = append(c.Transfers, history.Transfer{From: h.From, To: h.To, At: h.At, Attended: h.Attended})
	}
	return c
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
// held, during the call and for StaleAfter after it ended. The agent is
// told "saved" only once the history has committed the note.
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
	if d.history == nil && phone == "" {
		return &RequestError{Code: popstate.CodeBadRequest, Message: "notes are kept per phone number on this server, and this caller has none"}
	}
	note := screenpop.Note{Agent: agent.ID, AgentName: d.agentName(agent), At: d.now(), Text: text}
	ctx, cancel := context.WithTimeoutCause(ctx, d.cfg.RecordTimeout, fmt.Errorf("save note for call %s: no answer in %s", callID, d.cfg.RecordTimeout))
	defer cancel()
	if d.history != nil {
		note, err = d.history.SaveNote(ctx, history.NewNote{CallID: callID, Phone: phone, Agent: note.Agent, AgentName: note.AgentName, At: note.At, Text: text})
	} else {
		err = d.cfg.Recorder.AddNote(ctx, phone, callID, note)
	}
	if err != nil {
		d.logger.Error("cannot save note", "call", callID, "agent", agent.ID, "phone", screenpop.MaskPhone(phone), "err", err)
		return &RequestError{Code: popstate.CodeUnavailable, Message: "the note could not be saved; please try again"}
	}
	d.mu.Lock()
	d.execute(d.state.NoteSaved(callID, note, ref, d.now()))
	d.mu.Unlock()
	return nil
}

// EditNote implements Requests: an agent who may write about the call
// may change the text of a note of theirs; the history keeps every
// version. Like a note, the edit is confirmed once committed.
func (d *Dispatcher) EditNote(ctx context.Context, agent Agent, callID, noteID, text, ref string) error {
	d.mu.Lock()
	_, text, err := d.state.Note(agent.ID, callID, text)
	d.mu.Unlock()
	if err != nil {
		return err
	}
	if d.history == nil {
		return &RequestError{Code: popstate.CodeUnavailable, Message: "notes cannot be changed on this server"}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, d.cfg.RecordTimeout, fmt.Errorf("edit note of call %s: no answer in %s", callID, d.cfg.RecordTimeout))
	defer cancel()
	notes, err := d.history.Notes(ctx, callID)
	if err != nil {
		d.logger.Error("cannot read the notes of a call", "call", callID, "err", err)
		return &RequestError{Code: popstate.CodeUnavailable, Message: "the note could not be saved; please try again"}
	}
	i := slices.IndexFunc(notes, func(n screenpop.Note) bool { return n.ID == noteID && noteID != "" })
	switch {
	case i < 0:
		return &RequestError{Code: popstate.CodeBadRequest, Message: "that note is not one of this call's"}
	case notes[i].Agent != agent.ID:
		return &RequestError{Code: popstate.CodeForbidden, Message: "only the note's author may change it"}
	}
	note := notes[i]
	note.Text, note.EditedAt, note.EditedBy = text, history.Time(d.now()), agent.ID
	if err := d.history.EditNote(ctx, history.NoteEdit{NoteID: noteID, Agent: agent.ID, AgentName: d.agentName(agent), At: note.EditedAt, Text: text}); err != nil {
		d.logger.Error("cannot save a note's edit", "call", callID, "agent", agent.ID, "err", err)
		return &RequestError{Code: popstate.CodeUnavailable, Message: "the note could not be saved; please try again"}
	}
	d.mu.Lock()
	d.execute(d.state.NoteSaved(callID, note, ref, d.now()))
	d.mu.Unlock()
	return nil
}

// WrapUp implements Requests: an agent who held the call (during it and
// for StaleAfter after), or whose wrap-up the history says is pending for
// it (the page reloaded, the daemon restarted), chooses its disposition
// among the configured ones; choosing again replaces it.
func (d *Dispatcher) WrapUp(ctx context.Context, agent Agent, callID, code, ref string) error {
	if d.history == nil || len(d.cfg.WrapUp.Dispositions) == 0 {
		return &RequestError{Code: popstate.CodeUnavailable, Message: "no wrap-up dispositions are configured on this server"}
	}
	i := slices.IndexFunc(d.cfg.WrapUp.Dispositions, func(dp history.Disposition) bool { return dp.Code == code })
	if i < 0 {
		return &RequestError{Code: popstate.CodeBadRequest, Message: fmt.Sprintf("%q is not one of the wrap-up dispositions", code)}
	}
	disp := d.cfg.WrapUp.Dispositions[i]
	ctx, cancel := context.WithTimeoutCause(ctx, d.cfg.RecordTimeout, fmt.Errorf("wrap-up of call %s: no answer in %s", callID, d.cfg.RecordTimeout))
	defer cancel()
	d.mu.Lock()
	err := d.state.WrapUp(agent.ID, callID)
	d.mu.Unlock()
	if re := (*RequestError)(nil); errors.As(err, &re) && re.Code == popstate.CodeUnknownCall {
		if st, serr := d.history.AgentState(ctx, agent.ID, d.now()); serr == nil && st.CallID == callID && callID != "" {
			err = nil
		}
	}
	if err != nil {
		return err
	}
	if err := d.history.WrapUp(ctx, history.WrapUp{CallID: callID, Agent: agent.ID, Code: code, At: d.now()}); err != nil {
		d.logger.Error("cannot keep a wrap-up", "call", callID, "agent", agent.ID, "code", code, "err", err)
		return &RequestError{Code: popstate.CodeUnavailable, Message: "the wrap-up could not be saved; please try again"}
	}
	d.mu.Lock()
	d.execute(d.state.WrappedUp(agent.ID, callID, WrappedUpData{Code: disp.Code, Label: disp.Label, Ref: ref}, d.now()))
	d.mu.Unlock()
	return nil
}

// Hello implements Greeter: with a CallHistory, a page is told that a
// call without a number takes notes too, and, with wrap-up dispositions
// configured, the dispositions, whether one is required, the after-call
// time, and the agent's wrap-up state as the history says (nil when it
// could not be read by ctx's end).
func (d *Dispatcher) Hello(ctx context.Context, agent Agent) (HelloData, bool) {
	if d.history == nil {
		return HelloData{}, false
	}
	hello := HelloData{Agent: AgentRef{ID: agent.ID, Name: d.agentName(agent)}, NotesByCall: true}
	hello.Search = d.searchLimits()
	if len(d.cfg.WrapUp.Dispositions) == 0 {
		return hello, true
	}
	settings := d.cfg.WrapUp
	hello.WrapUp = &settings
	if st, err := d.history.AgentState(ctx, agent.ID, d.now()); err == nil {
		hello.State = &st
	} else {
		d.logger.Info("cannot read the agent's wrap-up state for the page's hello", "agent", agent.ID, "err", err)
	}
	return hello, true
}

// agentName is the agent's display name: the configured one, else the
// one their sign-in gave.
func (d *Dispatcher) agentName(agent Agent) string {
	if d.names != nil {
		if n := d.names(agent.ID); n != "" {
			return n
		}
	}
	return agent.Name
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
