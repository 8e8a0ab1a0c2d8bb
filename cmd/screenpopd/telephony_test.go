package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// `config check` on telephony entries whose kinds find problems in their
// own options, and on an endpoint mapping telephony refuses: each at the
// line and column of its key, or at the entry when the option is not
// written; each found once.
func TestConfigCheckInvalidTelephonyOptions(t *testing.T) {
	const file = "testdata/invalid-telephony-options.yaml"
	want := strings.Join([]string{
		file + `:7:31: agents.patterns[1]: "{agent}" must start with a technology such as PJSIP/: without it a trunk's endpoint could pass for an agent's phone (fix: e.g. "PJSIP/{agent}" or "Local/{agent}@agents")`,
		file + `:7:42: agents.patterns[2]: "SIP/1001" must contain {agent} exactly once (it has 0) (fix: e.g. "PJSIP/{agent}" or "Local/{agent}@agents")`,
		file + `:9:5: telephony[0] (demo): agents is required: the agent IDs whose phones the demo calls ring`,
		file + `:11:5: telephony[0] (demo): interval must not be negative, got -1s`,
		file + `:12:5: telephony[0] (demo): callers is empty: list callers, or leave callers out for the built-in ones`,
		file + `:13:5: telephony[1] (pbx): user is required (an ARI user from ari.conf)`,
		file + `:15:5: telephony[1] (pbx): url must not contain credentials: set user and password instead`,
		file + `:16:5: telephony[1] (pbx): password_env: environment variable UNSET_ARI_PASSWORD is not set or empty`,
		file + `:18:5: telephony[1] (pbx): on_unknown_presentation "hide": use withhold or show`,
		file + `:19:30: telephony[2] (pbx-b): heartbeat: expected a duration such as 800ms, 2s or 5m, got "soon"`,
		file + `:20:5: telephony[3] (cti): tokens_env is required: name the environment variable holding the PBX's bearer token(s), comma-separated`,
		file + `:20:29: telephony[3] (cti): max_body 10 is outside 1024..67108864 bytes`,
		file + `:23:5: telephony[4] (cti-short): tokens_env: environment variable SHORT_TOKENS: token 1 is 5 characters long; use at least 16 random characters (e.g. openssl rand -hex 24)`,
		"13 problem(s) found",
	}, "\n") + "\n"
	env := func(name string) string { return map[string]string{"SHORT_TOKENS": "short"}[name] }
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"config", "check", "-config", file}, &out, &errOut, env); err == nil {
		t.Fatal("the file passed the check")
	}
	if errOut.String() != want {
		t.Errorf("config check:\n%s\nwant:\n%s", errOut.String(), want)
	}
}
