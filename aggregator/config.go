package aggregator

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Config is the whole aggregator configuration. Its YAML keys are those of
// the daemon's configuration file, which package configs decodes straight
// into these types: the file and a program calling New get the same
// defaults (SetDefaults) and the same checks (Validate).
type Config struct {
	// Region is the default ISO 3166 region for numbers without a country
	// code, e.g. "DE". Empty: only numbers in international form resolve.
	Region string `yaml:"region"`
	// Deadline is the overall budget for one card; default 2s, at most 30s.
	// A shorter deadline on Build's context wins.
	Deadline time.Duration `yaml:"deadline"`
	// HistoryLimit is how many earlier calls the card shows; default 10.
	HistoryLimit int `yaml:"history_limit"`
	// Lines labels the company's numbers customers dial, keyed by the DID
	// exactly as the telephony source reports it ("100": "Support DE").
	// Every card with a DID gets Card.Line; the label only when listed.
	Lines map[string]string `yaml:"lines"`
	// Sections gives display order and titles. When it lists any, every
	// source's section must be one of them; when empty, sections come in the
	// order of their first source, titled from their name.
	Sections []SectionSpec `yaml:"sections"`
	// Directory resolves a phone to customers; nil = no resolution (every
	// caller unknown). Not decoded as it is: in a file a source also names
	// its kind and the kind's options, from which the wiring builds Source.
	Directory *SourceSpec `yaml:"-"`
	// Sources are the data sources fanned out to; see Directory.
	Sources []SourceSpec `yaml:"-"`
	// Links are the links every card offers to the caller's record in
	// other systems ("Open in CRM"), URL templates filled in for each
	// agent (LinkSpec).
	Links []LinkSpec `yaml:"links"`
}

// SectionSpec names a card section and its title, and who may see it.
type SectionSpec struct {
	Name  string `yaml:"name"`
	Title string `yaml:"title"`
	// Roles are the roles that may see the section ([credit, supervisor]):
	// every card carries them in CardSection.Roles, and an agent holding
	// none of them never gets the section. Empty: every agent.
	Roles []string `yaml:"roles"`
}

// SourceSpec is one data source and how its answer lands on the card.
type SourceSpec struct {
	// Name labels metrics, logs and cache keys; unique, lower-case letters,
	// digits, - and _.
	Name string `yaml:"name"`
	// Section is the card section the source fills; several sources may
	// fill one. Default: the source's name.
	Section string `yaml:"section"`
	// Source is the implementation, built by the wiring from the source's
	// kind and options.
	Source Source `yaml:"-"`
	// Timeout is the source's own budget, default 1s, at most 30s, always
	// capped by what is left of the card's deadline.
	Timeout time.Duration `yaml:"timeout"`
	// CacheTTL is how long answers are cached; 0 = not cached; at most 24h
	// (customer data is personal data).
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// FreshFor is how long a cached answer is shown as it is. An older one
	// (up to CacheTTL) is still shown at once, and the source is asked again
	// in the background (stale-while-revalidate). Default CacheTTL/2; equal
	// to CacheTTL: never revalidated, the entry simply expires.
	FreshFor time.Duration `yaml:"fresh_for"`
	// Required marks a source without which the card is incomplete: its
	// failures are logged as warnings and counted in
	// screenpop_aggregator_incomplete_cards_total.
	Required bool `yaml:"required"`
	// Needs is the lookup parameter the source needs: "customer_id"
	// (default; the directory's default is "phone"), "phone", "national" or
	// "region". A source is skipped (SectionSkipped) when the call lacks it.
	Needs string `yaml:"needs"`
	// MaxConcurrent bounds lookups in flight; 0 = unlimited. When reached,
	// the source answers SectionUnavailable at once instead of queueing.
	MaxConcurrent int         `yaml:"max_concurrent"`
	Breaker       BreakerSpec `yaml:"breaker"`
	// Mapping does not apply to the directory, whose columns map to
	// screenpop.Customer by fixed names.
	Mapping Mapping `yaml:"mapping"`
	// Search lets agents search the directory for the customer of a
	// caller it does not know by number (directory only; nil: no search).
	// The kind's own search options sit beside these under search:.
	Search *SearchSpec `yaml:"search"`
}

