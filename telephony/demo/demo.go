// Package demo is the built-in demo call generator: a telephony source that
// is not a PBX. It invents inbound calls from demo callers (see
// configs/demo/README.md) and plays them through realistic lifecycles —
// ringing one, two or all agents, a queue moving on, answered, abandoned,
// rung out, transferred — so that the whole pipeline can be seen and tested
// on a machine with no telephony at all.
package demo

import (
	"cmp"
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/telephony"
)

// SourceName is what the generator writes in CallEvent.Source when
// Config.Name is empty.
const SourceName = "demo"

// Defaults for the zero values of Config.
const (
	DefaultInterval = 8 * time.Second
	DefaultRing     = 5 * time.Second
	DefaultTalk     = 20 * time.Second
)

// Config configures the generator. The keys of a telephony entry of type
// demo decode straight into it (NewFromSpec).
type Config struct {
	// Name is the configured name of the source (the telephony entry's
	// name), written in CallEvent.Source; default SourceName.
	Name string `yaml:"-"`
	// Interval between two new calls (default 8s).
	Interval time.Duration `yaml:"interval"`
	// Agents whose phones ring (required).
	Agents []string `yaml:"agents"`
	// Callers are picked at random for each call; default DefaultCallers(),
	// which match configs/demo/directory.json.
	Callers []Caller `yaml:"callers"`
	// Seed makes the sequence of calls reproducible; 0 picks a random seed.
	Seed int64 `yaml:"seed"`
	// Ring is the mean time a call rings before it is answered (default 5s).
	Ring time.Duration `yaml:"ring"`
	// Talk is the mean talk time (default 20s).
	Talk time.Duration `yaml:"talk"`
}

// Caller is a demo caller as the PBX would present it.
type Caller struct {
	// Number in whatever format a PBX might deliver it; the aggregator
	// normalises it.
	Number string `yaml:"number"`
	Name   string `yaml:"name"`
	// Withheld callers restricted presentation: their number is never sent.
	Withheld bool `yaml:"withheld"`
}

// dids are the company's numbers the demo customers dial.
var dids = []string{"+493090182000", "+493090182100"} // service line, sales line

// Chances of what happens to a call. They add up to 1.
const (
	chanceAnswered  = 0.72
	chanceAbandoned = 0.16 // the caller hangs up while it rings
	// the rest rings out unanswered

	chanceRingAll   = 0.45 // ring every free agent, else one or two of them
	chanceMoveOn    = 0.3  // a call ringing one agent moves on to others
	chanceTransfer  = 0.15 // the agent hands the call to a colleague
	chanceConsult   = 0.5  // ... after consulting them first (attended), else blind
	chanceUntaken   = 0.25 // a blind transfer's target does not answer
	noAnswerTimeout = 2.5  // rings this many mean ring times before giving up
)

// Generator produces demo calls.
type Generator struct {
	cfg    Config
	logger *slog.Logger
	clock  clock

	running atomic.Bool
	// calls numbers calls across runs, so that a restarted generator never
	// reuses a call ID the pop and the history already know.
	calls atomic.Uint64

	// rng carries on from one Run to the next; runs never overlap.
	rng *rand.Rand
}

// New validates cfg and returns a generator. It does no I/O.
func New(cfg Config, logger *slog.Logger) (*Generator, error) {
	if err := cfg.check(func(_, format string, args ...any) error {
		return fmt.Errorf(format, args...)
	}); err != nil {
		return nil, err
	}
	return newGenerator(cfg, logger), nil
}

