package main

// Company sign-in end to end (issue 11): the whole daemon in-process, its
// auth.oidc pointing at a real OpenID Provider started here
// (internal/testidp), and a real Chromium signing in through the
// provider's login page. Screenshots go to $SCREENPOP_SCREENSHOTS when set
// (for a person to look at), else into the test's temporary directory.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/gorilla/websocket"
	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/auth"
	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/internal/chromiumtest"
	"github.com/screenpop/screenpop/internal/testidp"
	"github.com/screenpop/screenpop/pop"
)

const (
	oidcClientID     = "screenpop"
	oidcClientSecret = "screenpop-client-secret-0123456789"
	apiAudience      = "screenpop-api"
	ctiToken         = "cti-token-0123456789abcdef"
	hsSecret         = "hs256-secret-0123456789abcdef0123456789"
)

// The provider's accounts. Alice's groups give her the credit role; Carol
// is an agent without it; Bob's sessions are made short to see one end;
// Dave's extension is no agent of the daemon.
var (
	alice = testidp.User{ID: "u-alice", Username: "alice", Password: "pw-alice", Name: "Alice Agent",
		Claims: map[string]any{"extension": "1001", "groups": []string{"callcenter-agents", "credit-team"}}}
	bob = testidp.User{ID: "u-bob", Username: "bob", Password: "pw-bob", Name: "Bob Agent",
		Claims: map[string]any{"extension": "1002", "groups": []string{"callcenter-agents"}}}
	carol = testidp.User{ID: "u-carol", Username: "carol", Password: "pw-carol", Name: "Carol Agent",
		Claims: map[string]any{"extension": "1003", "groups": []string{"callcenter-agents"}}}
	dave = testidp.User{ID: "u-dave", Username: "dave", Password: "pw-dave", Name: "Dave Elsewhere",
		Claims: map[string]any{"extension": "9999"}}
)

// Hoffmann Logistik's credit terms: in the credit section of the demo data
// only (configs/demo/credit.json), so a frame that holds them holds the
// section.
const (
	hoffmannPhone = "+49403456789"
	creditTerms   = "early-payment discount"
)

// signInDaemon is the daemon under test and its provider.
type signInDaemon struct {
	m    *Main
	idp  *testidp.IdP
	base string // http://127.0.0.1:port
}

// startSignInDaemon runs the demo configuration with company sign-in: the
// provider's ID tokens for the page, its access tokens for bearer clients,
// and the HS256 secret of screenpopd token. Calls come from the test
// through an http telephony source. Agents' roles come from the provider's
// groups (role_map); agents.roles gives Carol only "agent".
func startSignInDaemon(t *testing.T) *signInDaemon {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // the daemon listens there itself; its URL goes into the configuration first
	base := "http://" + addr
	idp := testidp.Start(t, testidp.Config{
		Users: []testidp.User{alice, bob, carol, dave},
		Web: []testidp.WebClient{{
			ID: oidcClientID, Secret: oidcClientSecret,
			RedirectURIs:           []string{base + "/auth/callback"},
			PostLogoutRedirectURIs: []string{base + "/auth/signed-out"},
		}},
		Services: []testidp.ServiceClient{
			{ID: "softphone", Secret: "softphone-secret", Audience: []string{apiAudience}, Claims: map[string]any{"extension": "1003", "name": "Carol (softphone)"}},
		},
	})

	cfg, err := configs.Demo()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = addr
	cfg.Auth.DemoLinks = false
	cfg.Auth.SecretEnv = "SCREENPOP_AUTH_SECRET"
	mapping := auth.ClaimMapping{
		AgentClaim: "extension",
		RolesClaim: "groups",
		RoleMap:    map[string]string{"callcenter-agents": "agent", "credit-team": "credit"},
	}
	cfg.Auth.OIDC = &auth.OIDCConfig{
		Issuer:          idp.Issuer,
		ClientID:        oidcClientID,
		ClientSecretEnv: "SCREENPOP_OIDC_SECRET",
		RedirectURL:     base + "/auth/callback",
		ClaimMapping:    mapping,
	}
	cfg.Auth.JWT = &auth.JWTConfig{
		JWKSURL:  idp.KeysURL(),
		Issuer:   idp.Issuer,
		Audience: apiAudience,
		// Short, so that a rotation and a withdrawn key show within the test.
		TokenChecks:  auth.TokenChecks{JWKSRefreshInterval: time.Second, JWKSMaxAge: 2 * time.Second},
		ClaimMapping: mapping,
	}
	cfg.Auth.OIDC.SetDefaults()
	cfg.Auth.JWT.SetDefaults()
	cfg.Agents.Roles = map[string][]string{"1003": {"agent"}}
	var tel []configs.Telephony
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(`[{name: cti, type: http, tokens_env: SCREENPOP_CTI_TOKENS}]`), &node); err != nil {
		t.Fatal(err)
	}
	if err := node.Content[0].Decode(&tel); err != nil {
		t.Fatal(err)
	}
	cfg.Telephony = tel
	env := map[string]string{
		"SCREENPOP_OIDC_SECRET": oidcClientSecret,
		"SCREENPOP_AUTH_SECRET": hsSecret,
		"SCREENPOP_CTI_TOKENS":  ctiToken,
	}
	m := runMain(t, cfg, Options{Env: func(k string) string { return env[k] }, IdPClient: idp.Client(), Stderr: testLog{t}})
	return &signInDaemon{m: m, idp: idp, base: base}
}

