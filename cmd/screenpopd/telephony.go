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

// namedCallSource is a built telephony source with what the HTTP server
// must mount for it (the CTI endpoint of an http source).
type namedCallSource struct {
	name    string
	kind    string
	source  callSource
	handler http.Handler // mounted at /api/v1/call-events/{name} when not nil
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
	// RequirePresentation withholds callers whose presentation the dialplan
	// never reported (see configs/asterisk/extensions.conf): safer when some
	// inbound routes may lack the SCREENPOP_PRES line.
	RequirePresentation bool `yaml:"require_presentation"`
}

type httpOptions struct {
	TokensEnv string `yaml:"tokens_env"`
	MaxBody   int64  `yaml:"max_body"`
}

var telephonyTypes = map[string]bool{"demo": true, "ari": true, "http": true}

// buildTelephony constructs every configured telephony source (no I/O).
func buildTelephony(cfg *configs.Config, env func(string) string, logger *slog.Logger, reg prometheus.Registerer) ([]namedCallSource, error) {
	agentMap, err := telephony.NewAgentMap(telephony.AgentMapConfig{Patterns: cfg.Agents.Patterns, Table: cfg.Agents.Table})
	if err != nil {
		return nil, configs.Errors{{File: cfg.File, Path: "agents", Msg: err.Error()}}
	}
	var out []namedCallSource
	var errs configs.Errors
	fail := func(t configs.Telephony, i int, err error) {
		errs = append(errs, configs.At(cfg.File, t.Line, fmt.Sprintf("telephony[%d] (%s)", i, t.Name), err))
	}
	for i, t := range cfg.Telephony {
		log := logger.With("telephony", t.Name)
		switch t.Type {
		case "demo":
			var o demoOptions
			if err := configs.DecodeStrict(t.Options, &o); err != nil {
				fail(t, i, err)
				continue
			}
			callers := demo.DefaultCallers()
			if len(o.Callers) > 0 {
				callers = callers[:0:0]
				for _, c := range o.Callers {
					callers = append(callers, demo.Caller{Number: c.Number, Name: c.Name, Withheld: c.Withheld})
				}
			}
			g, err := demo.New(demo.Config{
				Interval: o.Interval, Agents: o.Agents, Ring: o.Ring, Talk: o.Talk, Seed: o.Seed,
				Callers: callers,
			}, log)
			if err != nil {
				fail(t, i, err)
				continue
			}
			out = append(out, namedCallSource{name: t.Name, kind: t.Type, source: g})
		case "ari":
			var o ariOptions
			if err := configs.DecodeStrict(t.Options, &o); err != nil {
				fail(t, i, err)
				continue
			}
			password := ""
			if o.PasswordEnv != "" {
				password = env(o.PasswordEnv)
				if password == "" {
					fail(t, i, fmt.Errorf("environment variable %s (password_env) is empty or unset", o.PasswordEnv))
					continue
				}
			}
			s, err := ari.New(ari.Config{
				Name: t.Name, URL: o.URL, User: o.User, Password: password, App: o.App,
				RequirePresentation: o.RequirePresentation,
				AgentOf:             agentMap.AgentOf, InboundContexts: o.InboundContexts, Heartbeat: o.Heartbeat,
			}, log, reg)
			if err != nil {
				fail(t, i, err)
				continue
			}
			out = append(out, namedCallSource{name: t.Name, kind: t.Type, source: s})
		case "http":
			var o httpOptions
			if err := configs.DecodeStrict(t.Options, &o); err != nil {
				fail(t, i, err)
				continue
			}
			if o.TokensEnv == "" {
				fail(t, i, fmt.Errorf("tokens_env is required: name the environment variable holding the PBX's bearer token(s), comma-separated"))
				continue
			}
			tokens := splitTokens(env(o.TokensEnv))
			if len(tokens) == 0 {
				fail(t, i, fmt.Errorf("environment variable %s (tokens_env) is empty or unset", o.TokensEnv))
				continue
			}
			s, err := httpin.New(httpin.Config{Tokens: tokens, MaxBody: o.MaxBody}, agentMap.AgentOf, log, reg)
			if err != nil {
				fail(t, i, err)
				continue
			}
			out = append(out, namedCallSource{name: t.Name, kind: t.Type, source: s, handler: s.Handler()})
		default:
			if t.Type != "" {
				fail(t, i, fmt.Errorf("unknown telephony type %q (use one of: ari, http, demo)", t.Type))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return out, nil
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
