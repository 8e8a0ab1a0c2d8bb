package floor

import (
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/promreg"
)

// Outcomes are the values of screenpop_calls_total's outcome label: the
// call model's (screenpop.Outcomes), OutcomeExpired for a call the daemon
// stopped following without its end, and OutcomeOther for an outcome a
// source invents (none does: the set stays bounded whatever comes).
var Outcomes = func() []string {
	out := make([]string, 0, len(screenpop.Outcomes)+2)
	for _, o := range screenpop.Outcomes {
		out = append(out, string(o))
	}
	return append(out, OutcomeExpired, OutcomeOther)
}()

const (
	// OutcomeExpired: no event came for the call for stale_after (its
	// end was lost); it is forgotten, counted under this outcome.
	OutcomeExpired = "expired"
	// OutcomeOther: an outcome outside the call model's set.
	OutcomeOther = "other"
	// LineOther is the line label of a call whose number dialled is no
	// configured line (or unknown): the line label takes only configured
	// names and this.
	LineOther = "other"
)

// Agent states, the values of screenpop_agents' state label. An agent is
// counted in every state that applies: signed in and on a call, ringing
// and ringing blind.
const (
	StateSignedIn     = "signed_in"     // a page of theirs is connected
	StateOnCall       = "on_call"       // has a call (answered, or transferred to them)
	StateRinging      = "ringing"       // their phone rings for a call
	StateWrapUp       = "wrap_up"       // after a call, before the disposition (history)
	StateRingingBlind = "ringing_blind" // their phone rings and no page of theirs is connected
)

var agentStates = []string{StateSignedIn, StateOnCall, StateRinging, StateWrapUp, StateRingingBlind}

// metrics are the floor's, on the injected registry.
type metrics struct {
	shown         *prometheus.HistogramVec // source
	complete      *prometheus.HistogramVec // source
	answered      *prometheus.CounterVec   // source
	popped        *prometheus.CounterVec   // source
	blind         *prometheus.CounterVec   // source
	calls         *prometheus.CounterVec   // source, line, outcome
	ringing       *prometheus.GaugeVec     // source
	longestWait   *prometheus.GaugeVec     // source
	answerWait    *prometheus.HistogramVec // source
	abandonedWait *prometheus.HistogramVec // source
	agents        *prometheus.GaugeVec     // state
	daemons       prometheus.Gauge
	connections   prometheus.Gauge
	shareErrors   *prometheus.CounterVec // op
	// floor registers ringing, longestWait and agents: a Floor sets them
	// at every scrape.
	floor *floorGauges
}

// floorGauges collects the gauges of the whole floor (calls ringing, the
// longest wait, agents by state), calling the hook a Floor installs just
// before: they are set at every scrape, from the floor as it is then,
// rather than at every change of it.
type floorGauges struct {
	vecs []*prometheus.GaugeVec
	hook atomic.Pointer[func()]
}