// testLog sends the daemon's log to the test's, shown when it fails.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// ring posts a call ringing at agents, as the PBX would.
func (d *signInDaemon) ring(t *testing.T, callID, phone string, agents ...string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"event": "ringing", "call_id": callID, "caller": map[string]string{"number": phone}, "agents": agents})
	req, _ := http.NewRequest(http.MethodPost, d.base+"/api/v1/call-events/cti", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+ctiToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("ringing %s: %s %s", callID, resp.Status, b)
	}
}

// ---- a browser without a window: Go with a cookie jar ---------------------

// goSignIn signs u in the way a browser does, following redirects through
// the provider's login form, and returns the client holding the session
// cookie and the last response's body.
func (d *signInDaemon) goSignIn(t *testing.T, u testidp.User) (*http.Client, *http.Response, string) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: d.idp.Client().Transport, Jar: jar, Timeout: 20 * time.Second}
	resp, err := c.Get(d.base + "/auth/login")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if resp.Request.URL.Path != "/login" {
		t.Fatalf("/auth/login did not lead to the provider's login page but %s", resp.Request.URL)
	}
	resp, err = c.PostForm(d.idp.Issuer+"/login", url.Values{
		"id": {resp.Request.URL.Query().Get("id")}, "username": {u.Username}, "password": {u.Password}})
	if err != nil {
		t.Fatal(err)
	}
	return c, resp, readAll(t, resp)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dialWS opens the agent socket with header and the jar's cookies, and
// returns the connection, or the refusal's status and body.
func (d *signInDaemon) dialWS(t *testing.T, jar http.CookieJar, header http.Header, protos ...string) (*websocket.Conn, int, string) {
	t.Helper()
	dialer := websocket.Dialer{Jar: jar, Subprotocols: append([]string{pop.Subprotocol}, protos...), HandshakeTimeout: 10 * time.Second}
	c, resp, err := dialer.Dial("ws"+strings.TrimPrefix(d.base, "http")+"/ws", header)
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		return nil, resp.StatusCode, readAll(t, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c, http.StatusSwitchingProtocols, ""
}

// popFrame reads frames until the pop of callID, and returns that frame
// as it came over the wire.
func popFrame(t *testing.T, c *websocket.Conn, callID string) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		_, raw, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("no pop of %s before the read failed: %v", callID, err)
		}
		var env envelope
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Fatalf("frame %s: %v", raw, err)
		}
		if env.Type == "pop" && env.CallID == callID {
			return raw
		}
	}
}

// sectionsOf lists the section names of a pop frame's card.
func sectionsOf(t *testing.T, frame []byte) []string {
	t.Helper()
	var env struct {
		Data struct {
			Card struct {
				Sections []struct {
					Name string `json:"name"`
				} `json:"sections"`
			} `json:"card"`
		} `json:"data"`
	}
	if err := json.Unmarshal(frame, &env); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range env.Data.Card.Sections {
		names = append(names, s.Name)
	}
	return names
}

