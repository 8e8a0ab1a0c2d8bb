package pop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/auth"
)

// fixedAuth answers every request with the same agent or error.
type fixedAuth struct {
	agent Agent
	err   error
}

func (f fixedAuth) Authenticate(*http.Request) (Agent, error) { return f.agent, f.err }

func testLoginURL(returnTo string) string { return "/auth/login?return=" + url.QueryEscape(returnTo) }

// refusedDial dials and returns the refused upgrade's status and JSON body.
func refusedDial(t *testing.T, u string, h http.Header, protos ...string) (int, refusal) {
	t.Helper()
	d := websocket.Dialer{Subprotocols: protos}
	c, resp, err := d.Dial(u, h)
	if err == nil {
		c.Close()
		t.Fatalf("upgraded; want a refusal")
	}
	if resp == nil {
		t.Fatalf("no response: %v", err)
	}
	return resp.StatusCode, bodyOf(t, resp)
}

func bodyOf(t *testing.T, resp *http.Response) refusal {
	t.Helper()
	raw, _ := io.ReadAll(resp.Body)
	var r refusal
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%d answered as %q: %s", resp.StatusCode, ct, raw)
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Errorf("%d body %q: %v", resp.StatusCode, raw, err)
	}
	return r
}

func getSession(t *testing.T, u string, h http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, raw
}

// TestRefusedSignInSaysWhy: a refused upgrade and /session answer 401
// with where to sign in, or 403 for an account that is no agent, in JSON
// the page can read.
func TestRefusedSignInSaysWhy(t *testing.T) {
	e := startHub(t, func(c *HubConfig) { c.LoginURL = testLoginURL })
	status, body := refusedDial(t, e.wsURL(""), nil, Subprotocol, BearerSubprotocolPrefix+"forged")
	if status != http.StatusUnauthorized || body != (refusal{Error: "unauthenticated", LoginURL: "/auth/login?return=%2F"}) {
		t.Errorf("bad token: %d %+v", status, body)
	}
	resp, raw := getSession(t, e.srv.URL+"/session?return=/agents/", nil)
	var r refusal
	json.Unmarshal(raw, &r)
	if resp.StatusCode != http.StatusUnauthorized || r != (refusal{Error: "unauthenticated", LoginURL: "/auth/login?return=%2Fagents%2F"}) ||
		resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("/session without sign-in: %d %s %v", resp.StatusCode, raw, resp.Header)
	}

	notAgent := &NotAgentError{Account: "eve@example.com", Reason: `agent "9999" is not configured`}
	h, err := NewHub(HubConfig{Auth: fixedAuth{err: notAgent}, LoginURL: testLoginURL})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h.Handler())
	t.Cleanup(func() { h.Close(); srv.Close() })
	status, body = refusedDial(t, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil, Subprotocol)
	if status != http.StatusForbidden || body.Error != "not_agent" || !strings.Contains(body.Message, "eve@example.com") || body.LoginURL == "" {
		t.Errorf("not an agent: %d %+v", status, body)
	}
	resp, raw = getSession(t, srv.URL+"/session", nil)
	if json.Unmarshal(raw, &r); resp.StatusCode != http.StatusForbidden || r != body {
		t.Errorf("/session not an agent: %d %s, want what the socket said: %+v", resp.StatusCode, raw, body)
	}
}

// TestSessionSaysWhoIsSignedIn: /session answers as the auth package's
// /auth/session does, judged by the Hub's own Authenticator.
func TestSessionSaysWhoIsSignedIn(t *testing.T) {
	e := startHub(t, nil)
	resp, raw := getSession(t, e.srv.URL+"/session", http.Header{"Authorization": {"Bearer " + e.token(t, "alice")}})
	var got struct {
		AgentID string    `json:"agent_id"`
		Name    string    `json:"name"`
		Roles   []string  `json:"roles"`
		Expires time.Time `json:"expires"`
		Method  string    `json:"method"`
	}
	if err := json.Unmarshal(raw, &got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/session: %d %s %v", resp.StatusCode, raw, err)
	}
	if got.AgentID != "alice" || got.Name != "Alice" || !slices.Equal(got.Roles, []string{"agent"}) || got.Method != MethodHS256 ||
		got.Expires.Before(time.Now()) || got.Expires.After(time.Now().Add(2*time.Hour)) {
		t.Errorf("/session: %s", raw)
	}
}

