// Package configs loads and validates the daemon's YAML configuration and
// embeds the demo configuration that `make run` starts with.
//
// Options common to every source or telephony source are decoded here; the
// options of one kind (a SQL query, a URL, an ARI password variable) are kept
// as a YAML node and decoded strictly by that kind, so a misspelt option is
// reported with its line wherever it is.
package configs

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Config is the whole daemon configuration.
type Config struct {
	// File is where the configuration was read from (for error messages).
	File string `yaml:"-"`
	// Files resolves relative paths in the configuration (CSV/JSON files):
	// the configuration file's folder, or the embedded demo files.
	Files fs.FS `yaml:"-"`

	Listen    string `yaml:"listen"`     // default 127.0.0.1:8080
	PublicURL string `yaml:"public_url"` // what the printed links start with; default http://<listen>
	LogLevel  string `yaml:"log_level"`  // debug, info, warn, error

	Region       string        `yaml:"region"`        // default region for national numbers, e.g. DE
	Deadline     time.Duration `yaml:"deadline"`      // overall budget for one card
	HistoryLimit int           `yaml:"history_limit"` // earlier calls shown on a card
	// Lines labels the company's numbers customers dial, keyed by the DID as
	// the telephony source reports it ("100": Support DE). Every card shows
	// the line it came in on; with its label when listed here.
	Lines Lines `yaml:"lines"`

	Auth      Auth        `yaml:"auth"`
	Agents    Agents      `yaml:"agents"`
	Telephony []Telephony `yaml:"telephony"`
	Sections  []Section   `yaml:"sections"`
	Directory *Source     `yaml:"directory"`
	Sources   []Source    `yaml:"sources"`
	// Redis, when set, is the shared card cache and the delivery path
	// between several daemons. Without it the cache is in-process and each
	// daemon serves only the browsers connected to it.
	Redis *Redis `yaml:"redis"`
	API   API    `yaml:"api"`
}

// API configures the HTTP API that company systems call.
type API struct {
	// EvictTokensEnv names a variable holding the comma-separated bearer
	// tokens that may call POST /api/v1/evict (a system whose data about a
	// customer changed). Unset: the endpoint is not mounted.
	EvictTokensEnv string `yaml:"evict_tokens_env"`
}

// Redis configures the shared Redis.
type Redis struct {
	Address     string `yaml:"address"` // host:port
	PasswordEnv string `yaml:"password_env"`
	DB          int    `yaml:"db"`
	KeyPrefix   string `yaml:"key_prefix"` // default "screenpop:"
	// EncryptionKeyEnv names a variable holding a base64 32-byte key: cached
	// cards are then encrypted with AES-GCM at rest.
	EncryptionKeyEnv string `yaml:"encryption_key_env"`
	// CardTTL caps how long any customer data stays in Redis.
	CardTTL time.Duration `yaml:"card_ttl"`
}