// check fills in the defaults of c and checks it: every problem, each made
// by at with the key of the option at fault, so that NewFromSpec can place
// it at that key.
func (c *Config) check(at telephony.ErrorAt) error {
	var errs []error
	if c.Name == "" {
		c.Name = SourceName
	}
	errs = append(errs,
		at.Duration("interval", &c.Interval, DefaultInterval),
		at.Duration("ring", &c.Ring, DefaultRing),
		at.Duration("talk", &c.Talk, DefaultTalk))
	if len(c.Agents) == 0 {
		errs = append(errs, at("agents", "agents is required: the agent IDs whose phones the demo calls ring"))
	}
	seen := map[string]bool{}
	for i, a := range c.Agents {
		switch {
		case a == "":
			errs = append(errs, at("agents", "agents[%d] is empty", i))
		case seen[a]:
			errs = append(errs, at("agents", "agent %q is listed twice", a))
		}
		seen[a] = true
	}
	c.Agents = slices.Clone(c.Agents)
	if c.Callers == nil {
		c.Callers = DefaultCallers()
	}
	if len(c.Callers) == 0 {
		errs = append(errs, at("callers", "callers is empty: list callers, or leave callers out for the built-in ones"))
	}
	c.Callers = slices.Clone(c.Callers)
	for i, caller := range c.Callers {
		if caller.Number == "" && !caller.Withheld {
			errs = append(errs, at("callers", "callers[%d]: number is required unless the caller is withheld", i))
		}
	}
	return errors.Join(errs...)
}

// newGenerator builds a generator from a checked cfg.
func newGenerator(cfg Config, logger *slog.Logger) *Generator {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	seed := uint64(cfg.Seed)
	if cfg.Seed == 0 {
		seed = rand.Uint64()
	}
	return &Generator{
		cfg:    cfg,
		logger: logger,
		clock:  realClock{},
		rng:    rand.New(rand.NewPCG(seed, seed^0x5c0ee9f09)),
	}
}

// Run generates calls into sink until ctx ends, then ends every call still
// in flight (so no agent keeps a pop for a call that will never end) and
// returns nil. Only one Run at a time.
func (g *Generator) Run(ctx context.Context, sink screenpop.CallSink) error {
	if !g.running.CompareAndSwap(false, true) {
		return errors.New("demo generator is already running")
	}
	defer g.running.Store(false)

	r := &run{
		g:       g,
		sink:    sink,
		rng:     g.rng,
		open:    map[string]*call{},
		talking: map[string]string{},
		now:     g.clock.Now(),
	}
	g.logger.Info("demo call generator started", "interval_seconds", g.cfg.Interval.Seconds(), "agents", g.cfg.Agents)
	r.schedule(g.cfg.Interval, r.newCall)
	for {
		next := r.queue[0].at // never empty: the next new call is always scheduled
		if !g.clock.Wait(ctx, next) {
			r.endAll()
			g.logger.Info("demo call generator stopped")
			return nil
		}
		// Virtual time: actions run in the order they were planned even if
		// the loop falls behind, so a seed always gives the same calls.
		for len(r.queue) > 0 && !r.queue[0].at.After(next) {
			a := heap.Pop(&r.queue).(*action)
			r.now = a.at
			a.fn()
		}
	}
}

// call is one demo call in flight.
type call struct {
	n        uint64
	id       string
	caller   screenpop.Caller
	did      string
	ringing  []string
	agent    string // who has it once answered ("" after a blind transfer, until taken)
	answered bool
	target   string // whose phone rings for a transfer of it
}

// run is the state of one Run: only its goroutine touches it.
type run struct {
	g       *Generator
	sink    screenpop.CallSink
	rng     *rand.Rand
	queue   actionQueue
	planned uint64
	now     time.Time // virtual time of the action running
	open    map[string]*call
	talking map[string]string // agent -> call ID
}

func (r *run) schedule(after time.Duration, fn func()) {
	r.planned++
	heap.Push(&r.queue, &action{at: r.now.Add(after), order: r.planned, fn: fn})
}

// jitter is mean scaled by a uniform factor in [0.5, 1.5).
func (r *run) jitter(mean time.Duration) time.Duration {
	return time.Duration(float64(mean) * (0.5 + r.rng.Float64()))
}

func (r *run) emit(c *call, ev screenpop.CallEvent) {
	ev.CallID, ev.Caller, ev.DID, ev.Source = c.id, c.caller, c.did, r.g.cfg.Name
	ev.At = r.g.clock.Now()
	r.sink.HandleCall(ev)
}

// freeAgents are the agents not talking, in configuration order.
func (r *run) freeAgents() []string {
	var out []string
	for _, a := range r.g.cfg.Agents {
		if _, busy := r.talking[a]; !busy {
			out = append(out, a)
		}
	}
	return out
}

