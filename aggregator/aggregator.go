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
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/screenpop/screenpop/history"
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

	cacheErrLog   rateLimit
	historyErrLog rateLimit // a history that is down fails every card
	linkErrLog    rateLimit // so does one that cannot say which numbers are linked

	searchMetrics *searchMetrics // the directory's search and the numbers linked (search.go)
	// historyInProcess: the History is in this process (the memory
	// stores), read at once rather than in a goroutine of its own.
	historyInProcess bool

	numbers numberMemo  // the callers' numbers of the last cards, normalised
	decoded decodedMemo // a shared cache's last values, decoded

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
	roles       []string // who may see it; empty: everyone
	sources     []int    // indexes into state.sources, in configuration order
}

// sourceRuntime is a configured source with what it needs at run time.
type sourceRuntime struct {
	spec  SourceSpec // defaults applied
	guard *guard
	log   *slog.Logger

	durations  map[string]prometheus.Observer // by outcome
	errors     map[string]prometheus.Counter  // by reason
	cacheCount cacheCounts
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
	sm, err := newSearchMetrics(opts.Registerer)
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

		searchMetrics: sm,
	}
	switch opts.History.(type) {
	case *history.Memory, *MemoryHistory:
		a.historyInProcess = true
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

// newState applies cfg's defaults, validates it and builds the runtime
// parts, reusing the guards of prev where a source's settings did not
// change. Every problem is reported, not just the first.
func (a *Aggregator) newState(cfg Config, prev *state) (*state, error) {
	// Copies: defaults must not write into the caller's sources, nor the
	// caller change what runs.
	if cfg.Directory != nil {
		d := *cfg.Directory
		cfg.Directory = &d
	}
	cfg.Sources = slices.Clone(cfg.Sources)
	cfg.Lines = maps.Clone(cfg.Lines)
	cfg.Links = slices.Clone(cfg.Links)
	cfg.SetDefaults()
	var problems Problems
	if err := cfg.Validate(); err != nil {
		problems = err.(Problems)
	}
	if cfg.Directory != nil && cfg.Directory.Source == nil {
		problems = append(problems, Problem{Path: "directory", Name: cfg.Directory.Name, Msg: "no source implementation (Source is nil)"})
	}
	for i, s := range cfg.Sources {
		if s.Source == nil {
			problems = append(problems, Problem{Path: fmt.Sprintf("sources[%d]", i), Name: s.Name, Msg: "no source implementation (Source is nil)"})
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("aggregator: %w", problems)
	}

	prevGuards := map[string]*guard{}
	if prev != nil {
		for _, rt := range prev.all() {
			prevGuards[rt.spec.Name] = rt.guard
		}
	}
	st := &state{cfg: cfg, region: normRegion(cfg.Region), lines: make(map[string]string, len(cfg.Lines))}
	for did, label := range cfg.Lines {
		st.lines[strings.TrimSpace(did)] = strings.TrimSpace(label)
	}
	if cfg.Directory != nil {
		// A number an agent linked resolves before the directory is asked.
		st.directory = a.newRuntime(a.withLinks(*cfg.Directory), prevGuards[cfg.Directory.Name])
	}
	sectionAt := map[string]int{}
	for _, s := range cfg.Sections {
		title := s.Title
		if title == "" {
			title = deriveLabel(s.Name)
		}
		sectionAt[s.Name] = len(st.sections)
		st.sections = append(st.sections, sectionLayout{name: s.Name, title: title, roles: slices.Clone(s.Roles)})
	}
	for i, s := range cfg.Sources {
		st.sources = append(st.sources, a.newRuntime(s, prevGuards[s.Name]))
		at, ok := sectionAt[s.Section]
		if !ok {
			// No sections listed (Validate refuses an undeclared one
			// otherwise): in the order of their first source.
			at = len(st.sections)
			sectionAt[s.Section] = at
			st.sections = append(st.sections, sectionLayout{name: s.Section, title: deriveLabel(s.Section)})
		}
		st.sections[at].sources = append(st.sections[at].sources, i)
	}
	// A listed section no source fills would stay empty on every card.
	st.sections = deleteEmptySections(st.sections)
	return st, nil
}

func deleteEmptySections(in []sectionLayout) []sectionLayout {
	out := in[:0]
	for _, s := range in {
		if len(s.sources) > 0 {
			out = append(out, s)
		}
	}
	return out
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
	rt.cacheCount = a.metrics.cacheCounts(spec.Name)
	if prev != nil && prev.breakerSpec == spec.Breaker && prev.maxConcurrent == spec.MaxConcurrent {
		rt.guard = prev
		return rt
	}
	g := &guard{breakerSpec: spec.Breaker, maxConcurrent: spec.MaxConcurrent}
	breakerState := a.metrics.breakerState.WithLabelValues(spec.Name)
	breakerState.Set(float64(gobreaker.StateClosed)) // a new breaker, or none
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
				breakerState.Set(float64(to))
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
	if l, ok := deriveASCIILabel(name); ok {
		return l
	}
	return deriveAnyLabel(name)
}

// deriveAnyLabel is deriveLabel for any name; deriveASCIILabel gives the
// same for plain ASCII in one allocation.
func deriveAnyLabel(name string) string {
	s := strings.TrimSpace(labelSeparators.Replace(name))
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return name
	}
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

var labelSeparators = strings.NewReplacer("_", " ", "-", " ", ".", " ")

// deriveASCIILabel is deriveLabel of an ASCII name, in one allocation:
// cards without mapped fields derive the labels of every column they
// show. ok is false for any other name.
func deriveASCIILabel(name string) (string, bool) {
	buf := make([]byte, 0, len(name))
	space := false // a separator since the last word
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= utf8.RuneSelf:
			return "", false
		case c == '_' || c == '-' || c == '.' || c == ' ' || ('\t' <= c && c <= '\r'):
			space = len(buf) > 0
			continue
		case len(buf) == 0 && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		if space {
			buf = append(buf, ' ')
			space = false
		}
		buf = append(buf, c)
	}
	if len(buf) == 0 {
		return name, true
	}
	return string(buf), true
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
