package auth_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/auth"
	"github.com/screenpop/screenpop/internal/testidp"
)

// clock is the Authenticator's clock in tests: real time, moved forward
// by hand. The provider keeps real time, as a remote one would.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

const (
	clientID     = "screenpop"
	clientSecret = "screenpop-client-secret"
	apiAudience  = "screenpop-api"
)

// The accounts of the provider. Alice and Dave have an extension claim,
// Carol is in the users table, Bob is neither.
var (
	alice = testidp.User{ID: "u-alice", Username: "alice", Password: "pw-alice", Name: "Alice Agent",
		Email: "alice@example.com", EmailVerified: true,
		Claims: map[string]any{"extension": "1001", "groups": []string{"callcenter-agents", "staff"}}}
	bob = testidp.User{ID: "u-bob", Username: "bob", Password: "pw-bob", Name: "Bob Accountant",
		Email: "bob@example.com", EmailVerified: true, Claims: map[string]any{"groups": []string{"accounting"}}}
	carol = testidp.User{ID: "u-carol", Username: "carol", Password: "pw-carol", Name: "Carol Lead",
		Claims: map[string]any{"groups": []string{"callcenter-leads", "callcenter-agents"}}}
	dave = testidp.User{ID: "u-dave", Username: "dave", Password: "pw-dave", Name: "Dave Elsewhere",
		Claims: map[string]any{"extension": "9999"}}
)

// knownAgents are the agents of the daemon under test.
var knownAgents = map[string]bool{"1001": true, "1002": true}

// rig is a provider, an Authenticator and the daemon's HTTP server, whose
// pages (all but /auth/) answer who the request comes from.
type rig struct {
	t     *testing.T
	idp   *testidp.IdP
	auth  *auth.Authenticator
	rp    *httptest.Server
	clock *clock
	reg   *prometheus.Registry
}

type rigOptions struct {
	idTokenLifetime     time.Duration
	accessTokenLifetime time.Duration
	edit                func(*auth.Options) // changes the options before New
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	l, rpURL := listen(t)
	idp := testidp.Start(t, testidp.Config{
		AccessTokenLifetime: o.accessTokenLifetime,
		Users:               []testidp.User{alice, bob, carol, dave},
		Web: []testidp.WebClient{{
			ID: clientID, Secret: clientSecret,
			RedirectURIs:           []string{rpURL + "/auth/callback"},
			PostLogoutRedirectURIs: []string{rpURL + "/auth/signed-out"},
			IDTokenLifetime:        o.idTokenLifetime,
		}},
		Services: []testidp.ServiceClient{
			{ID: "softphone", Secret: "softphone-secret", Audience: []string{apiAudience}, Claims: map[string]any{"extension": "1001", "name": "Alice (softphone)"}},
			{ID: "other-app", Secret: "other-secret", Audience: []string{"other-api"}, Claims: map[string]any{"extension": "1001"}},
			{ID: "reporting", Secret: "reporting-secret", Audience: []string{apiAudience}},
		},
	})
	r := &rig{t: t, idp: idp, clock: &clock{}, reg: prometheus.NewRegistry()}
	opts := auth.Options{
		OIDC: &auth.OIDCConfig{
			Issuer:          idp.Issuer,
			ClientID:        clientID,
			ClientSecretEnv: "SCREENPOP_OIDC_SECRET",
			RedirectURL:     rpURL + "/auth/callback",
			ClaimMapping: auth.ClaimMapping{
				AgentClaim: "extension",
				Users:      map[string]string{"Carol": "1002"},
				RolesClaim: "groups",
				RoleMap:    map[string]string{"callcenter-agents": "agent", "callcenter-leads": "supervisor"},
			},
		},
		ClientSecret: clientSecret,
		JWT: &auth.JWTConfig{
			JWKSURL:      idp.KeysURL(),
			Issuer:       idp.Issuer,
			Audience:     apiAudience,
			ClaimMapping: auth.ClaimMapping{AgentClaim: "extension"},
		},
		HS256:      &auth.HS256{Secret: []byte(hsSecret), Issuer: "screenpop", Audience: "screenpop-agent"},
		KnownAgent: func(id string) bool { return knownAgents[id] },
		HTTPClient: idp.Client(),
		Registerer: r.reg,
		Now:        r.clock.Now,
	}
	if o.edit != nil {
		o.edit(&opts)
	}
	a, err := auth.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.auth = a
	mux := http.NewServeMux()
	mux.Handle("/auth/", a.Handler())
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		id, err := a.Authenticate(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "desk of agent %s (%s) roles %v", id.AgentID, id.Name, id.Roles)
	})
	r.rp = serve(t, l, mux)
	return r
}

