package ari

import (
	"reflect"
	"slices"

	arilib "github.com/CyCoreSystems/ari/v5"
	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/promreg"
)

// unknownType is the events_total label for event types ari/v5 cannot
// decode: any other value would let a PBX upgrade create label values.
const unknownType = "unknown"

// knownTypes are the event types ari/v5 v5.3.1 decodes, read from the
// library itself so that upgrading it cannot leave the list stale.
var knownTypes = func() map[string]bool {
	out := map[string]bool{}
	v := reflect.ValueOf(arilib.Events)
	for i := range v.NumField() {
		if v.Type().Field(i).Name == "All" {
			continue
		}
		out[v.Field(i).String()] = true
	}
	return out
}()

type metrics struct {
	connected  prometheus.Gauge
	eventsByT  map[string]prometheus.Counter
	unknown    prometheus.Counter
	malformed  prometheus.Counter
	reconnects prometheus.Counter
	resyncs    prometheus.Counter
	calls      map[screenpop.Outcome]prometheus.Counter
	callsVec   *prometheus.CounterVec
	active     prometheus.Gauge
	queued     prometheus.Gauge
	overflows  prometheus.Counter
	source     string
}

// newMetrics registers the metrics of the ARI source named source. Every
// one carries a source label: a daemon watching two PBXs registers them
// twice on one registry, and the second registration reuses the first's
// collectors (promreg.Register) with label values of its own.
func newMetrics(reg prometheus.Registerer, source string) (*metrics, error) {
	connected := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "screenpop_ari_connected",
		Help: "1 while the ARI event socket is up and the call state resynchronised, 0 otherwise, by telephony source.",
	}, []string{"source"})
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "screenpop_ari_events_total",
		Help: "ARI events received, by telephony source and type; types ari/v5 does not know are counted as \"unknown\" and skipped.",
	}, []string{"source", "type"})
	malformed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "screenpop_ari_malformed_events_total",
		Help: "ARI frames skipped because they were not a decodable event (bad JSON, no type, wrong field types), by telephony source.",
	}, []string{"source"})
	reconnects := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "screenpop_ari_reconnects_total",
		Help: "ARI event socket connections established after the first one, each following a lost or failed connection, by telephony source.",
	}, []string{"source"})
	resyncs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "screenpop_ari_resyncs_total",
		Help: "Times the call state was repaired from Asterisk's channel list after a (re)connect, by telephony source.",
	}, []string{"source"})
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "screenpop_telephony_calls_total",
		Help: "Inbound calls that ended, by telephony source and outcome.",
	}, []string{"source", "outcome"})
	active := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "screenpop_telephony_active_calls",
		Help: "Inbound calls in progress (ringing or answered), by telephony source.",
	}, []string{"source"})
	queued := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "screenpop_ari_queued_events",
		Help: "ARI event frames read from the socket and not yet taken by the call model, by telephony source.",
	}, []string{"source"})
	overflows := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "screenpop_ari_queue_overflows_total",
		Help: "Times the ARI event queue was full (max_queued_events or max_queued_bytes) and the socket was dropped to resync, by telephony source.",
	}, []string{"source"})

	if reg != nil {
		var err error
		if connected, err = promreg.Register(reg, connected); err != nil {
			return nil, err
		}
		if events, err = promreg.Register(reg, events); err != nil {
			return nil, err
		}
		if malformed, err = promreg.Register(reg, malformed); err != nil {
			return nil, err
		}
		if reconnects, err = promreg.Register(reg, reconnects); err != nil {
			return nil, err
		}
		if resyncs, err = promreg.Register(reg, resyncs); err != nil {
			return nil, err
		}
		if calls, err = promreg.Register(reg, calls); err != nil {
			return nil, err
		}
		if active, err = promreg.Register(reg, active); err != nil {
			return nil, err
		}
		if queued, err = promreg.Register(reg, queued); err != nil {
			return nil, err
		}
		if overflows, err = promreg.Register(reg, overflows); err != nil {
			return nil, err
		}
	}

	m := &metrics{
		connected:  connected.WithLabelValues(source),
		eventsByT:  map[string]prometheus.Counter{},
		unknown:    events.WithLabelValues(source, unknownType),
		malformed:  malformed.WithLabelValues(source),
		reconnects: reconnects.WithLabelValues(source),
		resyncs:    resyncs.WithLabelValues(source),
		calls:      map[screenpop.Outcome]prometheus.Counter{},
		callsVec:   calls,
		active:     active.WithLabelValues(source),
		queued:     queued.WithLabelValues(source),
		overflows:  overflows.WithLabelValues(source),
		source:     source,
	}
	types := make([]string, 0, len(knownTypes))
	for t := range knownTypes {
		types = append(types, t)
	}
	slices.Sort(types)
	for _, t := range types {
		m.eventsByT[t] = events.WithLabelValues(source, t)
	}
	for _, o := range screenpop.Outcomes {
		m.calls[o] = calls.WithLabelValues(source, string(o))
	}
	return m, nil
}

// ended counts one ended call. An outcome the call model adds later gets
// its own label value: it comes from our code, not from the PBX, so the
// set stays bounded.
func (m *metrics) ended(o screenpop.Outcome) {
	if c, ok := m.calls[o]; ok {
		c.Inc()
		return
	}
	m.callsVec.WithLabelValues(m.source, string(o)).Inc()
}
