package auth_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/screenpop/screenpop/auth"
	"github.com/screenpop/screenpop/internal/testidp"
)

const sessionCookie = "__Host-screenpop_session"

// The whole sign-in against the provider: login page, credentials,
// callback, session cookie; then the cookie authenticates the agent socket
// and /auth/session, until the ID token's expiry.
func TestSignInWithTheProvider(t *testing.T) {
	r := newRig(t, rigOptions{})
	b := r.browser()
	start := r.clock.Now()

	resp := b.signIn(alice, "/desk?tab=calls")
	expectPage(t, resp, http.StatusOK, "desk of agent 1001 (Alice Agent) roles [agent]")
	if got := resp.Request.URL.RequestURI(); got != "/desk?tab=calls" {
		t.Errorf("landed on %s, want the return path /desk?tab=calls", got)
	}
	c := b.cookie(sessionCookie)
	if c == nil {
		t.Fatalf("no %s cookie after signing in", sessionCookie)
	}

	// The socket: a same-origin upgrade carries the cookie.
	ws := request("Cookie", sessionCookie+"="+c.Value)
	id, err := r.auth.Authenticate(ws)
	if err != nil {
		t.Fatal(err)
	}
	want := auth.Identity{AgentID: "1001", Name: "Alice Agent", Roles: []string{"agent"}, Subject: alice.ID, Method: auth.MethodSession}
	if id.AgentID != want.AgentID || id.Name != want.Name || !slices.Equal(id.Roles, want.Roles) || id.Subject != want.Subject || id.Method != want.Method {
		t.Errorf("identity = %+v, want %+v", id, want)
	}
	// The ID token lives an hour at this provider: so does the session.
	if d := id.Expires.Sub(start); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("session expires %s after sign-in, want the ID token's hour", d)
	}

	info := sessionInfo(t, b)
	if info["agent_id"] != "1001" || info["method"] != "session" || info["expires"] == nil {
		t.Errorf("/auth/session = %v", info)
	}

	// At the expiry the session ends: the socket is refused, and the page
	// is told where to sign in again.
	r.clock.Advance(time.Hour + time.Minute)
	if _, err := r.auth.Authenticate(ws); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("after expiry: %v, want ErrUnauthenticated", err)
	}
	resp = b.get(r.rp.URL + "/auth/session")
	body := expectPage(t, resp, http.StatusUnauthorized, `"login_url":"/auth/login"`)
	if strings.Contains(body, "agent_id") {
		t.Errorf("401 names an agent: %s", body)
	}
	if got := r.counter("screenpop_auth_authentications_total", "method", "session", "outcome", "expired"); got != 2 {
		t.Errorf("expired session authentications = %v, want 2", got)
	}
	if got := r.counter("screenpop_auth_logins_total", "outcome", "ok"); got != 1 {
		t.Errorf("logins ok = %v, want 1", got)
	}
}

func sessionInfo(t *testing.T, b *browser) map[string]any {
	t.Helper()
	resp := b.get(b.r.rp.URL + "/auth/session")
	body := expectPage(t, resp, http.StatusOK)
	var info map[string]any
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatalf("/auth/session: %v: %s", err, body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("/auth/session Cache-Control = %q, want no-store", cc)
	}
	return info
}

// The cookies are __Host-, Secure, HttpOnly and SameSite=Lax, and the
// session cookie lives as long as the session.
func TestCookieAttributes(t *testing.T) {
	r := newRig(t, rigOptions{idTokenLifetime: 20 * time.Minute})
	b := r.browser()
	cb := b.callbackURL(alice)
	b.stopAt = "/" // the page the callback sends the browser to
	resp := b.get(cb.String())
	readBody(t, resp)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("callback: %s, want 303", resp.Status)
	}
	var session *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("callback set no %s: %v", sessionCookie, resp.Header.Values("Set-Cookie"))
	}
	if !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.Domain != "" {
		t.Errorf("session cookie %s: want Secure, HttpOnly, SameSite=Lax, Path=/, no Domain", session.Raw)
	}
	if session.MaxAge < 19*60 || session.MaxAge > 20*60 {
		t.Errorf("session cookie Max-Age %d, want the ID token's 20 minutes", session.MaxAge)
	}
	if len(session.Value) < 40 {
		t.Errorf("session ID %q is short", session.Value)
	}
}

