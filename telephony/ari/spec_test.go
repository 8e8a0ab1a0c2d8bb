package ari

import (
	"errors"
	"slices"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/telephony"
)

// spec is a telephony entry of the options text, bound to configs as the
// wiring binds it.
func spec(t *testing.T, name, text string, env map[string]string) telephony.Spec {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	options := doc.Content[0]
	return telephony.Spec{
		Name:    name,
		Decode:  func(v any) error { return configs.DecodeStrict(options, v) },
		At:      func(key, format string, args ...any) error { return configs.KeyError(options, key, format, args...) },
		Env:     func(k string) string { return env[k] },
		AgentOf: func(string) (string, bool) { return "", false },
	}
}

// The keys decode straight into Config, the password from the variable
// password_env names; the defaults are filled in.
func TestConfigFromSpec(t *testing.T) {
	cfg, err := ConfigFromSpec(spec(t, "pbx-a", `url: http://pbx:8088
user: screenpop
password_env: ARI_PASSWORD
app: screenpop
inbound_contexts: [from-carrier]
heartbeat: 2s
max_queued_bytes: 16777216
`, map[string]string{"ARI_PASSWORD": "s3cret"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Name != "pbx-a" || cfg.URL != "http://pbx:8088" || cfg.User != "screenpop" || cfg.Password != "s3cret" || cfg.App != "screenpop" ||
		!slices.Equal(cfg.InboundContexts, []string{"from-carrier"}) || cfg.Heartbeat != 2*time.Second || cfg.MaxQueuedBytes != 16<<20 ||
		cfg.MaxQueuedEvents != DefaultMaxQueuedEvents || cfg.OnUnknownPresentation != PresentationWithhold || cfg.AgentOf == nil {
		t.Errorf("ConfigFromSpec = %+v", cfg)
	}
}

// Every problem at once, each at its key's line and column; one that no key
// sets (a missing user) at the entry.
func TestConfigFromSpecPlacesProblems(t *testing.T) {
	_, err := ConfigFromSpec(spec(t, "pbx", "url: ftp://pbx\npassword_env: UNSET\napp: screen pop\n", nil))
	want := []configs.LineError{
		{Line: 1, Column: 1, Msg: `url "ftp://pbx" must start with http:// or https://`},
		{Line: 1, Column: 1, Msg: "user is required (an ARI user from ari.conf)"},
		{Line: 2, Column: 1, Msg: "password_env: environment variable UNSET is not set or empty"},
		{Line: 3, Column: 1, Msg: `app "screen pop" may not contain '/', '?', '#', '&' or spaces`},
	}
	got := configs.Each(err)
	if len(got) != len(want) {
		t.Fatalf("ConfigFromSpec: %v, want %d problems", err, len(want))
	}
	for i, e := range got {
		var le *configs.LineError
		if !errors.As(e, &le) || le.Line != want[i].Line || le.Column != want[i].Column || le.Msg != want[i].Msg {
			t.Errorf("problem %d = %#v, want at %d:%d %q", i, e, want[i].Line, want[i].Column, want[i].Msg)
		}
	}
}
