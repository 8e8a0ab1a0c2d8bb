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
// same floor (soon after a change while a supervisor page is open on any
// daemon). With no supervisor page open here, no view is made: the
// floor's gauges are made at every scrape, the view when asked. The day's
// counts are kept in Redis per call, each daemon adding what it saw bit by
// bit, so a call two daemons see (both watch its PBX) counts once. Without
// Redis, or while it fails, a daemon shows its own part, marked partial.
// See README.md.
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

	acks chan Ack // to share with the other daemons

	subsMu   sync.Mutex
	subs     map[*viewSub]struct{}
	closed   bool
	watchers atomic.Int64 // len(subs): supervisor pages open here

	// mu guards what a view is made of besides the ledger and the pages:
	// Run writes it, Current, new supervisor pages and scrapes read it.
	mu            sync.Mutex
	pending       []Record     // not yet added to the shared counts
	wrapList      []WrapUpView // agents in wrap-up, as last read, by agent
	wrapVersion   uint64       // counts wrapList's changes
	others        []DaemonView // the other daemons' views, as last read
	othersWatched bool         // a supervisor page is open on another daemon, as last read
	counts        Counts       // countsDay's counts in Redis, as last read
	countsDay     string
	partial       bool // with a Share: the others' views are not read (yet, or Redis failed at the last try)

	// gaugeMu makes each setting of the floor's gauges (a scrape,
	// Current) whole: the last set is of the latest inputs.
	gaugeMu sync.Mutex

	// Run's own.
	wraps   map[string]WrapUpView // agents in wrap-up, as last read
	checked map[string]time.Time  // when each agent's wrap-up state was last read
	errLog  time.Time             // the last share error logged
	own     ownState              // this daemon's view as last shared
	sent    viewSig               // what the view last sent to the pages was made of
	sentOK  bool
}

// ownState is what this daemon's view held when last shared, and its
// version.
type ownState struct {
	ok      bool
	version uint64
	calls   uint64 // the ledger's version
	wraps   uint64
	pages   []string
	health  []Health
	watched bool
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
		partial: opts.Share != nil,
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
	hook := f.scrapeGauges
	f.metrics.floor.hook.Store(&hook)
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
// the daemons. While no supervisor page is open here (nor, with a Share,
// on another daemon), a change makes no view: Run keeps the day's counts,
// the wrap-ups and, every Interval, the share; the gauges are made at
// every scrape (scrapeGauges), the view when asked (Current).
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
	// While a refresh is due soon, changes are not listened for: on a busy
	// floor every call event signals one, and waking for each only to
	// wait on costs the processors the calls need.
	var soon <-chan time.Time
	changed := f.ledger.Changed()
	f.update(ctx, true)
	last := time.Now()
	for {
		every := false
		select {
		case <-ctx.Done():
			wg.Wait()
			f.closeSubs()
			return nil
		case <-tick.C:
			every = true
		case <-changed:
			if wait := changeGap - time.Since(last); wait > 0 {
				soon, changed = time.After(wait), nil
				continue
			}
		case <-soon:
		case <-sweep.C:
			f.ledger.Sweep(f.now())
		}
		soon, changed = nil, f.ledger.Changed()
		// A change signalled until now is in this refresh.
		select {
		case <-changed:
		default:
		}
		f.update(ctx, every)
		last = time.Now()
	}
}

// refresh is Run's step after a change.
func (f *Floor) refresh(ctx context.Context) { f.update(ctx, false) }

// update is one step of Run: every Interval (tick) or after a change. It
// adds what the calls added to the day's counts, reads the wrap-ups, and
// shares this daemon's view: every Interval, and after a change while a
// supervisor page is open on any daemon (reading the others' only when
// one is open here). With a page open here it sends the view anew, when
// anything it is made of changed.
func (f *Floor) update(ctx context.Context, tick bool) {
	now := f.now()
	f.flushRecords(now, tick)
	f.setWrapUps(f.wrapUps(ctx, now))
	watched := f.watchers.Load() > 0
	if s := f.opts.Share; s != nil {
		f.mu.Lock()
		othersWatched := f.othersWatched
		f.mu.Unlock()
		if tick || watched || othersWatched {
			f.share(ctx, s, now, watched, tick || watched)
		}
	}
	if !watched {
		return
	}
	in, sig := f.inputs(now, false)
	if f.sentOK && sig.equal(&f.sent) {
		return // the pages have it: their waits tick on their own clocks
	}
	data, err := encodeView(in)
	if err != nil {
		f.log.Error("cannot encode the floor view", "err", err)
		return
	}
	f.sent, f.sentOK = sig, true
	f.broadcast(data)
}

// flushRecords takes what the ledger's calls added to the day's counts
// since the last time: into this daemon's tally, and to add to the shared
// counts.
func (f *Floor) flushRecords(now time.Time, always bool) {
	records := f.ledger.TakeRecords()
	if len(records) == 0 && !always {
		return
	}
	f.tally.add(now.In(f.loc), records) // forgets the days gone, too
	if f.opts.Share == nil || len(records) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, records...)
	if over := len(f.pending) - maxRecords; over > 0 {
		f.pending = slices.Delete(f.pending, 0, over)
	}
}