// listen opens the daemon's listener first: its URL goes into the
// configuration, which the handler is built from.
func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l, "https://" + l.Addr().String()
}

func serve(t *testing.T, l net.Listener, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	_ = s.Listener.Close()
	s.Listener = l
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// browser is an agent's browser: a cookie jar, and the test CA.
type browser struct {
	t      *testing.T
	r      *rig
	client *http.Client
	// stopAt, when set, makes the browser not follow a redirect to this
	// path of the daemon: the test looks at or changes the request.
	stopAt string
}

func (r *rig) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		r.t.Fatal(err)
	}
	b := &browser{t: r.t, r: r}
	b.client = &http.Client{
		Transport: r.idp.Client().Transport,
		Jar:       jar,
		Timeout:   20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if b.stopAt != "" && req.URL.Path == b.stopAt {
				return http.ErrUseLastResponse
			}
			if len(via) >= 10 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
	return b
}

func (b *browser) get(u string) *http.Response {
	b.t.Helper()
	resp, err := b.client.Get(u)
	if err != nil {
		b.t.Fatalf("GET %s: %v", u, err)
	}
	return resp
}

func (b *browser) post(u string, form url.Values) *http.Response {
	b.t.Helper()
	resp, err := b.client.PostForm(u, form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", u, err)
	}
	return resp
}

// startLogin opens /auth/login and follows to the provider's login page;
// it returns the authorization request's ID from that page's URL.
func (b *browser) startLogin(returnTo string) string {
	b.t.Helper()
	u := b.r.rp.URL + "/auth/login"
	if returnTo != "" {
		u += "?return=" + url.QueryEscape(returnTo)
	}
	resp := b.get(u)
	body := readBody(b.t, resp)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/login" {
		b.t.Fatalf("login did not reach the provider's login page: %s %s\n%s", resp.Request.URL, resp.Status, body)
	}
	return resp.Request.URL.Query().Get("id")
}

// submit types the credentials into the provider's login page and follows
// the redirects (back to the daemon unless stopAt says otherwise).
func (b *browser) submit(requestID string, u testidp.User) *http.Response {
	b.t.Helper()
	return b.post(b.r.idp.Issuer+"/login", url.Values{"id": {requestID}, "username": {u.Username}, "password": {u.Password}})
}

// signIn runs the whole sign-in of u and returns the last response.
func (b *browser) signIn(u testidp.User, returnTo string) *http.Response {
	b.t.Helper()
	return b.submit(b.startLogin(returnTo), u)
}

// callbackURL signs u in up to the provider's redirect to /auth/callback
// and returns that URL, unvisited.
func (b *browser) callbackURL(u testidp.User) *url.URL {
	b.t.Helper()
	b.stopAt = "/auth/callback"
	defer func() { b.stopAt = "" }()
	resp := b.signIn(u, "")
	readBody(b.t, resp)
	loc, err := resp.Location()
	if err != nil || loc.Path != "/auth/callback" {
		b.t.Fatalf("the provider did not redirect to the callback: %s %v", resp.Status, err)
	}
	return loc
}

// cookie returns the daemon's cookie of that name in the jar.
func (b *browser) cookie(name string) *http.Cookie {
	u, _ := url.Parse(b.r.rp.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func expectPage(t *testing.T, resp *http.Response, status int, wants ...string) string {
	t.Helper()
	body := readBody(t, resp)
	if resp.StatusCode != status {
		t.Fatalf("%s: status %s, want %d\n%s", resp.Request.URL, resp.Status, status, body)
	}
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s: page lacks %q:\n%s", resp.Request.URL, w, body)
		}
	}
	return body
}

// serviceToken gets an access token with the client credentials grant,
// as another client of screenpopd would.
func (r *rig) serviceToken(id, secret string) string {
	r.t.Helper()
	return r.idp.ServiceToken(r.t, id, secret)
}

// request is an upgrade request to the agent socket carrying tok.
func request(header, value string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/ws", nil)
	if header != "" {
		req.Header.Set(header, value)
	}
	return req
}

func bearer(tok string) *http.Request { return request("Authorization", "Bearer "+tok) }

func subprotocol(tok string) *http.Request {
	return request("Sec-WebSocket-Protocol", "screenpop.v1, bearer."+tok)
}

// counter reads one labelled counter of the rig's registry.
func (r *rig) counter(name string, labels ...string) float64 {
	r.t.Helper()
	mfs, err := r.reg.Gather()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i, lp := range m.GetLabel() {
				if i >= len(labels)/2 || lp.GetName() != labels[2*i] || lp.GetValue() != labels[2*i+1] {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	r.t.Fatalf("no metric %s%v", name, labels)
	return 0
}