// ---- Chromium ------------------------------------------------------------

// signInTab is a tab of its own browser context (its own cookies, as
// another person's browser) with the sign-in test's helpers.
type signInTab struct {
	*chromiumtest.Tab
	t *testing.T
}

// startChromium starts a headless Chromium that accepts the provider's
// test certificate.
func startChromium(t *testing.T) context.Context {
	t.Helper()
	return chromiumtest.Start(t, chromedp.WindowSize(1366, 768), chromedp.Flag("ignore-certificate-errors", true))
}

func newPerson(t *testing.T, browser context.Context, name string) *signInTab {
	t.Helper()
	tab := chromiumtest.NewTab(t, browser, name, chromedp.WithNewBrowserContext())
	// A sign-in is several page loads through the provider, on a loaded
	// machine.
	tab.Patience = 45 * time.Second
	return &signInTab{Tab: tab, t: t}
}

func (p *signInTab) str(expr string) string {
	p.t.Helper()
	return chromiumtest.Eval[string](p.Tab, expr)
}

func (p *signInTab) run(expr string) {
	p.t.Helper()
	p.str("(" + expr + ", '')")
}

func (p *signInTab) open(u string) {
	p.t.Helper()
	p.Do(chromedp.Navigate(u))
}

// logInAtProvider types u's credentials into the provider's login page,
// once the browser is on it.
func (p *signInTab) logInAtProvider(idp *testidp.IdP, u testidp.User) {
	p.t.Helper()
	p.WaitFor("the provider's login page", fmt.Sprintf(`location.origin === %q && location.pathname === '/login' && !!document.querySelector('input[name=username]')`, idp.Issuer))
	p.run(fmt.Sprintf(`(() => {
		document.querySelector('input[name=username]').value = %q;
		document.querySelector('input[name=password]').value = %q;
		document.querySelector('form').submit();
	})()`, u.Username, u.Password))
}

const pageLive = `location.pathname === '/' && document.querySelector('#conn') && document.querySelector('#conn').dataset.connection === 'open'`

func (p *signInTab) resize(w, h int64) {
	p.t.Helper()
	p.Do(chromedp.EmulateViewport(w, h))
	p.WaitFor(fmt.Sprintf("the size %dx%d", w, h), fmt.Sprintf(`innerWidth === %d && innerHeight === %d`, w, h))
}

// shots saves what the person sees at a laptop's and a phone's size.
func (p *signInTab) shots(name string) {
	p.t.Helper()
	for _, size := range [][2]int64{{1366, 768}, {390, 844}} {
		p.resize(size[0], size[1])
		if p.str(`String(document.scrollingElement.scrollWidth <= innerWidth)`) != "true" {
			p.t.Errorf("%s: %s at %dx%d scrolls sideways", p.Name, name, size[0], size[1])
		}
		p.Shot(fmt.Sprintf("signin-%s-%dx%d", name, size[0], size[1]))
	}
	p.resize(1366, 768)
}

func cardSection(callID, section string) string {
	return fmt.Sprintf(`document.querySelector('article.pop[data-call-id=%q] [data-section=%q]')`, callID, section)
}

// ---- the tests -------------------------------------------------------------