// TestExpiredSignInClosesTheSocket: when the token behind a socket
// expires, the hub closes it with CloseSignedOut, which the page shows as
// "signed out" instead of reconnecting.
func TestExpiredSignInClosesTheSocket(t *testing.T) {
	e := startHub(t, nil)
	// A token issued an hour ago that is good for one more second or two.
	issuer := newTestAuth(t)
	issuer.now = func() time.Time { return time.Now().Add(-time.Hour + 2*time.Second) }
	tok, err := issuer.Issue("alice", "Alice", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	d := websocket.Dialer{Subprotocols: []string{Subprotocol, BearerSubprotocolPrefix + tok}}
	c, _, err := d.Dial(e.wsURL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readType(t, c, TypeSnapshot)
	c.SetReadDeadline(time.Now().Add(patience))
	_, data, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseSignedOut || ce.Text != "signed out: session expired" {
		t.Fatalf("after expiry: %v %s, want close %d", err, data, CloseSignedOut)
	}
	if v := metricValue(t, e.reg, "screenpop_pop_dropped_connections_total", map[string]string{"reason": "expired"}); v != 1 {
		t.Errorf("dropped{reason=expired} = %v", v)
	}
	// The same token, now expired, is refused.
	if status, body := refusedDial(t, e.wsURL(""), nil, Subprotocol, BearerSubprotocolPrefix+tok); status != http.StatusUnauthorized || body.Error != "unauthenticated" {
		t.Errorf("expired token: %d %+v", status, body)
	}
}

// cookieEnv is a hub signing in with the real auth package: browser
// sessions (a store the test fills) and HS256 tokens.
type cookieEnv struct {
	srv      *httptest.Server
	sessions *auth.MemoryStore[auth.Session]
	reg      *prometheus.Registry
}

func startCookieHub(t *testing.T) *cookieEnv {
	t.Helper()
	e := &cookieEnv{sessions: auth.NewMemoryStore[auth.Session](10), reg: prometheus.NewRegistry()}
	a, err := auth.New(auth.Options{
		// Sessions are judged from the store alone: the provider is never
		// reached.
		OIDC: &auth.OIDCConfig{Issuer: "http://127.0.0.1:9/idp", ClientID: "screenpop", ClientSecretEnv: "UNUSED",
			RedirectURL: "http://127.0.0.1/auth/callback", ClaimMapping: auth.ClaimMapping{AgentClaim: "extension"}},
		ClientSecret: "unused",
		HS256:        &auth.HS256{Secret: testSecret, Issuer: TokenIssuer, Audience: TokenAudience},
		Sessions:     e.sessions,
		KnownAgent:   func(id string) bool { return id != "9999" },
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHub(HubConfig{Auth: FromAuth(a), LoginURL: a.LoginURL, Registerer: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(h.Handler())
	t.Cleanup(func() { h.Close(); e.srv.Close() })
	return e
}

// session signs agent in until expires and returns the cookie.
func (e *cookieEnv) session(t *testing.T, agent string, expires time.Time) string {
	t.Helper()
	cookie := fmt.Sprintf("cookie-of-%s-%d", agent, time.Now().UnixNano())
	sum := sha256.Sum256([]byte(cookie))
	s := auth.Session{Identity: auth.Identity{AgentID: agent, Name: "Agent " + agent, Roles: []string{"agent"},
		Expires: expires, Subject: "sub-" + agent, Method: auth.MethodSession}, Created: time.Now()}
	if err := e.sessions.Put(context.Background(), hex.EncodeToString(sum[:]), s, expires); err != nil {
		t.Fatal(err)
	}
	return "screenpop_session=" + cookie
}

func (e *cookieEnv) wsURL() string { return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/ws" }

// TestCookieNeedsTheOriginOfThePage: a socket signed in by the session
// cookie is let in only from the page's own origin (scheme, host and
// port) or an allowed one; a cross-site page must never ride the cookie.
func TestCookieNeedsTheOriginOfThePage(t *testing.T) {
	e := startCookieHub(t)
	cookie := e.session(t, "1001", time.Now().Add(time.Hour))
	own := e.srv.URL // http://127.0.0.1:port
	sameHostHTTPS := "https://" + strings.TrimPrefix(own, "http://")
	header := func(kv ...string) http.Header {
		h := http.Header{"Cookie": {cookie}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	refused := []struct {
		name  string
		h     http.Header
		error string
	}{
		{"foreign origin", header("Origin", "https://evil.example"), "forbidden_origin"},
		{"no origin", header(), "origin_required"},
		{"opaque origin", header("Origin", "null"), "forbidden_origin"},
		{"same host, other scheme", header("Origin", sameHostHTTPS), "forbidden_origin"},
		{"plain http page while the proxy says https", header("Origin", own, "X-Forwarded-Proto", "https"), "forbidden_origin"},
	}
	for _, tc := range refused {
		status, body := refusedDial(t, e.wsURL(), tc.h, Subprotocol)
		if status != http.StatusForbidden || body.Error != tc.error {
			t.Errorf("%s: %d %+v, want 403 %s", tc.name, status, body, tc.error)
		}
	}
	if v := metricValue(t, e.reg, "screenpop_pop_dropped_connections_total", map[string]string{"reason": "origin"}); v != float64(len(refused)) {
		t.Errorf("dropped{reason=origin} = %v, want %d", v, len(refused))
	}
	for _, h := range []http.Header{header("Origin", own), header("Origin", sameHostHTTPS, "X-Forwarded-Proto", "https"),
		header("Origin", sameHostHTTPS, "Forwarded", `for=192.0.2.1;proto=https`)} {
		c, _, err := (&websocket.Dialer{Subprotocols: []string{Subprotocol}}).Dial(e.wsURL(), h)
		if err != nil {
			t.Fatalf("the page's own origin %v: %v", h, err)
		}
		snap := readType(t, c, TypeSnapshot)
		if s := snapshotOf(t, snap); s.Agent.ID != "1001" || s.Agent.Name != "Agent 1001" {
			t.Errorf("signed in as %+v", s.Agent)
		}
		c.Close()
	}
	// A bearer token needs no Origin: not a browser, nothing ambient.
	tok, err := newTestAuth(t).Issue("1002", "Bob", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := websocket.DefaultDialer.Dial(e.wsURL(), http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatalf("bearer without Origin: %v", err)
	}
	readType(t, c, TypeSnapshot)
	c.Close()
}

// TestCookieSessionRefusalsAndExpiry: the auth package's refusals reach
// the page as 401 and 403, /session tells who the cookie signs in, and the
// socket closes when the session ends.
func TestCookieSessionRefusalsAndExpiry(t *testing.T) {
	e := startCookieHub(t)
	origin := http.Header{"Origin": {e.srv.URL}}
	with := func(cookie string) http.Header {
		h := origin.Clone()
		h.Set("Cookie", cookie)
		return h
	}
	status, body := refusedDial(t, e.wsURL(), with("screenpop_session=nobody"), Subprotocol)
	if status != http.StatusUnauthorized || body != (refusal{Error: "unauthenticated", LoginURL: "/auth/login"}) {
		t.Errorf("unknown session: %d %+v", status, body)
	}
	status, body = refusedDial(t, e.wsURL(), with(e.session(t, "9999", time.Now().Add(time.Hour))), Subprotocol)
	if status != http.StatusForbidden || body.Error != "not_agent" || !strings.Contains(body.Message, "9999") {
		t.Errorf("not an agent: %d %+v", status, body)
	}

	cookie := e.session(t, "1001", time.Now().Add(time.Second))
	resp, raw := getSession(t, e.srv.URL+"/session", with(cookie))
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"agent_id":"1001"`) || !strings.Contains(string(raw), `"method":"session"`) {
		t.Errorf("/session: %d %s", resp.StatusCode, raw)
	}
	c, _, err := (&websocket.Dialer{Subprotocols: []string{Subprotocol}}).Dial(e.wsURL(), with(cookie))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	readType(t, c, TypeSnapshot)
	c.SetReadDeadline(time.Now().Add(patience))
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != CloseSignedOut {
		t.Fatalf("after the session ended: %v, want close %d", err, CloseSignedOut)
	}
}

// TestFromAuthMapsIdentitiesAndRefusals: Identity to Agent, not-agent
// errors to 403, anything else to 401.
func TestFromAuthMapsIdentitiesAndRefusals(t *testing.T) {
	exp := time.Date(2026, 3, 4, 18, 0, 0, 0, time.UTC)
	cases := []struct {
		id      auth.Identity
		err     error
		want    Agent
		wantErr error
	}{
		{id: auth.Identity{AgentID: "1001", Name: "Alice", Roles: []string{"credit"}, Expires: exp, Method: auth.MethodJWT},
			want: Agent{ID: "1001", Name: "Alice", Roles: []string{"credit"}, Expires: exp, Method: "jwt"}},
		{err: fmt.Errorf("%w: expired", auth.ErrUnauthenticated), wantErr: ErrUnauthenticated},
		{err: &auth.NotAgentError{Account: "eve", Reason: "no extension claim"}, wantErr: ErrNotAgent},
		{err: fmt.Errorf("wrapped: %w", &auth.NotAgentError{Account: "eve"}), wantErr: ErrNotAgent},
		{err: errors.New("something else"), wantErr: ErrUnauthenticated},
		{id: auth.Identity{Name: "nobody"}, wantErr: ErrUnauthenticated},
	}
	for i, tc := range cases {
		got, err := FromAuth(identityFunc(func(*http.Request) (auth.Identity, error) { return tc.id, tc.err })).Authenticate(httptest.NewRequest("GET", "/ws", nil))
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%d: %v, want %v", i, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.ID != tc.want.ID || got.Name != tc.want.Name || !slices.Equal(got.Roles, tc.want.Roles) || !got.Expires.Equal(tc.want.Expires) || got.Method != tc.want.Method {
			t.Errorf("%d: %+v %v, want %+v", i, got, err, tc.want)
		}
	}
	var na *NotAgentError
	_, err := FromAuth(identityFunc(func(*http.Request) (auth.Identity, error) {
		return auth.Identity{}, &auth.NotAgentError{Account: "eve", Reason: "no extension claim"}
	})).Authenticate(httptest.NewRequest("GET", "/ws", nil))
	if !errors.As(err, &na) || na.Account != "eve" || na.Reason != "no extension claim" {
		t.Errorf("not an agent: %v", err)
	}
}

type identityFunc func(*http.Request) (auth.Identity, error)

func (f identityFunc) Authenticate(r *http.Request) (auth.Identity, error) { return f(r) }

// TestOriginComparesSchemeHostAndPort checks the page's own origin as the
// request shows it, with and without a proxy ending TLS.
func TestOriginComparesSchemeHostAndPort(t *testing.T) {
	h, err := NewHub(HubConfig{Auth: fixedAuth{}, AllowedOrigins: []string{"https://crm.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		origin, host string
		header       []string
		want         bool
	}{
		{"http://pop.example.com:8080", "pop.example.com:8080", nil, true},
		{"http://POP.example.com:8080", "pop.example.com:8080", nil, true},
		{"http://pop.example.com:8081", "pop.example.com:8080", nil, false},
		{"https://pop.example.com:8080", "pop.example.com:8080", nil, false},
		{"https://pop.example.com", "pop.example.com", []string{"X-Forwarded-Proto", "https"}, true},
		{"https://pop.example.com", "pop.example.com:443", []string{"X-Forwarded-Proto", "https"}, true},
		{"http://pop.example.com", "pop.example.com", []string{"X-Forwarded-Proto", "https"}, false},
		{"https://pop.example.com", "pop.example.com", []string{"Forwarded", `for=1.2.3.4;proto="https", for=5.6.7.8`}, true},
		{"https://pop.example.com", "pop.example.com", nil, false},
		{"https://crm.example.com:443", "pop.example.com", nil, true},
		{"http://crm.example.com", "pop.example.com", nil, false},
		{"https://pop.example.com.evil.example", "pop.example.com", []string{"X-Forwarded-Proto", "https"}, false},
		{"null", "pop.example.com", nil, false},
		{"", "pop.example.com", nil, true}, // no browser: the credentials decide (and a cookie needs an Origin)
	}
	for _, tc := range cases {
		r := httptest.NewRequest("GET", "/ws", nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.header != nil {
			r.Header.Set(tc.header[0], tc.header[1])
		}
		if got := h.originAllowed(r); got != tc.want {
			t.Errorf("Origin %q to %s %v: allowed %v, want %v", tc.origin, tc.host, tc.header, got, tc.want)
		}
	}
}
