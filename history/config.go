package history

import (
	"cmp"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Sample is the `history:` block with every option, commented
// (sample.yaml): what `screenpopd sample history` prints, and README.md
// shows.
//
//go:embed sample.yaml
var Sample []byte

// Config is the `history:` block of the daemon's configuration.
type Config struct {
	// Type is "memory" (the default: forgotten at every restart) or
	// "postgres".
	Type string `yaml:"type"`
	// DSNEnv names the environment variable holding the PostgreSQL
	// connection string; DSNFile a file holding it. Exactly one, for
	// type postgres only. The daemon resolves them (see cmd/screenpopd).
	DSNEnv  string `yaml:"dsn_env"`
	DSNFile string `yaml:"dsn_file"`
	// Retention is how long calls, notes and wrap-ups are kept; default
	// DefaultRetention.
	Retention time.Duration `yaml:"retention"`
	// AccessRetention is how long access-log entries are kept; default
	// DefaultRetention.
	AccessRetention time.Duration `yaml:"access_retention"`
	// Dispositions are the wrap-up codes an agent chooses from.
	Dispositions []Disposition `yaml:"dispositions"`
	// WrapUpRequired: an agent is not ready for the next pop before they
	// chose a disposition for their last handled call.
	WrapUpRequired bool `yaml:"wrapup_required"`
	// WrapUpTime is the after-call time an agent gets before they are
	// ready again (ended early by choosing a disposition); 0 for none.
	WrapUpTime time.Duration `yaml:"wrapup_time"`
	// BufferSize bounds the writes waiting for PostgreSQL; default
	// DefaultBufferSize.
	BufferSize int `yaml:"buffer_size"`
	// WriteTimeout bounds one write attempt (a batch) to PostgreSQL;
	// default DefaultWriteTimeout.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// MaxConns bounds the PostgreSQL pool; default DefaultMaxConns.
	MaxConns int32 `yaml:"max_conns"`
	// MaxCalls bounds the calls the memory store keeps (the oldest go
	// first); default DefaultMaxCalls.
	MaxCalls int `yaml:"max_calls"`
}

// Disposition is one wrap-up code and what the agent sees.
type Disposition struct {
	Code  string `yaml:"code" json:"code"`
	Label string `yaml:"label" json:"label"`
}

// Defaults of Config.
const (
	TypeMemory          = "memory"
	TypePostgres        = "postgres"
	DefaultRetention    = 365 * 24 * time.Hour
	DefaultBufferSize   = 100000
	DefaultWriteTimeout = 5 * time.Second
	DefaultMaxConns     = 4
	DefaultMaxCalls     = 100000
	// DefaultAccessEntries bounds the memory store's access log.
	DefaultAccessEntries = 100000
)

// ApplyDefaults fills the options left out.
func (c *Config) ApplyDefaults() {
	c.Type = cmp.Or(c.Type, TypeMemory)
	c.Retention = cmp.Or(c.Retention, DefaultRetention)
	c.AccessRetention = cmp.Or(c.AccessRetention, DefaultRetention)
	c.BufferSize = cmp.Or(c.BufferSize, DefaultBufferSize)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, DefaultWriteTimeout)
	c.MaxConns = cmp.Or(c.MaxConns, DefaultMaxConns)
	c.MaxCalls = cmp.Or(c.MaxCalls, DefaultMaxCalls)
}

// OptionError is one problem of a Config: Option is the key under
// `history:` ("retention", "dispositions[2].code"), for the configuration
// loader to find its line.
type OptionError struct {
	Option string
	Msg    string
}

func (e *OptionError) Error() string { return e.Option + ": " + e.Msg }

var codeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// Validate reports every problem of c (after ApplyDefaults), each an
// *OptionError, joined with errors.Join; nil when there is none.
func (c Config) Validate() error {
	var errs []error
	add := func(option, format string, args ...any) {
		errs = append(errs, &OptionError{Option: option, Msg: fmt.Sprintf(format, args...)})
	}
	switch c.Type {
	case TypeMemory:
		for _, o := range []struct{ key, v string }{{"dsn_env", c.DSNEnv}, {"dsn_file", c.DSNFile}} {
			if o.v != "" {
				add(o.key, "%s is only for type: postgres (the memory store keeps nothing across restarts)", o.key)
			}
		}
	case TypePostgres:
		switch {
		case c.DSNEnv != "" && c.DSNFile != "":
			add("dsn_file", "set dsn_env or dsn_file, not both")
		case c.DSNEnv == "" && c.DSNFile == "":
			add("dsn_env", "dsn_env is required for type: postgres: name the environment variable holding the connection string, e.g. dsn_env: SCREENPOP_HISTORY_DSN (or dsn_file: a file holding it)")
		}
	default:
		add("type", "unknown type %q: use memory or postgres", c.Type)
	}
	if c.Retention < 24*time.Hour {
		add("retention", "%s is shorter than 24h: calls and notes are purged hourly, and the card counts the calls of the last 30 days (e.g. retention: 8760h for a year)", c.Retention)
	}
	if c.AccessRetention < 24*time.Hour {
		add("access_retention", "%s is shorter than 24h: the access log must answer who saw a person's data (e.g. access_retention: 8760h for a year)", c.AccessRetention)
	}
	seen := map[string]int{}
	for i, d := range c.Dispositions {
		at := fmt.Sprintf("dispositions[%d]", i)
		switch {
		case !codeRE.MatchString(d.Code):
			add(at+".code", "code %q must be 1-32 lower-case letters, digits, '-' or '_', e.g. code: order-placed", d.Code)
		case seen[d.Code] > 0:
			add(at+".code", "code %q is also dispositions[%d]; codes must be unique", d.Code, seen[d.Code]-1)
		}
		seen[d.Code] = i + 1
		if d.Label == "" {
			add(at+".label", "label is required: what the agent sees, e.g. label: Order placed")
		} else if len(d.Label) > maxField {
			add(at+".label", "label is %d bytes long; the limit is %d", len(d.Label), maxField)
		}
	}
	if c.WrapUpRequired && len(c.Dispositions) == 0 {
		add("wrapup_required", "wrapup_required needs dispositions to choose from")
	}
	if c.WrapUpTime < 0 || c.WrapUpTime > time.Hour {
		add("wrapup_time", "%s is outside 0..1h", c.WrapUpTime)
	}
	if c.BufferSize < 100 || c.BufferSize > 10000000 {
		add("buffer_size", "%d is outside 100..10000000 (writes held while PostgreSQL is away)", c.BufferSize)
	}
	if c.WriteTimeout < 100*time.Millisecond || c.WriteTimeout > time.Minute {
		add("write_timeout", "%s is outside 100ms..1m", c.WriteTimeout)
	}
	if c.MaxConns < 1 || c.MaxConns > 100 {
		add("max_conns", "%d is outside 1..100", c.MaxConns)
	}
	if c.MaxCalls < 1 || c.MaxCalls > 10000000 {
		add("max_calls", "%d is outside 1..10000000", c.MaxCalls)
	}
	return errors.Join(errs...)
}

// disposition returns the configured disposition of code.
func (c Config) disposition(code string) (Disposition, error) {
	for _, d := range c.Dispositions {
		if d.Code == code {
			return d, nil
		}
	}
	codes := make([]string, len(c.Dispositions))
	for i, d := range c.Dispositions {
		codes[i] = d.Code
	}
	return Disposition{}, fmt.Errorf("%w %q (configured: %v)", ErrUnknownDisposition, code, codes)
}

// NormalizeWrapUp checks a wrap-up against the configured dispositions and
// returns it as stored, with its label.
func (c Config) NormalizeWrapUp(w WrapUp, now time.Time) (WrapUp, error) {
	w.CallID, w.Agent, w.Code = Text(w.CallID), Text(w.Agent), Text(w.Code)
	if w.At.IsZero() {
		w.At = now
	}
	w.At = Time(w.At)
	if err := errors.Join(checkField("call id", w.CallID, true), checkField("agent", w.Agent, true), checkTime("wrap-up time", w.At)); err != nil {
		return w, err
	}
	d, err := c.disposition(w.Code)
	if err != nil {
		return w, err
	}
	w.Label = d.Label
	return w, nil
}

// LastHandled is an agent's last handled (answered) call that ended, as
// a store finds it for AgentState.
type LastHandled struct {
	CallID  string
	EndAt   time.Time
	Wrapped bool // a disposition was chosen
}

// AgentState is the wrap-up state of an agent whose last handled call is
// last (nil: none) at now, under c's wrap-up rules.
func (c Config) AgentState(last *LastHandled, now time.Time) AgentState {
	if last == nil || last.Wrapped || (!c.WrapUpRequired && c.WrapUpTime == 0) {
		return AgentState{Ready: true}
	}
	st := AgentState{CallID: last.CallID}
	if c.WrapUpTime > 0 {
		st.Until = last.EndAt.Add(c.WrapUpTime)
	}
	if !c.WrapUpRequired && !now.Before(st.Until) {
		return AgentState{Ready: true}
	}
	return st
}

// Options are what the daemon hands a store besides its configuration.
type Options struct {
	// Daemon names this daemon in calls and access entries ("through which
	// daemon"); default "screenpopd".
	Daemon     string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// WithDefaults returns o with its defaults filled in.
func (o Options) WithDefaults() Options {
	if o.Daemon == "" {
		o.Daemon = "screenpopd"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