// Auth configures how agents sign in.
type Auth struct {
	// SecretEnv names the environment variable holding the HS256 secret
	// agent tokens are signed with. Unset or empty variable: a random secret
	// is made at start (demo only: tokens die with the process).
	SecretEnv string `yaml:"secret_env"`
	// DemoLinks prints a sign-in link per agent in Agents.Names at start.
	DemoLinks bool          `yaml:"demo_links"`
	TokenTTL  time.Duration `yaml:"token_ttl"`
	// AllowedOrigins lists the origins (scheme://host:port) besides the
	// daemon's own that may open the agent WebSocket.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Agents maps PBX endpoints to agent IDs and names the agents.
type Agents struct {
	// Patterns such as "PJSIP/{agent}" or "Local/{agent}@agents".
	Patterns []string `yaml:"patterns"`
	// Table maps exact endpoints to agents and wins over Patterns.
	Table map[string]string `yaml:"table"`
	// Names maps agent IDs to display names ("1001": "Alice Agent").
	Names map[string]string `yaml:"names"`
}

// Section names a card section and its title, in display order.
type Section struct {
	Name  string `yaml:"name"`
	Title string `yaml:"title"`
}

// Telephony is one source of call events. Options holds the keys of its
// type (demo, ari, http), decoded by the wiring with DecodeStrict.
type Telephony struct {
	Name    string     `yaml:"name"`
	Type    string     `yaml:"type"`
	Line    int        `yaml:"-"`
	Options *yaml.Node `yaml:"-"`
	// problems of the common keys, kept here rather than handed to yaml,
	// which would drop the whole entry and its options with them.
	problems error
}

// Source is one configured data source. The common options are here; the
// options of its kind are in Options.
type Source struct {
	Name     string        `yaml:"name"`
	Type     string        `yaml:"type"`
	Section  string        `yaml:"section"`
	Timeout  time.Duration `yaml:"timeout"`
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// FreshFor: a cached answer older than this is shown at once and asked
	// again in the background (stale-while-revalidate); default cache_ttl/2.
	FreshFor      time.Duration `yaml:"fresh_for"`
	Required      bool          `yaml:"required"`
	Needs         string        `yaml:"needs"`
	MaxConcurrent int           `yaml:"max_concurrent"`
	Breaker       Breaker       `yaml:"breaker"`
	Mapping       Mapping       `yaml:"mapping"`

	Line    int        `yaml:"-"`
	Options *yaml.Node `yaml:"-"`
	// problems: as Telephony's.
	problems error
}

// Breaker configures a source's circuit breaker.
type Breaker struct {
	Failures int           `yaml:"failures"`
	OpenFor  time.Duration `yaml:"open_for"`
	Disabled bool          `yaml:"disabled"`
}

// Mapping says how a source's records become card fields or a list.
type Mapping struct {
	Mode    string     `yaml:"mode"` // fields (default) or list
	Label   string     `yaml:"label"`
	Key     string     `yaml:"key"`
	Fields  []FieldMap `yaml:"fields"`
	MaxRows int        `yaml:"max_rows"`
}

// FieldMap picks one column and says how to show it.
type FieldMap struct {
	From   string `yaml:"from"`
	Label  string `yaml:"label"`
	Format string `yaml:"format"`
}

// Kinds names the kinds of telephony source and data source a `type:` may
// take.
type Kinds struct {
	Telephony []string
	Sources   []string
	// Params are the lookup parameters a source may name in needs: (the
	// aggregator's, set by the wiring like the kinds).
	Params []string
}

// defaultParams are the lookup parameters when the wiring set none.
var defaultParams = []string{"customer_id", "national", "phone", "region"}

// Known is what the hint of a missing `type:` lists. The kinds are
// registered where they are wired (cmd/screenpopd), which this package
// cannot import: the wiring sets Known from its maps before it loads a
// configuration.
var Known Kinds

// kindHint lists names after lead, or says where to find them when no
// wiring has set Known.
func kindHint(lead string, names []string) string {
	if len(names) == 0 {
		return "`screenpopd sample` lists the kinds"
	}
	return lead + strings.Join(names, ", ")
}

// commonSourceKeys are the keys Source decodes itself; every other key of a
// source belongs to its kind.
var commonSourceKeys = yamlKeys(Source{})

var commonTelephonyKeys = yamlKeys(Telephony{})

// UnmarshalYAML splits the common keys from the kind's options.
func (s *Source) UnmarshalYAML(n *yaml.Node) error {
	common, rest, err := split(n, commonSourceKeys)
	if err != nil {
		return asTypeError(err)
	}
	type plain Source
	var p plain
	err = DecodeStrict(common, &p)
	*s = Source(p)
	s.Line, s.Options, s.problems = n.Line, rest, err
	return nil
}

// UnmarshalYAML splits the common keys from the type's options.
func (t *Telephony) UnmarshalYAML(n *yaml.Node) error {
	common, rest, err := split(n, commonTelephonyKeys)
	if err != nil {
		return asTypeError(err)
	}
	type plain Telephony
	var p plain
	err = DecodeStrict(common, &p)
	*t = Telephony(p)
	t.Line, t.Options, t.problems = n.Line, rest, err
	return nil
}

func split(n *yaml.Node, keys map[string]bool) (common, rest *yaml.Node, err error) {
	if n.Kind != yaml.MappingNode {
		return nil, nil, &LineError{n.Line, fmt.Sprintf("expected a mapping (name: ..., type: ...), got %s", describe(n))}
	}
	common = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	rest = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		dst := rest
		if keys[n.Content[i].Value] {
			dst = common
		}
		dst.Content = append(dst.Content, n.Content[i], n.Content[i+1])
	}
	return common, rest, nil
}