// setWrapUps keeps the wrap-ups as last read.
func (f *Floor) setWrapUps(w []WrapUpView) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.EqualFunc(w, f.wrapList, func(a, b WrapUpView) bool {
		return a.Agent == b.Agent && a.CallID == b.CallID && a.Until.Equal(b.Until)
	}) {
		f.wrapList = w
		f.wrapVersion++
	}
}

// inputs are what the floor view at now is made of: this daemon's calls
// and pages as they are, the rest as last read. sig is what says whether
// the view changed (not made for gauges only).
func (f *Floor) inputs(now time.Time, gaugesOnly bool) (mergeInput, viewSig) {
	calls, version := f.ledger.snapshot()
	day := now.In(f.loc).Format(time.DateOnly)
	own := DaemonView{ID: f.id, Daemon: f.opts.Daemon, At: now, Calls: calls, Pages: f.opts.Pages.ConnectedAgents()}
	if !gaugesOnly {
		own.Health = f.opts.Health()
	}
	in := mergeInput{now: now, day: day, serviceLevel: f.opts.Config.ServiceLevelSeconds,
		names: f.opts.Agents(), gaugesOnly: gaugesOnly}
	f.mu.Lock()
	own.WrapUps = f.wrapList
	wraps := f.wrapVersion
	in.views = append(make([]DaemonView, 0, 1+len(f.others)), own)
	in.views = append(in.views, f.others...)
	in.partial = f.partial
	shared := f.opts.Share != nil && !f.partial && f.countsDay == day
	in.counts = f.counts
	f.mu.Unlock()
	if !shared {
		in.counts = f.tally.counts(day)
	}
	if gaugesOnly {
		return in, viewSig{}
	}
	sig := viewSig{day: day, calls: version, wraps: wraps, counts: in.counts, partial: in.partial,
		pages: own.Pages, health: own.Health, names: in.names}
	for _, v := range in.views[1:] {
		o := otherSig{id: v.ID, version: v.Version}
		if v.Version == 0 {
			o.at = v.At // a daemon that does not say: changed at every read
		}
		sig.others = append(sig.others, o)
	}
	return in, sig
}

// viewSig is what a floor view is made of, but for the time: when it did
// not change, neither did the view, but for the waits, which the page
// ticks on its own.
type viewSig struct {
	day     string
	calls   uint64 // the ledger's version
	wraps   uint64
	counts  Counts
	partial bool
	pages   []string
	health  []Health
	names   map[string]string
	others  []otherSig
}

type otherSig struct {
	id      string
	version uint64
	at      time.Time
}

func (s *viewSig) equal(o *viewSig) bool {
	return s.day == o.day && s.calls == o.calls && s.wraps == o.wraps && s.counts == o.counts && s.partial == o.partial &&
		slices.Equal(s.pages, o.pages) && healthEqual(s.health, o.health) && maps.Equal(s.names, o.names) &&
		slices.EqualFunc(s.others, o.others, func(a, b otherSig) bool {
			return a.id == b.id && a.version == b.version && a.at.Equal(b.at)
		})
}

func healthEqual(a, b []Health) bool {
	return slices.EqualFunc(a, b, func(x, y Health) bool {
		return x.Kind == y.Kind && x.Name == y.Name && x.Status == y.Status && slices.Equal(x.Daemons, y.Daemons)
	})
}

// encodeView makes the view of in, as the supervisor pages get it.
func encodeView(in mergeInput) ([]byte, error) {
	view, _ := merge(in)
	return json.Marshal(viewMessage{Type: "floor", Data: view})
}

// ownView is this daemon's view at now to share, and whether it changed
// since it was last shared (a new version, or a page opened or closed
// here).
func (f *Floor) ownView(now time.Time, watched bool) (DaemonView, bool) {
	calls, version := f.ledger.snapshot()
	pages := f.opts.Pages.ConnectedAgents()
	health := f.opts.Health()
	f.mu.Lock()
	wraps, wrapVersion := f.wrapList, f.wrapVersion
	f.mu.Unlock()
	o := &f.own
	changed := !o.ok || o.calls != version || o.wraps != wrapVersion || !slices.Equal(o.pages, pages) || !healthEqual(o.health, health)
	if changed {
		o.ok, o.calls, o.wraps, o.pages, o.health = true, version, wrapVersion, pages, health
		o.version++
	}
	if o.watched != watched {
		o.watched, changed = watched, true
	}
	return DaemonView{ID: f.id, Daemon: f.opts.Daemon, At: now, Calls: calls, Pages: pages, WrapUps: wraps, Health: health,
		Version: o.version, Watched: watched}, changed
}

