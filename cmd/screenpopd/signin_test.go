package main

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/screenpop/screenpop/pop"
)

// Whether an account is an agent is asked of the running configuration:
// a reload that takes an agent out of agents.names ends that agent's
// session at its next request, and agents.roles follows a reload too.
func TestReloadEndsSessionsOfRemovedAgents(t *testing.T) {
	d := startSignInDaemon(t)
	carolsBrowser, _, _ := d.goSignIn(t, carol)
	session := func() (int, string) {
		resp, err := carolsBrowser.Get(d.base + "/session")
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readAll(t, resp)
	}
	if code, body := session(); code != http.StatusOK || !strings.Contains(body, `"agent_id":"1003"`) {
		t.Fatalf("before the reload: %d %s", code, body)
	}

	next := *d.m.config()
	next.Agents.Names = maps.Clone(next.Agents.Names)
	delete(next.Agents.Names, "1003")
	next.Agents.Roles = map[string][]string{"1001": {"supervisor"}}
	if err := d.m.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if code, body := session(); code != http.StatusForbidden || !strings.Contains(body, "not an agent here") {
		t.Errorf("after the reload: %d %s, want 403 not an agent here", code, body)
	}
	if got := d.m.agentRoles("1001"); !slices.Equal(got, []string{"supervisor"}) {
		t.Errorf("roles of 1001 after the reload: %v", got)
	}
}

// The roles of a sign-in count while it lasts, beside the configured ones.
func TestSignedInRolesExpire(t *testing.T) {
	var s signedInRoles
	now := time.Now()
	s.remember(pop.Agent{ID: "1001", Roles: []string{"agent", "credit"}, Expires: now.Add(time.Minute)}, now)
	s.remember(pop.Agent{ID: "1002", Roles: []string{"agent"}}, now) // no end
	if got := s.of("1001", now); !slices.Equal(got, []string{"agent", "credit"}) {
		t.Errorf("1001 now: %v", got)
	}
	later := now.Add(2 * time.Minute)
	if got := s.of("1001", later); got != nil {
		t.Errorf("1001 after its sign-in ended: %v", got)
	}
	s.remember(pop.Agent{ID: "1003"}, later) // forgets 1001's ended sign-in
	if _, kept := s.byAgent["1001"]; kept || len(s.byAgent) != 2 {
		t.Errorf("remembered: %v", s.byAgent)
	}
}

// `config check -connect` reaches the identity provider too: one line,
// FAIL when it cannot be reached.
func TestConfigCheckConnectReachesTheProvider(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "screenpop.yaml")
	if err := os.WriteFile(path, []byte(`auth:
  oidc:
    issuer: https://127.0.0.1:1/realms/cc
    client_id: screenpop
    client_secret_env: OIDC_SECRET
    redirect_url: https://screenpop.example.com/auth/callback
    agent_claim: extension
agents:
  names: {"1001": Alice Agent}
telephony:
  - {name: demo, type: demo, agents: ["1001"]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"config", "check", "-config", path, "-connect", "-timeout", "2s"}, &out, &errOut,
		func(k string) string { return map[string]string{"OIDC_SECRET": "secret"}[k] })
	if err == nil {
		t.Errorf("an identity provider that cannot be reached passed:\n%s", out.String())
	}
	line := path + ":2:3: auth.oidc: FAIL: discovery of https://127.0.0.1:1/realms/cc: "
	if !strings.Contains(out.String(), line) {
		t.Errorf("config check -connect:\n%s\nwant a line starting %s", out.String(), line)
	}
}
