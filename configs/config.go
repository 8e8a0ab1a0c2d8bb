// Package configs loads and validates the daemon's YAML configuration and
// embeds the demo configuration that `make run` starts with.
//
// Options common to every source or telephony source are decoded here; the
// options of one kind (a SQL query, a URL, an ARI password variable) are kept
// as a YAML node and decoded strictly by that kind, so a misspelt option is
// reported at its line and column wherever it is.
package configs

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/auth"
	"github.com/screenpop/screenpop/floor"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/telephony"
)

// Config is the whole daemon configuration: the one model decoding,
// defaults and validation produce, which the wiring hands to each part.
type Config struct {
	// File is where the configuration was read from (for error messages).
	File string `yaml:"-"`
	// Files resolves relative paths in the configuration (CSV/JSON files):
	// the configuration file's folder, or the embedded demo files.
	Files fs.FS `yaml:"-"`

	Listen    string `yaml:"listen"`     // default 127.0.0.1:8080
	PublicURL string `yaml:"public_url"` // what the printed links start with; default http://<listen>
	LogLevel  string `yaml:"log_level"`  // debug, info, warn, error
	// LogFormat is how log lines are written on stderr: text (key=value,
	// the default) or json (one object a line, for a log pipeline).
	LogFormat string `yaml:"log_format"`

	// The card's settings (region, deadline, history_limit, lines,
	// sections) are the aggregator's own configuration, decoded in place:
	// their defaults and checks are the aggregator's (SetDefaults,
	// Validate). Its Directory and Sources stay nil here, shadowed by this
	// Config's own, which add each source's kind: Aggregator returns the
	// aggregator's view of them.
	aggregator.Config `yaml:",inline"`

	Auth      Auth        `yaml:"auth"`
	Agents    Agents      `yaml:"agents"`
	Telephony []Telephony `yaml:"telephony"`
	Directory *Source     `yaml:"directory"`
	Sources   []Source    `yaml:"sources"`
	// Redis, when set, is the shared card cache and the delivery path
	// between several daemons. Without it the cache is in-process and each
	// daemon serves only the browsers connected to it.
	Redis *Redis `yaml:"redis"`
	API   API    `yaml:"api"`
	// History is where calls, notes, wrap-ups and the access log of card
	// deliveries are kept: in memory (the default: forgotten at every
	// restart) or in PostgreSQL, shared by every daemon (history/README.md).
	History history.Config `yaml:"history"`
	// Floor is the supervisors' floor view (/supervisor/): the service
	// level's threshold and the zone of "today" (floor/README.md).
	Floor floor.Config `yaml:"floor"`
	// Admin is the profiling and runtime-metrics listener (net/http/pprof,
	// /debug/metrics): off unless admin.listen is set, and then only on a
	// loopback address.
	Admin Admin `yaml:"admin"`

	// root is the decoded document: problems found after decoding are
	// placed at the key they are about.
	root *yaml.Node
	// text is the file, by line: the column of a line inside a block
	// scalar (a query) is in no node.
	text []string
}

// The values of log_format.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// API configures the HTTP API that company systems call.
type API struct {
	// EvictTokensEnv names a variable holding the comma-separated bearer
	// tokens that may call POST /api/v1/evict (a system whose data about a
	// customer changed). Unset: the endpoint is not mounted.
	EvictTokensEnv string `yaml:"evict_tokens_env"`
}

// Admin configures the admin listener. It serves the process's insides
// (profiles, goroutine stacks, the command line), so it is never on the
// agents' listener and never on an address other machines reach: an
// operator comes in through SSH (ssh -L 6060:127.0.0.1:6060 host) or
// kubectl port-forward.
type Admin struct {
	// Listen is host:port of the listener, the host a loopback address
	// (127.0.0.1, ::1, localhost); empty: no listener.
	Listen string `yaml:"listen"`
}

