package redisbus

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/promreg"
)

// Label values of screenpop_redis_errors_total{op}.
const (
	opDeliver   = "deliver"   // appending messages
	opRead      = "read"      // reading the connected agents' streams
	opOpen      = "open"      // replay or snapshot for a connecting browser
	opPing      = "ping"      // the health probe
	opForward   = "forward"   // publishing a browser request for the other daemons
	opServe     = "serve"     // subscribing, claiming or answering forwarded requests
	opResync    = "resync"    // putting back what Redis lost
	opUnsealing = "unsealing" // a stored value that does not open (another key, tampered)
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

// Label values of screenpop_redisbus_dropped_messages_total{reason}.
const (
	dropQueueFull  = "queue_full"  // Redis too slow: the queue to it was full
	dropBufferFull = "buffer_full" // Redis down too long: the outage buffer was full
	dropExpired    = "expired"     // buffered longer than DedupTTL: could come twice
)

// Label values of screenpop_redisbus_resyncs_total{cause}.
const (
	causeRecovered  = "recovered"   // Redis answers again after being down
	causeDataLost   = "data_lost"   // Redis came back empty (restart, flush)
	causeNewPrimary = "new_primary" // another server answers (a failover)
)

type metrics struct {
	up           prometheus.Gauge
	errors       *prometheus.CounterVec
	delivered    *prometheus.CounterVec
	deduplicated prometheus.Counter
	forwarded    *prometheus.CounterVec
	served       prometheus.Counter
	queued       prometheus.Gauge
	buffered     prometheus.Gauge
	dropped      *prometheus.CounterVec
	retries      prometheus.Counter
	resyncs      *prometheus.CounterVec
	republished  prometheus.Counter
	resnapshots  prometheus.Counter
	appendDelay  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_redis_up",
			Help: "1 when Redis answers and pops go through it, 0 while pops are delivered by this daemon alone.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_redis_errors_total",
			Help: "Failed Redis operations of the pop bus, by operation (deliver, read, open, ping, forward, serve, resync, unsealing).",
		}, []string{"op"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_redisbus_delivered_total",
			Help: "Messages for agents, by path: appended to Redis, or handed to this daemon's browsers while Redis is down.",
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
			Help: "Messages for agents waiting to be appended to Redis.",
		}),
		buffered: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_redisbus_buffered_messages",
			Help: "Messages delivered to this daemon's browsers while Redis was down, kept to be appended when it is back.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_redisbus_dropped_messages_total",
			Help: "Messages that never reach Redis (this daemon's browsers got them), by reason (queue_full, buffer_full, expired).",
		}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "screenpop_redisbus_write_retries_total",
			Help: "Appends tried again after a failure shorter than down_after (Redis slow, not down).",
		}),
		resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_redisbus_resyncs_total",
			Help: "Times this daemon put back into Redis what it knows, by cause (recovered, data_lost, new_primary).",
		}, []string{"cause"}),
		republished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "screenpop_redisbus_republished_pops_total",
			Help: "Pops of live calls put back into an agent's snapshot in Redis after Redis lost them.",
		}),
		resnapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "screenpop_redisbus_resnapshots_total",
			Help: "Snapshots sent to agents connected here because their snapshot in Redis changed without a message, or they connected while Redis was down.",
		}),
	}
	m.appendDelay = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "screenpop_redisbus_append_delay_seconds",
		Help: "From the dispatcher handing a message to the bus to Redis answering its append: the wait in the queue and the round trip. This daemon's browsers get the message then, other daemons' browsers just after; messages kept through an outage count their whole wait.",
		// From a quick round trip to a stall of the operation timeout (1 s by default), and outages.
		Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	})
	for _, o := range []string{forwardClaimed, forwardUnclaimed, forwardFailed} {
		m.forwarded.WithLabelValues(o)
	}
	for _, op := range []string{opDeliver, opRead, opOpen, opPing, opForward, opServe, opResync, opUnsealing} {
		m.errors.WithLabelValues(op)
	}
	for _, p := range []string{pathRedis, pathLocalFallback} {
		m.delivered.WithLabelValues(p)
	}
	for _, r := range []string{dropQueueFull, dropBufferFull, dropExpired} {
		m.dropped.WithLabelValues(r)
	}
	for _, c := range []string{causeRecovered, causeDataLost, causeNewPrimary} {
		m.resyncs.WithLabelValues(c)
	}
	if err := promreg.RegisterUnique(reg, m.up, m.errors, m.delivered, m.deduplicated, m.forwarded, m.served,
		m.queued, m.buffered, m.dropped, m.retries, m.resyncs, m.republished, m.resnapshots, m.appendDelay); err != nil {
		return nil, err
	}
	return m, nil
}
