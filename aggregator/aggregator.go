// Package aggregator builds the customer card of a call: it normalises the
// caller's number, resolves it to a customer through the directory source,
// asks every configured data source in parallel under one deadline, and
// merges whatever arrived in time into a screenpop.Card. Each source has its
// own timeout, cache, circuit breaker and concurrency limit, so a slow or
// broken company system costs its own section and nothing else.
package aggregator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Config is the whole aggregator configuration (cmd builds it from YAML).
type Config struct {
	// Region is the default ISO 3166 region for numbers without a country
	// code, e.g. "DE". Empty: only numbers in international form resolve.
	Region string
	// Deadline is the overall budget for one card; default 2s. A shorter
	// deadline on Build's context wins.
	Deadline time.Duration
	// Sections gives display order and titles; sections named only by
	// sources are appended in the order of their first source.
	Sections []SectionSpec
	// Directory resolves a phone to customers; nil = no resolution (every
	// caller unknown).
	Directory *SourceSpec
	// Sources are the data sources fanned out to.
	Sources []SourceSpec
	// HistoryLimit is how many earlier calls the card shows; default 10.
	HistoryLimit int
	// Lines labels the company's numbers customers dial, keyed by the DID
	// exactly as the telephony source reports it ("100": "Support DE").
	// Every card with a DID gets Card.Line; the label only when listed.
	Lines map[string]string
}

// SectionSpec names a card section and its title.
type SectionSpec struct{ Name, Title string }

// SourceSpec is one data source and how its answer lands on the card.
type SourceSpec struct {
	// Name labels metrics, logs and cache keys; unique.
	Name string
	// Section is the card section the source fills; several sources may
	// fill one. Default: the source's name.
	Section string
	Source  Source
	// Timeout is the source's own budget, default 1s, always capped by what
	// is left of the card's deadline.
	Timeout time.Duration
	// CacheTTL is how long answers are cached; 0 = not cached.
	CacheTTL time.Duration
	// FreshFor is how long a cached answer is shown as it is. An older one
	// (up to CacheTTL) is still shown at once, and the source is asked again
	// in the background (stale-while-revalidate). Default CacheTTL/2; equal
	// to CacheTTL: never revalidated, the entry simply expires.
	FreshFor time.Duration
	// Required marks a source without which the card is incomplete: its
	// failures are logged as warnings and counted in
	// screenpop_aggregator_incomplete_cards_total.
	Required bool
	// Needs is the lookup parameter the source needs: "customer_id"
	// (default; the directory's default is "phone"), "phone", "national" or
	// "region". A source is skipped (SectionSkipped) when the call lacks it.
	Needs string
	// MaxConcurrent bounds lookups in flight; 0 = unlimited. When reached,
	// the source answers SectionUnavailable at once instead of queueing.
	MaxConcurrent int
	Breaker       BreakerSpec
	Mapping       Mapping
}

// BreakerSpec configures a source's circuit breaker: after Failures
// consecutive failures (errors, timeouts, panics) the source is not asked
// (SectionUnavailable) for OpenFor, then one lookup probes it again.
// The zero value means 5 failures and 30s.
type BreakerSpec struct {
	Failures int
	OpenFor  time.Duration
	Disabled bool
}

// Mapping says how a source's records become section fields or a list.
type Mapping struct {
	// Mode "fields" (default) shows the first record as labelled values;
	// "list" shows all records as one table.
	Mode string
	// Label titles the list ("Overdue invoices"); default derived from
	// the source name.
	Label string
	// Key identifies the list; default the source name.
	Key string
	// Fields are the columns to show, in order; empty = every column in
	// alphabetical order, labels derived ("overdue_total" -> "Overdue total").
	Fields []FieldMap
	// MaxRows bounds a list, default 20; more rows set List.Truncated.
	MaxRows int
}

// FieldMap picks one column and says how to show it. Format: text (default),
// money, number, date, datetime, percent.
type FieldMap struct{ From, Label, Format string }

