package auth

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// CallbackPath is where the identity provider sends the browser back to.
// OIDCConfig.RedirectURL must end with it; what comes before it is the
// daemon's public base (scheme, host and any path prefix of a proxy).
const CallbackPath = "/auth/callback"

// OIDCConfig is auth.oidc: sign-in of the agent page with OpenID Connect
// (authorization code flow with PKCE).
type OIDCConfig struct {
	// Issuer is the identity provider's issuer URL, exactly as its
	// discovery document (<issuer>/.well-known/openid-configuration) and
	// its ID tokens spell it.
	Issuer   string `yaml:"issuer"`
	ClientID string `yaml:"client_id"`
	// The client secret is read from one of these, never written in the
	// configuration file: LoadClientSecret resolves it.
	ClientSecretEnv  string `yaml:"client_secret_env"`
	ClientSecretFile string `yaml:"client_secret_file"`
	// Scopes asked for; "openid" is added when missing.
	Scopes []string `yaml:"scopes"`
	// RedirectURL is the daemon's public callback URL as registered at the
	// identity provider, ending in /auth/callback. An https URL makes the
	// cookies Secure and __Host- prefixed.
	RedirectURL string `yaml:"redirect_url"`
	// PostLogoutRedirectURL is where the identity provider sends the browser
	// after signing out there; default <base>/auth/signed-out. It must be
	// registered at the identity provider as a post-logout redirect URI.
	PostLogoutRedirectURL string `yaml:"post_logout_redirect_url"`
	// SessionLifetime is how long a session lasts after sign-in. Zero: until
	// the ID token expires (its exp).
	SessionLifetime time.Duration `yaml:"session_lifetime"`

	TokenChecks  `yaml:",inline"`
	ClaimMapping `yaml:",inline"`
}

// JWTConfig is auth.jwt: bearer tokens of other clients (a CRM, a wallboard)
// signed by an identity provider with RS256, ES256 or another asymmetric
// algorithm, checked against its JSON Web Key Set.
type JWTConfig struct {
	JWKSURL  string `yaml:"jwks_url"`
	Issuer   string `yaml:"issuer"`
	Audience string `yaml:"audience"`

	TokenChecks  `yaml:",inline"`
	ClaimMapping `yaml:",inline"`
}

// TokenChecks are the options of checking a signed token, the same for ID
// tokens and bearer tokens.
type TokenChecks struct {
	// ClockSkew is the tolerance on exp, nbf and iat between the identity
	// provider's clock and this machine's.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// Algorithms are the signature algorithms accepted.
	Algorithms []string `yaml:"algorithms"`
	// JWKSRefreshInterval is the shortest time between two fetches of the
	// key set. A token naming an unknown key (kid) makes the key set be
	// fetched anew, once per interval at most, so that a stream of forged
	// tokens cannot make screenpopd hammer the identity provider.
	JWKSRefreshInterval time.Duration `yaml:"jwks_refresh_interval"`
	// JWKSMaxAge is how long fetched keys are trusted before they are
	// fetched again, so that a key the provider withdrew stops working.
	JWKSMaxAge time.Duration `yaml:"jwks_max_age"`
}

// ClaimMapping says which agent a verified token or ID token names: from
// a claim (AgentClaim), or from a table of users (Users, keyed by the value
// of UserClaim). The table wins. An identity that maps to no agent is
// refused.
type ClaimMapping struct {
	// AgentClaim holds the agent ID, e.g. "extension".
	AgentClaim string `yaml:"agent_claim"`
	// UserClaim is the claim Users is keyed by: sub, preferred_username or
	// email. Use a claim the user cannot change at the identity provider.
	// Email is taken only when email_verified is not false.
	UserClaim string `yaml:"user_claim"`
	// Users maps a user (the value of UserClaim) to an agent ID.
	Users map[string]string `yaml:"users"`
	// NameClaim holds the display name; preferred_username and the agent ID
	// stand in when it is missing.
	NameClaim string `yaml:"name_claim"`
	// RolesClaim holds the roles or groups, a list or one string; a dotted
	// path reaches into objects (Keycloak's realm_access.roles).
	RolesClaim string `yaml:"roles_claim"`
	// RoleMap maps groups to roles. When set, only mapped groups give roles:
	// the identity provider's other group names never reach the page.
	RoleMap map[string]string `yaml:"role_map"`
}

// Defaults.
const (
	DefaultClockSkew           = 30 * time.Second
	DefaultJWKSRefreshInterval = 30 * time.Second
	DefaultJWKSMaxAge          = time.Hour
	DefaultUserClaim           = "preferred_username"
	DefaultNameClaim           = "name"

	maxClockSkew       = 5 * time.Minute
	maxSessionLifetime = 7 * 24 * time.Hour
)

