package aggregator

import (
	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/promreg"
)

// Outcomes of one source lookup, the values of the outcome label.
const (
	outcomeOK          = "ok"          // answered with records
	outcomeEmpty       = "empty"       // answered, knows nothing of the caller
	outcomeCached      = "cached"      // served from the cache, not asked
	outcomeTimeout     = "timeout"     // no answer in time
	outcomeError       = "error"       // answered with an error
	outcomePanic       = "panic"       // the adapter panicked
	outcomeUnavailable = "unavailable" // breaker open or concurrency limit reached
)

var sourceOutcomes = []string{outcomeOK, outcomeEmpty, outcomeCached, outcomeTimeout, outcomeError, outcomePanic, outcomeUnavailable}

// errorReasons are the values of the reason label of source_errors_total.
var errorReasons = []string{outcomeTimeout, outcomeError, outcomePanic, outcomeUnavailable}

var cacheResults = []string{"hit", "miss", "error"}

// Per source, a cached answer still fresh is a hit; one past its
// fresh_for is served stale (and refreshed in the background).
const (
	cacheHit   = "hit"
	cacheStale = "stale"
	cacheMiss  = "miss"
	cacheError = "error"
)

var sourceCacheResults = []string{cacheHit, cacheStale, cacheMiss, cacheError}

var resolutionResults = []screenpop.Resolution{
	screenpop.ResolvedCustomer, screenpop.ResolvedAmbiguous, screenpop.ResolvedUnknown,
	screenpop.ResolvedWithheld, screenpop.ResolvedFailed,
}

type metrics struct {
	cardDuration    prometheus.Histogram
	sourceDuration  *prometheus.HistogramVec // source, outcome
	sourceErrors    *prometheus.CounterVec   // source, reason
	cacheRequests   *prometheus.CounterVec   // result
	sourceCache     *prometheus.CounterVec   // source, result
	breakerState    *prometheus.GaugeVec     // source
	resolutions     *prometheus.CounterVec   // result
	incompleteCards prometheus.Counter
	coalesced       prometheus.Counter
	refreshes       *prometheus.CounterVec // result
	evictions       *prometheus.CounterVec // result

	// The series counted on every card, looked up once.
	cacheHit, cacheMiss, cacheError prometheus.Counter // of cacheRequests
	resolved                        map[screenpop.Resolution]prometheus.Counter
}

// cacheCounts are a source's series of sourceCache.
type cacheCounts struct{ hit, stale, miss, err prometheus.Counter }