func TestSignOutEndsTheSessionHereAndAtTheProvider(t *testing.T) {
	r := newRig(t, rigOptions{})
	b := r.browser()
	expectPage(t, b.signIn(alice, ""), http.StatusOK, "desk of agent 1001")
	old := b.cookie(sessionCookie)
	if old == nil {
		t.Fatal("not signed in")
	}

	expectPage(t, b.get(r.rp.URL+"/auth/logout"), http.StatusOK, `<form method="post" action="/auth/logout">`)
	resp := b.post(r.rp.URL+"/auth/logout", nil)
	expectPage(t, resp, http.StatusOK, "You are signed out", `href="/auth/login"`)
	if resp.Request.URL.Path != "/auth/signed-out" {
		t.Errorf("after sign-out landed on %s, want /auth/signed-out via the provider", resp.Request.URL)
	}
	if got := r.idp.EndedSessions(); !slices.Contains(got, alice.ID) {
		t.Errorf("provider sessions ended: %v, want %s's", got, alice.ID)
	}
	// The session is gone from the store, not only from the browser.
	if _, err := r.auth.Authenticate(request("Cookie", sessionCookie+"="+old.Value)); !errors.Is(err, auth.ErrUnauthenticated) {
		t.Errorf("the old cookie still works after sign-out: %v", err)
	}
	expectPage(t, b.get(r.rp.URL+"/auth/session"), http.StatusUnauthorized)
}

// An account the provider knows but that maps to no agent here gets a page
// saying so, and no session.
func TestAccountThatIsNoAgent(t *testing.T) {
	r := newRig(t, rigOptions{})
	// Bob has no extension claim and is not in the users table; Dave's
	// extension 9999 is no agent of this daemon.
	for _, u := range []testidp.User{bob, dave} {
		resp := r.browser().signIn(u, "")
		body := expectPage(t, resp, http.StatusForbidden, "Not an agent here", "Your account "+u.Username+" ", "Ask IT")
		if strings.Contains(body, "desk of agent") {
			t.Errorf("%s reached the desk", u.Username)
		}
		for _, c := range resp.Cookies() {
			if c.Name == sessionCookie {
				t.Errorf("%s got a session cookie", u.Username)
			}
		}
	}
	if got := r.counter("screenpop_auth_logins_total", "outcome", "not_agent"); got != 2 {
		t.Errorf("not_agent logins = %v, want 2", got)
	}
}

// Carol has no extension claim; the users table (keyed by
// preferred_username, without case) names her agent, and the role map
// turns her groups into roles.
func TestUsersTableAndRoleMap(t *testing.T) {
	r := newRig(t, rigOptions{})
	expectPage(t, r.browser().signIn(carol, "/desk"), http.StatusOK, "desk of agent 1002 (Carol Lead) roles [agent supervisor]")
}

// The state parameter binds the callback to the sign-in this browser
// started: a changed state, a callback opened in another browser (login
// CSRF: an attacker's code in the victim's browser) and a second use of the
// same callback are refused.
func TestCallbackStateMismatch(t *testing.T) {
	r := newRig(t, rigOptions{})

	b := r.browser()
	cb := b.callbackURL(alice)
	forged := *cb
	q := forged.Query()
	q.Set("state", q.Get("state")+"x")
	forged.RawQuery = q.Encode()
	expectPage(t, b.get(forged.String()), http.StatusBadRequest, "Sign-in expired", `href="/auth/login"`)

	b = r.browser()
	cb = b.callbackURL(alice)
	other := r.browser()
	expectPage(t, other.get(cb.String()), http.StatusBadRequest, "Sign-in expired")
	if other.cookie(sessionCookie) != nil {
		t.Error("another browser got a session from the callback")
	}

	b = r.browser()
	cb = b.callbackURL(alice)
	expectPage(t, b.get(cb.String()), http.StatusOK, "desk of agent 1001")
	expectPage(t, b.get(cb.String()), http.StatusBadRequest, "Sign-in expired")

	if got := r.counter("screenpop_auth_logins_total", "outcome", "stale_state"); got != 3 {
		t.Errorf("stale_state logins = %v, want 3", got)
	}
}

// An ID token whose nonce is not the one this sign-in sent (a replayed or
// injected token) is refused, though signed by the provider.
func TestNonceMismatch(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.idp.TamperNonce("a-nonce-of-another-sign-in")
	resp := r.browser().signIn(alice, "")
	expectPage(t, resp, http.StatusUnauthorized, "Sign-in failed")
	if got := r.counter("screenpop_auth_logins_total", "outcome", "invalid_id_token"); got != 1 {
		t.Errorf("invalid_id_token logins = %v, want 1", got)
	}
	r.idp.TamperNonce("")
	expectPage(t, r.browser().signIn(alice, "/desk"), http.StatusOK, "desk of agent 1001")
}