// Opening the page without a session goes to the company's sign-in; back
// from the provider the page is live as the agent, and the card comes with
// the sections the agent's roles allow: Alice (credit role from her
// groups) sees the credit section, Carol does not, in the page and in the
// frames themselves. An account that is no agent is told so; signing out
// ends the session here and at the provider.
func TestCompanySignInInChromium(t *testing.T) {
	d := startSignInDaemon(t)
	browser := startChromium(t)

	// Alice opens the page: no session, so the code flow starts by itself.
	a := newPerson(t, browser, "alice")
	a.open(d.base + "/")
	a.logInAtProvider(d.idp, alice)
	a.WaitFor("the page live as Alice", pageLive+` && document.querySelector('#agent').textContent.includes('Alice Agent')
		&& !document.querySelector('#signout').hidden`)
	if got := a.str(`location.hash + location.search`); got != "" {
		t.Errorf("the page's address keeps %q after signing in", got)
	}

	// Carol, in her own browser.
	c := newPerson(t, browser, "carol")
	c.open(d.base + "/")
	c.logInAtProvider(d.idp, carol)
	c.WaitFor("the page live as Carol", pageLive+` && document.querySelector('#agent').textContent.includes('Carol Agent')`)

	// And Carol's softphone, reading the raw frames with her session.
	phone, _, _ := d.goSignIn(t, carol)
	raw, code, body := d.dialWS(t, phone.Jar, http.Header{"Origin": {d.base}})
	if raw == nil {
		t.Fatalf("Carol's session socket refused: %d %s", code, body)
	}

	d.ring(t, "c-alice", hoffmannPhone, "1001")
	d.ring(t, "c-carol", hoffmannPhone, "1003")
	a.WaitFor("Alice's card with the credit section", cardSection("cti/c-alice", "credit")+` !== null
		&& `+cardSection("cti/c-alice", "credit")+`.textContent.includes('early-payment discount')`)
	c.WaitFor("Carol's card", cardSection("cti/c-carol", "accounting")+` !== null`)
	if c.str(`String(`+cardSection("cti/c-carol", "credit")+` === null && !document.body.innerText.includes('early-payment discount'))`) != "true" {
		t.Error("Carol's page shows the credit section")
	}
	frame := popFrame(t, raw, "cti/c-carol")
	if names := sectionsOf(t, frame); slices.Contains(names, "credit") || !slices.Contains(names, "accounting") {
		t.Errorf("Carol's frame has sections %v", names)
	}
	if s := string(frame); strings.Contains(s, creditTerms) || strings.Contains(s, `"roles"`) || strings.Contains(s, "Credit limit") {
		t.Errorf("the credit section, or the roles, reached Carol's socket:\n%s", s)
	}
	a.shots("card-alice")
	c.shots("card-carol")

	// A bad and an expired demo link say exactly that, even on a daemon
	// with company sign-in.
	tokens, err := pop.NewTokenAuth([]byte(hsSecret))
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := mustTokenAuth(t, "another-secret-another-secret-xx").Issue("1001", "Alice", nil, time.Hour)
	l := newPerson(t, browser, "demo link")
	l.open(d.base + "/#token=" + forged)
	l.WaitFor("the invalid link", `document.querySelector('#invalid')?.hidden === false && document.querySelector('#invalid').textContent.includes('invalid or expired')`)
	expired := signHS256(t, hsSecret, map[string]any{"iss": pop.TokenIssuer, "aud": pop.TokenAudience, "sub": "1001",
		"iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()})
	l.open(d.base + "/#token=" + expired)
	l.WaitFor("the expired link", `document.querySelector('#invalid')?.hidden === false && (document.querySelector('[data-role=invalid-text]')?.textContent || '').includes('expired')`)
	// screenpopd token's links still work beside company sign-in.
	good, err := tokens.Issue("1002", "Bob Agent", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	l.open(d.base + "/#token=" + good)
	l.WaitFor("the page live by a token link", pageLive+` && document.querySelector('#signout').hidden`)

	// An account that is no agent here is told to ask IT.
	_, resp, page := d.goSignIn(t, dave)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "not an agent here") || !strings.Contains(page, "Ask IT") {
		t.Errorf("Dave's sign-in: %s\n%s", resp.Status, page)
	}

	// Alice signs out: the session ends here and at the provider.
	a.run(`document.querySelector('#signout button').click()`)
	a.WaitFor("the signed-out page", `location.pathname === '/auth/signed-out' && document.body.innerText.includes('signed out')`)
	if got := d.idp.EndedSessions(); !slices.Contains(got, alice.ID) {
		t.Errorf("sessions ended at the provider: %v, want Alice's", got)
	}
	// The page again: no session, so it goes to the provider's login.
	a.open(d.base + "/")
	a.WaitFor("the provider's login page again", fmt.Sprintf(`location.origin === %q && location.pathname === '/login'`, d.idp.Issuer))
}

// A session that ends closes its socket, and the page says "signed out —
// sign in again" with one button; the button leads to the provider and
// back to a live page.
func TestSessionExpiryInChromium(t *testing.T) {
	d := startSignInDaemon(t)
	browser := startChromium(t)
	d.idp.SetIDTokenLifetime(oidcClientID, 20*time.Second)

	b := newPerson(t, browser, "bob")
	b.open(d.base + "/")
	b.logInAtProvider(d.idp, bob)
	b.WaitFor("the page live as Bob", pageLive)
	d.idp.SetIDTokenLifetime(oidcClientID, time.Hour)

	const signedOut = `!document.querySelector('#signin').hidden
		&& document.querySelector('#signin h2').textContent === 'Signed out — sign in again'
		&& document.querySelector('#conn').dataset.connection === 'signed-out'
		&& !document.querySelector('#signin-login').hidden && document.querySelector('#signout').hidden`
	b.WaitFor("the signed-out prompt", signedOut)
	if got := b.str(`document.querySelector('#signin-login').getAttribute('href')`); got != "/auth/login" {
		t.Errorf("the sign-in button goes to %q", got)
	}
	b.shots("signed-out")

	b.run(`document.querySelector('#signin-login').click()`)
	b.logInAtProvider(d.idp, bob)
	b.WaitFor("the page live again", pageLive+` && document.querySelector('#signin').hidden`)
}

// Bearer tokens: the provider's are taken (also after it rotates its key),
// and what must not pass does not: forged, expired, for another issuer,
// signed with a key the provider withdrew, a forged demo link; and a
// session cookie is taken from the page's own origin only.
func TestBearerTokensAndOrigins(t *testing.T) {
	d := startSignInDaemon(t)
	opens := func(tok string) (int, string) {
		t.Helper()
		c, code, body := d.dialWS(t, nil, nil, pop.BearerSubprotocolPrefix+tok)
		if c != nil {
			c.Close()
		}
		return code, body
	}
	good := d.serviceToken(t)
	if code, body := opens(good); code != http.StatusSwitchingProtocols {
		t.Fatalf("the provider's token: %d %s", code, body)
	}
	claims := tokenClaims(t, good)
	ownKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	with := func(changes map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range claims {
			out[k] = v
		}
		for k, v := range changes {
			out[k] = v
		}
		return out
	}
	kid := d.idp.CurrentKeyID()
	hsTokens := mustTokenAuth(t, "another-secret-another-secret-xx")
	forgedLink, _ := hsTokens.Issue("1003", "Carol", nil, time.Hour)
	for name, tok := range map[string]string{
		"forged (another key under the provider's kid)": signES256(t, ownKey, kid, claims),
		"claims changed after signing":                  tamper(t, good, map[string]any{"extension": "1001"}),
		"expired":                                       d.idp.Sign(with(map[string]any{"exp": time.Now().Add(-2 * time.Minute).Unix(), "iat": time.Now().Add(-time.Hour).Unix()})),
		"another issuer":                                d.idp.Sign(with(map[string]any{"iss": "https://login.example.com"})),
		"another audience":                              d.idp.Sign(with(map[string]any{"aud": []string{"other-api"}})),
		"forged demo link":                              forgedLink,
	} {
		if code, body := opens(tok); code != http.StatusUnauthorized || !strings.Contains(body, "unauthenticated") {
			t.Errorf("%s: %d %s, want 401", name, code, body)
		}
	}

	// A session cookie opens the socket from the page's own origin only:
	// not from another site, another port or scheme of this host, or
	// without an Origin.
	client, _, _ := d.goSignIn(t, carol)
	host := strings.TrimPrefix(d.base, "http://")
	hostname, _, _ := net.SplitHostPort(host)
	for origin, want := range map[string]int{
		d.base:                      http.StatusSwitchingProtocols,
		"https://evil.example":      http.StatusForbidden,
		"https://" + host:           http.StatusForbidden,
		"http://" + hostname + ":1": http.StatusForbidden,
		"":                          http.StatusForbidden,
	} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, code, body := d.dialWS(t, client.Jar, h)
		if c != nil {
			c.Close()
		}
		if code != want {
			t.Errorf("cookie from Origin %q: %d %s, want %d", origin, code, body, want)
		}
	}

	// The provider rotates: a token of the new key is taken (the key set
	// is fetched again for its kid); the old key, withdrawn, stops working
	// once the keys are fetched again (jwks_max_age). Last: sign-ins right
	// after a rotation wait for the OIDC key set's refresh interval.
	oldToken := good
	d.idp.RotateKey(jose.ES256)
	newToken := d.serviceToken(t)
	eventually(t, "a token of the rotated key taken", func() bool { code, _ := opens(newToken); return code == http.StatusSwitchingProtocols })
	d.idp.WithdrawKey(kid)
	eventually(t, "a token of the withdrawn key refused", func() bool { code, _ := opens(oldToken); return code == http.StatusUnauthorized })
}

// The HTTP server bounds what one client may hold: a body sent slowly is
// cut off, an idle connection is closed, and agent sockets, hijacked, are
// not cut by those timeouts.
func TestHTTPServerTimeouts(t *testing.T) {
	cfg, err := configs.Demo()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(`[{name: cti, type: http, tokens_env: CTI}]`), &node); err != nil {
		t.Fatal(err)
	}
	if err := node.Content[0].Decode(&cfg.Telephony); err != nil {
		t.Fatal(err)
	}
	m, err := NewMain(cfg, Options{Env: func(k string) string { return map[string]string{"CTI": ctiToken}[k] }})
	if err != nil {
		t.Fatal(err)
	}
	m.timeouts = httpTimeouts{readHeader: 300 * time.Millisecond, read: 500 * time.Millisecond, write: 500 * time.Millisecond, idle: 500 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		m.Close()
	})
	addr := m.Addr().String()

	ws := dialAgent(t, m, "1001")

	// A body promised and never sent; a connection that never sends a
	// request; one idle after a request.
	for what, request := range map[string]string{
		"a request whose body never came": "POST /api/v1/call-events/cti HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + ctiToken +
			"\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"event\":",
		"a connection without a request": "",
		"an idle keep-alive connection":  "GET /healthz HTTP/1.1\r\nHost: " + addr + "\r\n\r\n",
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, request)
		if !closedByServer(t, conn) {
			t.Errorf("%s was kept open", what)
		}
		conn.Close()
	}

	// The agent's socket outlived every one of those timeouts.
	time.Sleep(time.Second)
	post := func(body string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/api/v1/call-events/cti", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ctiToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("call event: %s", resp.Status)
		}
	}
	post(`{"event":"ringing","call_id":"after","caller":{"number":"+49403456789"},"agents":["1001"]}`)
	popFrame(t, ws, "cti/after")
}