// Describe implements prometheus.Collector.
func (g *floorGauges) Describe(ch chan<- *prometheus.Desc) {
	for _, v := range g.vecs {
		v.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (g *floorGauges) Collect(ch chan<- prometheus.Metric) {
	if h := g.hook.Load(); h != nil {
		(*h)()
	}
	for _, v := range g.vecs {
		v.Collect(ch)
	}
}

// Share operations, the op label of screenpop_floor_share_errors_total.
const (
	opPublish = "publish" // this daemon's view, the day's counts, an acknowledgement
	opRead    = "read"    // the other daemons' views, the day's counts
	opAck     = "ack"     // an acknowledgement from another daemon that does not open or decode
)

var shareOps = []string{opPublish, opRead, opAck}

// screenBuckets: ring to screen. A pop is worth most in the first
// seconds of the ring; past half a minute it is as good as missing.
var screenBuckets = []float64{0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30}

// waitBuckets: a caller's wait, from seconds to the ten minutes a queue
// may hold a caller.
var waitBuckets = []float64{1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		shown: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "screenpop_pop_shown_seconds",
			Help:    "Time from the agent's phone starting to ring (or the agent getting the call) to the pop painted on the agent's screen, as the page acknowledged it (the daemon's clock), by telephony source.",
			Buckets: screenBuckets,
		}, []string{"source"}),
		complete: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "screenpop_pop_complete_seconds",
			Help:    "Time from the agent's phone starting to ring (or the agent getting the call) to the pop painted with every section filled, as the page acknowledged it, by telephony source.",
			Buckets: screenBuckets,
		}, []string{"source"}),
		answered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_calls_answered_total",
			Help: "Calls answered (the first answer of each), by telephony source.",
		}, []string{"source"}),
		popped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_calls_answered_popped_total",
			Help: "Calls answered whose pop was painted on the answering agent's screen before the answer, by telephony source: with screenpop_calls_answered_total, the service level of the screen pop.",
		}, []string{"source"}),
		blind: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_pop_blind_rings_total",
			Help: "Agents rung for a call without an agent page connected on any daemon (the pop reached no screen), by telephony source.",
		}, []string{"source"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_calls_total",
			Help: "Calls that ended (or were dropped after stale_after without their end: expired), by telephony source, line (a configured line's name, or other) and outcome.",
		}, []string{"source", "line", "outcome"}),
		ringing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "screenpop_calls_ringing",
			Help: "Calls ringing now, not answered yet, on the whole floor (every daemon sharing Redis), by telephony source.",
		}, []string{"source"}),
		longestWait: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "screenpop_calls_longest_wait_seconds",
			Help: "The longest wait of a call ringing now, not answered yet, on the whole floor (every daemon sharing Redis), by telephony source; 0 when none rings.",
		}, []string{"source"}),
		answerWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "screenpop_call_answer_wait_seconds",
			Help:    "Time from a call's first ring to its first answer, by telephony source.",
			Buckets: waitBuckets,
		}, []string{"source"}),
		abandonedWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "screenpop_call_abandoned_wait_seconds",
			Help:    "Time from a call's first ring to the caller hanging up unanswered (outcome abandoned), by telephony source.",
			Buckets: waitBuckets,
		}, []string{"source"}),
		agents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "screenpop_agents",
			Help: "Agents on the whole floor (every daemon sharing Redis) by state: signed_in (a page connected), on_call, ringing, wrap_up, ringing_blind (ringing, no page connected). An agent counts in every state that applies.",
		}, []string{"state"}),
		daemons: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_floor_daemons",
			Help: "Daemons whose view the floor view merges (this one included): 1 without Redis or while Redis fails.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_floor_connections",
			Help: "Open supervisor page connections (floor view WebSockets) on this daemon.",
		}),
		shareErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_floor_share_errors_total",
			Help: "Failed floor operations on the shared Redis, by op (publish, read, ack).",
		}, []string{"op"}),
	}
	m.floor = &floorGauges{vecs: []*prometheus.GaugeVec{m.ringing, m.longestWait, m.agents}}
	var err error
	reg1 := func(c prometheus.Collector) {
		if err == nil {
			err = promreg.RegisterUnique(reg, c)
		}
	}
	for _, c := range []prometheus.Collector{m.shown, m.complete, m.answered, m.popped, m.blind, m.calls, m.floor,
		m.answerWait, m.abandonedWait, m.daemons, m.connections, m.shareErrors} {
		reg1(c)
	}
	if err != nil {
		return nil, err
	}
	for _, s := range agentStates {
		m.agents.WithLabelValues(s)
	}
	for _, op := range shareOps {
		m.shareErrors.WithLabelValues(op)
	}
	return m, nil
}

// addSource makes every series of a telephony source and its lines, so
// that dashboards and alerts see zeros rather than missing series.
func (m *metrics) addSource(source string, lines []string) {
	m.shown.WithLabelValues(source)
	m.complete.WithLabelValues(source)
	m.answered.WithLabelValues(source)
	m.popped.WithLabelValues(source)
	m.blind.WithLabelValues(source)
	m.ringing.WithLabelValues(source)
	m.longestWait.WithLabelValues(source)
	m.answerWait.WithLabelValues(source)
	m.abandonedWait.WithLabelValues(source)
	for _, l := range slices.Concat(lines, []string{LineOther}) {
		for _, o := range Outcomes {
			m.calls.WithLabelValues(source, l, o)
		}
	}
}
