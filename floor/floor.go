// Package floor is the supervisors' view of the call-center floor: the
// calls waiting now and for how long, today's answered and abandoned
// calls, the service level, the share of pops on screen before the
// answer, each agent's state and page, and the health of the data sources
// and PBX connections — live over WebSocket at /supervisor/, for the
// supervisor role only. It also counts the floor's Prometheus metrics.
//
// Each daemon knows its part: the calls its dispatcher follows (a Ledger
// fed by pop.Dispatcher), the pages connected to its hub, the agents its
// history holds in wrap-up, the sources it asks. With several daemons on
// one Redis, each publishes that part every second with a short TTL and
// reads everyone's; the floor view merges them, so every daemon shows the
// same floor. The day's counts are kept in Redis per call, each daemon
// adding what it saw bit by bit, so a call two daemons see (both watch its
// PBX) counts once. Without Redis, or while it fails, a daemon shows its
// own part, marked partial. See README.md.
package floor

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/pop"
)

// Pages are the agent pages connected to this daemon: *pop.Hub.
type Pages interface {
	Connected(agentID string) bool
	ConnectedAgents() []string
}

// AgentStates says whether an agent is in wrap-up: the history (every
// history.Store), shared by the daemons when it is PostgreSQL.
type AgentStates interface {
	AgentState(ctx context.Context, agent string, now time.Time) (history.AgentState, error)
}

