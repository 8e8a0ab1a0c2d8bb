package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/telephony"
	"github.com/screenpop/screenpop/telephony/ari"
	"github.com/screenpop/screenpop/telephony/demo"
	"github.com/screenpop/screenpop/telephony/httpin"
)

// callSource is what the daemon needs from a telephony source.
type callSource interface {
	Run(ctx context.Context, sink screenpop.CallSink) error
}

// readiness is implemented by sources that can be down (an ARI socket).
type readiness interface{ Ready() error }

// warner is implemented by sources that can work in a way IT must fix (an
// ARI source whose PBX does not report callers' presentation).
type warner interface{ Warnings() []string }

// namedCallSource is a built telephony source with what the HTTP server
// must mount for it (the CTI endpoint of an http source).
type namedCallSource struct {
	name    string
	kind    string
	source  callSource
	handler http.Handler // mounted at /api/v1/call-events/{name} when not nil
}

// run runs the source until ctx ends. Its events reach sink with their call
// IDs namespaced by the source's name ("pbx-a/1795435000.0"): two PBXs both
// have a channel 1795435000.0, and past this point (dispatcher, Redis
// de-duplication, history) a call ID must name one call in the daemon.
func (c namedCallSource) run(ctx context.Context, sink screenpop.CallSink) error {
	return c.source.Run(ctx, telephony.Namespaced(c.name, sink))
}

// Options of each telephony type, decoded strictly from the source's keys.
type demoOptions struct {
	Interval time.Duration `yaml:"interval"`
	Agents   []string      `yaml:"agents"`
	Ring     time.Duration `yaml:"ring"`
	Talk     time.Duration `yaml:"talk"`
	Seed     int64         `yaml:"seed"`
	// Callers replaces the built-in demo callers (which match
	// configs/demo/directory.json), e.g. with numbers of another data set.
	Callers []demoCaller `yaml:"callers"`
}

type demoCaller struct {
	Number   string `yaml:"number"`
	Name     string `yaml:"name"`
	Withheld bool   `yaml:"withheld"`
}

type ariOptions struct {
	URL             string        `yaml:"url"`
	User            string        `yaml:"user"`
	PasswordEnv     string        `yaml:"password_env"`
	App             string        `yaml:"app"`
	InboundContexts []string      `yaml:"inbound_contexts"`
	Heartbeat       time.Duration `yaml:"heartbeat"`
	// OnUnknownPresentation: withhold (default) or show a caller whose
	// presentation the PBX does not report (no CALLERID(pres) in ari.conf
	// channelvars, no SCREENPOP_PRES in the dialplan).
	OnUnknownPresentation string `yaml:"on_unknown_presentation"`
	// Bounds of the events read but not yet applied; past them the socket
	// is dropped and the calls resynced (telephony/ari/README.md).
	MaxQueuedEvents int   `yaml:"max_queued_events"`
	MaxQueuedBytes  int64 `yaml:"max_queued_bytes"`
}

type httpOptions struct {
	TokensEnv string `yaml:"tokens_env"`
	MaxBody   int64  `yaml:"max_body"`
}

// telephonySpec is what a telephony kind's factory gets for one entry.
type telephonySpec struct {
	entry   configs.Telephony
	env     func(string) string
	agentOf func(endpoint string) (agent string, ok bool)
	logger  *slog.Logger
	reg     prometheus.Registerer
}

// telephonyFactory decodes one entry's options strictly and builds its
// source, validating without I/O: `config check` runs it while the PBX is
// down.
type telephonyFactory func(telephonySpec) (namedCallSource, error)

// telephonyKinds is the one place that maps a telephony entry's `type:` to
// its kind.
var telephonyKinds = map[string]telephonyFactory{
	"ari":  newARISource,
	"demo": newDemoSource,
	"http": newHTTPSource,
}

// telephonySamples are the telephony kinds' embedded sample configurations,
// for `screenpopd sample`; a test keeps their keys those of telephonyKinds.
var telephonySamples = map[string][]byte{
	"ari":  ari.Sample,
	"demo": demo.Sample,
	"http": httpin.Sample,
}