// An error from the provider (the user declined, the client is disabled)
// ends the sign-in with a page; the state is used up all the same.
func TestProviderError(t *testing.T) {
	r := newRig(t, rigOptions{})
	b := r.browser()
	cb := b.callbackURL(alice)
	q := cb.Query()
	q.Del("code")
	q.Set("error", "access_denied")
	cb.RawQuery = q.Encode()
	expectPage(t, b.get(cb.String()), http.StatusForbidden, "refused the sign-in (access_denied)")
	expectPage(t, b.get(cb.String()), http.StatusBadRequest, "Sign-in expired")
}

// A return path naming another site comes back to the page instead: the
// sign-in is no open redirect.
func TestReturnPathStaysOnSite(t *testing.T) {
	r := newRig(t, rigOptions{})
	for _, evil := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"} {
		b := r.browser()
		b.stopAt = "/"
		resp := b.signIn(alice, evil)
		readBody(t, resp)
		if loc := resp.Header.Get("Location"); loc != "/" {
			t.Errorf("return=%q: redirected to %q, want /", evil, loc)
		}
	}
	if got, want := r.auth.LoginURL("/desk?x=1"), "/auth/login?return=%2Fdesk%3Fx%3D1"; got != want {
		t.Errorf("LoginURL = %q, want %q", got, want)
	}
	if got := r.auth.LoginURL("https://evil.example"); got != "/auth/login" {
		t.Errorf("LoginURL(evil) = %q", got)
	}
}

// The provider rotates to an ES256 key: the next sign-in's ID token names a
// key the daemon has not seen, which is fetched.
func TestSignInAfterKeyRotation(t *testing.T) {
	r := newRig(t, rigOptions{})
	expectPage(t, r.browser().signIn(alice, "/desk"), http.StatusOK, "desk of agent 1001")
	r.idp.RotateKey(jose.ES256)
	r.clock.Advance(auth.DefaultJWKSRefreshInterval + time.Second)
	expectPage(t, r.browser().signIn(alice, "/desk"), http.StatusOK, "desk of agent 1001")
	if got := r.counter("screenpop_auth_jwks_fetches_total", "key_set", "oidc", "outcome", "ok"); got != 2 {
		t.Errorf("oidc key set fetches = %v, want 2 (first use, rotation)", got)
	}
}

// The provider down at start: the daemon starts, a sign-in shows a page,
// and the next one works once the provider is back (discovery is retried).
func TestProviderUnreachable(t *testing.T) {
	r := newRig(t, rigOptions{edit: func(o *auth.Options) {
		o.OIDC.Issuer = "https://127.0.0.1:1"
	}})
	resp := r.browser().get(r.rp.URL + "/auth/login")
	expectPage(t, resp, http.StatusServiceUnavailable, "cannot be reached")
	if err := r.auth.Probe(t.Context()); err == nil || !strings.Contains(err.Error(), "auth.oidc: discovery of https://127.0.0.1:1") {
		t.Errorf("Probe = %v, want the discovery error", err)
	}
}

func TestProbe(t *testing.T) {
	r := newRig(t, rigOptions{})
	if err := r.auth.Probe(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := r.idp.KeysServed(); n != 2 {
		t.Errorf("key set fetched %d times, want 2 (oidc, jwt)", n)
	}
}

// KnownAgent is asked on every request: an agent removed by a reload loses
// its sessions at once.
func TestRemovedAgentLosesItsSession(t *testing.T) {
	var removed atomic.Bool
	r := newRig(t, rigOptions{edit: func(o *auth.Options) {
		o.KnownAgent = func(id string) bool { return knownAgents[id] && !removed.Load() }
	}})
	b := r.browser()
	expectPage(t, b.signIn(alice, "/desk"), http.StatusOK, "desk of agent 1001")
	removed.Store(true)
	resp := b.get(r.rp.URL + "/auth/session")
	body := expectPage(t, resp, http.StatusForbidden, `"error":"not_agent"`, `agent \"1001\" is not configured`, "Ask IT")
	if strings.Contains(body, "agent_id") {
		t.Errorf("403 names the agent as signed in: %s", body)
	}
}

// The agent page's form-action allows where a sign-out goes on to: the
// provider (its end_session_endpoint) and the post-logout page here.
func TestSignOutOrigins(t *testing.T) {
	r := newRig(t, rigOptions{})
	if got, want := r.auth.SignOutOrigins(), []string{r.idp.Issuer, r.rp.URL}; !slices.Equal(got, want) {
		t.Errorf("SignOutOrigins() = %v, want %v", got, want)
	}
	hs, err := auth.New(auth.Options{HS256: &auth.HS256{Secret: []byte(hsSecret), Issuer: "screenpop", Audience: "screenpop-agent"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := hs.SignOutOrigins(); got != nil {
		t.Errorf("without OIDC: %v", got)
	}
}
