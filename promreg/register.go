// Package promreg holds the one way screenpop's packages put their
// Prometheus collectors on a registry. It imports nothing of screenpop, so
// any package may use it.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg, or returns the collector already registered
// under the same description. Several instances of one component (two PBXs,
// two CTI endpoints, an aggregator rebuilt by a reload) run in one daemon on
// one registry and share their metrics: the second must reuse the first's
// collectors rather than fail. The caller must use the returned collector.
//
// A nil reg keeps c unexported, which is what tests that do not look at
// metrics want. Any other registration error, such as a collector with the
// same name but other labels or help, is returned.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, err
	}
	return c, nil
}

// RegisterUnique registers each of cs on reg and stops at the first error,
// including a collector already registered: it is for a component that must
// be alone on its registry, because its gauges hold its own state (the
// dispatcher's active calls, the Redis bus's up) that a second instance
// would overwrite. A nil reg keeps the collectors unexported.
func RegisterUnique(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