func yamlKeys(v any) map[string]bool {
	out := map[string]bool{}
	for _, k := range fieldNames(v) {
		out[k] = true
	}
	return out
}

// Load reads and validates a configuration file. Relative paths inside it
// resolve against the file's folder.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, data, os.DirFS(filepath.Dir(path)))
}

// Parse decodes and validates a configuration. file names it in errors;
// files resolves relative paths.
func Parse(file string, data []byte, files fs.FS) (*Config, error) {
	cfg, errs := ParsePartial(file, data, files)
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// LoadPartial is Load for config check: see ParsePartial.
func LoadPartial(path string) (*Config, Errors, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read configuration: %w", err)
	}
	cfg, errs := ParsePartial(path, data, os.DirFS(filepath.Dir(path)))
	return cfg, errs, nil
}

// ParsePartial is Parse that goes on past problems, so that config check
// can report those of the kinds' own options too, in the same pass: it
// returns every decoding and validation problem, and the configuration as
// far as it decoded (nil only when the file is no YAML document at all).
// A configuration with problems is for finding more problems, never for
// running.
func ParsePartial(file string, data []byte, files fs.FS) (*Config, Errors) {
	cfg := &Config{File: file, Files: files}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Msg: "the file is empty", Fix: "start from configs/demo.yaml"}}
		}
		return nil, Errors{fromYAML(file, "", err)}
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{File: file, Msg: "the file is empty", Fix: "start from configs/demo.yaml"}}
	}
	var errs Errors
	add := func(path string, err error) {
		for _, e := range Each(err) {
			errs = append(errs, fromYAML(file, path, e))
		}
	}
	add("", DecodeStrict(doc.Content[0], cfg))
	for i, t := range cfg.Telephony {
		add(fmt.Sprintf("telephony[%d] (%s)", i, t.Name), t.problems)
	}
	if cfg.Directory != nil {
		add("directory", cfg.Directory.problems)
	}
	for i, s := range cfg.Sources {
		add(fmt.Sprintf("sources[%d] (%s)", i, s.Name), s.problems)
	}
	// A value of the wrong type was left at its zero value, which the
	// defaults fill: validating what decoded adds its own problems without
	// echoing those.
	cfg.applyDefaults()
	errs = append(errs, cfg.validate(doc.Content[0])...)
	slices.SortStableFunc(errs, func(a, b Error) int { return a.Line - b.Line })
	return cfg, errs
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.Deadline == 0 {
		c.Deadline = 2 * time.Second
	}
	if c.HistoryLimit == 0 {
		c.HistoryLimit = 10
	}
	if c.Auth.TokenTTL == 0 {
		c.Auth.TokenTTL = 12 * time.Hour
	}
	if len(c.Agents.Patterns) == 0 {
		c.Agents.Patterns = []string{"PJSIP/{agent}", "SIP/{agent}", "Local/{agent}@agents"}
	}
	if c.Redis != nil {
		if c.Redis.KeyPrefix == "" {
			c.Redis.KeyPrefix = "screenpop:"
		}
		if c.Redis.CardTTL == 0 {
			c.Redis.CardTTL = time.Hour
		}
	}
	for i := range c.Sources {
		if c.Sources[i].Section == "" {
			c.Sources[i].Section = c.Sources[i].Name
		}
	}
}

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	regionRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// validate checks what decoding cannot: required keys, names, ranges,
// references between sections. It reports every problem, not the first.
func (c *Config) validate(root *yaml.Node) Errors {
	var errs Errors
	add := func(line int, path, msg, fix string) {
		errs = append(errs, Error{File: c.File, Line: line, Path: path, Msg: msg, Fix: fix})
	}
	line := func(key string) int { return keyLine(root, key) }

	if c.Region != "" && !regionRE.MatchString(c.Region) {
		add(line("region"), "region", fmt.Sprintf("%q is not an ISO 3166 region code", c.Region), `write two capital letters, e.g. region: DE`)
	}
	if c.Deadline < 50*time.Millisecond || c.Deadline > 30*time.Second {
		add(line("deadline"), "deadline", fmt.Sprintf("%s is outside 50ms..30s", c.Deadline), "a pop must appear while the phone rings: 1s-3s is usual")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add(line("log_level"), "log_level", fmt.Sprintf("unknown level %q", c.LogLevel), "use debug, info, warn or error")
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		add(line("public_url"), "public_url", fmt.Sprintf("%q is not an http(s) URL", c.PublicURL), "e.g. public_url: https://screenpop.example.com")
	}
	for i, o := range c.Auth.AllowedOrigins {
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			add(line("auth"), fmt.Sprintf("auth.allowed_origins[%d]", i), fmt.Sprintf("%q is not an origin", o), "write scheme://host[:port], e.g. https://crm.example.com")
		}
	}
	for i, p := range c.Agents.Patterns {
		if strings.Count(p, "{agent}") != 1 {
			add(line("agents"), fmt.Sprintf("agents.patterns[%d]", i), fmt.Sprintf("%q must contain {agent} exactly once", p), `e.g. "PJSIP/{agent}"`)
		}
	}

	c.validateLines(root, add)

	if r := c.Redis; r != nil {
		if r.Address == "" {
			add(line("redis"), "redis", "address is required", "e.g. address: 127.0.0.1:6379, or remove the redis block for a single daemon")
		}
		if r.CardTTL < 0 || r.CardTTL > 24*time.Hour {
			add(line("redis"), "redis.card_ttl", fmt.Sprintf("%s is outside 0..24h", r.CardTTL), "cached cards are personal data: keep them briefly, e.g. card_ttl: 1h")
		}
	}
	if len(c.Telephony) == 0 {
		add(line("telephony"), "telephony", "no telephony source: nothing would ever ring", "add one, e.g. telephony: [{name: demo, type: demo}] or an ari source (see configs/asterisk/README.md)")
	}
	seen := map[string]bool{}
	for i, t := range c.Telephony {
		path := fmt.Sprintf("telephony[%d]", i)
		if t.Name == "" {
			add(t.Line, path, "name is required", "give each telephony source a short name, e.g. name: pbx")
		} else if seen["t:"+t.Name] {
			add(t.Line, path, fmt.Sprintf("name %q is used twice", t.Name), "names must be unique")
		}
		// The name namespaces the source's call IDs (<name>/<PBX call ID>)
		// and ends the URL of an http source: a '/' could make two
		// sources' IDs meet, white space cannot be mounted.
		if strings.Contains(t.Name, "/") {
			add(t.Line, path, fmt.Sprintf("name %q contains '/'", t.Name), "call IDs become <name>/<the PBX's call ID>: use letters, digits, - and _, e.g. name: pbx-berlin")
		} else if strings.ContainsAny(t.Name, " \t\r\n\v\f") {
			add(t.Line, path, fmt.Sprintf("name %q contains white space", t.Name), "the name ends the URL /api/v1/call-events/<name>: use letters, digits, - and _, e.g. name: pbx-berlin")
		}
		seen["t:"+t.Name] = true
		if t.Type == "" {
			add(t.Line, path, "type is required", kindHint("one of: ", Known.Telephony))
		}
	}

	sections := map[string]bool{}
	sectionsValid := true // else the declared names are in doubt: no undeclared-section errors
	for i, s := range c.Sections {
		path := fmt.Sprintf("sections[%d]", i)
		if !nameRE.MatchString(s.Name) {
			sectionsValid = false
			add(line("sections"), path, fmt.Sprintf("name %q is not a valid section name", s.Name), "lower-case letters, digits, - and _, e.g. accounting")
		}
		if sections[s.Name] {
			add(line("sections"), path, fmt.Sprintf("section %q is listed twice", s.Name), "list each section once")
		}
		sections[s.Name] = true
	}

	if c.Directory != nil {
		c.validateSource(&errs, "directory", c.Directory, true)
		seen["s:"+c.Directory.Name] = true
	}
	for i := range c.Sources {
		s := &c.Sources[i]
		path := fmt.Sprintf("sources[%d]", i)
		if s.Name != "" {
			path = fmt.Sprintf("sources[%d] (%s)", i, s.Name)
		}
		if s.Name != "" && seen["s:"+s.Name] {
			add(s.Line, path, fmt.Sprintf("source name %q is used twice", s.Name), "each source needs its own name (it labels metrics and cache keys)")
		}
		seen["s:"+s.Name] = true
		c.validateSource(&errs, path, s, false)
		// A section the card was not told about would appear on it
		// silently, titled after its name, wherever the source happens to
		// be listed: a misspelt section: must be an error.
		if section := cmp.Or(s.Section, s.Name); len(c.Sections) > 0 && sectionsValid && !sections[section] && nameRE.MatchString(section) {
			declared := make([]string, 0, len(c.Sections))
			for _, d := range c.Sections {
				declared = append(declared, d.Name)
			}
			how := fmt.Sprintf("section %q is not declared in sections", section)
			if section == s.Name {
				how = fmt.Sprintf("section %q (the source's name, when section: is left out) is not declared in sections", section)
			}
			add(s.Line, path, how, "set section: to one of: "+strings.Join(declared, ", ")+", or add it to sections (- {name: "+section+", title: ...})")
		}
	}
	return errs
}