// BreakerSpec configures a source's circuit breaker: after Failures
// consecutive failures (errors, timeouts, panics) the source is not asked
// (SectionUnavailable) for OpenFor, then one lookup probes it again.
// The zero value means 5 failures and 30s.
type BreakerSpec struct {
	Failures int           `yaml:"failures"`
	OpenFor  time.Duration `yaml:"open_for"`
	Disabled bool          `yaml:"disabled"`
}

// Mapping says how a source's records become section fields or a list.
type Mapping struct {
	// Mode "fields" (default) shows the first record as labelled values;
	// "list" shows all records as one table.
	Mode string `yaml:"mode"`
	// Label titles the list ("Overdue invoices"); default derived from
	// the source name.
	Label string `yaml:"label"`
	// Key identifies the list; default the source name.
	Key string `yaml:"key"`
	// Fields are the columns to show, in order; empty = every column in
	// alphabetical order, labels derived ("overdue_total" -> "Overdue total").
	Fields []FieldMap `yaml:"fields"`
	// MaxRows bounds a list, default 20; more rows set List.Truncated.
	MaxRows int `yaml:"max_rows"`
}

// FieldMap picks one column and says how to show it. Format: text (default),
// money, number, date, datetime, percent.
type FieldMap struct {
	From   string `yaml:"from"`
	Label  string `yaml:"label"`
	Format string `yaml:"format"`
}

// Mapping modes.
const (
	ModeFields = "fields"
	ModeList   = "list"
)

// Defaults applied by SetDefaults.
const (
	DefaultDeadline        = 2 * time.Second
	DefaultTimeout         = time.Second
	DefaultHistoryLimit    = 10
	DefaultMaxRows         = 20
	DefaultBreakerFailures = 5
	DefaultBreakerOpenFor  = 30 * time.Second
	DefaultMaxRefreshes    = 16
)

// Bounds Validate holds the configuration to.
const (
	MinDeadline  = 50 * time.Millisecond
	MaxDeadline  = 30 * time.Second
	MaxTimeout   = 30 * time.Second
	MaxCacheTTL  = 24 * time.Hour
	MaxLineLabel = 80 // characters: it shares the card header with the state of the call
)

// SetDefaults fills in every option left at its zero value, in c and in
// each of its sources. It is the only place defaults are decided: New and
// Reload call it, and so does the configuration loader, so that the model
// it hands the wiring is the one that runs.
func (c *Config) SetDefaults() {
	if c.Deadline == 0 {
		c.Deadline = DefaultDeadline
	}
	if c.HistoryLimit == 0 {
		c.HistoryLimit = DefaultHistoryLimit
	}
	if c.Directory != nil {
		c.Directory.setDefaults(true)
	}
	for i := range c.Sources {
		c.Sources[i].setDefaults(false)
	}
}

