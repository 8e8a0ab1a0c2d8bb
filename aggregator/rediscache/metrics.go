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
)

// Label values of screenpop_rediscache_lookups_total{result}.
const (
	resultHit   = "hit"
	resultMiss  = "miss"
	resultError = "error"
)

type metrics struct {
	errors  *prometheus.CounterVec
	lookups *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_rediscache_errors_total",
			Help: "Failed cache operations, by operation (get, set, delete, decrypt).",
		}, []string{"op"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_rediscache_lookups_total",
			Help: "Cache lookups, by result (hit, miss, error).",
		}, []string{"result"}),
	}
	for _, op := range []string{opGet, opSet, opDelete, opDecrypt} {
		m.errors.WithLabelValues(op)
	}
	for _, r := range []string{resultHit, resultMiss, resultError} {
		m.lookups.WithLabelValues(r)
	}
	if err := promreg.RegisterUnique(reg, m.errors, m.lookups); err != nil {
		return nil, err
	}
	return m, nil
}