// Mapping modes.
const (
	ModeFields = "fields"
	ModeList   = "list"
)

// Defaults applied by New and Reload.
const (
	DefaultDeadline        = 2 * time.Second
	DefaultTimeout         = time.Second
	DefaultHistoryLimit    = 10
	DefaultMaxRows         = 20
	DefaultBreakerFailures = 5
	DefaultBreakerOpenFor  = 30 * time.Second
	DefaultMaxRefreshes    = 16
)

// Options are the aggregator's collaborators.
type Options struct {
	// Cache keeps source answers for their CacheTTL; nil = no caching.
	Cache Cache
	// History gives the caller's earlier calls; nil = no history on cards.
	History History
	// Logger gets a child per source; nil = discard.
	Logger *slog.Logger
	// Registerer receives the metrics; nil = not registered.
	Registerer prometheus.Registerer
	// Now stamps Card.BuiltAt and the age of cached answers; default
	// time.Now. Durations and deadlines always use the monotonic clock.
	Now func() time.Time
	// OnRefresh is told when a background refresh brought data that differs
	// from what cards were shown, or when Evict dropped a caller's cached
	// data: the cards of active calls of that number (or customer) are out
	// of date. customerID is empty when the data was keyed by number only.
	// It is called from the refresh's goroutine and must not block (the
	// pop dispatcher's Refresh only queues a rebuild). nil: not told.
	OnRefresh func(phone, customerID string)
	// MaxRefreshes bounds background refreshes in flight; beyond it a
	// stale answer is served without refresh. Default 16.
	MaxRefreshes int
}

// Aggregator builds cards. It is safe for concurrent use; Reload swaps the
// configuration while Builds run.
type Aggregator struct {
	cache   Cache
	history History
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics

	state    atomic.Pointer[state]
	reloadMu sync.Mutex // one Reload at a time

	cacheErrLog rateLimit

	flightsMu sync.Mutex
	flights   map[flightKey]*flight // card fan-outs in progress, for coalescing

	refresh *refresher
}

// state is one validated configuration with its runtime parts. Builds load
// it once and use it to the end, so a Reload never mixes two configurations
// in one card.
type state struct {
	cfg       Config
	region    string
	directory *sourceRuntime
	sources   []*sourceRuntime
	sections  []sectionLayout
	lines     map[string]string // DID -> label; a copy of cfg.Lines
}

type sectionLayout struct {
	name, title string
	sources     []int // indexes into state.sources, in configuration order
}

// sourceRuntime is a configured source with what it needs at run time.
type sourceRuntime struct {
	spec  SourceSpec // defaults applied
	guard *guard
	log   *slog.Logger

	durations map[string]prometheus.Observer // by outcome
	errors    map[string]prometheus.Counter  // by reason
}

// guard is the state that outlives a Reload when a source keeps its name
// and its breaker and concurrency settings: an open breaker stays open.
type guard struct {
	breakerSpec   BreakerSpec
	maxConcurrent int
	breaker       *gobreaker.TwoStepCircuitBreaker[struct{}] // nil: disabled
	slots         chan struct{}                              // nil: unlimited
	stackLogged   atomic.Bool                                // a panic's stack is logged once
}

// New validates cfg and builds an Aggregator. It does no I/O.
func New(cfg Config, opts Options) (*Aggregator, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("aggregator: metrics: %w", err)
	}
	if opts.MaxRefreshes < 0 {
		return nil, fmt.Errorf("aggregator: max refreshes %d must not be negative", opts.MaxRefreshes)
	}
	if opts.MaxRefreshes == 0 {
		opts.MaxRefreshes = DefaultMaxRefreshes
	}
	a := &Aggregator{
		cache:   opts.Cache,
		history: opts.History,
		log:     opts.Logger,
		now:     opts.Now,
		metrics: m,
		flights: map[flightKey]*flight{},
		refresh: newRefresher(opts.MaxRefreshes, opts.OnRefresh),
	}
	st, err := a.newState(cfg, nil)
	if err != nil {
		return nil, err
	}
	for _, rt := range st.all() {
		m.addSource(rt.spec.Name)
	}
	a.state.Store(st)
	return a, nil
}