// pick returns k distinct agents of from, in configuration order.
func (r *run) pick(from []string, k int) []string {
	idx := r.rng.Perm(len(from))[:min(k, len(from))]
	slices.Sort(idx)
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = from[j]
	}
	return out
}

func (r *run) newCall() {
	r.schedule(r.g.cfg.Interval, r.newCall)

	n := r.g.calls.Add(1)
	caller := r.g.cfg.Callers[r.rng.IntN(len(r.g.cfg.Callers))]
	c := &call{
		n:      n,
		id:     "demo-" + strconv.FormatUint(n, 10),
		caller: screenpop.Caller{Number: caller.Number, Name: caller.Name, Withheld: caller.Withheld},
		did:    dids[r.rng.IntN(len(dids))],
	}
	if c.caller.Withheld {
		c.caller.Number = ""
	}
	if c.caller.Withheld {
		r.g.logger.Debug("demo call", "call_id", c.id, "caller", "withheld")
	} else {
		r.g.logger.Debug("demo call", "call_id", c.id, "caller", screenpop.MaskPhone(c.caller.Number))
	}

	free := r.freeAgents()
	if len(free) == 0 {
		r.emit(c, screenpop.CallEvent{Kind: screenpop.EventEnded, Outcome: screenpop.OutcomeBusy})
		return
	}
	if len(free) == 1 || r.rng.Float64() < chanceRingAll {
		c.ringing = free
	} else {
		c.ringing = r.pick(free, 1+r.rng.IntN(2))
	}
	r.open[c.id] = c
	r.emit(c, screenpop.CallEvent{Kind: screenpop.EventRinging, Agents: c.ringing})

	ring := r.jitter(r.g.cfg.Ring)
	switch fate := r.rng.Float64(); {
	case fate < chanceAnswered:
		if len(c.ringing) == 1 && len(r.g.cfg.Agents) > 1 && r.rng.Float64() < chanceMoveOn {
			r.schedule(ring/2, func() { r.moveOn(c) })
			r.schedule(ring, func() { r.answer(c) })
			return
		}
		r.schedule(ring, func() { r.answer(c) })
	case fate < chanceAnswered+chanceAbandoned:
		r.schedule(ring, func() { r.end(c, screenpop.OutcomeAbandoned) })
	default:
		r.schedule(time.Duration(float64(r.g.cfg.Ring)*noAnswerTimeout), func() { r.rangOut(c) })
	}
}

// rangOut: every phone stopped ringing and the caller goes on to
// voicemail; the pops go now, the call ends once the message is left.
func (r *run) rangOut(c *call) {
	if r.open[c.id] != c {
		return
	}
	c.ringing = nil
	r.emit(c, screenpop.CallEvent{Kind: screenpop.EventRinging, RangOut: true})
	r.schedule(r.jitter(r.g.cfg.Ring), func() { r.end(c, screenpop.OutcomeNoAnswer) })
}

// moveOn: the queue gives up on the agent ringing and rings others, the way
// a hunt group moves to the next member.
func (r *run) moveOn(c *call) {
	if r.open[c.id] != c {
		return
	}
	var others []string
	for _, a := range r.freeAgents() {
		if !slices.Contains(c.ringing, a) {
			others = append(others, a)
		}
	}
	if len(others) == 0 {
		return // nobody else free: keep ringing the same phone
	}
	c.ringing = r.pick(others, 1+r.rng.IntN(2))
	r.emit(c, screenpop.CallEvent{Kind: screenpop.EventRinging, Agents: c.ringing})
}

func (r *run) answer(c *call) {
	if r.open[c.id] != c {
		return
	}
	var candidates []string
	for _, a := range c.ringing {
		if _, busy := r.talking[a]; !busy {
			candidates = append(candidates, a)
		}
	}
	if len(candidates) == 0 {
		// Everyone it rang took another call meanwhile; the caller gives up.
		r.end(c, screenpop.OutcomeAbandoned)
		return
	}
	c.agent = candidates[r.rng.IntN(len(candidates))]
	c.answered = true
	r.talking[c.agent] = c.id
	r.emit(c, screenpop.CallEvent{Kind: screenpop.EventAnswered, Agent: c.agent})

	talk := r.jitter(r.g.cfg.Talk)
	if len(r.g.cfg.Agents) > 1 && r.rng.Float64() < chanceTransfer {
		r.schedule(time.Duration(float64(talk)*(0.3+0.3*r.rng.Float64())), func() { r.transfer(c) })
	}
	r.schedule(talk, func() { r.end(c, screenpop.OutcomeAnswered) })
}