// DefaultAlgorithms are the signature algorithms accepted when Algorithms is
// empty: what Keycloak, Entra ID, Dex and ZITADEL sign with.
var DefaultAlgorithms = []string{"RS256", "ES256"}

// asymmetricAlgorithms are the algorithms a key set can verify. HS256 and
// "none" are missing on purpose: a JWKS holds public keys, and accepting a
// symmetric algorithm there is the key-confusion attack.
var asymmetricAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA",
}

// SetDefaults fills in what is left empty.
func (c *OIDCConfig) SetDefaults() {
	if len(c.Scopes) == 0 {
		c.Scopes = []string{"openid", "profile", "email"}
	} else if !slices.Contains(c.Scopes, "openid") {
		c.Scopes = append([]string{"openid"}, c.Scopes...)
	}
	c.TokenChecks.setDefaults()
	c.ClaimMapping.setDefaults()
}

// SetDefaults fills in what is left empty.
func (c *JWTConfig) SetDefaults() {
	c.TokenChecks.setDefaults()
	c.ClaimMapping.setDefaults()
}

func (t *TokenChecks) setDefaults() {
	if t.ClockSkew == 0 {
		t.ClockSkew = DefaultClockSkew
	}
	if len(t.Algorithms) == 0 {
		t.Algorithms = slices.Clone(DefaultAlgorithms)
	}
	if t.JWKSRefreshInterval == 0 {
		t.JWKSRefreshInterval = DefaultJWKSRefreshInterval
	}
	if t.JWKSMaxAge == 0 {
		t.JWKSMaxAge = DefaultJWKSMaxAge
	}
}

func (m *ClaimMapping) setDefaults() {
	if m.UserClaim == "" {
		m.UserClaim = DefaultUserClaim
	}
	if m.NameClaim == "" {
		m.NameClaim = DefaultNameClaim
	}
}

// OptionError is one problem of the configuration, naming the option
// ("auth.oidc.issuer") so that the configuration loader can point at its line.
type OptionError struct {
	Option string
	Msg    string
}

func (e *OptionError) Error() string { return e.Option + ": " + e.Msg }

// problems collects the OptionErrors of one section.
type problems struct {
	section string
	errs    []error
}

