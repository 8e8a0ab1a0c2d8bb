package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// loginTimeout is how long a sign-in may take at the identity provider.
const loginTimeout = 10 * time.Minute

// expiredGrace is how long a session is kept past its end, refused, so
// that the log and the metrics tell an expired session from an unknown
// cookie.
const expiredGrace = 10 * time.Minute

// maxReturnPath bounds the return path remembered through a sign-in.
const maxReturnPath = 2048

// signIn is the OpenID Connect relying party.
type signIn struct {
	cfg    OIDCConfig
	secret string
	// secure: the public URL is https, so cookies are Secure and __Host-.
	secure bool
	// base is the public path prefix before /auth/ (empty without a proxy
	// prefix); postLogout is where the provider sends the browser back to
	// after signing out there.
	base       string
	postLogout string

	mu   sync.Mutex
	disc *discovery // nil until discovery succeeded
}

// discovery is what the provider's discovery document told.
type discovery struct {
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	keys       *keySet
	endSession string // end_session_endpoint; empty when not advertised
}

func newSignIn(cfg OIDCConfig, secret string) *signIn {
	u, _ := url.Parse(cfg.RedirectURL) // Validate parsed it
	s := &signIn{
		cfg:        cfg,
		secret:     secret,
		secure:     u.Scheme == "https",
		base:       strings.TrimSuffix(u.Path, CallbackPath),
		postLogout: cfg.PostLogoutRedirectURL,
	}
	if s.postLogout == "" {
		s.postLogout = strings.TrimSuffix(cfg.RedirectURL, CallbackPath) + "/auth/signed-out"
	}
	return s
}

// discover fetches the discovery document the first time it is needed and
// keeps it. A failure is not kept: the next sign-in tries again, so the
// daemon starts while the provider is down and recovers by itself.
func (s *signIn) discover(ctx context.Context, a *Authenticator) (*discovery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.disc != nil {
		return s.disc, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, a.client), s.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("auth.oidc: discovery of %s: %w", s.cfg.Issuer, err)
	}
	var doc struct {
		JWKSURI    string `json:"jwks_uri"`
		EndSession string `json:"end_session_endpoint"`
	}
	if err := p.Claims(&doc); err != nil {
		return nil, fmt.Errorf("auth.oidc: discovery of %s: %w", s.cfg.Issuer, err)
	}
	if err := checkURL(doc.JWKSURI); err != nil {
		return nil, fmt.Errorf("auth.oidc: discovery of %s: jwks_uri: %w", s.cfg.Issuer, err)
	}
	keys := a.newKeySet("oidc", doc.JWKSURI, s.cfg.TokenChecks)
	s.disc = &discovery{
		oauth: oauth2.Config{
			ClientID:     s.cfg.ClientID,
			ClientSecret: s.secret,
			Endpoint:     p.Endpoint(),
			RedirectURL:  s.cfg.RedirectURL,
			Scopes:       s.cfg.Scopes,
		},
		keys:       keys,
		verifier:   a.newVerifier(s.cfg.Issuer, s.cfg.ClientID, keys, s.cfg.TokenChecks),
		endSession: doc.EndSession,
	}
	return s.disc, nil
}

// cookieNames are the names of the two cookies. With https they carry the
// __Host- prefix, which browsers accept only with Secure, Path=/ and no
// Domain: no other host of the domain (a sibling app, a subdomain taken
// over) can set or overwrite them.
type cookieNames struct {
	session string // the opaque session ID
	login   string // binds a sign-in to the browser that started it
}

func cookieNamesFor(secure bool) cookieNames {
	if secure {
		return cookieNames{session: "__Host-screenpop_session", login: "__Host-screenpop_login"}
	}
	return cookieNames{session: "screenpop_session", login: "screenpop_login"}
}

// setCookie sets an HttpOnly cookie (scripts of the page never read it)
// with SameSite=Lax: Strict would keep the cookies off the identity
// provider's redirect to /auth/callback and off the first page load after
// it (both are navigations that began on another site), and signing in
// would fail; Lax still keeps them off cross-site subrequests and POSTs,
// which is what forged requests use. maxAge < 0 deletes the cookie.
func (a *Authenticator) setCookie(w http.ResponseWriter, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		Secure:   a.signIn.secure,
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
}