// Redis configures the shared Redis.
type Redis struct {
	Address     string `yaml:"address"` // host:port
	PasswordEnv string `yaml:"password_env"`
	DB          int    `yaml:"db"`
	KeyPrefix   string `yaml:"key_prefix"` // default "screenpop:"
	// MasterName and SentinelAddresses find the primary through Redis
	// Sentinel, which promotes a replica when it dies (instead of address).
	MasterName          string   `yaml:"master_name"`
	SentinelAddresses   []string `yaml:"sentinel_addresses"`
	SentinelPasswordEnv string   `yaml:"sentinel_password_env"`
	// ClusterAddresses are nodes of a Redis Cluster (instead of address
	// and master_name): the client learns the others from them.
	ClusterAddresses []string `yaml:"cluster_addresses"`
	// DownAfter is how long Redis must keep failing before a daemon takes
	// it for down and pops its own browsers alone (default 2s): a shorter
	// stall only delays pops.
	DownAfter time.Duration `yaml:"down_after"`
	// EncryptionKeyEnv names a variable holding base64 32-byte keys, the
	// current first, then previous ones still read (key rotation): cached
	// cards, pop streams, snapshots and forwarded requests are then
	// encrypted with AES-GCM at rest.
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
	// OIDC signs agents in at the company's identity provider (the agent
	// page); JWT accepts bearer tokens the provider signs (other clients).
	// Either, both or neither: the auth package's options (auth/README.md).
	OIDC *auth.OIDCConfig `yaml:"oidc"`
	JWT  *auth.JWTConfig  `yaml:"jwt"`
}

// Agents maps PBX endpoints to agent IDs and names the agents.
type Agents struct {
	// Patterns such as "PJSIP/{agent}" or "Local/{agent}@agents".
	Patterns []string `yaml:"patterns"`
	// Table maps exact endpoints to agents and wins over Patterns.
	Table map[string]string `yaml:"table"`
	// Names maps agent IDs to display names ("1001": "Alice Agent").
	Names map[string]string `yaml:"names"`
	// Roles gives agents roles ("1001": [agent, credit]), which decide the
	// card sections they see (a section's roles:), besides the roles their
	// sign-in brings (auth.oidc roles_claim, a token's roles).
	Roles map[string][]string `yaml:"roles"`
}

// Telephony is one source of call events. Options holds the keys of its
// type (demo, ari, http), decoded by the wiring with DecodeStrict.
type Telephony struct {
	Name    string     `yaml:"name"`
	Type    string     `yaml:"type"`
	Options *yaml.Node `yaml:"-"`
	Pos     `yaml:"-"` // of the entry's first key
	// problems of the common keys, kept here rather than handed to yaml,
	// which would drop the whole entry and its options with them.
	problems error
}

// Source is one configured data source: the aggregator's SourceSpec,
// decoded in place, and the kind that implements it. The options of the
// kind are in Options.
type Source struct {
	// Type is the kind (file, http, postgres) the wiring builds the
	// implementation (SourceSpec.Source) with.
	Type                  string `yaml:"type"`
	aggregator.SourceSpec `yaml:",inline"`

	Options *yaml.Node `yaml:"-"`
	Pos     `yaml:"-"` // of the entry's first key
	// problems: as Telephony's.
	problems error
}

// Kinds names the kinds of telephony source and data source a `type:` may
// take.
type Kinds struct {
	Telephony []string
	Sources   []string
}

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

// commonSearchKeys are the keys of a source's search: block that the
// aggregator's SearchSpec decodes; the others (a query, fields, a URL)
// belong to the kind, which gets a search: block of its own with them.
var commonSearchKeys = yamlKeys(aggregator.SearchSpec{})

// UnmarshalYAML splits the common keys from the kind's options.
func (s *Source) UnmarshalYAML(n *yaml.Node) error {
	common, rest, err := split(n, commonSourceKeys)
	if err != nil {
		return asTypeError(err)
	}
	splitSearch(common, rest)
	type plain Source
	var p plain
	err = DecodeStrict(common, &p)
	*s = Source(p)
	s.Pos, s.Options, s.problems = posOf(n), rest, err
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
	t.Pos, t.Options, t.problems = posOf(n), rest, err
	return nil
}

