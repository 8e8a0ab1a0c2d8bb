package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/bearer"
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

// telephonyFactory builds the source of one entry: the kind decodes the
// entry's options strictly (each problem at its key) and validates without
// I/O, so `config check` runs it while the PBX is down.
type telephonyFactory func(telephony.Spec) (callSource, error)

// telephonyKinds is the one place that maps a telephony entry's `type:` to
// its kind.
var telephonyKinds = map[string]telephonyFactory{
	"ari":  telephonyKind(ari.NewFromSpec),
	"demo": telephonyKind(demo.NewFromSpec),
	"http": telephonyKind(httpin.NewFromSpec),
}

// telephonyKind adapts a kind's NewFromSpec, which returns its own type, to
// a telephonyFactory: a failed build must give a nil callSource, not a nil
// *ari.Source inside a non-nil interface.
func telephonyKind[S callSource](newFromSpec func(telephony.Spec) (S, error)) telephonyFactory {
	return func(spec telephony.Spec) (callSource, error) {
		src, err := newFromSpec(spec)
		if err != nil {
			return nil, err
		}
		return src, nil
	}
}

// handlerSource is implemented by sources that take their events over
// HTTP (an http source's CTI endpoint).
type handlerSource interface{ Handler() http.Handler }

// telephonySamples are the telephony kinds' embedded sample configurations,
// for `screenpopd sample`; a test keeps their keys those of telephonyKinds.
var telephonySamples = map[string][]byte{
	"ari":  ari.Sample,
	"demo": demo.Sample,
	"http": httpin.Sample,
}

// buildTelephony constructs every configured telephony source (no I/O).
func buildTelephony(cfg *configs.Config, env func(string) string, logger *slog.Logger, reg prometheus.Registerer) ([]namedCallSource, error) {
	agentOf, errs := agentMapOf(cfg)
	var out []namedCallSource
	for i, t := range cfg.Telephony {
		entry := fmt.Sprintf("telephony[%d]", i)
		factory, ok := telephonyKinds[t.Type]
		if !ok {
			if t.Type != "" { // a missing type is already reported by configs
				errs = append(errs, cfg.ErrorAt(entry+".type", fmt.Sprintf("%q is not a telephony type", t.Type), "use one of: "+kindNames(telephonyKinds)))
			}
			continue
		}
		src, err := factory(telephonySpec(t, env, agentOf, logger, reg))
		if err != nil {
			errs = append(errs, cfg.ErrorsIn(entry, err)...)
			continue
		}
		named := namedCallSource{name: t.Name, kind: t.Type, source: src}
		if h, ok := src.(handlerSource); ok {
			named.handler = h.Handler()
		}
		out = append(out, named)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
}

// telephonySpec is what a telephony kind gets for entry t.
func telephonySpec(t configs.Telephony, env func(string) string, agentOf func(string) (string, bool), logger *slog.Logger, reg prometheus.Registerer) telephony.Spec {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return telephony.Spec{
		Name:   t.Name,
		Decode: func(v any) error { return configs.DecodeStrict(t.Options, v) },
		At: func(key, format string, args ...any) error {
			return configs.KeyError(t.Options, key, format, args...)
		},
		Env: env, AgentOf: agentOf,
		Logger: logger.With("telephony", t.Name), Registerer: reg,
	}
}

// agentMapOf is the endpoint mapping of cfg (AgentOf) and its problems.
// configs checks it by the same rules (telephony.AgentMapConfig.Problems)
// and reports them at their lines; they are placed the same way here for a
// configuration that did not come through configs.Parse (config check
// goes on past problems). A mapping with problems maps no endpoint, so
// that the telephony entries are still checked in the same pass.
func agentMapOf(cfg *configs.Config) (func(string) (string, bool), configs.Errors) {
	m, err := telephony.NewAgentMap(telephony.AgentMapConfig{Patterns: cfg.Agents.Patterns, Table: cfg.Agents.Table})
	if err == nil {
		return m.AgentOf, nil
	}
	var errs configs.Errors
	for _, e := range configs.Each(err) {
		var p telephony.AgentMapProblem
		if errors.As(e, &p) { // every one is
			errs = append(errs, cfg.ErrorAt("agents."+p.Path, p.Msg, p.Fix))
		}
	}
	return func(string) (string, bool) { return "", false }, errs
}

// splitTokens reads a comma-separated list of bearer tokens from one
// environment variable.
func splitTokens(v string) []string { return bearer.SplitList(v) }