// closedByServer reads from c until the server closes it (true), or until
// a deadline far beyond the test's timeouts (false).
func closedByServer(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return false
			}
			return true
		}
	}
}

// ---- tokens ----------------------------------------------------------------

// serviceToken is the softphone's access token from the provider (client
// credentials): an RS256 or ES256 JWT naming agent 1003.
func (d *signInDaemon) serviceToken(t *testing.T) string {
	t.Helper()
	return d.idp.ServiceToken(t, "softphone", "softphone-secret")
}

func mustTokenAuth(t *testing.T, secret string) *pop.TokenAuth {
	t.Helper()
	a, err := pop.NewTokenAuth([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tokenClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// tamper changes claims of a signed token and keeps its signature.
func tamper(t *testing.T, tok string, changes map[string]any) string {
	t.Helper()
	c := tokenClaims(t, tok)
	for k, v := range changes {
		c[k] = v
	}
	b, _ := json.Marshal(c)
	parts := strings.Split(tok, ".")
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}

func signES256(t *testing.T, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	return signJWS(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, claims)
}

func signHS256(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	return signJWS(t, jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)}, claims)
}

func signJWS(t *testing.T, key jose.SigningKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := signer.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// eventually polls cond (the daemon fetches key sets at most once a
// second here) until it holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