// Reload validates cfg and swaps it in atomically. Builds already running
// finish on the old configuration. A source that keeps its name, breaker
// and concurrency settings keeps its breaker state; others start afresh.
func (a *Aggregator) Reload(cfg Config) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	old := a.state.Load()
	st, err := a.newState(cfg, old)
	if err != nil {
		return err
	}
	kept := map[string]bool{}
	for _, rt := range st.all() {
		kept[rt.spec.Name] = true
		a.metrics.addSource(rt.spec.Name)
	}
	a.state.Store(st)
	for _, rt := range old.all() {
		if !kept[rt.spec.Name] {
			a.metrics.removeSource(rt.spec.Name)
		}
	}
	return nil
}

// Config returns the configuration in use, with defaults applied.
func (a *Aggregator) Config() Config { return a.state.Load().cfg }

func (s *state) all() []*sourceRuntime {
	if s.directory == nil {
		return s.sources
	}
	return append([]*sourceRuntime{s.directory}, s.sources...)
}

// newState validates cfg, applies defaults and builds the runtime parts,
// reusing the guards of prev where a source's settings did not change.
// Every problem is reported, not just the first.
func (a *Aggregator) newState(cfg Config, prev *state) (*state, error) {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	cfg.Region = strings.ToUpper(strings.TrimSpace(cfg.Region))
	if cfg.Region != "" && !validRegion(cfg.Region) {
		fail("region %q is not a region with a known numbering plan (write an ISO 3166 code such as DE)", cfg.Region)
	}
	switch {
	case cfg.Deadline == 0:
		cfg.Deadline = DefaultDeadline
	case cfg.Deadline < 0:
		fail("deadline %s must be positive", cfg.Deadline)
	}
	switch {
	case cfg.HistoryLimit == 0:
		cfg.HistoryLimit = DefaultHistoryLimit
	case cfg.HistoryLimit < 0:
		fail("history limit %d must not be negative", cfg.HistoryLimit)
	}

	prevGuards := map[string]*guard{}
	if prev != nil {
		for _, rt := range prev.all() {
			prevGuards[rt.spec.Name] = rt.guard
		}
	}
	st := &state{region: cfg.Region, lines: make(map[string]string, len(cfg.Lines))}
	for did, label := range cfg.Lines {
		did, label = strings.TrimSpace(did), strings.TrimSpace(label)
		if did == "" {
			fail("lines: the label %q has no number", label)
			continue
		}
		st.lines[did] = label
	}
	cfg.Lines = st.lines
	names := map[string]string{} // name -> path, for duplicates
	build := func(path string, spec SourceSpec, directory bool) *sourceRuntime {
		spec, problems := withDefaults(spec, directory)
		if spec.Name != "" {
			path = fmt.Sprintf("%s (%s)", path, spec.Name)
			if other, dup := names[spec.Name]; dup {
				problems = append(problems, fmt.Sprintf("name %q is already used by %s (names label metrics and cache keys)", spec.Name, other))
			}
			names[spec.Name] = path
		}
		for _, p := range problems {
			fail("%s: %s", path, p)
		}
		if len(problems) > 0 {
			return nil
		}
		return a.newRuntime(spec, prevGuards[spec.Name])
	}
	if cfg.Directory != nil {
		d := *cfg.Directory
		if rt := build("directory", d, true); rt != nil {
			st.directory = rt
			d = rt.spec
		}
		cfg.Directory = &d
	}
	sources := make([]SourceSpec, len(cfg.Sources))
	for i, s := range cfg.Sources {
		sources[i] = s
		if rt := build(fmt.Sprintf("sources[%d]", i), s, false); rt != nil {
			st.sources = append(st.sources, rt)
			sources[i] = rt.spec
		}
	}
	cfg.Sources = sources

	sectionAt := map[string]int{}
	for i, s := range cfg.Sections {
		switch {
		case s.Name == "":
			fail("sections[%d]: name is required", i)
			continue
		case hasIndex(sectionAt, s.Name):
			fail("sections[%d]: section %q is listed twice", i, s.Name)
			continue
		}
		title := s.Title
		if title == "" {
			title = deriveLabel(s.Name)
		}
		sectionAt[s.Name] = len(st.sections)
		st.sections = append(st.sections, sectionLayout{name: s.Name, title: title})
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("aggregator: %w", errors.Join(errs...))
	}
	for i, rt := range st.sources {
		at, ok := sectionAt[rt.spec.Section]
		if !ok {
			at = len(st.sections)
			sectionAt[rt.spec.Section] = at
			st.sections = append(st.sections, sectionLayout{name: rt.spec.Section, title: deriveLabel(rt.spec.Section)})
		}
		st.sections[at].sources = append(st.sections[at].sources, i)
	}
	// A listed section no source fills would stay empty on every card.
	st.sections = deleteEmptySections(st.sections)
	st.cfg = cfg
	return st, nil
}