// splitSearch divides the search: block of a source between the common
// keys (they stay in common) and the kind's, which go to rest under a
// search: key of their own, at the same position: the kind always gets
// the block, so it can say which of its keys is missing. A search: that
// is not a mapping stays in common, whose decoding reports it.
func splitSearch(common, rest *yaml.Node) {
	for i := 0; i+1 < len(common.Content); i += 2 {
		k, v := common.Content[i], common.Content[i+1]
		if k.Value != "search" || v.Kind != yaml.MappingNode {
			continue
		}
		mine, kinds, _ := split(v, commonSearchKeys)
		common.Content[i+1] = mine
		rest.Content = append(rest.Content, k, kinds)
		return
	}
}

func split(n *yaml.Node, keys map[string]bool) (common, rest *yaml.Node, err error) {
	if n.Kind != yaml.MappingNode {
		return nil, nil, &LineError{Line: n.Line, Column: n.Column, Msg: fmt.Sprintf("expected a mapping (name: ..., type: ...), got %s", describe(n))}
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
		// yaml.v3 says where it gave up reading, which may be below the
		// mistake: the fix says where else to look.
		errs := cfg.ErrorsIn("", err)
		for i := range errs {
			errs[i].Fix = "check the indentation and the quotes on this line and the lines above it"
			if errs[i].Line == 0 {
				errs[i].Line, errs[i].Column = yamlProblemAt(errs[i].Msg, data)
			} else if n := yamlFirstBadLine(data, err.Error(), errs[i].Line); n > errs[i].Line {
				// yaml.v3 named the line of the block it was reading: the
				// mistake is further down, where the document stops being
				// valid.
				errs[i].Msg += fmt.Sprintf(" (in the block that starts at line %d)", errs[i].Line)
				errs[i].Line = n
				errs[i].Fix = "check the indentation of this line against the lines above it"
			}
			errs[i].Msg = "not valid YAML: " + errs[i].Msg
		}
		return nil, errs
	}
	if len(doc.Content) == 0 {
		return nil, Errors{{File: file, Msg: "the file is empty", Fix: "start from configs/demo.yaml"}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, Errors{{File: file, Line: root.Line, Column: root.Column,
			Msg: fmt.Sprintf("expected options (listen: ..., telephony: ...), got %s", describe(root)), Fix: "start from configs/demo.yaml"}}
	}
	cfg.root, cfg.text = root, strings.Split(string(data), "\n")
	errs := cfg.ErrorsIn("", DecodeStrict(root, cfg))
	for i, t := range cfg.Telephony {
		errs = append(errs, cfg.ErrorsIn(fmt.Sprintf("telephony[%d]", i), t.problems)...)
	}
	if cfg.Directory != nil {
		errs = append(errs, cfg.ErrorsIn("directory", cfg.Directory.problems)...)
	}
	for i, s := range cfg.Sources {
		errs = append(errs, cfg.ErrorsIn(fmt.Sprintf("sources[%d]", i), s.problems)...)
	}
	// A value of the wrong type was left at its zero value, which the
	// defaults fill or validation would call missing: what validation
	// finds at a key that did not decode is not reported again.
	undecoded := map[Pos]bool{}
	for _, e := range errs {
		undecoded[Pos{e.Line, e.Column}] = true
	}
	cfg.setDefaults()
	for _, p := range cfg.validate() {
		if at, exact := lookup(root, p.Path); !exact || !undecoded[posOf(at)] {
			errs = append(errs, cfg.place(p))
		}
	}
	errs.sort()
	return cfg, errs
}

// Aggregator is the aggregator's configuration: the card's settings and
// every configured source, in order (its Sources[i] is Sources[i]), each
// without its implementation, which the wiring builds from the source's
// kind and sets. It is a copy: changing it leaves c as it is.
func (c *Config) Aggregator() aggregator.Config {
	ac := c.Config
	ac.Lines = maps.Clone(c.Lines)
	ac.Sections = slices.Clone(c.Sections)
	ac.Directory = nil
	if c.Directory != nil {
		d := c.Directory.SourceSpec
		ac.Directory = &d
	}
	ac.Sources = make([]aggregator.SourceSpec, len(c.Sources))
	for i := range c.Sources {
		ac.Sources[i] = c.Sources[i].SourceSpec
		ac.Sources[i].Mapping.Fields = slices.Clone(ac.Sources[i].Mapping.Fields)
	}
	return ac
}

// setDefaults fills what was left out: the daemon's own options here, the
// card's and the sources' by the aggregator's rules.
func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8080"
	}
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if c.LogFormat == "" {
		c.LogFormat = LogFormatText
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
	c.History.ApplyDefaults()
	c.Floor.ApplyDefaults()
	c.setSignInDefaults()
	ac := c.Aggregator()
	ac.SetDefaults()
	if c.Directory != nil {
		c.Directory.SourceSpec = *ac.Directory
	}
	for i := range c.Sources {
		c.Sources[i].SourceSpec = ac.Sources[i]
	}
	ac.Directory, ac.Sources = nil, nil
	c.Config = ac
}

