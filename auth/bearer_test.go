package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/screenpop/screenpop/auth"
)

// A client's access token from the provider (client credentials grant)
// authenticates by the Authorization header and by the WebSocket
// subprotocol, as the agent its extension claim names, until its exp.
func TestBearerTokenFromTheProvider(t *testing.T) {
	r := newRig(t, rigOptions{})
	tok := r.serviceToken("softphone", "softphone-secret")
	for _, req := range []struct {
		name string
		id   func() (auth.Identity, error)
	}{
		{"header", func() (auth.Identity, error) { return r.auth.Authenticate(bearer(tok)) }},
		{"subprotocol", func() (auth.Identity, error) { return r.auth.Authenticate(subprotocol(tok)) }},
	} {
		id, err := req.id()
		if err != nil {
			t.Fatalf("%s: %v", req.name, err)
		}
		if id.AgentID != "1001" || id.Name != "Alice (softphone)" || id.Method != auth.MethodJWT || id.Subject != "softphone" {
			t.Errorf("%s: identity %+v", req.name, id)
		}
		if d := time.Until(id.Expires); d < 4*time.Minute || d > 5*time.Minute {
			t.Errorf("%s: expires in %s, want the token's 5 minutes", req.name, d)
		}
	}
}

// What a bearer token must not get away with.
func TestBearerTokenRefusals(t *testing.T) {
	r := newRig(t, rigOptions{})
	good := r.serviceToken("softphone", "softphone-secret")
	kid := header(t, good).KeyID
	if _, err := r.auth.Authenticate(bearer(good)); err != nil {
		t.Fatal(err)
	}

	ownKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	goodClaims := payload(t, good)

	for _, tc := range []struct {
		name  string
		token string
		want  error
		says  string
	}{
		{"claims changed after signing", withPayload(t, good, "extension", "1002"), auth.ErrUnauthenticated, "signature"},
		{"signed by another key under the provider's kid", sign(t, ownKey, jose.ES256, kid, goodClaims), auth.ErrUnauthenticated, "signature"},
		{"alg none", unsigned(t, goodClaims), auth.ErrUnauthenticated, "malformed"},
		{"HS256 under a guessed secret", sign(t, []byte("a guessed secret that is long enough!!"), jose.HS256, "", goodClaims), auth.ErrUnauthenticated, "HS256"},
		{"wrong audience", r.serviceToken("other-app", "other-secret"), auth.ErrUnauthenticated, "audience"},
		{"no agent claim", r.serviceToken("reporting", "reporting-secret"), auth.ErrNotAgent, `account "reporting"`},
		{"garbage", "not.a.token", auth.ErrUnauthenticated, "malformed"},
	} {
		_, err := r.auth.Authenticate(bearer(tc.token))
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s: %v, want %v saying %q", tc.name, err, tc.want, tc.says)
		}
	}
	if got := r.counter("screenpop_auth_authentications_total", "method", "jwt", "outcome", "not_agent"); got != 1 {
		t.Errorf("jwt not_agent = %v, want 1", got)
	}
}

// exp is checked with the configured clock skew.
func TestBearerTokenExpiry(t *testing.T) {
	r := newRig(t, rigOptions{})
	tok := r.serviceToken("softphone", "softphone-secret")
	r.clock.Advance(5*time.Minute + auth.DefaultClockSkew/2)
	if _, err := r.auth.Authenticate(bearer(tok)); err != nil {
		t.Errorf("within the clock skew: %v", err)
	}
	r.clock.Advance(auth.DefaultClockSkew)
	_, err := r.auth.Authenticate(bearer(tok))
	if !errors.Is(err, auth.ErrUnauthenticated) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("past exp and skew: %v, want expired", err)
	}
	if got := r.counter("screenpop_auth_authentications_total", "method", "jwt", "outcome", "expired"); got != 1 {
		t.Errorf("jwt expired = %v, want 1", got)
	}
}

// A token signed with the provider's key but for another issuer than the
// configured one is refused.
func TestBearerTokenWrongIssuer(t *testing.T) {
	r := newRig(t, rigOptions{edit: func(o *auth.Options) { o.JWT.Issuer = "https://login.example.com" }})
	_, err := r.auth.Authenticate(bearer(r.serviceToken("softphone", "softphone-secret")))
	if !errors.Is(err, auth.ErrUnauthenticated) || !strings.Contains(err.Error(), "different provider") {
		t.Errorf("%v, want refused for its issuer", err)
	}
}