// Options configures New.
type Options struct {
	// Config is the floor: block, defaults applied, valid.
	Config Config
	// Daemon names this daemon among those sharing Redis (the history's
	// daemon name); required. The floor adds a random part of its own,
	// so that two daemons given one name still share apart.
	Daemon string
	// Sources are the telephony sources' names, LineNames the configured
	// lines' names: their metric series are made up front.
	Sources   []string
	LineNames []string
	// LineName is the configured name of a line (DID), "" when none is:
	// read at every call, so that a reload's lines count at once.
	LineName func(did string) string
	// Pages are this daemon's connected agent pages; required.
	Pages Pages
	// Agents are the configured agents (ID to name), listed on the floor
	// whatever they do: read at every refresh.
	Agents func() map[string]string
	// WrapUps, when set, says which agents are in wrap-up (the history,
	// when wrap-up dispositions are configured).
	WrapUps AgentStates
	// Health says how this daemon's data sources, PBX connections, Redis
	// and history are; read at every refresh, from memory.
	Health func() []Health
	// Share is the shared Redis; nil: this daemon alone.
	Share Share
	// Interval is how often the view is refreshed and shared; default 1s.
	Interval time.Duration
	// StaleAfter forgets a call with no event for this long; default 4h,
	// as the dispatcher's.
	StaleAfter time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Floor keeps the floor view up to date and serves it (Handler). It is
// the dispatcher's pop.CallObserver, the hub's pop.AckSink, and says
// which agents have a page connected on any daemon (Connected).
type Floor struct {
	opts    Options
	id      string // Daemon and a random part: this run, among the daemons
	ledger  *Ledger
	metrics *metrics
	tally   *memoryTally
	loc     *time.Location
	log     *slog.Logger
	now     func() time.Time

	// remote are the agents with a page connected on another daemon, as
	// last read, and until when that holds.
	remote atomic.Pointer[presence]
	// view is the latest floor view, encoded for the pages.
	view atomic.Pointer[[]byte]

	acks chan Ack // to share with the other daemons

	subsMu sync.Mutex
	subs   map[*viewSub]struct{}
	closed bool

	// Run's own.
	pending []Record              // not yet added to the shared counts
	wraps   map[string]WrapUpView // agents in wrap-up, as last read
	checked map[string]time.Time  // when each agent's wrap-up state was last read
	errLog  time.Time             // the last share error logged
}

type presence struct {
	agents map[string]bool
	until  time.Time
}

var (
	_ pop.CallObserver = (*Floor)(nil)
	_ pop.AckSink      = (*Floor)(nil)
)

// New checks opts and returns a Floor; Run keeps it up to date.
func New(opts Options) (*Floor, error) {
	if opts.Daemon == "" {
		return nil, errors.New("floor: Daemon is required")
	}
	if opts.Pages == nil {
		return nil, errors.New("floor: Pages is required")
	}
	opts.Config.ApplyDefaults()
	if err := opts.Config.Validate(); err != nil {
		return nil, errors.Join(errors.New("floor: configuration"), err)
	}
	loc, _ := opts.Config.Location()
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Agents == nil {
		opts.Agents = func() map[string]string { return nil }
	}
	if opts.Health == nil {
		opts.Health = func() []Health { return nil }
	}
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	f := &Floor{
		opts:    opts,
		id:      opts.Daemon + "#" + hex.EncodeToString(rnd[:]),
		tally:   newMemoryTally(),
		loc:     loc,
		log:     opts.Logger,
		now:     time.Now,
		acks:    make(chan Ack, 1024),
		subs:    map[*viewSub]struct{}{},
		wraps:   map[string]WrapUpView{},
		checked: map[string]time.Time{},
	}
	l, err := NewLedger(LedgerConfig{
		ServiceLevel: opts.Config.ServiceLevel(),
		Location:     loc,
		Sources:      opts.Sources,
		Lines:        opts.LineNames,
		LineName:     opts.LineName,
		Connected:    f.Connected,
		StaleAfter:   opts.StaleAfter,
		Registerer:   opts.Registerer,
	})
	if err != nil {
		return nil, err
	}
	f.ledger, f.metrics = l, l.metrics
	f.metrics.daemons.Set(1)
	return f, nil
}

// ObserveCall implements pop.CallObserver.
func (f *Floor) ObserveCall(ev screenpop.CallEvent, at time.Time) { f.ledger.ObserveCall(ev, at) }

// Shown implements pop.AckSink: the acknowledgement counts here when this
// daemon follows the call and the agent holds it; with Redis, it goes to
// the other daemons too (unless it was a repeat here), so that a daemon
// watching the same PBX, or the one that saw the call, counts it as well.
func (f *Floor) Shown(agentID, callID, stage string, at time.Time) {
	known, counted := f.ledger.shown(agentID, callID, stage, at)
	if f.opts.Share == nil || (known && !counted) {
		return
	}
	select {
	case f.acks <- Ack{From: f.id, Agent: agentID, CallID: callID, Stage: stage, At: at}:
	default:
		f.metrics.shareErrors.WithLabelValues(opPublish).Inc() // a flood: the queue is full
	}
}

// Connected reports whether agentID has an agent page connected on this
// daemon or, as last read from Redis, on another.
func (f *Floor) Connected(agentID string) bool {
	if f.opts.Pages.Connected(agentID) {
		return true
	}
	p := f.remote.Load()
	return p != nil && p.agents[agentID] && f.now().Before(p.until)
}

// Ledger is the floor's ledger (for tests and tools).
func (f *Floor) Ledger() *Ledger { return f.ledger }

// viewTTL is how long a daemon's published view stands for it: a daemon
// that stopped (or lost Redis) drops out of the others' views after it.
func (f *Floor) viewTTL() time.Duration { return max(5*f.opts.Interval, 5*time.Second) }

// changeGap is the least time between two refreshes a change brings
// about: a burst of call events makes one refresh, not hundreds.
const changeGap = 100 * time.Millisecond

// Run refreshes the view every Interval, and soon after a call changed,
// until ctx ends; with a Share it also carries acknowledgements between
// the daemons.
func (f *Floor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if s := f.opts.Share; s != nil {
		wg.Go(func() { f.publishAcks(ctx, s) })
		wg.Go(func() { f.receiveAcks(ctx, s) })
	}
	tick := time.NewTicker(f.opts.Interval)
	defer tick.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	var soon <-chan time.Time
	f.refresh(ctx)
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			f.closeSubs()
			return nil
		case <-tick.C:
		case <-f.ledger.Changed():
			if wait := changeGap - time.Since(last); wait > 0 {
				if soon == nil {
					soon = time.After(wait)
				}
				continue
			}
		case <-soon:
		case <-sweep.C:
			f.ledger.Sweep(f.now())
		}
		soon = nil
		f.refresh(ctx)
		last = time.Now()
	}
}