// transfer: the agent hands the call to a free colleague, whose phone
// rings with the card. Attended: the agent consults them first and keeps
// the caller until the colleague takes it. Blind: the agent lets go at
// once; now and then the colleague does not answer and the caller ends in
// voicemail.
func (r *run) transfer(c *call) {
	if r.open[c.id] != c || c.agent == "" || c.target != "" {
		return
	}
	var targets []string
	for _, a := range r.freeAgents() {
		if a != c.agent {
			targets = append(targets, a)
		}
	}
	if len(targets) == 0 {
		return // no colleague free: the agent keeps the call
	}
	from := c.agent
	c.target = targets[r.rng.IntN(len(targets))]
	r.talking[c.target] = c.id // ringing for this call: no new call rings there
	consult := r.rng.Float64() < chanceConsult
	if !consult {
		delete(r.talking, from)
		c.agent = ""
	}
	r.emit(c, screenpop.CallEvent{Kind: screenpop.EventRinging, Agents: []string{c.target},
		Transfer: &screenpop.Transfer{From: from, Consult: consult}})
	ring := r.jitter(r.g.cfg.Ring) / 2
	if !consult && r.rng.Float64() < chanceUntaken {
		r.schedule(ring*2, func() { r.transferUntaken(c, from) })
		return
	}
	r.schedule(ring, func() { r.takeTransfer(c) })
}

func (r *run) takeTransfer(c *call) {
	if r.open[c.id] != c || c.target == "" {
		return
	}
	if c.agent != "" {
		delete(r.talking, c.agent)
	}
	c.agent, c.target = c.target, ""
	r.emit(c, screenpop.CallEvent{Kind: screenpop.EventTransferred, Agent: c.agent})
}

// transferUntaken: the target of a blind transfer did not answer; the
// caller, served by the first agent already, leaves a voicemail.
func (r *run) transferUntaken(c *call, from string) {
	if r.open[c.id] != c || c.target == "" {
		return
	}
	delete(r.talking, c.target)
	c.target = ""
	r.emit(c, screenpop.CallEvent{Kind: screenpop.EventRinging, RangOut: true, Transfer: &screenpop.Transfer{From: from}})
}

func (r *run) end(c *call, outcome screenpop.Outcome) {
	if r.open[c.id] != c {
		return
	}
	delete(r.open, c.id)
	if c.answered && c.agent != "" {
		delete(r.talking, c.agent)
	}
	if c.target != "" {
		delete(r.talking, c.target)
	}
	r.emit(c, screenpop.CallEvent{Kind: screenpop.EventEnded, Agent: c.agent, Outcome: outcome})
}

// endAll ends the calls in flight, oldest first: a call that was talking
// ends as answered, one still ringing as abandoned.
func (r *run) endAll() {
	calls := make([]*call, 0, len(r.open))
	for _, c := range r.open {
		calls = append(calls, c)
	}
	slices.SortFunc(calls, func(a, b *call) int { return cmp.Compare(a.n, b.n) })
	for _, c := range calls {
		outcome := screenpop.OutcomeAbandoned
		if c.answered {
			outcome = screenpop.OutcomeAnswered
		}
		r.end(c, outcome)
	}
}

// action is a step of a call planned at a virtual time.
type action struct {
	at    time.Time
	order uint64 // ties run in the order they were planned
	fn    func()
}

type actionQueue []*action

func (q actionQueue) Len() int { return len(q) }
func (q actionQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].order < q[j].order
}
func (q actionQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *actionQueue) Push(x any)   { *q = append(*q, x.(*action)) }
func (q *actionQueue) Pop() any {
	old := *q
	a := old[len(old)-1]
	*q = old[:len(old)-1]
	return a
}

// clock lets tests run the generator on virtual time.
type clock interface {
	Now() time.Time
	// Wait blocks until t; false when ctx ended first.
	Wait(ctx context.Context, t time.Time) bool
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Wait(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return ctx.Err() == nil
	}
}