func (c *Config) validateSource(errs *Errors, path string, s *Source, directory bool) {
	add := func(msg, fix string) {
		*errs = append(*errs, Error{File: c.File, Line: s.Line, Path: path, Msg: msg, Fix: fix})
	}
	if !nameRE.MatchString(s.Name) {
		add(fmt.Sprintf("name %q is not a valid source name", s.Name), "lower-case letters, digits, - and _, e.g. name: accounting-balance")
	}
	if s.Type == "" {
		add("type is required", kindHint("one of the adapter kinds: ", Known.Sources))
	}
	if s.Timeout < 0 || s.Timeout > 30*time.Second {
		add(fmt.Sprintf("timeout %s is outside 0..30s", s.Timeout), "e.g. timeout: 800ms")
	}
	if s.CacheTTL < 0 || s.CacheTTL > 24*time.Hour {
		add(fmt.Sprintf("cache_ttl %s is outside 0..24h", s.CacheTTL), "customer data is personal data: keep it short, e.g. cache_ttl: 5m")
	}
	if s.FreshFor < 0 || (s.CacheTTL > 0 && s.FreshFor > s.CacheTTL) {
		add(fmt.Sprintf("fresh_for %s is outside 0..cache_ttl (%s)", s.FreshFor, s.CacheTTL), "e.g. fresh_for: 30s with cache_ttl: 5m; leave it out for half of cache_ttl")
	}
	if s.MaxConcurrent < 0 {
		add("max_concurrent must not be negative", "0 means no limit")
	}
	params := Known.Params
	if len(params) == 0 {
		params = defaultParams
	}
	if s.Needs != "" && !slices.Contains(params, s.Needs) {
		add(fmt.Sprintf("needs %q is not a lookup parameter", s.Needs), "one of: "+strings.Join(params, ", "))
	}
	if directory {
		if s.Mapping.Mode != "" || len(s.Mapping.Fields) > 0 {
			add("the directory has no mapping: its columns are id, name, kind, contact, role, email, city, country, tags", "remove mapping and alias the columns in the query instead")
		}
		return
	}
	switch s.Mapping.Mode {
	case "", "fields", "list":
	default:
		add(fmt.Sprintf("mapping.mode %q is unknown", s.Mapping.Mode), "fields (one record as labelled values) or list (all records as a table)")
	}
	for j, f := range s.Mapping.Fields {
		if f.From == "" {
			add(fmt.Sprintf("mapping.fields[%d]: from is required", j), "name the column or JSON field, e.g. from: balance")
		}
		switch f.Format {
		case "", "text", "money", "number", "date", "datetime", "percent":
		default:
			add(fmt.Sprintf("mapping.fields[%d]: format %q is unknown", j, f.Format), "one of: text, money, number, date, datetime, percent")
		}
	}
}

