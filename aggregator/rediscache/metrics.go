package rediscache

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/promreg"
)

// Label values of screenpop_rediscache_errors_total{op}.
const (
	opGet     = "get"
	opSet     = "set"
	opDelete  = "delete"
	opDecrypt = "decrypt"
	opListen  = "listen" // the near cache's subscription to invalidations
)

// Label values of screenpop_rediscache_lookups_total{result}.
const (
	resultHit   = "hit"
	resultMiss  = "miss"
	resultError = "error"
)

type metrics struct {
	errors    *prometheus.CounterVec
	lookups   *prometheus.CounterVec
	nearHits  prometheus.Counter
	nearHeard prometheus.Counter
	nearLive  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, n *near) (*metrics, error) {
	m := &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_rediscache_errors_total",
			Help: "Failed cache operations, by operation (get, set, delete, decrypt, listen: the near cache's subscription).",
		}, []string{"op"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_rediscache_lookups_total",
			Help: "Cache lookups, by result (hit, miss, error).",
		}, []string{"result"}),
		nearHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "screenpop_rediscache_near_hits_total",
			Help: "Lookups answered from the near cache, in memory, without asking Redis (also counted as hits in screenpop_rediscache_lookups_total).",
		}),
		nearHeard: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "screenpop_rediscache_near_invalidations_total",
			Help: "Invalidations the near cache heard: changes and removals of cached values, by any daemon.",
		}),
		nearLive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "screenpop_rediscache_near_listening",
			Help: "1 while the near cache hears the invalidations other daemons publish (it keeps values only then), 0 otherwise.",
		}),
	}
	for _, op := range []string{opGet, opSet, opDelete, opDecrypt, opListen} {
		m.errors.WithLabelValues(op)
	}
	for _, r := range []string{resultHit, resultMiss, resultError} {
		m.lookups.WithLabelValues(r)
	}
	cs := []prometheus.Collector{m.errors, m.lookups}
	if n != nil {
		entries := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "screenpop_rediscache_near_entries",
			Help: "Values the near cache holds in memory.",
		}, func() float64 { return float64(n.size()) })
		cs = append(cs, m.nearHits, m.nearHeard, m.nearLive, entries)
	}
	if err := promreg.RegisterUnique(reg, cs...); err != nil {
		return nil, err
	}
	return m, nil
}