// refresh makes the floor view anew and sends it to the supervisor pages.
func (f *Floor) refresh(ctx context.Context) {
	now := f.now()
	local := now.In(f.loc)
	today := local.Format(time.DateOnly)
	records := f.ledger.TakeRecords()
	f.tally.add(local, records)
	own := DaemonView{
		ID:      f.id,
		Daemon:  f.opts.Daemon,
		At:      now,
		Calls:   f.ledger.Calls(),
		Pages:   f.opts.Pages.ConnectedAgents(),
		WrapUps: f.wrapUps(ctx, now),
		Health:  f.opts.Health(),
	}
	in := mergeInput{now: now, day: today, serviceLevel: f.opts.Config.ServiceLevelSeconds,
		views: []DaemonView{own}, counts: f.tally.counts(today), names: f.opts.Agents()}
	if s := f.opts.Share; s != nil {
		f.pending = append(f.pending, records...)
		if over := len(f.pending) - maxRecords; over > 0 {
			f.pending = slices.Delete(f.pending, 0, over)
		}
		others, counts, err := f.share(ctx, s, own, today)
		if err != nil {
			in.partial = true
			f.shareFailed(err)
		} else {
			in.views = append(in.views, others...)
			in.counts = counts
		}
	}
	view, g := merge(in)
	f.setGauges(view, g)
	data, err := json.Marshal(viewMessage{Type: "floor", Data: view})
	if err != nil {
		f.log.Error("cannot encode the floor view", "err", err)
		return
	}
	f.view.Store(&data)
	f.broadcast(data)
}

// share publishes this daemon's view and what it adds to the day's
// counts, and reads every other daemon's view and the day's counts.
func (f *Floor) share(ctx context.Context, s Share, own DaemonView, today string) ([]DaemonView, Counts, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, max(f.opts.Interval, time.Second), errors.New("the shared Redis did not answer within the floor's refresh"))
	defer cancel()
	if len(f.pending) > 0 {
		if err := s.Add(ctx, f.pending); err != nil {
			f.metrics.shareErrors.WithLabelValues(opPublish).Inc()
			return nil, Counts{}, err
		}
		f.pending = nil
	}
	if err := s.Publish(ctx, own, f.viewTTL()); err != nil {
		f.metrics.shareErrors.WithLabelValues(opPublish).Inc()
		return nil, Counts{}, err
	}
	views, err := s.Views(ctx)
	if err != nil {
		f.metrics.shareErrors.WithLabelValues(opRead).Inc()
		return nil, Counts{}, err
	}
	counts, err := s.Counts(ctx, today)
	if err != nil {
		f.metrics.shareErrors.WithLabelValues(opRead).Inc()
		return nil, Counts{}, err
	}
	others := slices.DeleteFunc(views, func(v DaemonView) bool { return v.ID == f.id })
	pages := map[string]bool{}
	for _, v := range others {
		for _, a := range v.Pages {
			pages[a] = true
		}
	}
	f.remote.Store(&presence{agents: pages, until: f.now().Add(f.viewTTL())})
	f.metrics.daemons.Set(float64(len(others) + 1))
	return others, counts, nil
}

// shareFailed logs a failing Redis once a minute; the view says partial.
func (f *Floor) shareFailed(err error) {
	f.metrics.daemons.Set(1)
	if now := time.Now(); now.Sub(f.errLog) >= time.Minute {
		f.errLog = now
		f.log.Warn("floor view: the shared Redis fails; the supervisor page shows this daemon's part only (repeats are not logged for a minute)", "err", err)
	}
}

// settleGrace is how long after a handled call ended the history may
// still say "ready" because the call is not written yet.
const settleGrace = 10 * time.Second

// wrapCheckEvery is how often one agent's wrap-up state is read again: a
// wrap-up lasts tens of seconds, and a history in PostgreSQL is asked once
// per agent per read.
const wrapCheckEvery = 2 * time.Second

// wrapUps asks the history which agents who ended a call lately are in
// wrap-up: each agent at most every wrapCheckEvery (at once after a new
// call of theirs ended), the longest unread first, within a part of the
// refresh's time; an agent not read keeps their last known state.
func (f *Floor) wrapUps(ctx context.Context, now time.Time) []WrapUpView {
	if f.opts.WrapUps == nil {
		return nil
	}
	handled := f.ledger.Handled()
	for a := range f.wraps {
		if _, ok := handled[a]; !ok {
			delete(f.wraps, a)
		}
	}
	for a := range f.checked {
		if _, ok := handled[a]; !ok {
			delete(f.checked, a)
		}
	}
	var due []string
	for a, h := range handled {
		if last, ok := f.checked[a]; !ok || now.Sub(last) >= wrapCheckEvery || h.Ended.After(last) {
			due = append(due, a)
		}
	}
	slices.SortFunc(due, func(x, y string) int {
		return cmp.Or(f.checked[x].Compare(f.checked[y]), strings.Compare(x, y))
	})
	ctx, cancel := context.WithTimeout(ctx, f.opts.Interval/2)
	defer cancel()
	for _, a := range due {
		if ctx.Err() != nil {
			break
		}
		h := handled[a]
		st, err := f.opts.WrapUps.AgentState(ctx, a, now)
		switch {
		case err != nil:
			// As last known; tried again next time.
		case !st.Ready:
			f.checked[a] = now
			f.wraps[a] = WrapUpView{Agent: a, CallID: st.CallID, Until: st.Until}
		case now.Sub(h.Ended) < settleGrace:
			// Ready, says the history, maybe because the call is not
			// written yet: asked again next time.
			delete(f.wraps, a)
		default:
			delete(f.wraps, a)
			delete(f.checked, a)
			f.ledger.Settled(a, h.CallID)
		}
	}
	out := slices.Collect(maps.Values(f.wraps))
	slices.SortFunc(out, func(x, y WrapUpView) int { return strings.Compare(x.Agent, y.Agent) })
	return out
}