// validate checks what decoding cannot: required keys, names, ranges,
// references between sections. It reports every problem, not the first:
// the card's and the sources' by the aggregator's own Validate.
func (c *Config) validate() []aggregator.Problem {
	var problems []aggregator.Problem
	add := func(path, msg, fix string) {
		problems = append(problems, aggregator.Problem{Path: path, Msg: msg, Fix: fix})
	}

	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("log_level", fmt.Sprintf("%q is not a level", c.LogLevel), "use debug, info, warn or error")
	}
	switch c.LogFormat {
	case LogFormatText, LogFormatJSON:
	default:
		add("log_format", fmt.Sprintf("%q is not a log format", c.LogFormat), "use text (key=value lines) or json (one object a line, for a log pipeline)")
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "http://") && !strings.HasPrefix(c.PublicURL, "https://") {
		add("public_url", fmt.Sprintf("%q is not an http(s) URL", c.PublicURL), "e.g. public_url: https://screenpop.example.com")
	}
	for i, o := range c.Auth.AllowedOrigins {
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			add(fmt.Sprintf("auth.allowed_origins[%d]", i), fmt.Sprintf("%q is not an origin", o), "write scheme://host[:port], e.g. https://crm.example.com")
		}
	}
	problems = append(problems, c.validateSignIn()...)
	if _, msg := checkHostPort(c.Listen); msg != "" {
		add("listen", msg, "e.g. listen: 127.0.0.1:8080 behind a reverse proxy, or :8080 on every interface")
	}
	if msg, fix := checkAdminListen(c.Admin.Listen); msg != "" {
		add("admin.listen", msg, fix)
	}
	// The endpoint mapping's rules are telephony's: the ones NewAgentMap
	// applies, reported here at their lines.
	for _, p := range (telephony.AgentMapConfig{Patterns: c.Agents.Patterns, Table: c.Agents.Table}).Problems() {
		add("agents."+p.Path, p.Msg, p.Fix)
	}
	if r := c.Redis; r != nil {
		switch {
		case len(r.ClusterAddresses) > 0 && r.Address != "":
			add("redis.cluster_addresses", "set together with address", "use address for one Redis, or cluster_addresses for a Redis Cluster (its nodes' host:port)")
		case len(r.ClusterAddresses) > 0 && (r.MasterName != "" || len(r.SentinelAddresses) > 0):
			add("redis.cluster_addresses", "set together with master_name or sentinel_addresses", "Sentinel and Redis Cluster exclude each other: a cluster fails over by itself; keep cluster_addresses or master_name with sentinel_addresses")
		case len(r.ClusterAddresses) > 0 && r.DB != 0:
			add("redis.db", fmt.Sprintf("%d with cluster_addresses", r.DB), "a Redis Cluster has database 0 only: remove db, and tell sites apart with key_prefix")
		case len(r.ClusterAddresses) > 0:
			// A cluster: neither a server nor sentinels to check.
		case r.MasterName == "" && len(r.SentinelAddresses) > 0:
			add("redis.master_name", "missing", "the name the sentinels monitor the primary under (sentinel monitor <name> ...)")
		case r.Address == "" && r.MasterName == "":
			add("redis.address", "missing", "e.g. address: 127.0.0.1:6379, or master_name and sentinel_addresses, or cluster_addresses, or remove the redis block for a single daemon")
		case r.Address != "" && r.MasterName != "":
			add("redis.master_name", "set together with address", "use address for one Redis, or master_name with sentinel_addresses for Sentinel")
		case r.MasterName != "" && len(r.SentinelAddresses) == 0:
			add("redis.sentinel_addresses", "missing", "the sentinels that monitor "+r.MasterName+", e.g. sentinel_addresses: [10.0.0.1:26379, 10.0.0.2:26379, 10.0.0.3:26379]")
		}
		// go-redis takes any string and fails at every dial; a daemon
		// that starts, then cannot reach Redis, is found out too late.
		if r.Address != "" {
			if msg := checkDialAddress(r.Address); msg != "" {
				add("redis.address", msg, "e.g. address: 127.0.0.1:6379 (Redis listens on 6379 unless told otherwise)")
			}
		}
		for i, a := range r.SentinelAddresses {
			if msg := checkDialAddress(a); msg != "" {
				add(fmt.Sprintf("redis.sentinel_addresses[%d]", i), msg, "e.g. 10.0.0.1:26379 (sentinels listen on 26379 unless told otherwise)")
			}
		}
		for i, a := range r.ClusterAddresses {
			if msg := checkDialAddress(a); msg != "" {
				add(fmt.Sprintf("redis.cluster_addresses[%d]", i), msg, "e.g. 10.0.0.1:6379, one node's host:port")
			}
		}
		if strings.ContainsAny(r.KeyPrefix, "{}") {
			add("redis.key_prefix", fmt.Sprintf("%q holds { or }", r.KeyPrefix), "braces mark Redis Cluster hash tags, which the keys after the prefix use: e.g. key_prefix: \"screenpop:site-a:\"")
		}
		if r.DownAfter < 0 || r.DownAfter > time.Minute {
			add("redis.down_after", fmt.Sprintf("%s is outside 0..1m", r.DownAfter), "e.g. down_after: 2s: longer than Redis stalls, shorter than agents wait")
		}
		if r.CardTTL < 0 || r.CardTTL > 24*time.Hour {
			add("redis.card_ttl", fmt.Sprintf("%s is outside 0..24h", r.CardTTL), "cached cards are personal data: keep them briefly, e.g. card_ttl: 1h")
		}
	}

	if len(c.Telephony) == 0 {
		add("telephony", "no telephony source: nothing would ever ring", "add one, e.g. telephony: [{name: demo, type: demo}] or an ari source (see configs/asterisk/README.md)")
	}
	seen := map[string]bool{}
	for i, t := range c.Telephony {
		at := func(option string) string { return fmt.Sprintf("telephony[%d].%s", i, option) }
		switch {
		case t.Name == "":
			add(at("name"), "missing", "give each telephony source a short name, e.g. name: pbx")
		case seen[t.Name]:
			add(at("name"), fmt.Sprintf("%q is used twice", t.Name), "names must be unique")
		// The name namespaces the source's call IDs (<name>/<PBX call ID>)
		// and ends the URL of an http source: a '/' could make two
		// sources' IDs meet, white space cannot be mounted.
		case strings.Contains(t.Name, "/"):
			add(at("name"), fmt.Sprintf("%q contains '/'", t.Name), "call IDs become <name>/<the PBX's call ID>: use letters, digits, - and _, e.g. name: pbx-berlin")
		case strings.ContainsAny(t.Name, " \t\r\n\v\f"):
			add(at("name"), fmt.Sprintf("%q contains white space", t.Name), "the name ends the URL /api/v1/call-events/<name>: use letters, digits, - and _, e.g. name: pbx-berlin")
		}
		seen[t.Name] = true
		if t.Type == "" {
			add(at("type"), "missing", kindHint("one of: ", Known.Telephony))
		}
	}

	if c.Directory != nil && c.Directory.Type == "" {
		add("directory.type", "missing", kindHint("one of the adapter kinds: ", Known.Sources))
	}
	for i, s := range c.Sources {
		if s.Type == "" {
			add(fmt.Sprintf("sources[%d].type", i), "missing", kindHint("one of the adapter kinds: ", Known.Sources))
		}
	}
	if err := c.Aggregator().Validate(); err != nil {
		problems = append(problems, err.(aggregator.Problems)...)
	}
	// The floor view's own rules, each at its option under floor:.
	for _, e := range Each(c.Floor.Validate()) {
		var oe *floor.OptionError
		if errors.As(e, &oe) {
			add("floor."+oe.Option, oe.Msg, oe.Fix)
		}
	}
	// The history's own rules, each placed at its option under history:.
	for _, e := range Each(c.History.Validate()) {
		var oe *history.OptionError
		if errors.As(e, &oe) {
			add("history."+oe.Option, oe.Msg, "")
		} else {
			add("history", e.Error(), "")
		}
	}
	return problems
}