// Handler serves the sign-in endpoints under /auth/; the daemon mounts it
// with mux.Handle("/auth/", a.Handler()).
//
//	GET  /auth/login?return=/path  start a sign-in at the identity provider
//	GET  /auth/callback            where the provider sends the browser back
//	GET  /auth/logout              a page with a sign-out button
//	POST /auth/logout              end the session (and the provider's)
//	GET  /auth/signed-out          "signed out; sign in again"
//	GET  /auth/session             who am I, as JSON; 401 with login_url
func (a *Authenticator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth/login", a.oidcOnly(a.serveLogin))
	mux.HandleFunc("GET /auth/callback", a.oidcOnly(a.serveCallback))
	mux.HandleFunc("GET /auth/logout", a.oidcOnly(a.serveLogoutPage))
	mux.HandleFunc("POST /auth/logout", a.oidcOnly(a.serveLogout))
	mux.HandleFunc("GET /auth/signed-out", a.oidcOnly(a.serveSignedOut))
	mux.HandleFunc("GET /auth/session", a.serveSession)
	return mux
}

func (a *Authenticator) oidcOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.signIn == nil {
			http.Error(w, "sign-in with an identity provider is not configured (auth.oidc)", http.StatusNotFound)
			return
		}
		h(w, r)
	}
}

// LoginURL is the path that starts a sign-in and comes back to returnTo (a
// local path; anything else comes back to the page).
func (a *Authenticator) LoginURL(returnTo string) string {
	if a.signIn == nil {
		return ""
	}
	u := a.signIn.base + "/auth/login"
	if returnTo = a.safeReturn(returnTo); returnTo != a.signIn.base+"/" {
		u += "?return=" + url.QueryEscape(returnTo)
	}
	return u
}

// SignOutOrigins are the origins a sign-out goes on to after POST
// /auth/logout: the identity provider's issuer (where Keycloak, Entra ID,
// ZITADEL and Okta serve their end_session_endpoint) and that of
// post_logout_redirect_url. A page with a sign-out form allows them in its
// Content-Security-Policy (form-action), which browsers apply to the
// redirects that follow a form too. Nil without OIDC.
func (a *Authenticator) SignOutOrigins() []string {
	if a.signIn == nil {
		return nil
	}
	var out []string
	for _, raw := range []string{a.signIn.cfg.Issuer, a.signIn.postLogout} {
		if u, err := url.Parse(raw); err == nil && u.Host != "" {
			if o := u.Scheme + "://" + u.Host; !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	return out
}

// safeReturn returns raw if it is a path on this site, else the page: a
// return parameter naming another site would make the sign-in an open
// redirect for phishing.
func (a *Authenticator) safeReturn(raw string) string {
	home := a.signIn.base + "/"
	if raw == "" || len(raw) > maxReturnPath || !strings.HasPrefix(raw, "/") ||
		strings.HasPrefix(raw, "//") || strings.HasPrefix(raw, "/\\") {
		return home
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return home
	}
	return raw
}

func (a *Authenticator) serveLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	d, err := a.signIn.discover(ctx, a)
	if err != nil {
		a.loginFailed(w, loginUnavailable, http.StatusServiceUnavailable, pageUnavailable, err)
		return
	}
	// One login cookie per browser, reused while it lives, so that two tabs
	// signing in at once do not refuse each other's callback.
	binding := randomString()
	if c, err := r.Cookie(a.cookies.login); err == nil && len(c.Value) == randomLen {
		binding = c.Value
	}
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	pending := PendingLogin{
		BindingHash: sessionKey(binding),
		Nonce:       nonce,
		Verifier:    verifier,
		ReturnTo:    a.safeReturn(r.URL.Query().Get("return")),
	}
	if err := a.logins.Put(ctx, state, pending, a.now().Add(loginTimeout)); err != nil {
		a.loginFailed(w, loginUnavailable, http.StatusServiceUnavailable, pageBusy, err)
		return
	}
	a.setCookie(w, a.cookies.login, binding, int(loginTimeout/time.Second))
	noStore(w)
	http.Redirect(w, r, d.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), http.StatusFound)
}

