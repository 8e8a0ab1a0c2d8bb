package pop

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/promreg"
)

// messageTypes are the label values of screenpop_pop_messages_total, created
// up front so that a dashboard sees zeros rather than missing series.
var messageTypes = []string{
	TypeSnapshot, TypePop, TypeAnswered, TypeWithdrawn, TypeEnded,
	TypeCard, TypeNoteSaved, TypeWrappedUp, TypeError, TypeHello,
	TypeSection, TypeHistory,
	TypeSearchResults,
}

// Reasons a connection is dropped by the server, label values of
// screenpop_pop_dropped_connections_total.
const (
	dropSlow       = "slow"        // its outbox was full
	dropWriteError = "write_error" // a write failed or timed out
	dropAuth       = "auth"        // the upgrade was refused: no or bad token
	dropOrigin     = "origin"      // the upgrade was refused: foreign Origin, or a cookie without one
	dropExpired    = "expired"     // the agent's sign-in ended
)

var dropReasons = []string{dropSlow, dropWriteError, dropAuth, dropOrigin, dropExpired}

type dispatcherMetrics struct {
	latency        prometheus.Histogram
	activeCalls    prometheus.Gauge
	refreshedCards prometheus.Counter
	queued         prometheus.Gauge
	shed           *prometheus.CounterVec
}

// shedKinds are the label values of screenpop_pop_shed_events_total:
// the event kinds, and "other" for a kind a source invents.
var shedKinds = []string{
	string(screenpop.EventRinging), string(screenpop.EventAnswered),
	string(screenpop.EventTransferred), string(screenpop.EventEnded), "other",
}

// shedEvent counts one event the dispatcher's queue refused.
func (m *dispatcherMetrics) shedEvent(kind screenpop.CallEventKind) {
	k := string(kind)
	if !slices.Contains(shedKinds, k) {
		k = "other"
	}
	m.shed.WithLabelValues(k).Inc()
}

func newDispatcherMetrics(reg prometheus.Registerer) (*dispatcherMetrics, error) {
	m := &dispatcherMetrics{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "screenpop_pop_latency_seconds",
			Help: "Time from the ringing event (as the PBX dated it) to the pop written to the agent's outbox.",
			// 5ms..10s: a pop is only useful while the phone rings.
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10},
		}),
		activeCalls: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_pop_active_calls",
			Help: "Calls the dispatcher is following (rung, not ended yet).",
		}),
		refreshedCards: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "screenpop_pop_refreshed_cards_total",
			Help: "Cards of live calls rebuilt and sent again because their data changed (Refresh).",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_pop_queued_events",
			Help: "Call events handed to the dispatcher and not yet taken by it.",
		}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_pop_shed_events_total",
			Help: "Call events dropped because the dispatcher's queue was full (max_queued_events; ended events have a reserve), by kind.",
		}, []string{"kind"}),
	}
	for _, k := range shedKinds {
		m.shed.WithLabelValues(k)
	}
	return m, promreg.RegisterUnique(reg, m.latency, m.activeCalls, m.refreshedCards, m.queued, m.shed)
}

type hubMetrics struct {
	messages        *prometheus.CounterVec
	connectedAgents prometheus.Gauge
	connections     prometheus.Gauge
	dropped         *prometheus.CounterVec
	logAgents       prometheus.Gauge
	logBytes        prometheus.Gauge
}

func newHubMetrics(reg prometheus.Registerer) (*hubMetrics, error) {
	m := &hubMetrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_pop_messages_total",
			Help: "Messages sent to agents' open pages, by type (one per agent, whatever the number of its browser tabs; one kept for an agent with no page open is not counted).",
		}, []string{"type"}),
		connectedAgents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_pop_connected_agents",
			Help: "Distinct agents with at least one open agent page.",
		}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_pop_connections",
			Help: "Open agent WebSocket connections (an agent may have several tabs).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_pop_dropped_connections_total",
			Help: "Connections the server closed or refused, by reason (slow, write_error, auth, origin, expired).",
		}, []string{"reason"}),
		logAgents: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_pop_log_agents",
			Help: "Agents whose recent messages the hub keeps for pages that reconnect (forgotten after replay_age without a message).",
		}),
		logBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_pop_log_bytes",
			Help: "Size of the messages the hub keeps for pages that reconnect.",
		}),
	}
	for _, t := range messageTypes {
		m.messages.WithLabelValues(t)
	}
	for _, r := range dropReasons {
		m.dropped.WithLabelValues(r)
	}
	return m, promreg.RegisterUnique(reg, m.messages, m.connectedAgents, m.connections, m.dropped, m.logAgents, m.logBytes)
}