// Lines maps DIDs to labels.
type Lines map[string]string

// UnmarshalYAML refuses anything but a mapping in words IT understands;
// number keys (100: Support DE) are taken as written.
func (l *Lines) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return &LineError{n.Line, fmt.Sprintf(`lines: expected numbers mapped to labels ("100": Support DE), got %s`, describe(n))}
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode {
			return &LineError{k.Line, `lines: each entry is a number and its label ("100": Support DE), one per line`}
		}
	}
	var m map[string]string
	if err := n.Decode(&m); err != nil {
		return err
	}
	*l = m
	return nil
}

// maxLineLabel bounds a line's label: it shares the card header with the
// state of the call, and is read while the phone rings.
const maxLineLabel = 80

// validateLines checks each entry of lines: at its own line, which the
// decoded map has forgotten.
func (c *Config) validateLines(root *yaml.Node, add func(line int, path, msg, fix string)) {
	n := valueNode(root, "lines")
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	const example = `e.g. "100": Support DE`
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		number := strings.TrimSpace(k.Value)
		if k.Tag == "!!null" {
			number = ""
		}
		path := fmt.Sprintf("lines[%q]", number)
		if number == "" {
			add(k.Line, "lines", "an entry has no number", "write the number customers dial as the PBX reports it, "+example)
			continue
		}
		label := strings.TrimSpace(v.Value)
		if v.Tag == "!!null" {
			label = ""
		}
		switch chars := utf8.RuneCountInString(label); {
		case chars == 0:
			add(k.Line, path, "the label is empty", "write what agents should read, "+example+", or leave the line out (the card then shows the number)")
		case chars > maxLineLabel:
			add(k.Line, path, fmt.Sprintf("the label has %d characters, more than %d", chars, maxLineLabel), "agents read it while the phone rings: a few words, "+example)
		}
	}
}

