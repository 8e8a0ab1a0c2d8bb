package telephony

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Spec is what a telephony kind's constructor (ari.NewFromSpec,
// demo.NewFromSpec, httpin.NewFromSpec) gets for one `telephony:` entry.
// The kind decodes the entry's options into its own Config with Decode and
// places each problem it finds at its option's key with At, the way the
// data-source kinds use configs.DecodeStrict and configs.KeyError
// (adapters.Spec). The wiring passes those two in, bound to the entry's
// YAML node: the kinds do not import configs, which imports the
// aggregator, whose tests use the demo kind's callers.
type Spec struct {
	// Name of the entry: CallEvent.Source, the metrics' source label, the
	// end of an http source's URL.
	Name string
	// Decode decodes the entry's options (its keys other than name and
	// type) strictly into v, a pointer to the kind's struct: an unknown key
	// or a value of the wrong type is an error at its line and column.
	Decode func(v any) error
	// At is the error of the option written under key, at that key's line
	// and column, or at the entry when the key is not written.
	At ErrorAt
	// Env looks up the environment variables a `*_env` option names:
	// secrets are never written in the file, and packages never call
	// os.Getenv themselves. nil: every variable is unset.
	Env func(string) string
	// AgentOf maps a PBX endpoint ("PJSIP/1001") to an agent ID.
	AgentOf func(endpoint string) (agent string, ok bool)
	// Logger is the entry's child logger; nil discards.
	Logger *slog.Logger
	// Registerer takes the source's metrics; nil registers nowhere.
	Registerer prometheus.Registerer
}

// Getenv is Env, or "" for every variable when Env is nil.
func (s Spec) Getenv(name string) string {
	if s.Env == nil {
		return ""
	}
	return s.Env(name)
}

// ErrorAt makes the error of one option of a kind's Config, given the key a
// telephony entry writes it under ("heartbeat"; "" for what no key sets):
// New passes one that writes a plain error, NewFromSpec one that places it
// at the key's line and column (configs.KeyError), so that one check serves
// a Config built in Go and an entry of a file alike.
type ErrorAt func(key, format string, args ...any) error

// Duration fills a zero *v with def and refuses a negative one.
func (at ErrorAt) Duration(key string, v *time.Duration, def time.Duration) error {
	switch {
	case *v < 0:
		return at(key, "%s must not be negative, got %s", key, *v)
	case *v == 0:
		*v = def
	}
	return nil
}