// checkAdminListen says what is wrong with admin.listen, if anything: the
// admin listener hands out profiles and stacks, so only a loopback host
// will do ("" is no listener at all).
func checkAdminListen(listen string) (msg, fix string) {
	if listen == "" {
		return "", ""
	}
	const example = "e.g. listen: 127.0.0.1:6060, and reach it from elsewhere through ssh -L 6060:127.0.0.1:6060 or kubectl port-forward"
	host, msg := checkHostPort(listen)
	if msg != "" {
		return msg, example
	}
	if host == "localhost" {
		return "", ""
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		if host == "" {
			host = "every interface"
		}
		return fmt.Sprintf("%q is not a loopback address (%s): profiles and goroutine stacks would be open to the network", listen, host), example
	}
	return "", ""
}

// checkHostPort says what is wrong with a listen address, if anything, and
// gives its host.
func checkHostPort(listen string) (host, msg string) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Sprintf("%q is not host:port", listen)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return "", fmt.Sprintf("%q: port %q is not a number in 0..65535", listen, port)
	}
	return host, ""
}

// checkDialAddress says what is wrong with an address to connect to, if
// anything: host:port, with a port that can be dialled.
func checkDialAddress(addr string) string {
	if _, msg := checkHostPort(addr); msg != "" {
		return msg
	}
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		return fmt.Sprintf("%q: port 0 cannot be connected to", addr)
	}
	return ""
}

