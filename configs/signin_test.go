package configs

import (
	"slices"
	"testing"
	"time"

	"github.com/screenpop/screenpop/auth"
)

// auth.oidc and auth.jwt get the auth package's defaults, so that what the
// wiring hands to auth.New is what runs; agents and sections keep their
// roles.
func TestSignInOptionsDecoded(t *testing.T) {
	cfg, err := Parse("x.yaml", []byte(`telephony: [{name: demo, type: demo}]
auth:
  oidc:
    issuer: https://idp.example.com/realms/cc
    client_id: screenpop
    client_secret_env: SCREENPOP_OIDC_SECRET
    redirect_url: https://screenpop.example.com/auth/callback
    scopes: [profile, groups]
    session_lifetime: 10h
    agent_claim: extension
    roles_claim: groups
  jwt:
    jwks_url: https://idp.example.com/realms/cc/certs
    issuer: https://idp.example.com/realms/cc
    audience: screenpop-api
    users: {alice@example.com: "1001"}
    user_claim: email
agents:
  names: {"1001": Alice Agent, "1003": Carol Agent}
  table: {"PJSIP/desk-7": "1007"}
  roles: {"1001": [agent, credit], "1003": [agent]}
sections:
  - {name: credit, title: Credit, roles: [credit, supervisor]}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := cfg.Auth.OIDC
	if o == nil || !slices.Equal(o.Scopes, []string{"openid", "profile", "groups"}) || o.SessionLifetime != 10*time.Hour ||
		o.ClockSkew != auth.DefaultClockSkew || !slices.Equal(o.Algorithms, auth.DefaultAlgorithms) || o.NameClaim != auth.DefaultNameClaim {
		t.Errorf("auth.oidc = %+v", o)
	}
	if j := cfg.Auth.JWT; j == nil || j.Users["alice@example.com"] != "1001" || j.JWKSMaxAge != auth.DefaultJWKSMaxAge {
		t.Errorf("auth.jwt = %+v", j)
	}
	if got := cfg.Agents.Roles["1001"]; !slices.Equal(got, []string{"agent", "credit"}) {
		t.Errorf("agents.roles[1001] = %v", got)
	}
	if got := cfg.Sections[0].Roles; !slices.Equal(got, []string{"credit", "supervisor"}) {
		t.Errorf("sections[0].roles = %v", got)
	}
	for id, want := range map[string]bool{"1001": true, "1003": true, "1007": true, "1002": false, "": false} {
		if got := cfg.KnownAgent(id); got != want {
			t.Errorf("KnownAgent(%q) = %v, want %v", id, got, want)
		}
	}
}

// With company sign-in, the agents must be listed: an account maps to an
// agent ID, and only listed agents are agents here.
func TestSignInWithoutAgents(t *testing.T) {
	_, err := Parse("x.yaml", []byte(`telephony: [{name: demo, type: demo}]
auth:
  jwt:
    jwks_url: https://idp.example.com/certs
    issuer: https://idp.example.com
    audience: screenpop-api
    agent_claim: extension
`), nil)
	want := "x.yaml:3:3: auth.jwt: signs accounts in, but no agent is listed: every account would be refused as no agent here (fix: list the agents under agents.names, e.g. \"1001\": Alice Agent)"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
}
