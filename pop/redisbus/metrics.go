package redisbus

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/promreg"
)

// Label values of screenpop_redis_errors_total{op}.
const (
	opDeliver = "deliver" // the script appending a message
	opRead    = "read"    // XREAD of the connected agents' streams
	opOpen    = "open"    // replay or snapshot for a connecting browser
	opPing    = "ping"    // the health check
	opForward = "forward" // publishing a browser request for the other daemons
	opServe   = "serve"   // subscribing, claiming or answering forwarded requests
)

// Label values of screenpop_redisbus_forwarded_requests_total{outcome}.
const (
	forwardClaimed   = "claimed"   // another daemon knew the call and answered
	forwardUnclaimed = "unclaimed" // no daemon claimed it in time: unknown_call
	forwardFailed    = "failed"    // Redis failed, or the claimer did not answer in time
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
	forwarded    *prometheus.CounterVec
	served       prometheus.Counter
	queued       prometheus.Gauge
	dropped      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_redis_up",
			Help: "1 when Redis answers and pops go through it, 0 while pops are delivered by this daemon alone.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_redis_errors_total",
			Help: "Failed Redis operations of the pop bus, by operation (deliver, read, open, ping, forward, serve).",
		}, []string{"op"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_redisbus_delivered_total",
			Help: "Messages for agents, by path: through Redis, or straight to this daemon's browsers while Redis is down.",
		}, []string{"path"}),
		deduplicated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "screenpop_redisbus_deduplicated_total",
			Help: "Messages not appended because another daemon watching the same PBX already had.",
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_redisbus_forwarded_requests_total",
			Help: "Browser requests about calls this daemon does not know, sent to the other daemons, by outcome (claimed, unclaimed, failed).",
		}, []string{"outcome"}),
		served: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "screenpop_redisbus_served_requests_total",
			Help: "Browser requests forwarded by another daemon and answered by this daemon's dispatcher.",
		}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_redisbus_queued_messages",
			Help: "Messages for agents waiting to be appended to Redis (or delivered locally while it is down).",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "screenpop_redisbus_dropped_messages_total",
			Help: "Messages not sent through Redis because the bus's queue was full (max_queued_messages); they went to this daemon's browsers only.",
		}),
	}
	for _, o := range []string{forwardClaimed, forwardUnclaimed, forwardFailed} {
		m.forwarded.WithLabelValues(o)
	}
	for _, op := range []string{opDeliver, opRead, opOpen, opPing, opForward, opServe} {
		m.errors.WithLabelValues(op)
	}
	for _, p := range []string{pathRedis, pathLocalFallback} {
		m.delivered.WithLabelValues(p)
	}
	if err := promreg.RegisterUnique(reg, m.up, m.errors, m.delivered, m.deduplicated, m.forwarded, m.served, m.queued, m.dropped); err != nil {
		return nil, err
	}
	return m, nil
}