// setGauges sets the floor's gauges from the view: every source this
// daemon knows gets a value, 0 when none of its calls waits.
func (f *Floor) setGauges(v View, g gauges) {
	for s, n := range g.agents {
		f.metrics.agents.WithLabelValues(s).Set(float64(n))
	}
	f.ledger.mu.Lock()
	sources := slices.Collect(maps.Keys(f.ledger.sources))
	f.ledger.mu.Unlock()
	for s := range g.waiting {
		if !slices.Contains(sources, s) {
			sources = append(sources, s)
		}
	}
	for _, s := range sources {
		f.metrics.ringing.WithLabelValues(s).Set(float64(g.waiting[s]))
		f.metrics.longestWait.WithLabelValues(s).Set(g.longest[s])
	}
}

// publishAcks hands this daemon's acknowledgements to the others.
func (f *Floor) publishAcks(ctx context.Context, s Share) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-f.acks:
			actx, cancel := context.WithTimeout(ctx, time.Second)
			if err := s.PublishAck(actx, a); err != nil && ctx.Err() == nil {
				f.metrics.shareErrors.WithLabelValues(opPublish).Inc()
			}
			cancel()
		}
	}
}

// receiveAcks applies the other daemons' acknowledgements, listening again
// after a failure.
func (f *Floor) receiveAcks(ctx context.Context, s Share) {
	for ctx.Err() == nil {
		err := s.Acks(ctx, func(a Ack) {
			if a.From != f.id {
				f.ledger.shown(a.Agent, a.CallID, a.Stage, a.At)
			}
		}, func() { f.metrics.shareErrors.WithLabelValues(opAck).Inc() })
		if ctx.Err() != nil {
			return
		}
		f.log.Debug("floor: listening to other daemons' acknowledgements again", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// viewMessage is what the supervisor page gets.
type viewMessage struct {
	Type string `json:"type"`
	Data View   `json:"data"`
}

// viewSub is one supervisor page's slot for the latest view: a page that
// reads slowly gets the newest view, never a backlog.
type viewSub struct{ ch chan []byte }

func (f *Floor) subscribe() (*viewSub, bool) {
	f.subsMu.Lock()
	defer f.subsMu.Unlock()
	if f.closed {
		return nil, false
	}
	s := &viewSub{ch: make(chan []byte, 1)}
	if v := f.view.Load(); v != nil {
		s.ch <- *v
	}
	f.subs[s] = struct{}{}
	f.metrics.connections.Set(float64(len(f.subs)))
	return s, true
}

func (f *Floor) unsubscribe(s *viewSub) {
	f.subsMu.Lock()
	defer f.subsMu.Unlock()
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		f.metrics.connections.Set(float64(len(f.subs)))
	}
}

func (f *Floor) broadcast(data []byte) {
	f.subsMu.Lock()
	defer f.subsMu.Unlock()
	for s := range f.subs {
		select {
		case <-s.ch: // an older view nobody read: replaced
		default:
		}
		s.ch <- data
	}
}

// closeSubs ends every supervisor page's stream: the daemon stops.
func (f *Floor) closeSubs() {
	f.subsMu.Lock()
	defer f.subsMu.Unlock()
	f.closed = true
	for s := range f.subs {
		close(s.ch)
		delete(f.subs, s)
	}
	f.metrics.connections.Set(0)
}

// Current is the latest floor view (before Run's first refresh, an
// empty one).
func (f *Floor) Current() View {
	var m viewMessage
	if v := f.view.Load(); v != nil {
		if err := json.Unmarshal(*v, &m); err == nil {
			return m.Data
		}
	}
	return View{Waiting: []WaitingCall{}, Agents: []AgentView{}, Health: []Health{}}
}
