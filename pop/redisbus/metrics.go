package redisbus

import "github.com/prometheus/client_golang/prometheus"

// Label values of screenpop_redis_errors_total{op}.
const (
	opDeliver = "deliver" // the script appending a message
	opRead    = "read"    // XREAD of the connected agents' streams
	opOpen    = "open"    // replay or snapshot for a connecting browser
	opPing    = "ping"    // the health check
)

// Label values of screenpop_redisbus_delivered_total{path}.
const (
	pathRedis         = "redis"
	pathLocalFallback = "local_fallback"
)

type metrics struct {
	up           prometheus.Gauge
	errors       *prometheus.CounterVec
	delivered    *prometheus.CounterVec
	deduplicated prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_redis_up",
			Help: "1 when Redis answers and pops go through it, 0 while pops are delivered by this daemon alone.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_redis_errors_total",
			Help: "Failed Redis operations of the pop bus, by operation (deliver, read, open, ping).",
		}, []string{"op"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_redisbus_delivered_total",
			Help: "Messages for agents, by path: through Redis, or straight to this daemon's browsers while Redis is down.",
		}, []string{"path"}),
		deduplicated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "screenpop_redisbus_deduplicated_total",
			Help: "Messages not appended because another daemon watching the same PBX already had.",
		}),
	}
	for _, op := range []string{opDeliver, opRead, opOpen, opPing} {
		m.errors.WithLabelValues(op)
	}
	for _, p := range []string{pathRedis, pathLocalFallback} {
		m.delivered.WithLabelValues(p)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.up, m.errors, m.delivered, m.deduplicated} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