func hasIndex(m map[string]int, k string) bool { _, ok := m[k]; return ok }

func deleteEmptySections(in []sectionLayout) []sectionLayout {
	out := in[:0]
	for _, s := range in {
		if len(s.sources) > 0 {
			out = append(out, s)
		}
	}
	return out
}

var validFormats = map[string]bool{"": true, "text": true, "money": true, "number": true, "date": true, "datetime": true, "percent": true}

// withDefaults fills in a source's defaults and lists what is wrong with it.
func withDefaults(s SourceSpec, directory bool) (SourceSpec, []string) {
	var problems []string
	if s.Name == "" {
		problems = append(problems, "name is required")
	}
	if s.Source == nil {
		problems = append(problems, "no source implementation (Source is nil)")
	}
	switch {
	case s.Timeout == 0:
		s.Timeout = DefaultTimeout
	case s.Timeout < 0:
		problems = append(problems, fmt.Sprintf("timeout %s must be positive", s.Timeout))
	}
	if s.CacheTTL < 0 {
		problems = append(problems, fmt.Sprintf("cache TTL %s must not be negative", s.CacheTTL))
	}
	switch {
	case s.FreshFor < 0:
		problems = append(problems, fmt.Sprintf("fresh for %s must not be negative", s.FreshFor))
	case s.FreshFor > 0 && s.FreshFor > s.CacheTTL:
		problems = append(problems, fmt.Sprintf("fresh for %s must not exceed the cache TTL %s (nothing is kept longer than the TTL)", s.FreshFor, s.CacheTTL))
	case s.FreshFor == 0:
		s.FreshFor = s.CacheTTL / 2
	}
	if s.MaxConcurrent < 0 {
		problems = append(problems, fmt.Sprintf("max concurrent %d must not be negative (0 means no limit)", s.MaxConcurrent))
	}
	if s.Needs == "" {
		s.Needs = "customer_id"
		if directory {
			s.Needs = "phone"
		}
	}
	switch {
	case !isParam(s.Needs):
		problems = append(problems, fmt.Sprintf("needs %q is not a lookup parameter (one of: %s)", s.Needs, strings.Join(ParamNames, ", ")))
	case directory && s.Needs == "customer_id":
		problems = append(problems, `the directory finds the customer, so it cannot need customer_id (use phone or national)`)
	}
	if s.Breaker.Failures < 0 || s.Breaker.OpenFor < 0 {
		problems = append(problems, "breaker failures and open time must not be negative")
	}
	if s.Breaker.Failures == 0 {
		s.Breaker.Failures = DefaultBreakerFailures
	}
	if s.Breaker.OpenFor == 0 {
		s.Breaker.OpenFor = DefaultBreakerOpenFor
	}
	if directory {
		// The directory's columns map to screenpop.Customer by fixed names.
		return s, problems
	}
	if s.Section == "" {
		s.Section = s.Name
	}
	m := &s.Mapping
	switch m.Mode {
	case "":
		m.Mode = ModeFields
	case ModeFields, ModeList:
	default:
		problems = append(problems, fmt.Sprintf("mapping mode %q is unknown (fields or list)", m.Mode))
	}
	if m.Key == "" {
		m.Key = s.Name
	}
	if m.Label == "" {
		m.Label = deriveLabel(s.Name)
	}
	switch {
	case m.MaxRows == 0:
		m.MaxRows = DefaultMaxRows
	case m.MaxRows < 0:
		problems = append(problems, fmt.Sprintf("mapping max rows %d must be positive", m.MaxRows))
	}
	fields := make([]FieldMap, len(m.Fields))
	for i, f := range m.Fields {
		if f.From == "" {
			problems = append(problems, fmt.Sprintf("mapping field %d: from is required", i))
		}
		if !validFormats[f.Format] {
			problems = append(problems, fmt.Sprintf("mapping field %d (%s): format %q is unknown (text, money, number, date, datetime, percent)", i, f.From, f.Format))
		}
		if f.Label == "" {
			f.Label = deriveLabel(f.From)
		}
		fields[i] = f
	}
	m.Fields = fields
	return s, problems
}