func (s *SourceSpec) setDefaults(directory bool) {
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.FreshFor == 0 && s.CacheTTL > 0 {
		s.FreshFor = s.CacheTTL / 2
	}
	if s.Needs == "" {
		s.Needs = "customer_id"
		if directory {
			s.Needs = "phone"
		}
	}
	if s.Breaker.Failures == 0 {
		s.Breaker.Failures = DefaultBreakerFailures
	}
	if s.Breaker.OpenFor == 0 {
		s.Breaker.OpenFor = DefaultBreakerOpenFor
	}
	if s.Search != nil {
		search := *s.Search // the caller's spec stays as it was
		search.setDefaults()
		s.Search = &search
	}
	if directory {
		// The directory's columns map to screenpop.Customer by fixed names.
		return
	}
	if s.Section == "" {
		s.Section = s.Name
	}
	m := &s.Mapping
	if m.Mode == "" {
		m.Mode = ModeFields
	}
	if m.Key == "" {
		m.Key = s.Name
	}
	if m.Label == "" {
		m.Label = deriveLabel(s.Name)
	}
	if m.MaxRows == 0 {
		m.MaxRows = DefaultMaxRows
	}
	if len(m.Fields) > 0 {
		fields := slices.Clone(m.Fields) // the caller's slice stays as it was
		for i := range fields {
			if fields[i].Label == "" {
				fields[i].Label = deriveLabel(fields[i].From)
			}
		}
		m.Fields = fields
	}
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

var formats = []string{"text", "money", "number", "date", "datetime", "percent"}

// Validate lists every problem of c, each at the option at fault, or
// returns nil. It checks what a configuration file can get wrong; whether
// each source has its implementation is New's concern. A zero value stands
// for its default, so c may be checked before or after SetDefaults.
func (c Config) Validate() error {
	var v validation
	if c.Region != "" && !validRegion(normRegion(c.Region)) {
		v.add("region", "", fmt.Sprintf("%q is not an ISO 3166 region code with a numbering plan", c.Region), "write the country's two letters, e.g. region: DE")
	}
	if c.Deadline != 0 && (c.Deadline < MinDeadline || c.Deadline > MaxDeadline) {
		v.add("deadline", "", fmt.Sprintf("%s is outside %s..%s", duration(c.Deadline), duration(MinDeadline), duration(MaxDeadline)), "a pop must appear while the phone rings: 1s-3s is usual")
	}
	if c.HistoryLimit < 0 {
		v.add("history_limit", "", fmt.Sprintf("%d must not be negative", c.HistoryLimit), fmt.Sprintf("leave it out for %d", DefaultHistoryLimit))
	}
	v.lines(c.Lines)
	v.links(c.Links)

	declared := map[string]bool{}
	declaredValid := true // else the declared names are in doubt: no undeclared-section problems
	for i, s := range c.Sections {
		path := fmt.Sprintf("sections[%d].name", i)
		switch {
		case s.Name == "":
			declaredValid = false
			v.add(path, "", "missing", "name the section, e.g. name: accounting")
		case !nameRE.MatchString(s.Name):
			declaredValid = false
			v.add(path, "", fmt.Sprintf("%q is not a valid section name", s.Name), "lower-case letters, digits, - and _, e.g. accounting")
		case declared[s.Name]:
			v.add(path, "", fmt.Sprintf("section %q is listed twice", s.Name), "list each section once")
		}
		declared[s.Name] = true
		v.roles(fmt.Sprintf("sections[%d].roles", i), s.Roles)
	}

	names := map[string]string{} // source name -> the entry that has it
	if c.Directory != nil {
		v.source("directory", c.Directory, true, names)
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		entry := fmt.Sprintf("sources[%d]", i)
		v.source(entry, s, false, names)
		// A section the card was not told about would appear on it
		// silently, titled after its name, wherever the source happens to
		// be listed: a misspelt section must be a problem.
		section := cmp.Or(s.Section, s.Name)
		if len(c.Sections) == 0 || !declaredValid || declared[section] || !nameRE.MatchString(section) {
			continue
		}
		list := make([]string, 0, len(c.Sections))
		for _, d := range c.Sections {
			list = append(list, d.Name)
		}
		msg := fmt.Sprintf("%q is not declared in sections", section)
		if s.Section == s.Name {
			msg = fmt.Sprintf("%q (the source's name, when section: is left out) is not declared in sections", section)
		}
		v.add(entry+".section", s.Name, msg, "set section: to one of: "+strings.Join(list, ", ")+", or add it to sections (- {name: "+section+", title: ...})")
	}
	if len(v.problems) == 0 {
		return nil
	}
	return v.problems
}

// validation collects problems.
type validation struct{ problems Problems }

// roles checks a section's roles: a role no agent can hold (empty, with
// white space) or written twice is a mistake that would hide the section
// from people meant to see it.
func (v *validation) roles(path string, roles []string) {
	seen := map[string]bool{}
	for i, r := range roles {
		at := fmt.Sprintf("%s[%d]", path, i)
		switch {
		case r == "":
			v.add(at, "", "is empty", "name a role agents hold, e.g. roles: [credit, supervisor]")
		case strings.IndexFunc(r, unicode.IsSpace) >= 0:
			v.add(at, "", fmt.Sprintf("%q contains white space", r), "roles are single words, e.g. credit or credit-team")
		case seen[r]:
			v.add(at, "", fmt.Sprintf("%q is listed twice", r), "list each role once")
		}
		seen[r] = true
	}
}

func (v *validation) add(path, name, msg, fix string) {
	v.problems = append(v.problems, Problem{Path: path, Name: name, Msg: msg, Fix: fix})
}

func (v *validation) lines(lines map[string]string) {
	const example = `e.g. "100": Support DE`
	for _, did := range slices.Sorted(maps.Keys(lines)) {
		path := fmt.Sprintf("lines[%q]", did)
		if strings.TrimSpace(did) == "" {
			v.add(path, "", "an entry has no number", "write the number customers dial as the PBX reports it, "+example)
			continue
		}
		switch n := utf8.RuneCountInString(strings.TrimSpace(lines[did])); {
		case n == 0:
			v.add(path, "", "the label is empty", "write what agents should read, "+example+", or leave the line out (the card then shows the number)")
		case n > MaxLineLabel:
			v.add(path, "", fmt.Sprintf("the label has %d characters, more than %d", n, MaxLineLabel), "agents read it while the phone rings: a few words, "+example)
		}
	}
}

// source checks one source; entry is "directory" or "sources[i]".
func (v *validation) source(entry string, s *SourceSpec, directory bool, names map[string]string) {
	add := func(option, msg, fix string) { v.add(entry+"."+option, s.Name, msg, fix) }
	switch {
	case s.Name == "":
		add("name", "missing", "name the source, e.g. name: accounting-balance (it labels metrics, logs and cache keys)")
	case !nameRE.MatchString(s.Name):
		add("name", fmt.Sprintf("%q is not a valid source name", s.Name), "lower-case letters, digits, - and _, e.g. name: accounting-balance")
	case names[s.Name] != "":
		add("name", fmt.Sprintf("%q is already the name of %s", s.Name, names[s.Name]), "each source needs its own name (it labels metrics and cache keys)")
	default:
		names[s.Name] = entry
	}
	if s.Timeout < 0 || s.Timeout > MaxTimeout {
		add("timeout", fmt.Sprintf("%s is outside 0..%s", duration(s.Timeout), duration(MaxTimeout)), "e.g. timeout: 800ms")
	}
	if s.CacheTTL < 0 || s.CacheTTL > MaxCacheTTL {
		add("cache_ttl", fmt.Sprintf("%s is outside 0..%s", duration(s.CacheTTL), duration(MaxCacheTTL)), "customer data is personal data: keep it short, e.g. cache_ttl: 5m")
	}
	if s.FreshFor < 0 || (s.CacheTTL >= 0 && s.FreshFor > s.CacheTTL) {
		add("fresh_for", fmt.Sprintf("%s is outside 0..cache_ttl (%s)", duration(s.FreshFor), duration(s.CacheTTL)), "e.g. fresh_for: 30s with cache_ttl: 5m; leave it out for half of cache_ttl")
	}
	if s.MaxConcurrent < 0 {
		add("max_concurrent", fmt.Sprintf("%d must not be negative", s.MaxConcurrent), "0 means no limit")
	}
	switch {
	case s.Needs != "" && !slices.Contains(ParamNames, s.Needs):
		add("needs", fmt.Sprintf("%q is not a lookup parameter", s.Needs), "one of: "+strings.Join(slices.Sorted(slices.Values(ParamNames)), ", "))
	case directory && s.Needs == "customer_id":
		add("needs", "the directory finds the customer, so it cannot need customer_id", "needs: phone or needs: national")
	}
	if s.Breaker.Failures < 0 {
		add("breaker.failures", fmt.Sprintf("%d must not be negative", s.Breaker.Failures), fmt.Sprintf("leave it out for %d", DefaultBreakerFailures))
	}
	if s.Breaker.OpenFor < 0 {
		add("breaker.open_for", fmt.Sprintf("%s must not be negative", duration(s.Breaker.OpenFor)), fmt.Sprintf("leave it out for %s", duration(DefaultBreakerOpenFor)))
	}
	v.search(entry, s, directory)
	if directory {
		if s.Mapping.Mode != "" || len(s.Mapping.Fields) > 0 {
			add("mapping", "the directory has no mapping: its columns are id, name, kind, contact, role, email, city, country, tags", "remove mapping and alias the columns in the query instead")
		}
		return
	}
	switch s.Mapping.Mode {
	case "", ModeFields, ModeList:
	default:
		add("mapping.mode", fmt.Sprintf("%q is unknown", s.Mapping.Mode), "fields (one record as labelled values) or list (all records as a table)")
	}
	if s.Mapping.MaxRows < 0 {
		add("mapping.max_rows", fmt.Sprintf("%d must not be negative", s.Mapping.MaxRows), fmt.Sprintf("leave it out for %d", DefaultMaxRows))
	}
	for j, f := range s.Mapping.Fields {
		if f.From == "" {
			add(fmt.Sprintf("mapping.fields[%d].from", j), "missing", "name the column or JSON field, e.g. from: balance")
		}
		if f.Format != "" && !slices.Contains(formats, f.Format) {
			add(fmt.Sprintf("mapping.fields[%d].format", j), fmt.Sprintf("%q is unknown", f.Format), "one of: "+strings.Join(formats, ", "))
		}
	}
}

// duration writes d as IT would: 24h, 1m30s, 800ms (not 24h0m0s).
func duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func normRegion(r string) string { return strings.ToUpper(strings.TrimSpace(r)) }

// Problem is one thing wrong with a configuration: the option at fault,
// what is wrong with it and how to put it right.
type Problem struct {
	// Path is the option as a configuration file spells it: "deadline",
	// "sources[2].timeout", "sources[0].mapping.fields[1].format",
	// `lines["100"]`. A loader finds the line and column of its key by it.
	Path string
	// Name is the name of the source the option is in, shown beside its
	// index; empty elsewhere.
	Name string
	Msg  string // what is wrong, e.g. "45s is outside 0..30s"
	Fix  string // how to put it right; may be empty
}

// Split divides Path into the entry the option is in ("sources[2]",
// "directory"; empty for an option at the top level) and the option
// within it ("mapping.fields[1].format"; empty when the problem is the
// whole entry).
func (p Problem) Split() (entry, option string) {
	first, rest, _ := strings.Cut(p.Path, ".")
	if i := strings.IndexByte(first, '['); first == "directory" || (i > 0 && isIndex(first[i:])) {
		return first, rest
	}
	return "", p.Path
}

// isIndex reports whether s is a list index: "[2]".
func isIndex(s string) bool {
	if len(s) < 3 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	for _, r := range s[1 : len(s)-1] {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// Label names the entry as messages show it: "sources[2] (accounting)".
func Label(entry, name string) string {
	if entry == "" || name == "" {
		return entry
	}
	return entry + " (" + name + ")"
}

// Error reads "sources[2] (accounting): timeout: 45s is outside 0..30s
// (fix: e.g. timeout: 800ms)".
func (p Problem) Error() string {
	entry, option := p.Split()
	var b strings.Builder
	if entry != "" {
		b.WriteString(Label(entry, p.Name) + ": ")
	}
	if option != "" {
		b.WriteString(option + ": ")
	}
	b.WriteString(p.Msg)
	if p.Fix != "" {
		b.WriteString(" (fix: " + p.Fix + ")")
	}
	return b.String()
}

// Problems is every problem of one configuration, one a line.
type Problems []Problem

func (ps Problems) Error() string {
	if err := errors.Join(ps.Unwrap()...); err != nil {
		return err.Error() // one a line
	}
	return ""
}

// Unwrap lets errors.As find each Problem.
func (ps Problems) Unwrap() []error {
	out := make([]error, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}