func (a *Authenticator) serveCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	pending, err := a.takeLogin(ctx, r, q.Get("state"))
	if err != nil {
		a.loginFailed(w, loginStale, http.StatusBadRequest, pageStale, err)
		return
	}
	if e := q.Get("error"); e != "" {
		err := fmt.Errorf("the identity provider answered %s: %s", e, q.Get("error_description"))
		a.loginFailed(w, loginIdPRefused, http.StatusForbidden, pageIdPRefused.with(e), err)
		return
	}
	d, err := a.signIn.discover(ctx, a)
	if err != nil {
		a.loginFailed(w, loginUnavailable, http.StatusServiceUnavailable, pageUnavailable, err)
		return
	}
	tok, err := d.oauth.Exchange(oidc.ClientContext(ctx, a.client), q.Get("code"), oauth2.VerifierOption(pending.Verifier))
	if err != nil {
		a.loginFailed(w, loginExchangeFailed, http.StatusBadGateway, pageFailed, fmt.Errorf("code exchange: %w", err))
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		a.loginFailed(w, loginExchangeFailed, http.StatusBadGateway, pageFailed, errors.New("the token response has no id_token"))
		return
	}
	idt, c, err := a.checkIDToken(ctx, d, rawID, pending.Nonce)
	if err != nil {
		a.loginFailed(w, loginInvalidToken, http.StatusUnauthorized, pageFailed, err)
		return
	}
	id, err := a.identify(&a.signIn.cfg.ClaimMapping, c)
	if na := (*NotAgentError)(nil); errors.As(err, &na) {
		a.loginFailed(w, loginNotAgent, http.StatusForbidden, pageNotAgent.with(na.Account), err)
		return
	}
	if err != nil {
		a.loginFailed(w, loginInvalidToken, http.StatusUnauthorized, pageFailed, err)
		return
	}
	now := a.now()
	id.Method, id.Expires = MethodSession, idt.Expiry
	if lt := a.signIn.cfg.SessionLifetime; lt > 0 {
		id.Expires = now.Add(lt)
	} else if limit := now.Add(maxSessionLifetime); id.Expires.After(limit) {
		id.Expires = limit // a provider issuing month-long ID tokens
	}
	if err := a.startSession(w, r, Session{Identity: id, IDToken: rawID, Created: now}); err != nil {
		a.loginFailed(w, loginUnavailable, http.StatusServiceUnavailable, pageBusy, err)
		return
	}
	a.metrics.logins.WithLabelValues(loginOK).Inc()
	a.log.Info("signed in", "agent", id.AgentID, "subject", id.Subject, "expires", id.Expires)
	noStore(w)
	http.Redirect(w, r, pending.ReturnTo, http.StatusSeeOther)
}

// takeLogin returns and removes the pending sign-in of state, if the
// browser presenting it is the one that started it. Removed first, so a
// state is good for one callback only.
func (a *Authenticator) takeLogin(ctx context.Context, r *http.Request, state string) (PendingLogin, error) {
	if state == "" {
		return PendingLogin{}, errors.New("callback without state")
	}
	pending, err := a.logins.Get(ctx, state)
	if err != nil {
		return PendingLogin{}, fmt.Errorf("state unknown (expired, used, or never issued here): %w", err)
	}
	if err := a.logins.Delete(ctx, state); err != nil {
		return PendingLogin{}, err
	}
	c, err := r.Cookie(a.cookies.login)
	if err != nil || subtle.ConstantTimeCompare([]byte(sessionKey(c.Value)), []byte(pending.BindingHash)) != 1 {
		return PendingLogin{}, errors.New("state issued to another browser (login cookie missing or different)")
	}
	return pending, nil
}

// checkIDToken verifies the ID token (signature by the provider's key set,
// algorithm, iss, aud, exp), its nonce against the one this sign-in sent,
// and azp when it names several audiences.
func (a *Authenticator) checkIDToken(ctx context.Context, d *discovery, raw, nonce string) (*oidc.IDToken, claims, error) {
	idt, err := d.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, nil, fmt.Errorf("ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, nil, errors.New("ID token: nonce differs from the one this sign-in sent (replayed or injected token)")
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		return nil, nil, fmt.Errorf("ID token claims: %w", err)
	}
	if len(idt.Audience) > 1 && c.text("azp") != a.signIn.cfg.ClientID {
		return nil, nil, fmt.Errorf("ID token for several audiences %v, authorized party %q is not this client", idt.Audience, c.text("azp"))
	}
	return idt, c, nil
}