// A token naming a key the daemon has not seen makes it fetch the key set
// (the provider rotated), at most once per refresh interval: a stream of
// tokens with invented kids costs the provider one request per interval.
func TestKeyRotationAndRefreshRateLimit(t *testing.T) {
	r := newRig(t, rigOptions{})
	if _, err := r.auth.Authenticate(bearer(r.serviceToken("softphone", "softphone-secret"))); err != nil {
		t.Fatal(err)
	}
	if n := r.idp.KeysServed(); n != 1 {
		t.Fatalf("key set fetched %d times, want 1", n)
	}

	newKid := r.idp.RotateKey(jose.ES256)
	rotated := r.serviceToken("softphone", "softphone-secret")
	if got := header(t, rotated); got.KeyID != newKid || got.Algorithm != "ES256" {
		t.Fatalf("the provider signed with %s %s, want %s ES256", got.KeyID, got.Algorithm, newKid)
	}
	// The last fetch was just now: not again yet.
	_, err := r.auth.Authenticate(bearer(rotated))
	if err == nil || !strings.Contains(err.Error(), "not again yet") {
		t.Errorf("rotated key within the refresh interval: %v, want refused as not fetched yet", err)
	}
	if n := r.idp.KeysServed(); n != 1 {
		t.Errorf("key set fetched %d times, want still 1", n)
	}

	r.clock.Advance(auth.DefaultJWKSRefreshInterval + time.Second)
	id, err := r.auth.Authenticate(bearer(rotated))
	if err != nil || id.AgentID != "1001" {
		t.Fatalf("rotated key after the interval: %+v, %v", id, err)
	}
	if n := r.idp.KeysServed(); n != 2 {
		t.Errorf("key set fetched %d times, want 2", n)
	}

	// Invented kids: one fetch per interval, however many tokens.
	ownKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	claims := payload(t, rotated)
	for round := range 2 {
		r.clock.Advance(auth.DefaultJWKSRefreshInterval + time.Second)
		for i := range 20 {
			forged := sign(t, ownKey, jose.ES256, "invented-"+string(rune('a'+i)), claims)
			if _, err := r.auth.Authenticate(bearer(forged)); !errors.Is(err, auth.ErrUnauthenticated) {
				t.Fatalf("forged token with invented kid: %v", err)
			}
		}
		if n, want := r.idp.KeysServed(), 3+round; n != want {
			t.Errorf("round %d: key set fetched %d times, want %d", round, n, want)
		}
	}
	if got := r.counter("screenpop_auth_jwks_fetches_total", "key_set", "jwt", "outcome", "rate_limited"); got != 1+2*19 {
		t.Errorf("rate-limited fetches = %v, want %d", got, 1+2*19)
	}
	// The good keys still work.
	if _, err := r.auth.Authenticate(bearer(rotated)); err != nil {
		t.Error(err)
	}
}

// Keys older than jwks_max_age are fetched again, so a key the provider
// withdrew (compromised) stops being accepted without waiting for a token
// with an unknown kid.
func TestKeySetMaxAgeDropsWithdrawnKeys(t *testing.T) {
	r := newRig(t, rigOptions{accessTokenLifetime: 3 * time.Hour})
	old := r.serviceToken("softphone", "softphone-secret")
	if _, err := r.auth.Authenticate(bearer(old)); err != nil {
		t.Fatal(err)
	}
	r.idp.RotateKey(jose.RS256)
	r.idp.WithdrawKey(header(t, old).KeyID)

	r.clock.Advance(auth.DefaultJWKSMaxAge / 2)
	if _, err := r.auth.Authenticate(bearer(old)); err != nil {
		t.Errorf("within jwks_max_age the cached key still works: %v", err)
	}
	r.clock.Advance(auth.DefaultJWKSMaxAge/2 + time.Second)
	if _, err := r.auth.Authenticate(bearer(old)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("after jwks_max_age the withdrawn key still works: %v", err)
	}
	if _, err := r.auth.Authenticate(bearer(r.serviceToken("softphone", "softphone-secret"))); err != nil {
		t.Errorf("the new key: %v", err)
	}
	if n := r.idp.KeysServed(); n != 2 {
		t.Errorf("key set fetched %d times, want 2 (first use, max age)", n)
	}
}

func header(t *testing.T, tok string) jose.Header {
	t.Helper()
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header
}

func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := parsed.UnsafeClaimsWithoutVerification(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// withPayload changes one claim of tok and keeps its header and signature.
func withPayload(t *testing.T, tok, claim string, value any) string {
	t.Helper()
	c := payload(t, tok)
	c[claim] = value
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

func sign(t *testing.T, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(b) + "."
}
