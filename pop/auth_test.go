package pop

import (
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func newTestAuth(t *testing.T) *TokenAuth {
	t.Helper()
	a, err := NewTokenAuth(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNewTokenAuthRefusesShortSecret(t *testing.T) {
	if _, err := NewTokenAuth([]byte("short")); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("short secret: %v", err)
	}
}

func TestIssueAndVerify(t *testing.T) {
	a := newTestAuth(t)
	tok, err := a.Issue("1001", "Alice Agent", []string{"agent", "supervisor"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "1001" || got.Name != "Alice Agent" || !slices.Equal(got.Roles, []string{"agent", "supervisor"}) || got.Method != MethodHS256 {
		t.Errorf("verified %+v", got)
	}
	// The socket closes at the token's exp (whole seconds).
	if want := a.now().Add(time.Hour); got.Expires.After(want) || got.Expires.Before(want.Add(-time.Second)) {
		t.Errorf("expires %s, want %s", got.Expires, want)
	}
	if _, err := a.Issue("", "x", nil, time.Hour); err == nil {
		t.Error("token without agent ID issued")
	}
	if _, err := a.Issue("1001", "x", nil, 0); err == nil {
		t.Error("token without ttl issued")
	}
}

func TestVerifyRejects(t *testing.T) {
	a := newTestAuth(t)
	now := time.Now()
	claims := func(mod func(*agentClaims)) agentClaims {
		c := agentClaims{Name: "Alice", RegisteredClaims: jwt.RegisteredClaims{
			Issuer: TokenIssuer, Subject: "1001", Audience: jwt.ClaimStrings{TokenAudience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		}}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	sign := func(m jwt.SigningMethod, c agentClaims, key any) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(jwt.SigningMethodHS256, claims(nil), testSecret)
	if _, err := a.Verify(good); err != nil {
		t.Fatalf("control token rejected: %v", err)
	}
	cases := map[string]string{
		"expired":        sign(jwt.SigningMethodHS256, claims(func(c *agentClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour)) }), testSecret),
		"no expiry":      sign(jwt.SigningMethodHS256, claims(func(c *agentClaims) { c.ExpiresAt = nil }), testSecret),
		"other issuer":   sign(jwt.SigningMethodHS256, claims(func(c *agentClaims) { c.Issuer = "someone" }), testSecret),
		"other audience": sign(jwt.SigningMethodHS256, claims(func(c *agentClaims) { c.Audience = jwt.ClaimStrings{"admin"} }), testSecret),
		"no subject":     sign(jwt.SigningMethodHS256, claims(func(c *agentClaims) { c.Subject = "" }), testSecret),
		"other secret":   sign(jwt.SigningMethodHS256, claims(nil), []byte("another-secret-another-secret-xx")),
		"HS512":          sign(jwt.SigningMethodHS512, claims(nil), testSecret),
		"alg none":       sign(jwt.SigningMethodNone, claims(nil), jwt.UnsafeAllowNoneSignatureType),
		"garbage":        "not.a.token",
		"tampered":       good[:len(good)-4] + "AAAA",
	}
	for name, tok := range cases {
		if _, err := a.Verify(tok); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("%s: accepted or wrong error: %v", name, err)
		}
	}
}

func TestTokenFromRequest(t *testing.T) {
	r := httptest.NewRequest("GET", "/ws", nil)
	r.Header.Set("Sec-WebSocket-Protocol", "screenpop.v1, bearer.abc.def.ghi")
	if tok, err := TokenFromRequest(r); err != nil || tok != "abc.def.ghi" {
		t.Errorf("subprotocol token: %q %v", tok, err)
	}
	r = httptest.NewRequest("GET", "/ws", nil)
	r.Header.Set("Authorization", "Bearer xyz")
	if tok, err := TokenFromRequest(r); err != nil || tok != "xyz" {
		t.Errorf("header token: %q %v", tok, err)
	}
	r = httptest.NewRequest("GET", "/ws", nil)
	r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	if _, err := TokenFromRequest(r); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("basic auth accepted: %v", err)
	}
	r = httptest.NewRequest("GET", "/ws?token=xyz&access_token=xyz", nil)
	if _, err := TokenFromRequest(r); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("token taken from the URL: %v", err)
	}
}