// buildTelephony constructs every configured telephony source (no I/O).
func buildTelephony(cfg *configs.Config, env func(string) string, logger *slog.Logger, reg prometheus.Registerer) ([]namedCallSource, error) {
	agentMap, err := telephony.NewAgentMap(telephony.AgentMapConfig{Patterns: cfg.Agents.Patterns, Table: cfg.Agents.Table})
	if err != nil {
		return nil, configs.Errors{{File: cfg.File, Path: "agents", Msg: err.Error()}}
	}
	var out []namedCallSource
	var errs configs.Errors
	for i, t := range cfg.Telephony {
		entry := fmt.Sprintf("telephony[%d]", i)
		factory, ok := telephonyKinds[t.Type]
		if !ok {
			if t.Type != "" { // a missing type is already reported by configs
				errs = append(errs, cfg.ErrorAt(entry+".type", fmt.Sprintf("%q is not a telephony type", t.Type), "use one of: "+kindNames(telephonyKinds)))
			}
			continue
		}
		src, err := factory(telephonySpec{entry: t, env: env, agentOf: agentMap.AgentOf, logger: logger.With("telephony", t.Name), reg: reg})
		if err != nil {
			errs = append(errs, cfg.ErrorsIn(entry, err)...)
			continue
		}
		out = append(out, src)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

func newDemoSource(s telephonySpec) (namedCallSource, error) {
	var o demoOptions
	if err := configs.DecodeStrict(s.entry.Options, &o); err != nil {
		return namedCallSource{}, err
	}
	callers := demo.DefaultCallers()
	if len(o.Callers) > 0 {
		callers = callers[:0:0]
		for _, c := range o.Callers {
			callers = append(callers, demo.Caller{Number: c.Number, Name: c.Name, Withheld: c.Withheld})
		}
	}
	g, err := demo.New(demo.Config{
		Name:     s.entry.Name,
		Interval: o.Interval, Agents: o.Agents, Ring: o.Ring, Talk: o.Talk, Seed: o.Seed,
		Callers: callers,
	}, s.logger)
	if err != nil {
		return namedCallSource{}, err
	}
	return namedCallSource{name: s.entry.Name, kind: s.entry.Type, source: g}, nil
}

func newARISource(s telephonySpec) (namedCallSource, error) {
	c, err := ariConfig(s.entry, s.env, s.agentOf)
	if err != nil {
		return namedCallSource{}, err
	}
	src, err := ari.New(c, s.logger, s.reg)
	if err != nil {
		return namedCallSource{}, err
	}
	return namedCallSource{name: s.entry.Name, kind: s.entry.Type, source: src}, nil
}

func newHTTPSource(s telephonySpec) (namedCallSource, error) {
	var o httpOptions
	if err := configs.DecodeStrict(s.entry.Options, &o); err != nil {
		return namedCallSource{}, err
	}
	if o.TokensEnv == "" {
		return namedCallSource{}, fmt.Errorf("tokens_env is required: name the environment variable holding the PBX's bearer token(s), comma-separated")
	}
	tokens := splitTokens(s.env(o.TokensEnv))
	if len(tokens) == 0 {
		return namedCallSource{}, fmt.Errorf("environment variable %s (tokens_env) is empty or unset", o.TokensEnv)
	}
	src, err := httpin.New(httpin.Config{Name: s.entry.Name, Tokens: tokens, MaxBody: o.MaxBody}, s.agentOf, s.logger, s.reg)
	if err != nil {
		return namedCallSource{}, err
	}
	return namedCallSource{name: s.entry.Name, kind: s.entry.Type, source: src, handler: src.Handler()}, nil
}

// ariConfig decodes a telephony entry of type ari into the source's
// configuration: the daemon and `screenpopd pbx check` build from it alike.
func ariConfig(t configs.Telephony, env func(string) string, agentOf func(string) (string, bool)) (ari.Config, error) {
	var o ariOptions
	if err := configs.DecodeStrict(t.Options, &o); err != nil {
		return ari.Config{}, err
	}
	password := ""
	if o.PasswordEnv != "" {
		password = env(o.PasswordEnv)
		if password == "" {
			return ari.Config{}, fmt.Errorf("environment variable %s (password_env) is empty or unset", o.PasswordEnv)
		}
	}
	return ari.Config{
		Name: t.Name, URL: o.URL, User: o.User, Password: password, App: o.App,
		OnUnknownPresentation: o.OnUnknownPresentation,
		MaxQueuedEvents:       o.MaxQueuedEvents, MaxQueuedBytes: o.MaxQueuedBytes,
		AgentOf: agentOf, InboundContexts: o.InboundContexts, Heartbeat: o.Heartbeat,
	}, nil
}

// splitTokens reads a comma-separated list of bearer tokens from one
// environment variable.
func splitTokens(v string) []string {
	var tokens []string
	for _, tok := range strings.Split(v, ",") {
		if tok = strings.TrimSpace(tok); tok != "" {
			tokens = append(tokens, tok)
		}
	}
	return tokens
}