var evictionResults = []string{"ok", "error"}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		cardDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "card_duration_seconds",
			Help: "Time to build one customer card, from the call event to the merged card.",
			// A card is useful only while the phone rings: the interesting
			// range is a few milliseconds (all cached) to the deadline.
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .35, .5, .75, 1, 1.5, 2, 3, 5},
		}),
		sourceDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "source_duration_seconds",
			Help:    "Time one data source took to answer for one card, by outcome (ok, empty, cached, timeout, error, panic, unavailable).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .2, .35, .5, .75, 1, 2, 5},
		}, []string{"source", "outcome"}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "source_errors_total",
			Help: "Lookups of a data source that gave no data, by reason (timeout, error, panic, unavailable).",
		}, []string{"source", "reason"}),
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "cache_requests_total",
			Help: "Cache lookups for source results, by result (hit, miss, error).",
		}, []string{"result"}),
		sourceCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_cache_requests_total",
			Help: "Cache lookups of a data source's answers, by source and result: hit (fresh), stale (served past fresh_for, refreshed in the background), miss, error.",
		}, []string{"source", "result"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "screenpop_source_breaker_state",
			Help: "State of a data source's circuit breaker: 0 closed (asked), 1 half-open (one lookup tries it again), 2 open (not asked); 0 when the breaker is disabled.",
		}, []string{"source"}),
		resolutions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "resolutions_total",
			Help: "Cards built, by how the caller was resolved (customer, ambiguous, unknown, withheld, failed).",
		}, []string{"result"}),
		incompleteCards: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "incomplete_cards_total",
			Help: "Cards sent without the data of a source configured as required.",
		}),
		coalesced: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "coalesced_total",
			Help: "Cards that shared the fan-out already running for the same number and customer instead of asking every source again.",
		}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "background_refreshes_total",
			Help: "Background refreshes of stale cached source answers, by result (changed, unchanged, failed, dropped).",
		}, []string{"result"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "evictions_total",
			Help: "Evict requests (a source system said a customer's data changed), by result (ok, error).",
		}, []string{"result"}),
	}
	if reg != nil {
		// Registered once per Aggregator; Reload only adds label values. A
		// second Aggregator on the same registry (a test, a config check in
		// a running daemon) shares the collectors already there.
		var err error
		if m.cardDuration, err = promreg.Register(reg, m.cardDuration); err != nil {
			return nil, err
		}
		if m.sourceDuration, err = promreg.Register(reg, m.sourceDuration); err != nil {
			return nil, err
		}
		if m.sourceErrors, err = promreg.Register(reg, m.sourceErrors); err != nil {
			return nil, err
		}
		if m.cacheRequests, err = promreg.Register(reg, m.cacheRequests); err != nil {
			return nil, err
		}
		if m.sourceCache, err = promreg.Register(reg, m.sourceCache); err != nil {
			return nil, err
		}
		if m.breakerState, err = promreg.Register(reg, m.breakerState); err != nil {
			return nil, err
		}
		if m.resolutions, err = promreg.Register(reg, m.resolutions); err != nil {
			return nil, err
		}
		if m.incompleteCards, err = promreg.Register(reg, m.incompleteCards); err != nil {
			return nil, err
		}
		if m.coalesced, err = promreg.Register(reg, m.coalesced); err != nil {
			return nil, err
		}
		if m.refreshes, err = promreg.Register(reg, m.refreshes); err != nil {
			return nil, err
		}
		if m.evictions, err = promreg.Register(reg, m.evictions); err != nil {
			return nil, err
		}
	}
	for _, r := range cacheResults {
		m.cacheRequests.WithLabelValues(r)
	}
	m.cacheHit, m.cacheMiss, m.cacheError = m.cacheRequests.WithLabelValues("hit"), m.cacheRequests.WithLabelValues("miss"), m.cacheRequests.WithLabelValues("error")
	m.resolved = make(map[screenpop.Resolution]prometheus.Counter, len(resolutionResults))
	for _, r := range resolutionResults {
		m.resolved[r] = m.resolutions.WithLabelValues(string(r))
	}
	for _, r := range refreshResults {
		m.refreshes.WithLabelValues(r)
	}
	for _, r := range evictionResults {
		m.evictions.WithLabelValues(r)
	}
	return m, nil
}

// addSource pre-creates every label value of a source, so that dashboards
// and alerts see zeros instead of missing series.
func (m *metrics) addSource(name string) {
	for _, o := range sourceOutcomes {
		m.sourceDuration.WithLabelValues(name, o)
	}
	for _, r := range errorReasons {
		m.sourceErrors.WithLabelValues(name, r)
	}
	for _, r := range sourceCacheResults {
		m.sourceCache.WithLabelValues(name, r)
	}
	m.breakerState.WithLabelValues(name)
}

// cacheCounts returns a source's series of sourceCache.
func (m *metrics) cacheCounts(name string) cacheCounts {
	return cacheCounts{
		hit: m.sourceCache.WithLabelValues(name, cacheHit), stale: m.sourceCache.WithLabelValues(name, cacheStale),
		miss: m.sourceCache.WithLabelValues(name, cacheMiss), err: m.sourceCache.WithLabelValues(name, cacheError),
	}
}

// resolution counts a card by how its caller resolved.
func (m *metrics) resolution(r screenpop.Resolution) {
	if c, ok := m.resolved[r]; ok {
		c.Inc()
		return
	}
	m.resolutions.WithLabelValues(string(r)).Inc()
}

// removeSource drops the series of a source that a reload removed.
func (m *metrics) removeSource(name string) {
	m.sourceDuration.DeletePartialMatch(prometheus.Labels{"source": name})
	m.sourceErrors.DeletePartialMatch(prometheus.Labels{"source": name})
	m.sourceCache.DeletePartialMatch(prometheus.Labels{"source": name})
	m.breakerState.DeletePartialMatch(prometheus.Labels{"source": name})
}