// Error is one problem in a configuration file: where, what, and how to fix
// it. It reads
//
//	screenpop.yaml:12:5: sources[2] (accounting): timeout: 45s is outside 0..30s (fix: e.g. timeout: 800ms)
type Error struct {
	File   string
	Line   int    // 0: the file as a whole
	Column int    // of the key at fault
	Path   string // the entry the problem is in: "sources[2] (accounting)"; empty at the top level
	Msg    string // what is wrong, led by the option at fault: "timeout: 45s is outside 0..30s"
	Fix    string
}

func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
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
	if err := errors.Join(es.Unwrap()...); err != nil {
		return err.Error() // one a line
	}
	return ""
}

// Unwrap gives errors.As and Each each problem.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Sorted returns es in file order, each problem once: what the parts of a
// check found, joined.
func (es Errors) Sorted() Errors {
	seen := make(map[Error]bool, len(es))
	out := make(Errors, 0, len(es))
	for _, e := range es {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	out.sort()
	return out
}

func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b Error) int { return cmp.Or(a.Line-b.Line, a.Column-b.Column) })
}

// ErrorAt is a problem of the option at path ("sources[2].type",
// "api.evict_tokens_env"), placed at its key, or at the closest part of
// the path that is written.
func (c *Config) ErrorAt(path, msg, fix string) Error {
	return c.place(aggregator.Problem{Path: path, Msg: msg, Fix: fix})
}

