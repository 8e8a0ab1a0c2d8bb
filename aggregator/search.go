package aggregator

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/promreg"
)

// SearchSpec bounds the directory's search, with which an agent finds the
// customer of a caller the directory does not know by number, and links
// the number to them (the next call then resolves). What the search
// matches — a query, the fields of a file, a URL — is the kind's own
// option, written beside these under the directory's search:.
type SearchSpec struct {
	// MinLength is the shortest text searched for, in characters; default
	// DefaultSearchMinLength. Shorter texts match too much of the
	// directory.
	MinLength int `yaml:"min_length"`
	// MaxResults is how many customers one search lists at most; default
	// DefaultSearchResults, at most MaxSearchResults.
	MaxResults int `yaml:"max_results"`
	// Timeout bounds one search; default DefaultSearchTimeout. An agent
	// waits for it, the caller on the line.
	Timeout time.Duration `yaml:"timeout"`
}

// Defaults and bounds of SearchSpec.
const (
	DefaultSearchMinLength = 3
	DefaultSearchResults   = 10
	DefaultSearchTimeout   = 2 * time.Second
	MaxSearchResults       = 50
	// MaxSearchLength is the longest text searched for: a name, an id or
	// an e-mail address is shorter.
	MaxSearchLength = 100
)

func (s *SearchSpec) setDefaults() {
	if s.MinLength == 0 {
		s.MinLength = DefaultSearchMinLength
	}
	if s.MaxResults == 0 {
		s.MaxResults = DefaultSearchResults
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultSearchTimeout
	}
}

// search checks a source's search: only the directory has one.
func (v *validation) search(entry string, s *SourceSpec, directory bool) {
	if s.Search == nil {
		return
	}
	add := func(option, msg, fix string) { v.add(entry+".search"+option, s.Name, msg, fix) }
	if !directory {
		add("", "only the directory is searched", "move search: to the directory, or remove it")
		return
	}
	sp := s.Search
	if sp.MinLength < 0 || sp.MinLength > 20 {
		add(".min_length", fmt.Sprintf("%d is outside 1..20", sp.MinLength), fmt.Sprintf("leave it out for %d: shorter texts match too much", DefaultSearchMinLength))
	}
	if sp.MaxResults < 0 || sp.MaxResults > MaxSearchResults {
		add(".max_results", fmt.Sprintf("%d is outside 1..%d", sp.MaxResults, MaxSearchResults), fmt.Sprintf("leave it out for %d: an agent reads a short list while the caller waits", DefaultSearchResults))
	}
	if sp.Timeout < 0 || sp.Timeout > MaxTimeout {
		add(".timeout", fmt.Sprintf("%s is outside 0..%s", duration(sp.Timeout), duration(MaxTimeout)), "e.g. timeout: 2s")
	}
}

// Searcher is what a directory source offers when its search is
// configured (every kind can be): the records of the customers matching
// what an agent typed — by name, customer id or e-mail, as the kind's
// search says — at most q.Limit of them, by ctx's deadline. Records map
// to customers by the directory's fixed columns (id, name, kind, contact,
// role, email, city, country, tags). A kind without its search configured
// returns screenpop.ErrNoSearch.
type Searcher interface {
	Search(ctx context.Context, q SearchQuery) ([]Record, error)
}

// SearchQuery is one search of the directory.
type SearchQuery struct {
	// Text is what the agent typed, trimmed, white space collapsed. It is
	// personal data: a kind never logs it, nor puts it in an error.
	Text string
	// Limit is how many records to return at most.
	Limit int
}

// SearchLimits returns what a search of the directory takes; ok is false
// when the directory cannot be searched (none, no search configured) or
// found customers cannot be linked (no history that keeps links).
func (a *Aggregator) SearchLimits() (screenpop.SearchLimits, bool) {
	st := a.state.Load()
	_, spec, ok := st.searcher()
	if !ok || a.links() == nil {
		return screenpop.SearchLimits{}, false
	}
	return screenpop.SearchLimits{MinLength: spec.MinLength, MaxLength: MaxSearchLength, MaxResults: spec.MaxResults}, true
}

// searcher is the directory's search, when configured.
func (s *state) searcher() (Searcher, SearchSpec, bool) {
	d := s.cfg.Directory
	if d == nil || d.Search == nil {
		return nil, SearchSpec{}, false
	}
	sr, ok := d.Source.(Searcher)
	return sr, *d.Search, ok
}

