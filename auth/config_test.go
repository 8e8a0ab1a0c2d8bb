package auth_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/auth"
)

// Every problem is reported at once, each naming its option.
func TestOIDCConfigValidate(t *testing.T) {
	cfg := auth.OIDCConfig{
		Issuer:           "http://idp.example.com",
		ClientSecretEnv:  "SECRET",
		ClientSecretFile: "/run/secrets/oidc",
		RedirectURL:      "https://screenpop.example.com/callback",
		SessionLifetime:  30 * time.Second,
		TokenChecks:      auth.TokenChecks{ClockSkew: time.Hour, Algorithms: []string{"HS256"}},
		ClaimMapping:     auth.ClaimMapping{RoleMap: map[string]string{"staff": ""}},
	}
	cfg.SetDefaults()
	expectProblems(t, cfg.Validate(),
		`auth.oidc.issuer: "http://idp.example.com": http is accepted on localhost only; tokens and codes travel over this`,
		`auth.oidc.client_id: is required: the client ID screenpopd is registered with at the identity provider`,
		`auth.oidc.client_secret_file: set client_secret_env or client_secret_file, not both`,
		`auth.oidc.redirect_url: "https://screenpop.example.com/callback" must end with /auth/callback, where screenpopd answers the identity provider`,
		`auth.oidc.session_lifetime: 30s is shorter than a minute: agents would sign in all day`,
		`auth.oidc.clock_skew: 1h0m0s is outside 0..5m0s`,
		`auth.oidc.algorithms: "HS256" is not an asymmetric signature algorithm; use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA`,
		`auth.oidc.agent_claim: agent_claim or users is required: which account is which agent`,
		`auth.oidc.role_map: needs roles_claim: the claim whose groups are mapped`,
		`auth.oidc.role_map: group "staff" maps to an empty role`,
	)
}

func TestJWTConfigValidate(t *testing.T) {
	var cfg auth.JWTConfig
	cfg.SetDefaults()
	expectProblems(t, cfg.Validate(),
		`auth.jwt.jwks_url: is required: the identity provider's key set, its discovery document's jwks_uri`,
		`auth.jwt.issuer: is required: tokens whose iss differs are refused`,
		`auth.jwt.audience: is required: without it a token the provider issued for any other application would be accepted`,
		`auth.jwt.agent_claim: agent_claim or users is required: which account is which agent`,
	)

	cfg = auth.JWTConfig{
		JWKSURL: "https://idp.example.com/keys", Issuer: "https://idp.example.com", Audience: "screenpop-api",
		TokenChecks:  auth.TokenChecks{JWKSRefreshInterval: 2 * time.Hour, JWKSMaxAge: time.Minute},
		ClaimMapping: auth.ClaimMapping{UserClaim: "nickname", Users: map[string]string{"alice": ""}},
	}
	cfg.SetDefaults()
	expectProblems(t, cfg.Validate(),
		`auth.jwt.jwks_refresh_interval: 2h0m0s is outside 1s..1h`,
		`auth.jwt.jwks_max_age: 1m0s is outside jwks_refresh_interval (2h0m0s)..168h`,
		`auth.jwt.user_claim: "nickname" is not one of sub, preferred_username, email, upn, oid`,
		`auth.jwt.users: "alice": "": a user and its agent ID must both be non-empty`,
	)
}

func expectProblems(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no problem reported")
	}
	got := strings.Split(err.Error(), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("%T is not a joined error", err)
	}
	for _, e := range joined.Unwrap() {
		var oe *auth.OptionError
		if !errors.As(e, &oe) {
			t.Errorf("%v is not an *OptionError", e)
		}
	}
}

func TestLoadClientSecret(t *testing.T) {
	env := map[string]string{"SET": "from-env", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg  auth.OIDCConfig
		want string
		err  string
	}{
		{cfg: auth.OIDCConfig{ClientSecretEnv: "SET"}, want: "from-env"},
		{cfg: auth.OIDCConfig{ClientSecretFile: file}, want: "from-file"},
		{cfg: auth.OIDCConfig{ClientSecretEnv: "EMPTY"}, err: "auth.oidc.client_secret_env: the variable EMPTY is not set or empty"},
		{cfg: auth.OIDCConfig{ClientSecretEnv: "UNSET"}, err: "auth.oidc.client_secret_env: the variable UNSET is not set or empty"},
		{cfg: auth.OIDCConfig{ClientSecretFile: empty}, err: "auth.oidc.client_secret_file: " + empty + " is empty"},
	} {
		got, err := tc.cfg.LoadClientSecret(lookup)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%+v: %v, want %s", tc.cfg, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc.cfg, got, err, tc.want)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		opts auth.Options
		err  string
	}{
		{auth.Options{}, "auth: nothing to sign in with: configure oidc, jwt or the HS256 secret"},
		{auth.Options{HS256: &auth.HS256{Secret: []byte("short"), Issuer: "i", Audience: "a"}}, "auth: the HS256 secret is 5 bytes, need at least 32"},
		{auth.Options{OIDC: validOIDC()}, "auth.oidc: the client secret is empty"},
	} {
		if _, err := auth.New(tc.opts); err == nil || err.Error() != tc.err {
			t.Errorf("New: %v, want %s", err, tc.err)
		}
	}
}

func validOIDC() *auth.OIDCConfig {
	return &auth.OIDCConfig{
		Issuer: "https://idp.example.com", ClientID: "screenpop", ClientSecretEnv: "S",
		RedirectURL:  "https://screenpop.example.com/auth/callback",
		ClaimMapping: auth.ClaimMapping{AgentClaim: "extension"},
	}
}

// authSection is where the configuration loader will put these sections.
type authSection struct {
	Auth struct {
		OIDC *auth.OIDCConfig `yaml:"oidc"`
		JWT  *auth.JWTConfig  `yaml:"jwt"`
	} `yaml:"auth"`
}

// checkExample decodes a YAML example strictly and validates what it
// configures.
func checkExample(t *testing.T, name, doc string) {
	t.Helper()
	var s authSection
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, doc)
	}
	if s.Auth.OIDC == nil && s.Auth.JWT == nil {
		t.Fatalf("%s configures neither oidc nor jwt", name)
	}
	if c := s.Auth.OIDC; c != nil {
		c.SetDefaults()
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if c := s.Auth.JWT; c != nil {
		c.SetDefaults()
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSampleConfig(t *testing.T) {
	checkExample(t, "sample.yaml", auth.SampleConfig)
}

// The examples of README.md decode and validate.
func TestReadmeExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rest := string(b); ; {
		i := strings.Index(rest, "```yaml\n")
		if i < 0 {
			break
		}
		rest = rest[i+len("```yaml\n"):]
		j := strings.Index(rest, "```")
		n++
		checkExample(t, "README example "+string(rune('0'+n)), rest[:j])
		rest = rest[j+3:]
	}
	if n < 3 {
		t.Errorf("README.md has %d yaml examples, want Keycloak, Entra ID and Dex", n)
	}
}