// ErrorsIn places every problem err holds in the file: a *LineError (a
// kind's, DecodeStrict's) at its own line and column, an aggregator's
// problem at the key its path names, an Error as it is, and any other
// error at entry, the part of the file err is about: "sources[2]",
// "directory", "telephony[0]", or "" for the whole file.
func (c *Config) ErrorsIn(entry string, err error) Errors {
	var out Errors
	for _, e := range Each(err) {
		var (
			ce Error
			le *LineError
			ap aggregator.Problem
		)
		switch {
		case errors.As(e, &ce):
			out = append(out, ce)
		case errors.As(e, &le):
			out = append(out, Error{File: c.File, Line: le.Line, Column: le.Column, Path: c.label(entry), Msg: le.Msg})
		case errors.As(e, &ap):
			out = append(out, c.place(ap))
		default:
			at := Pos{}
			if entry != "" && c.root != nil {
				node, _ := lookup(c.root, entry)
				at = posOf(node)
			}
			msg := e.Error()
			if entry == "" { // yaml.v3's own: "yaml: line 3: did not find expected key"
				msg = stripPosition(strings.TrimPrefix(msg, "yaml: "), &at)
			}
			out = append(out, Error{File: c.File, Line: at.Line, Column: at.Column, Path: c.label(entry), Msg: msg})
		}
	}
	return out
}

// place puts an aggregator's problem (or one written like it) at its key.
func (c *Config) place(p aggregator.Problem) Error {
	entry, option := p.Split()
	at := Pos{}
	if c.root != nil {
		node, _ := lookup(c.root, p.Path)
		at = posOf(node)
	}
	msg := p.Msg
	if option != "" {
		msg = option + ": " + msg
	}
	return Error{File: c.File, Line: at.Line, Column: at.Column, Path: c.label(entry), Msg: msg, Fix: p.Fix}
}

// label names an entry as messages show it: "sources[2] (accounting)".
func (c *Config) label(entry string) string {
	name := ""
	var i int
	switch {
	case entry == "directory" && c.Directory != nil:
		name = c.Directory.Name
	case scanIndex(entry, "sources[%d]", &i) && i < len(c.Sources):
		name = c.Sources[i].Name
	case scanIndex(entry, "telephony[%d]", &i) && i < len(c.Telephony):
		name = c.Telephony[i].Name
	}
	return aggregator.Label(entry, name)
}

func scanIndex(s, format string, i *int) bool {
	n, err := fmt.Sscanf(s, format, i)
	return n == 1 && err == nil && fmt.Sprintf(format, *i) == s
}

// OptionPos is where the first of keys a source sets is written in its
// options, or the source itself when it sets none of them: what a check
// of that option points at.
func (s *Source) OptionPos(keys ...string) Pos {
	for _, key := range keys {
		if k, _ := s.option(key); k != nil {
			return posOf(k)
		}
	}
	return s.Pos
}

// option finds a source's option by its key, or by a dotted path into
// nested mappings ("search.query").
func (s *Source) option(key string) (k, v *yaml.Node) {
	v = s.Options
	for _, name := range strings.Split(key, ".") {
		if v == nil || v.Kind != yaml.MappingNode {
			return nil, nil
		}
		k = nil
		for i := 0; i+1 < len(v.Content); i += 2 {
			if v.Content[i].Value == name {
				k, v = v.Content[i], v.Content[i+1]
				break
			}
		}
		if k == nil {
			return nil, nil
		}
	}
	return k, v
}