// Search finds the customers matching text in the directory, for an agent
// whose caller the directory did not know by number. The text is trimmed
// and must be MinLength..MaxSearchLength characters
// (screenpop.ErrSearchText otherwise); at most MaxResults customers come
// back, More set when there were more. It never logs the text.
func (a *Aggregator) Search(ctx context.Context, text string) (screenpop.SearchResult, error) {
	st := a.state.Load()
	sr, spec, ok := st.searcher()
	if !ok {
		return screenpop.SearchResult{}, screenpop.ErrNoSearch
	}
	text = strings.Join(strings.Fields(text), " ")
	switch n := utf8.RuneCountInString(text); {
	case n < spec.MinLength:
		a.searchMetrics.outcome(searchRefused, 0)
		return screenpop.SearchResult{}, fmt.Errorf("%w: type at least %d characters", screenpop.ErrSearchText, spec.MinLength)
	case n > MaxSearchLength:
		a.searchMetrics.outcome(searchRefused, 0)
		return screenpop.SearchResult{}, fmt.Errorf("%w: type at most %d characters", screenpop.ErrSearchText, MaxSearchLength)
	}
	name := st.cfg.Directory.Name
	start := time.Now()
	records, err := a.runSearch(ctx, sr, SearchQuery{Text: text, Limit: spec.MaxResults + 1}, name, spec.Timeout)
	took := time.Since(start)
	log := a.log.With("source", name)
	switch {
	case err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errSearchTimeout)):
		a.searchMetrics.outcome(searchTimeout, took)
		log.Info("directory search timed out", "timeout_seconds", spec.Timeout.Seconds())
		return screenpop.SearchResult{}, fmt.Errorf("the customer directory did not answer within %s", spec.Timeout)
	case err != nil && errors.Is(err, context.Canceled):
		a.searchMetrics.outcome(searchTimeout, took)
		return screenpop.SearchResult{}, errors.New("the search was given up")
	case errors.Is(err, screenpop.ErrNoSearch):
		a.searchMetrics.outcome(searchError, took)
		return screenpop.SearchResult{}, err
	case err != nil:
		a.searchMetrics.outcome(searchError, took)
		log.Warn("directory search failed", "err", scrubText(err.Error(), text), "took_seconds", took.Seconds())
		return screenpop.SearchResult{}, errors.New("the customer directory could not be searched")
	}
	// Records are contacts as much as customers: a full answer may hold
	// fewer customers than asked for, and still more behind it.
	res := screenpop.SearchResult{Customers: customersFrom(records), More: len(records) > spec.MaxResults}
	if len(res.Customers) > spec.MaxResults {
		res.Customers, res.More = res.Customers[:spec.MaxResults], true
	}
	if len(res.Customers) == 0 {
		a.searchMetrics.outcome(searchEmpty, took)
	} else {
		a.searchMetrics.outcome(searchOK, took)
	}
	log.Debug("directory searched", "found", len(res.Customers), "more", res.More, "took_seconds", took.Seconds())
	return res, nil
}

var errSearchTimeout = errors.New("search timed out")

// runSearch runs one search under its own timeout, in a goroutine of its
// own: a kind that ignores its context costs only that goroutine, and a
// panicking one costs the search, not the daemon.
func (a *Aggregator) runSearch(ctx context.Context, sr Searcher, q SearchQuery, name string, timeout time.Duration) ([]Record, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("search of %s: %w after %s", name, errSearchTimeout, timeout))
	defer cancel()
	type answer struct {
		records []Record
		err     error
	}
	done := make(chan answer, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				a.log.Error("directory search panicked", "source", name, "panic", scrubText(fmt.Sprint(p), q.Text), "stack", string(debug.Stack()))
				done <- answer{err: errPanicked}
			}
		}()
		records, err := sr.Search(ctx, q)
		done <- answer{records, err}
	}()
	select {
	case r := <-done:
		if r.err != nil && ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return r.records, r.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// scrubText takes what an agent searched for out of a message before it is
// logged, as typed and as a URL or a query would carry it.
func scrubText(msg, text string) string {
	if text == "" {
		return msg
	}
	for _, v := range []string{text, url.QueryEscape(text), url.PathEscape(text), strings.ToLower(text)} {
		msg = strings.ReplaceAll(msg, v, "[search text]")
	}
	return msg
}

// Outcomes of a search, the values of the outcome label of
// screenpop_aggregator_searches_total.
const (
	searchOK      = "ok"      // customers found
	searchEmpty   = "empty"   // none matched
	searchRefused = "refused" // the text was too short or too long
	searchTimeout = "timeout" // no answer in time, or given up
	searchError   = "error"   // the directory failed
)

var searchOutcomes = []string{searchOK, searchEmpty, searchRefused, searchTimeout, searchError}

// Results of looking a number up among the links agents made, the values
// of the result label of screenpop_aggregator_link_lookups_total.
const (
	linkLinked    = "linked"     // the number is linked: resolved to its customer
	linkNotLinked = "not_linked" // the directory is asked as always
	linkError     = "error"      // the history did not answer: the directory is asked
)

var linkResults = []string{linkLinked, linkNotLinked, linkError}

type searchMetrics struct {
	searches *prometheus.CounterVec // outcome
	duration prometheus.Histogram
	lookups  *prometheus.CounterVec // result
	links    prometheus.Counter
}

func newSearchMetrics(reg prometheus.Registerer) (*searchMetrics, error) {
	m := &searchMetrics{
		searches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "searches_total",
			Help: "Searches of the directory by agents, by outcome (ok, empty, refused, timeout, error).",
		}, []string{"outcome"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "search_duration_seconds",
			Help:    "Time one search of the directory took (refused texts are not asked).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2, 5},
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "link_lookups_total",
			Help: "Numbers looked up among those agents linked to customers before the directory, by result (linked, not_linked, error).",
		}, []string{"result"}),
		links: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "screenpop", Subsystem: "aggregator", Name: "links_total",
			Help: "Numbers agents linked to a customer they found by searching the directory.",
		}),
	}
	var err error
	if m.searches, err = promreg.Register(reg, m.searches); err != nil {
		return nil, err
	}
	if m.duration, err = promreg.Register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.lookups, err = promreg.Register(reg, m.lookups); err != nil {
		return nil, err
	}
	if m.links, err = promreg.Register(reg, m.links); err != nil {
		return nil, err
	}
	for _, o := range searchOutcomes {
		m.searches.WithLabelValues(o)
	}
	for _, r := range linkResults {
		m.lookups.WithLabelValues(r)
	}
	return m, nil
}

func (m *searchMetrics) outcome(o string, took time.Duration) {
	m.searches.WithLabelValues(o).Inc()
	if o != searchRefused {
		m.duration.Observe(took.Seconds())
	}
}
