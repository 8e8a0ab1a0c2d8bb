package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/screenpop/screenpop/auth"
	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/pop"
)

// signInOptions are auth.New's options from the configuration: company
// sign-in (auth.oidc, its client secret from the environment or a file),
// the provider's bearer tokens (auth.jwt), and the HS256 tokens of
// `screenpopd token` and the demo links when secret is set. Problems are
// placed at their options.
func signInOptions(cfg *configs.Config, env func(string) string, secret []byte) (auth.Options, error) {
	var opts auth.Options
	if o := cfg.Auth.OIDC; o != nil {
		s, err := o.LoadClientSecret(func(name string) (string, bool) {
			v := env(name)
			return v, v != ""
		})
		if err != nil {
			var oe *auth.OptionError
			if errors.As(err, &oe) {
				return opts, configs.Errors{cfg.ErrorAt(oe.Option, oe.Msg, "")}
			}
			return opts, err
		}
		opts.OIDC, opts.ClientSecret = o, s
	}
	opts.JWT = cfg.Auth.JWT
	if secret != nil {
		opts.HS256 = &auth.HS256{Secret: secret, Issuer: pop.TokenIssuer, Audience: pop.TokenAudience}
	}
	return opts, nil
}

// newSignIn builds the authenticator of the hub, the /auth/ endpoints and
// /session. Whether an account is an agent here is asked of the running
// configuration each time, so that a reload that removes an agent ends
// that agent's sessions.
func (m *Main) newSignIn(secret []byte) (*auth.Authenticator, error) {
	opts, err := signInOptions(m.cfg, m.opts.Env, secret)
	if err != nil {
		return nil, err
	}
	opts.KnownAgent = func(id string) bool { return m.config().KnownAgent(id) }
	opts.HTTPClient = m.opts.IdPClient
	opts.Logger = m.logger.With("component", "auth")
	opts.Registerer = m.reg
	a, err := auth.New(opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.cfg.File, err)
	}
	return a, nil
}

// probeSignIn reaches the identity provider once at start (discovery and
// key sets), so that a wrong issuer or a provider that cannot be reached
// shows in the log at once rather than at the first sign-in. It only
// warns: sign-in retries by itself, and HS256 links work meanwhile.
func (m *Main) probeSignIn(ctx context.Context) {
	cfg := m.config()
	if cfg.Auth.OIDC == nil && cfg.Auth.JWT == nil {
		return
	}
	ctx, cancel := context.WithTimeoutCause(ctx, 15*time.Second, errors.New("identity provider probe took 15s"))
	defer cancel()
	if err := m.signIn.Probe(ctx); err != nil {
		m.logger.Warn("identity provider not reachable at start; sign-in tries again on first use", "err", err)
	}
}

// agentRoles are the roles that decide which card sections an agent gets:
// those agents.roles gives the agent, and those of the agent's current
// sign-in (the identity provider's roles_claim, a token's roles). It
// answers from memory: the dispatcher asks with its state locked.
func (m *Main) agentRoles(agentID string) []string {
	configured := m.config().Agents.Roles[agentID]
	signedIn := m.signedIn.of(agentID, time.Now())
	if len(signedIn) == 0 {
		return configured
	}
	out := slices.Clone(configured)
	for _, r := range signedIn {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// signedInRoles remembers, per agent, the roles of the latest sign-in the
// hub accepted, until it expires. An agent signed in on another daemon is
// not known here: with several daemons, agents.roles is what all share.
type signedInRoles struct {
	mu      sync.Mutex
	byAgent map[string]rolesUntil
}

type rolesUntil struct {
	roles   []string
	expires time.Time // zero: no end
}

func (s *signedInRoles) remember(a pop.Agent, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byAgent == nil {
		s.byAgent = map[string]rolesUntil{}
	}
	// Sign-ins that ended are forgotten here, which bounds the table by the
	// agents signed in now.
	for id, r := range s.byAgent {
		if !r.expires.IsZero() && !now.Before(r.expires) {
			delete(s.byAgent, id)
		}
	}
	s.byAgent[a.ID] = rolesUntil{roles: slices.Clone(a.Roles), expires: a.Expires}
}

func (s *signedInRoles) of(agentID string, now time.Time) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byAgent[agentID]
	if !ok || (!r.expires.IsZero() && !now.Before(r.expires)) {
		return nil
	}
	return r.roles
}

// rememberRoles is the hub's Authenticator: auth's, noting the roles of
// every sign-in it accepts.
type rememberRoles struct {
	pop.Authenticator
	roles *signedInRoles
}

func (r rememberRoles) Authenticate(req *http.Request) (pop.Agent, error) {
	a, err := r.Authenticator.Authenticate(req)
	if err == nil {
		r.roles.remember(a, time.Now())
	}
	return a, err
}

// checkSignInReachable is config check -connect's line on the identity
// provider: discovery and key sets fetched once (auth.Authenticator.Probe),
// placed at auth.oidc, or auth.jwt when only that is set. Nil when neither
// is configured.
func checkSignInReachable(ctx context.Context, cfg *configs.Config, env func(string) string, timeout time.Duration) (*configs.Error, checkStatus) {
	at := "auth.oidc"
	switch {
	case cfg.Auth.OIDC == nil && cfg.Auth.JWT == nil:
		return nil, ""
	case cfg.Auth.OIDC == nil:
		at = "auth.jwt"
	}
	line := lineAt(cfg, at)
	opts, err := signInOptions(cfg, env, nil)
	if err == nil {
		var a *auth.Authenticator
		if a, err = auth.New(opts); err == nil {
			cause := fmt.Errorf("config check -connect waited %s for the identity provider", timeout)
			pctx, cancel := context.WithTimeoutCause(ctx, timeout, cause)
			defer cancel()
			err = a.Probe(pctx)
		}
	}
	if err != nil {
		// The error names the option already ("auth.oidc: discovery of ...").
		_, msg, _ := strings.Cut(err.Error(), at+": ")
		if msg == "" {
			msg = err.Error()
		}
		return line(checkFail, msg)
	}
	var what []string
	if o := cfg.Auth.OIDC; o != nil {
		what = append(what, "discovery of "+o.Issuer+" and its key set")
	}
	if j := cfg.Auth.JWT; j != nil {
		what = append(what, "key set "+j.JWKSURL)
	}
	return line(checkOK, "identity provider reachable: "+strings.Join(what, ", "))
}