// valueNode returns the value of a top-level key, or nil.
func valueNode(root *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			return root.Content[i+1]
		}
	}
	return nil
}

// keyLine returns the line of a top-level key, or 0.
func keyLine(root *yaml.Node, key string) int {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			return root.Content[i].Line
		}
	}
	return 0
}

// Error is one problem in a configuration file: where, what, and how to fix
// it.
type Error struct {
	File string
	Line int
	Path string // e.g. "sources[2] (accounting)"
	Msg  string
	Fix  string
}

func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	if e.Fix != "" {
		b.WriteString(" (fix: " + e.Fix + ")")
	}
	return b.String()
}

// Errors is every problem found in one configuration.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// At turns an error from a kind's constructor into an Error of this file,
// keeping the line the kind reported (a LineError) or the source's own line.
// AtAll is At for each problem err holds (DecodeStrict reports them all).
func AtAll(file string, line int, path string, err error) []Error {
	var out []Error
	for _, e := range Each(err) {
		out = append(out, At(file, line, path, e))
	}
	return out
}

func At(file string, line int, path string, err error) Error {
	var le *LineError
	if errors.As(err, &le) {
		return Error{File: file, Line: le.Line, Path: path, Msg: le.Msg}
	}
	return Error{File: file, Line: line, Path: path, Msg: stripLinePrefix(err.Error(), &line), Fix: ""}.withLine(line)
}

func (e Error) withLine(line int) Error {
	e.Line = line
	return e
}

var linePrefixRE = regexp.MustCompile(`^line (\d+): `)

// stripLinePrefix turns yaml.v3's "line 12: ..." into a Line.
func stripLinePrefix(msg string, line *int) string {
	if m := linePrefixRE.FindStringSubmatch(msg); m != nil {
		fmt.Sscanf(m[1], "%d", line)
		return msg[len(m[0]):]
	}
	return msg
}

func fromYAML(file, path string, err error) Error {
	line := 0
	var le *LineError
	if errors.As(err, &le) {
		return Error{File: file, Line: le.Line, Path: path, Msg: le.Msg}
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = stripLinePrefix(msg, &line)
	return Error{File: file, Line: line, Path: path, Msg: msg}
}