func isParam(name string) bool {
	for _, p := range ParamNames {
		if p == name {
			return true
		}
	}
	return false
}

func (a *Aggregator) newRuntime(spec SourceSpec, prev *guard) *sourceRuntime {
	rt := &sourceRuntime{
		spec:      spec,
		log:       a.log.With("source", spec.Name),
		durations: make(map[string]prometheus.Observer, len(sourceOutcomes)),
		errors:    make(map[string]prometheus.Counter, len(errorReasons)),
	}
	for _, o := range sourceOutcomes {
		rt.durations[o] = a.metrics.sourceDuration.WithLabelValues(spec.Name, o)
	}
	for _, r := range errorReasons {
		rt.errors[r] = a.metrics.sourceErrors.WithLabelValues(spec.Name, r)
	}
	if prev != nil && prev.breakerSpec == spec.Breaker && prev.maxConcurrent == spec.MaxConcurrent {
		rt.guard = prev
		return rt
	}
	g := &guard{breakerSpec: spec.Breaker, maxConcurrent: spec.MaxConcurrent}
	if spec.MaxConcurrent > 0 {
		g.slots = make(chan struct{}, spec.MaxConcurrent)
	}
	if !spec.Breaker.Disabled {
		failures := uint32(spec.Breaker.Failures)
		log := rt.log
		g.breaker = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:    spec.Name,
			Timeout: spec.Breaker.OpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= failures
			},
			// A card abandoned by its caller says nothing about the source.
			IsExcluded: func(err error) bool { return errors.Is(err, errAbandoned) },
			OnStateChange: func(_ string, from, to gobreaker.State) {
				level := slog.LevelInfo
				if to == gobreaker.StateOpen {
					level = slog.LevelWarn
				}
				log.Log(context.Background(), level, "circuit breaker "+to.String(), "from", from.String(), "open_for_seconds", spec.Breaker.OpenFor.Seconds())
			},
		})
	}
	rt.guard = g
	return rt
}

// deriveLabel makes a label out of a column or source name:
// "overdue_total" -> "Overdue total", "sales-next" -> "Sales next".
func deriveLabel(name string) string {
	s := strings.TrimSpace(strings.NewReplacer("_", " ", "-", " ", ".", " ").Replace(name))
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return name
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// rateLimit lets one event through per interval, for logs that could
// otherwise repeat on every call (a cache that is down).
type rateLimit struct{ last atomic.Int64 }

const logEvery = time.Minute

func (r *rateLimit) allow() bool {
	now := time.Now().UnixNano()
	last := r.last.Load()
	if last != 0 && now-last < int64(logEvery) {
		return false
	}
	return r.last.CompareAndSwap(last, now)
}
