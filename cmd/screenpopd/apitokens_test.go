package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each HTTP API takes its own tokens: one token for the PBX's call events
// and the eviction API is refused, at the option that repeats it, by
// `config check` and at start; two PBX entries of the call-event API may
// share theirs. The client secret of company sign-in is read from its
// variable as the daemon reads it.
func TestConfigCheckAPITokensAndClientSecret(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "screenpop.yaml")
	if err := os.WriteFile(path, []byte(`auth:
  demo_links: true
  oidc:
    issuer: https://idp.example.com
    client_id: screenpop
    client_secret_env: OIDC_SECRET
    redirect_url: https://screenpop.example.com/auth/callback
    agent_claim: extension
agents:
  names: {"1001": Alice Agent}
telephony:
  - {name: pbx-a, type: http, tokens_env: PBX_TOKENS}
  - {name: pbx-b, type: http, tokens_env: PBX_TOKENS}
api:
  evict_tokens_env: EVICT_TOKENS
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PBX_TOKENS":   "pbx-token-0123456789,shared-token-0123456789",
		"EVICT_TOKENS": "evict-token-0123456789, shared-token-0123456789",
	}
	getenv := func(k string) string { return env[k] }
	want := strings.Join([]string{
		path + `:6:5: auth.oidc.client_secret_env: the variable OIDC_SECRET is not set or empty`,
		path + `:15:3: api.evict_tokens_env: token 2 of EVICT_TOKENS is also a token of the call-event API (telephony pbx-a) (fix: give each API its own tokens (e.g. openssl rand -hex 24))`,
		"2 problem(s) found",
	}, "\n") + "\n"
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"config", "check", "-config", path}, &out, &errOut, getenv); err == nil {
		t.Fatal("the file passed the check")
	}
	if errOut.String() != want {
		t.Errorf("config check:\n%s\nwant:\n%s", errOut.String(), want)
	}

	env["OIDC_SECRET"] = "oidc-client-secret"
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMain(cfg, Options{Env: getenv}); err == nil || !strings.Contains(err.Error(), "token 2 of EVICT_TOKENS is also a token of the call-event API") {
		t.Errorf("start with a token shared by two APIs: %v", err)
	}
	env["EVICT_TOKENS"] = "evict-token-0123456789"
	m, err := NewMain(cfg, Options{Env: getenv})
	if err != nil {
		t.Fatalf("start with distinct tokens: %v", err)
	}
	m.Close()
}