// startSession stores s under a new random ID and sets the cookie. A
// session the browser had is ended: a new sign-in never reuses an ID that
// existed before it (session fixation).
func (a *Authenticator) startSession(w http.ResponseWriter, r *http.Request, s Session) error {
	ctx := r.Context()
	if c, err := r.Cookie(a.cookies.session); err == nil {
		_ = a.sessions.Delete(ctx, sessionKey(c.Value))
	}
	id := randomString()
	if err := a.sessions.Put(ctx, sessionKey(id), s, s.Identity.Expires.Add(expiredGrace)); err != nil {
		return fmt.Errorf("storing the session: %w", err)
	}
	a.setCookie(w, a.cookies.session, id, int(s.Identity.Expires.Sub(s.Created)/time.Second))
	return nil
}

func (a *Authenticator) loginFailed(w http.ResponseWriter, outcome string, status int, p page, err error) {
	a.metrics.logins.WithLabelValues(outcome).Inc()
	a.log.Info("sign-in refused", "outcome", outcome, "err", err)
	if p.Link == "" {
		p.Link, p.LinkText = a.LoginURL(""), "Sign in again"
	}
	p.render(w, status)
}

func (a *Authenticator) serveLogoutPage(w http.ResponseWriter, _ *http.Request) {
	p := pageConfirmLogout
	p.Form = a.signIn.base + "/auth/logout"
	p.render(w, http.StatusOK)
}

// serveLogout ends the session here, then at the identity provider when it
// advertises an end_session_endpoint (else the provider's own session would
// sign the user straight back in). POST only: with SameSite=Lax the session
// cookie is not sent on another site's form post, so no page elsewhere can
// sign an agent out.
func (a *Authenticator) serveLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var idToken string
	if c, err := r.Cookie(a.cookies.session); err == nil {
		key := sessionKey(c.Value)
		if s, err := a.sessions.Get(ctx, key); err == nil {
			idToken = s.IDToken
			a.log.Info("signed out", "agent", s.Identity.AgentID, "subject", s.Identity.Subject)
		}
		if err := a.sessions.Delete(ctx, key); err != nil {
			a.log.Warn("ending the session failed", "err", err)
		}
	}
	a.setCookie(w, a.cookies.session, "", -1)
	noStore(w)
	target := a.signIn.postLogout
	if d, err := a.signIn.discover(ctx, a); err == nil && d.endSession != "" && idToken != "" {
		q := url.Values{
			"id_token_hint":            {idToken},
			"client_id":                {a.signIn.cfg.ClientID},
			"post_logout_redirect_uri": {a.signIn.postLogout},
		}
		sep := "?"
		if strings.Contains(d.endSession, "?") {
			sep = "&"
		}
		target = d.endSession + sep + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

func (a *Authenticator) serveSignedOut(w http.ResponseWriter, _ *http.Request) {
	p := pageSignedOut
	p.Link, p.LinkText = a.LoginURL(""), "Sign in again"
	p.render(w, http.StatusOK)
}

// sessionInfo is the answer of /auth/session.
type sessionInfo struct {
	*Identity
	Error    string `json:"error,omitempty"`
	Message  string `json:"message,omitempty"`
	LoginURL string `json:"login_url,omitempty"`
}

// serveSession answers who the request comes from: 200 with the identity,
// 401 with login_url, 403 for an account that is no agent here.
func (a *Authenticator) serveSession(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	id, err := a.Authenticate(r)
	var na *NotAgentError
	switch {
	case err == nil:
		if id.Roles == nil {
			id.Roles = []string{}
		}
		writeJSON(w, http.StatusOK, sessionInfo{Identity: &id})
	case errors.As(err, &na):
		msg := fmt.Sprintf("Your account %s is not an agent here (%s). Ask IT to set it up as an agent.", na.Account, na.Reason)
		writeJSON(w, http.StatusForbidden, sessionInfo{Error: "not_agent", Message: msg, LoginURL: a.LoginURL(r.URL.Query().Get("return"))})
	default:
		writeJSON(w, http.StatusUnauthorized, sessionInfo{Error: "unauthenticated", LoginURL: a.LoginURL(r.URL.Query().Get("return"))})
	}
}

// randomLen is the length of randomString's strings: 32 random bytes.
var randomLen = base64.RawURLEncoding.EncodedLen(32)

// randomString returns 256 random bits, URL-safe: session IDs, states,
// nonces and login cookies.
func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
}