func (p *problems) add(option, format string, args ...any) {
	p.errs = append(p.errs, &OptionError{Option: p.section + "." + option, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) err() error { return errors.Join(p.errs...) }

// url checks the URL option: a problem saying missing when it is empty
// (missing is "" for an optional one), or what is wrong with it. It
// reports whether the URL is there and good.
func (p *problems) url(option, raw, missing string) bool {
	if raw == "" {
		if missing != "" {
			p.add(option, "%s", missing)
		}
		return false
	}
	if err := checkURL(raw); err != nil {
		p.add(option, "%v", err)
		return false
	}
	return true
}

// Validate reports every problem of c (after SetDefaults), each an
// *OptionError, joined.
func (c *OIDCConfig) Validate() error {
	p := &problems{section: "auth.oidc"}
	p.url("issuer", c.Issuer, "is required, e.g. https://keycloak.example.com/realms/callcenter")
	if c.ClientID == "" {
		p.add("client_id", "is required: the client ID screenpopd is registered with at the identity provider")
	}
	switch {
	case c.ClientSecretEnv == "" && c.ClientSecretFile == "":
		p.add("client_secret_env", "client_secret_env or client_secret_file is required (the secret never goes in this file)")
	case c.ClientSecretEnv != "" && c.ClientSecretFile != "":
		p.add("client_secret_file", "set client_secret_env or client_secret_file, not both")
	}
	if !slices.Contains(c.Scopes, "openid") {
		p.add("scopes", `must contain "openid"`)
	}
	if p.url("redirect_url", c.RedirectURL, "is required, e.g. https://screenpop.example.com/auth/callback") {
		if u, _ := url.Parse(c.RedirectURL); !strings.HasSuffix(u.Path, CallbackPath) || u.RawQuery != "" {
			p.add("redirect_url", "%q must end with %s, where screenpopd answers the identity provider", c.RedirectURL, CallbackPath)
		}
	}
	p.url("post_logout_redirect_url", c.PostLogoutRedirectURL, "")
	if c.SessionLifetime < 0 || c.SessionLifetime > maxSessionLifetime {
		p.add("session_lifetime", "%s is outside 0..%s (0: until the ID token expires)", c.SessionLifetime, maxSessionLifetime)
	} else if c.SessionLifetime > 0 && c.SessionLifetime < time.Minute {
		p.add("session_lifetime", "%s is shorter than a minute: agents would sign in all day", c.SessionLifetime)
	}
	c.TokenChecks.validate(p)
	c.ClaimMapping.validate(p)
	return p.err()
}

// Validate reports every problem of c (after SetDefaults), each an
// *OptionError, joined.
func (c *JWTConfig) Validate() error {
	p := &problems{section: "auth.jwt"}
	p.url("jwks_url", c.JWKSURL, "is required: the identity provider's key set, its discovery document's jwks_uri")
	if c.Issuer == "" {
		p.add("issuer", "is required: tokens whose iss differs are refused")
	}
	if c.Audience == "" {
		p.add("audience", "is required: without it a token the provider issued for any other application would be accepted")
	}
	c.TokenChecks.validate(p)
	c.ClaimMapping.validate(p)
	return p.err()
}

func (t *TokenChecks) validate(p *problems) {
	if t.ClockSkew < 0 || t.ClockSkew > maxClockSkew {
		p.add("clock_skew", "%s is outside 0..%s", t.ClockSkew, maxClockSkew)
	}
	for _, alg := range t.Algorithms {
		if !slices.Contains(asymmetricAlgorithms, alg) {
			p.add("algorithms", "%q is not an asymmetric signature algorithm; use %s", alg, strings.Join(asymmetricAlgorithms, ", "))
		}
	}
	if t.JWKSRefreshInterval < time.Second || t.JWKSRefreshInterval > time.Hour {
		p.add("jwks_refresh_interval", "%s is outside 1s..1h", t.JWKSRefreshInterval)
	}
	if t.JWKSMaxAge < t.JWKSRefreshInterval || t.JWKSMaxAge > 7*24*time.Hour {
		p.add("jwks_max_age", "%s is outside jwks_refresh_interval (%s)..168h", t.JWKSMaxAge, t.JWKSRefreshInterval)
	}
}

func (m *ClaimMapping) validate(p *problems) {
	if m.AgentClaim == "" && len(m.Users) == 0 {
		p.add("agent_claim", "agent_claim or users is required: which account is which agent")
	}
	switch m.UserClaim {
	case "sub", "preferred_username", "email", "upn", "oid":
	default:
		if len(m.Users) > 0 {
			p.add("user_claim", "%q is not one of sub, preferred_username, email, upn, oid", m.UserClaim)
		}
	}
	for _, user := range sortedKeys(m.Users) {
		if user == "" || m.Users[user] == "" {
			p.add("users", "%q: %q: a user and its agent ID must both be non-empty", user, m.Users[user])
		}
	}
	if len(m.RoleMap) > 0 && m.RolesClaim == "" {
		p.add("role_map", "needs roles_claim: the claim whose groups are mapped")
	}
	for _, group := range sortedKeys(m.RoleMap) {
		if m.RoleMap[group] == "" {
			p.add("role_map", "group %q maps to an empty role", group)
		}
	}
}

// checkURL accepts https URLs, and http ones on the loopback interface
// (a Keycloak on the developer's machine).
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: http is accepted on localhost only; tokens and codes travel over this", raw)
	}
	return fmt.Errorf("%q is not an https URL", raw)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// LoadClientSecret returns the client secret from the variable
// ClientSecretEnv names (looked up with lookupEnv, os.LookupEnv in
// screenpopd) or from the file ClientSecretFile, trailing white space cut.
func (c *OIDCConfig) LoadClientSecret(lookupEnv func(string) (string, bool)) (string, error) {
	if c.ClientSecretFile != "" {
		b, err := os.ReadFile(c.ClientSecretFile)
		if err != nil {
			return "", &OptionError{Option: "auth.oidc.client_secret_file", Msg: err.Error()}
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			return s, nil
		}
		return "", &OptionError{Option: "auth.oidc.client_secret_file", Msg: fmt.Sprintf("%s is empty", c.ClientSecretFile)}
	}
	if c.ClientSecretEnv == "" {
		return "", &OptionError{Option: "auth.oidc.client_secret_env", Msg: "client_secret_env or client_secret_file is required"}
	}
	if s, ok := lookupEnv(c.ClientSecretEnv); ok && s != "" {
		return s, nil
	}
	return "", &OptionError{Option: "auth.oidc.client_secret_env", Msg: fmt.Sprintf("the variable %s is not set or empty", c.ClientSecretEnv)}
}
