package auth_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/screenpop/screenpop/auth"
	"github.com/screenpop/screenpop/pop"
)

const hsSecret = "the HS256 secret of screenpopd token, 32+ bytes"

// The tokens screenpopd token mints (pop.TokenAuth) keep working, with
// their expiry now part of the identity.
func TestHS256TokensOfScreenpopd(t *testing.T) {
	r := newRig(t, rigOptions{edit: func(o *auth.Options) {
		o.HS256 = &auth.HS256{Secret: []byte(hsSecret), Issuer: pop.TokenIssuer, Audience: pop.TokenAudience}
	}})
	minter, err := pop.NewTokenAuth([]byte(hsSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := minter.Issue("1003", "Erin Evening", []string{"agent"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	id, err := r.auth.Authenticate(subprotocol(tok))
	if err != nil {
		t.Fatal(err)
	}
	// An agent minted by screenpopd is not asked of KnownAgent: IT minted it.
	if id.AgentID != "1003" || id.Name != "Erin Evening" || !slices.Equal(id.Roles, []string{"agent"}) || id.Method != auth.MethodHS256 {
		t.Errorf("identity %+v", id)
	}
	if d := time.Until(id.Expires); d < 59*time.Minute || d > time.Hour {
		t.Errorf("expires in %s, want the token's hour", d)
	}

	other, err := pop.NewTokenAuth([]byte("another secret, also 32 bytes long!"))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := other.Issue("1003", "Erin Evening", []string{"supervisor"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.auth.Authenticate(bearer(forged)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("token of another secret: %v", err)
	}

	r.clock.Advance(time.Hour + auth.DefaultClockSkew + time.Second)
	if _, err := r.auth.Authenticate(bearer(tok)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("expired token: %v", err)
	}
	if got := r.counter("screenpop_auth_authentications_total", "method", "hs256", "outcome", "expired"); got != 1 {
		t.Errorf("hs256 expired = %v, want 1", got)
	}
}

// Without the HS256 secret configured, HS256 tokens are refused: the key
// set's public keys never serve as an HMAC secret.
func TestHS256WithoutSecret(t *testing.T) {
	r := newRig(t, rigOptions{edit: func(o *auth.Options) { o.HS256 = nil }})
	minter, err := pop.NewTokenAuth([]byte(hsSecret))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := minter.Issue("1001", "", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.auth.Authenticate(bearer(tok)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("HS256 token without a secret configured: %v", err)
	}
}

// A request without credentials is unauthenticated, and a malformed
// Authorization header does not fall back to the cookie.
func TestNoCredentials(t *testing.T) {
	r := newRig(t, rigOptions{})
	if _, err := r.auth.Authenticate(request("", "")); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("no credentials: %v", err)
	}
	if _, err := r.auth.Authenticate(request("Authorization", "Basic dXNlcjpwYXNz")); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("basic auth: %v", err)
	}
	if got := r.counter("screenpop_auth_authentications_total", "method", "none", "outcome", "invalid"); got != 2 {
		t.Errorf("none invalid = %v, want 2", got)
	}
}