// share adds what this daemon adds to the day's counts and publishes its
// view (when it changed, or read is set), and with read set reads every
// other daemon's view and the day's counts.
func (f *Floor) share(ctx context.Context, s Share, now time.Time, watched, read bool) {
	own, changed := f.ownView(now, watched)
	f.mu.Lock()
	pending := f.pending
	f.pending = nil
	f.mu.Unlock()
	if !read && !changed && len(pending) == 0 {
		return
	}
	ctx, cancel := context.WithTimeoutCause(ctx, max(f.opts.Interval, time.Second), errors.New("the shared Redis did not answer within the floor's refresh"))
	defer cancel()
	day := now.In(f.loc).Format(time.DateOnly)
	others, counts, added, err := f.exchange(ctx, s, own, pending, read || changed, read, day)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !added {
		// Kept for the next time, oldest first.
		f.pending = append(pending, f.pending...)
		if over := len(f.pending) - maxRecords; over > 0 {
			f.pending = slices.Delete(f.pending, 0, over)
		}
	}
	if err != nil {
		f.partial, f.others, f.othersWatched = true, nil, false
		f.shareFailed(err)
		return
	}
	if read {
		f.partial, f.others, f.counts, f.countsDay = false, others, counts, day
		f.othersWatched = slices.ContainsFunc(others, func(v DaemonView) bool { return v.Watched })
	}
}

// exchange is share's talk with Redis: added says whether the records
// are in.
func (f *Floor) exchange(ctx context.Context, s Share, own DaemonView, records []Record, publish, read bool, today string) (others []DaemonView, counts Counts, added bool, err error) {
	if len(records) > 0 {
		if err := s.Add(ctx, records); err != nil {
			f.metrics.shareErrors.WithLabelValues(opPublish).Inc()
			return nil, Counts{}, false, err
		}
	}
	added = true
	if publish {
		if err := s.Publish(ctx, own, f.viewTTL()); err != nil {
			f.metrics.shareErrors.WithLabelValues(opPublish).Inc()
			return nil, Counts{}, added, err
		}
	}
	if !read {
		return nil, Counts{}, added, nil
	}
	views, err := s.Views(ctx)
	if err != nil {
		f.metrics.shareErrors.WithLabelValues(opRead).Inc()
		return nil, Counts{}, added, err
	}
	counts, err = s.Counts(ctx, today)
	if err != nil {
		f.metrics.shareErrors.WithLabelValues(opRead).Inc()
		return nil, Counts{}, added, err
	}
	others = slices.DeleteFunc(views, func(v DaemonView) bool { return v.ID == f.id })
	pages := map[string]bool{}
	for _, v := range others {
		for _, a := range v.Pages {
			pages[a] = true
		}
	}
	f.remote.Store(&presence{agents: pages, until: f.now().Add(f.viewTTL())})
	f.metrics.daemons.Set(float64(len(others) + 1))
	return others, counts, added, nil
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

// scrapeGauges sets the floor's gauges as the floor is now (this
// daemon's calls and pages as they are, the other daemons' as last read):
// at every scrape, just before they are collected.
func (f *Floor) scrapeGauges() {
	f.gaugeMu.Lock()
	defer f.gaugeMu.Unlock()
	in, _ := f.inputs(f.now(), true)
	_, g := merge(in)
	f.setGauges(g)
}

// setGauges sets the floor's gauges, with gaugeMu held: every source this
// daemon knows gets a value, 0 when none of its calls waits.
func (f *Floor) setGauges(g gauges) {
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

// subscribe opens a supervisor page's slot, with the view as it is now
// in it: Run sends the next one when the floor changes.
func (f *Floor) subscribe() (*viewSub, bool) {
	now := f.now()
	f.flushRecords(now, false)
	in, _ := f.inputs(now, false)
	data, err := encodeView(in)
	if err != nil {
		f.log.Error("cannot encode the floor view", "err", err)
	}
	f.subsMu.Lock()
	defer f.subsMu.Unlock()
	if f.closed {
		return nil, false
	}
	s := &viewSub{ch: make(chan []byte, 1)}
	if err == nil {
		s.ch <- data
	}
	f.subs[s] = struct{}{}
	f.watchers.Store(int64(len(f.subs)))
	f.metrics.connections.Set(float64(len(f.subs)))
	return s, true
}

func (f *Floor) unsubscribe(s *viewSub) {
	f.subsMu.Lock()
	defer f.subsMu.Unlock()
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		f.watchers.Store(int64(len(f.subs)))
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
	f.watchers.Store(0)
	f.metrics.connections.Set(0)
}

// Current is the floor view as it is now: this daemon's calls, pages and
// day's counts as they are, the other daemons' views (and, with Redis,
// the day's counts) as last read. It sets the floor's gauges too.
func (f *Floor) Current() View {
	now := f.now()
	f.flushRecords(now, false)
	f.gaugeMu.Lock()
	defer f.gaugeMu.Unlock()
	in, _ := f.inputs(now, false)
	v, g := merge(in)
	f.setGauges(g)
	return v
}