// TextPos is where line n, column col (both from 1) of the text of a
// source's option is, e.g. of its query: exact in a literal block
// (query: |), whose text starts on the line after the key, indentation
// skipped; the key otherwise, or when n is 0 (unknown).
func (c *Config) TextPos(s *Source, key string, n, col int) Pos {
	k, v := s.option(key)
	switch {
	case k == nil:
		return s.Pos
	case n <= 0 || v.Style&yaml.LiteralStyle == 0:
		return posOf(k)
	}
	at := Pos{Line: v.Line + n, Column: max(col, 1)}
	// The block's indentation is its first non-blank line's; spaces past
	// it on a later line are the text's own, counted in col already.
	for _, text := range c.text[min(v.Line, len(c.text)):] {
		if strings.TrimSpace(text) != "" {
			at.Column += len(text) - len(strings.TrimLeft(text, " "))
			break
		}
	}
	return at
}

// linePrefixRE reads the position LineError and yaml.v3 write before a
// message: "line 12: ", "line 12, column 5: ".
var linePrefixRE = regexp.MustCompile(`^line (\d+)(?:, column (\d+))?: `)

// yamlFirstBadLine is the first line at which data stops being a valid
// YAML document with the error yaml.v3 reported for all of it (msg, at
// line), or 0 when it cannot tell: the last line of the shortest prefix of
// whole lines that fails just as the whole file does. yaml.v3 places some
// mistakes (a line indented one space too far or too little in a list) at
// the line of the block it was parsing, which can be far above. A prefix
// cut in the middle of something that goes on below fails differently (or
// at another line), so it is not taken for the mistake.
func yamlFirstBadLine(data []byte, msg string, line int) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 5000 {
		return 0 // a configuration is not that long; no quadratic search
	}
	prefix := make([]byte, 0, len(data))
	for n, l := range lines {
		prefix = append(prefix, l...)
		if n+1 <= line {
			continue
		}
		var doc yaml.Node
		err := yaml.Unmarshal(prefix, &doc)
		if err != nil && err.Error() == msg {
			if t := bytes.TrimSpace(l); len(t) == 0 || t[0] == '#' {
				return 0 // failed at the end of the text: something left open above
			}
			return n + 1
		}
	}
	return 0
}

// yamlReaderProblems are the mistakes yaml.v3 finds as it decodes the
// file's characters, before it counts lines: it names no line for them.
var yamlReaderProblems = []string{
	"control characters are not allowed", "invalid leading UTF-8 octet", "incomplete UTF-8 octet sequence",
	"invalid trailing UTF-8 octet", "invalid length of a UTF-8 sequence", "invalid Unicode character",
}

// yamlProblemAt places a YAML syntax error yaml.v3 gave no line: a
// character it cannot read (a control character, broken UTF-8) where the
// first one is, and anything else on the first line, where yaml.v3 leaves
// "line 1" out (column unknown).
func yamlProblemAt(msg string, data []byte) (line, column int) {
	if !slices.Contains(yamlReaderProblems, msg) {
		return 1, 0
	}
	line, column = 1, 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		switch {
		case r == utf8.RuneError && size <= 1, !yamlPrintable(r):
			return line, column
		case r == '\n':
			line, column = line+1, 1
		default:
			column++
		}
		data = data[size:]
	}
	return 1, 0
}

// yamlPrintable reports whether YAML 1.2 allows r in a file (c-printable).
func yamlPrintable(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0x7e) || r == 0x85 ||
		(r >= 0xa0 && r <= 0xd7ff) || (r >= 0xe000 && r <= 0xfffd) || (r >= 0x10000 && r <= 0x10ffff)
}

// stripPosition takes such a position off msg into at.
func stripPosition(msg string, at *Pos) string {
	m := linePrefixRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	*at = Pos{}
	at.Line, _ = strconv.Atoi(m[1])
	if m[2] != "" {
		at.Column, _ = strconv.Atoi(m[2])
	}
	return msg[len(m[0]):]
}
