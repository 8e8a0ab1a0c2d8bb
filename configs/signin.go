package configs

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"

	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/auth"
)

// setSignInDefaults applies the auth package's defaults to auth.oidc and
// auth.jwt, so that the model the wiring gets is the one that runs.
func (c *Config) setSignInDefaults() {
	if c.Auth.OIDC != nil {
		c.Auth.OIDC.SetDefaults()
	}
	if c.Auth.JWT != nil {
		c.Auth.JWT.SetDefaults()
	}
}

// validateSignIn reports the problems of auth.oidc and auth.jwt (the auth
// package's own rules, each at its option) and of agents.roles.
func (c *Config) validateSignIn() []aggregator.Problem {
	var problems []aggregator.Problem
	add := func(path, msg, fix string) {
		problems = append(problems, aggregator.Problem{Path: path, Msg: msg, Fix: fix})
	}
	var errs []error
	if c.Auth.OIDC != nil {
		errs = append(errs, c.Auth.OIDC.Validate())
	}
	if c.Auth.JWT != nil {
		errs = append(errs, c.Auth.JWT.Validate())
	}
	for _, e := range Each(errors.Join(errs...)) {
		var oe *auth.OptionError
		if errors.As(e, &oe) {
			// The option's name leads the message already: "auth.oidc.issuer: ...".
			add(oe.Option, oe.Msg, "")
		} else {
			add("auth", e.Error(), "")
		}
	}
	// An account the identity provider vouches for still has to be an
	// agent listed here: with nobody listed, every sign-in would be refused.
	if (c.Auth.OIDC != nil || c.Auth.JWT != nil) && len(c.Agents.Names) == 0 && len(c.Agents.Table) == 0 {
		at := "auth.oidc"
		if c.Auth.OIDC == nil {
			at = "auth.jwt"
		}
		add(at, "signs accounts in, but no agent is listed: every account would be refused as no agent here",
			`list the agents under agents.names, e.g. "1001": Alice Agent`)
	}
	for _, agent := range slices.Sorted(maps.Keys(c.Agents.Roles)) {
		path := fmt.Sprintf("agents.roles[%q]", agent)
		if _, named := c.Agents.Names[agent]; !named && agent != "" {
			add(path, fmt.Sprintf("agent %q is not in agents.names", agent), "add the agent to agents.names, or correct the agent ID")
		}
		if agent == "" {
			add(path, "an entry has no agent ID", `e.g. "1001": [agent, credit]`)
		}
		for i, role := range c.Agents.Roles[agent] {
			switch {
			case role == "":
				add(fmt.Sprintf("%s[%d]", path, i), "the role is empty", `e.g. "1001": [agent, credit]`)
			case strings.IndexFunc(role, unicode.IsSpace) >= 0:
				add(fmt.Sprintf("%s[%d]", path, i), fmt.Sprintf("%q contains white space", role), "roles are single words, e.g. credit or credit-team")
			}
		}
	}
	return problems
}

// KnownAgent reports whether agentID is an agent of this configuration:
// named in agents.names or the target of an agents.table entry. An account
// of the identity provider that maps to another agent ID is refused.
func (c *Config) KnownAgent(agentID string) bool {
	if agentID == "" {
		return false
	}
	if _, ok := c.Agents.Names[agentID]; ok {
		return true
	}
	for _, a := range c.Agents.Table {
		if a == agentID {
			return true
		}
	}
	return false
}
