// Package testidp runs a real OpenID Provider for tests (auth, cmd/screenpopd):
// zitadel/oidc's op package (discovery, authorization with PKCE, token
// endpoint, JWKS, end_session, client credentials) over an in-memory
// Storage, with a plain username/password login page. The knobs a test
// needs to see auth refuse things are methods: RotateKey, TamperNonce.
package testidp

import (
	"context"
	"crypto/sha256"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/text/language"
)

// User is an account at the provider.
type User struct {
	ID            string // sub
	Username      string // preferred_username
	Password      string
	Name          string
	Email         string
	EmailVerified bool
	// Claims are added to the ID token and access tokens: extension, groups.
	Claims map[string]any
}

// WebClient is a confidential client using the authorization code flow:
// screenpopd.
type WebClient struct {
	ID, Secret             string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// IDTokenLifetime defaults to an hour.
	IDTokenLifetime time.Duration
}

// ServiceClient is a client using the client credentials grant: a CRM
// calling screenpopd with a bearer token.
type ServiceClient struct {
	ID, Secret string
	// Audience of its access tokens.
	Audience []string
	// Claims are added to its access tokens.
	Claims map[string]any
}

// Config is what the provider knows.
type Config struct {
	Users    []User
	Web      []WebClient
	Services []ServiceClient
	// AccessTokenLifetime defaults to five minutes.
	AccessTokenLifetime time.Duration
}

// IdP is a running provider.
type IdP struct {
	// Issuer is its https URL on the loopback interface.
	Issuer string
	server *httptest.Server
	store  *storage
	// keysServed counts requests to the JWKS endpoint.
	keysServed atomic.Int64
}

// keysPath is the JWKS endpoint of zitadel's op (op.DefaultEndpoints).
const keysPath = "/keys"

// Start runs a provider until the test ends.
func Start(t testing.TB, cfg Config) *IdP {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	idp := &IdP{Issuer: "https://" + l.Addr().String(), store: newStorage(cfg)}

	provider, err := op.NewProvider(&op.Config{
		CryptoKey:                sha256.Sum256([]byte("testidp access token encryption")),
		DefaultLogoutRedirectURI: "/logged-out",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		SupportedUILocales:       []language.Tag{language.English},
	}, idp.store, op.StaticIssuer(idp.Issuer))
	if err != nil {
		t.Fatal(err)
	}
	callback := op.AuthCallbackURL(provider)
	interceptor := op.NewIssuerInterceptor(provider.IssuerFromRequest)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		_ = loginForm.Execute(w, r.URL.Query().Get("id"))
	})
	mux.Handle("POST /login", interceptor.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PostFormValue("id")
		if err := idp.store.checkPassword(id, r.PostFormValue("username"), r.PostFormValue("password")); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		http.Redirect(w, r, callback(r.Context(), id), http.StatusFound)
	}))
	mux.HandleFunc("GET /logged-out", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("signed out at the provider"))
	})
	mux.Handle("/", provider)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == keysPath {
			idp.keysServed.Add(1)
		}
		mux.ServeHTTP(w, r)
	})

	idp.server = httptest.NewUnstartedServer(handler)
	_ = idp.server.Listener.Close()
	idp.server.Listener = l
	idp.server.StartTLS()
	t.Cleanup(idp.server.Close)
	return idp
}

// loginForm is the provider's login page; the hidden id is the
// authorization request.
var loginForm = template.Must(template.New("login").Parse(`<!doctype html>
<form method="post" action="/login">
<input type="hidden" name="id" value="{{.}}">
<input name="username"><input name="password" type="password">
<button type="submit">Sign in</button>
</form>`))

// LoginURL is the path of the login page, as a browser lands on it.
func LoginURL(requestID string) string { return "/login?id=" + url.QueryEscape(requestID) }

// Client returns an HTTP client that trusts the provider's certificate
// (and that of every httptest TLS server: they share one).
func (i *IdP) Client() *http.Client { return i.server.Client() }

// ServiceToken is the access token the service client id gets with the
// client credentials grant, as another client of screenpopd would.
func (i *IdP) ServiceToken(t testing.TB, id, secret string) string {
	t.Helper()
	cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: i.Issuer + "/oauth/token"}
	tok, err := cc.Token(context.WithValue(context.Background(), oauth2.HTTPClient, i.Client()))
	if err != nil {
		t.Fatalf("client credentials for %s: %v", id, err)
	}
	return tok.AccessToken
}

// KeysURL is the provider's JWKS endpoint.
func (i *IdP) KeysURL() string { return i.Issuer + keysPath }

// KeysServed is how many times the JWKS endpoint was asked.
func (i *IdP) KeysServed() int { return int(i.keysServed.Load()) }

// RotateKey makes a new signing key of alg (RS256 or ES256) the current
// one and returns its kid. Earlier keys stay published.
func (i *IdP) RotateKey(alg jose.SignatureAlgorithm) string { return i.store.rotate(alg, true) }

// AddKey publishes a new key of alg without signing with it yet, as
// providers do before a rotation, and returns its kid.
func (i *IdP) AddKey(alg jose.SignatureAlgorithm) string { return i.store.rotate(alg, false) }

// WithdrawKey stops publishing the key kid, as a provider does with a
// compromised key.
func (i *IdP) WithdrawKey(kid string) { i.store.withdraw(kid) }

// SetIDTokenLifetime changes how long the ID tokens of the web client
// clientID live from now on: a test sees a session end without waiting
// an hour.
func (i *IdP) SetIDTokenLifetime(clientID string, d time.Duration) {
	i.store.setIDTokenLifetime(clientID, d)
}

// Sign signs claims with the provider's current key, under its kid, as the
// provider signs its tokens: a test makes tokens the provider would never
// issue (expired, for another issuer) that only their claims give away.
func (i *IdP) Sign(claims map[string]any) string {
	tok, err := i.store.sign(claims)
	if err != nil {
		panic(err) // the provider's own key and JSON claims: cannot fail
	}
	return tok
}

// CurrentKeyID is the kid the provider signs with now.
func (i *IdP) CurrentKeyID() string {
	i.store.mu.Lock()
	defer i.store.mu.Unlock()
	return i.store.current.id
}

// TamperNonce makes the next authorization requests carry nonce instead of
// the client's, as a replayed or injected ID token would; "" stops it.
func (i *IdP) TamperNonce(nonce string) { i.store.setNonceOverride(nonce) }

// EndedSessions lists the subjects whose sessions end_session ended.
func (i *IdP) EndedSessions() []string { return i.store.endedSessions() }
