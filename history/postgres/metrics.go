package postgres

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/promreg"
)

// Results of a write, label values of screenpop_history_writes_total.
const (
	resultWritten   = "written"   // committed
	resultRefused   = "refused"   // the buffer was full
	resultRejected  = "rejected"  // PostgreSQL refused it for good (bad data)
	resultCancelled = "cancelled" // a note given up by its caller before it was committed
)

var writeResults = []string{resultWritten, resultRefused, resultRejected, resultCancelled}

// Reasons a write attempt failed, label values of
// screenpop_history_write_errors_total.
const (
	reasonUnavailable = "unavailable" // no connection, timeout, server restarting: retried
	reasonRejected    = "rejected"    // data or constraint error: written one by one, the culprit dropped
)

type metrics struct {
	writes   *prometheus.CounterVec
	errors   *prometheus.CounterVec
	retries  prometheus.Counter
	duration prometheus.Histogram
	purged   *prometheus.CounterVec
}

// newMetrics registers the store's metrics on reg; the gauges read the
// store's own state, so a second store on the same registry is an error.
func newMetrics(reg prometheus.Registerer, s *Store) (*metrics, error) {
	m := &metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_history_writes_total",
			Help: "History writes by kind (call, note, note_version, wrapup, access) and result (written, refused: buffer full, rejected: refused by PostgreSQL, cancelled: a note given up by its caller).",
		}, []string{"kind", "result"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_history_write_errors_total",
			Help: "Failed write attempts (batches) by reason: unavailable (retried with backoff) or rejected (written again one by one).",
		}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "screenpop_history_write_retries_total",
			Help: "Write attempts (batches) made again after a failed one.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "screenpop_history_write_duration_seconds",
			Help:    "Time of one write attempt: a batch of queued writes in one transaction.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}),
		purged: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_history_purged_rows_total",
			Help: "Rows deleted by the retention purge, by table (calls, notes, wrapups, access).",
		}, []string{"table"}),
	}
	for _, k := range opKindNames {
		for _, r := range writeResults {
			m.writes.WithLabelValues(k, r)
		}
	}
	for _, r := range []string{reasonUnavailable, reasonRejected} {
		m.errors.WithLabelValues(r)
	}
	for _, t := range []string{"calls", "notes", "wrapups", "access"} {
		m.purged.WithLabelValues(t)
	}
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "screenpop_history_queued_writes",
		Help: "Writes waiting for PostgreSQL (buffer_size at most).",
	}, func() float64 { return float64(s.out.len()) })
	up := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "screenpop_history_up",
		Help: "1 while writes reach PostgreSQL and the schema is migrated, 0 otherwise.",
	}, func() float64 {
		if s.Healthy() == nil {
			return 1
		}
		return 0
	})
	err := promreg.RegisterUnique(reg, m.writes, m.errors, m.retries, m.duration, m.purged, queued, up)
	return m, err
}
