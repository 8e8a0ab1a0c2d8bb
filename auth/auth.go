// Package auth signs agents in: OpenID Connect for the agent page (a
// server-side session behind an opaque cookie), and bearer tokens for other
// clients (JWTs checked against an identity provider's key set, or the HS256
// tokens screenpopd mints). It answers who a request comes from as an
// Identity, with the time it stops being valid.
//
// It imports nothing of screenpop but promreg, so pop and cmd/screenpopd can
// both use it.
package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/bearer"
)

// Options configure an Authenticator. At least one of OIDC, JWT and HS256 is
// required.
type Options struct {
	// OIDC enables the browser sign-in; ClientSecret is its secret, which
	// the caller resolves with OIDCConfig.LoadClientSecret.
	OIDC         *OIDCConfig
	ClientSecret string
	// JWT enables bearer tokens checked against a key set.
	JWT *JWTConfig
	// HS256 enables the tokens minted by screenpopd token.
	HS256 *HS256

	// KnownAgent, when set, refuses identities from the identity provider
	// (sessions and JWTs) whose agent ID it does not know, as not agents
	// here. It is asked on every request, so a reload that removes an
	// agent ends that agent's sessions.
	KnownAgent func(agentID string) bool

	// Sessions and Logins default to MemoryStores.
	Sessions Store[Session]
	Logins   Store[PendingLogin]

	// HTTPClient reaches the identity provider; default: a client with a
	// 10s timeout.
	HTTPClient *http.Client
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// HS256 checks the tokens of pop.TokenAuth (screenpopd token): the daemon
// passes the same secret, pop.TokenIssuer and pop.TokenAudience. Their
// subject is the agent ID, their claims name and roles.
type HS256 struct {
	Secret   []byte
	Issuer   string
	Audience string
	// ClockSkew defaults to DefaultClockSkew.
	ClockSkew time.Duration
}

// MinHS256SecretLength is the shortest HS256 secret accepted, the same as
// pop.MinSecretLength: a short HMAC secret is brute-forced from one token.
const MinHS256SecretLength = 32

// maxTokenBytes bounds a bearer token: a larger one is refused unparsed.
const maxTokenBytes = 16 << 10

// Authenticator says who a request comes from (Authenticate) and serves the
// sign-in endpoints (Handler).
type Authenticator struct {
	signIn     *signIn // nil without OIDC
	jwt        *jwtChecker
	hs256      *HS256
	knownAgent func(string) bool
	sessions   Store[Session]
	logins     Store[PendingLogin]
	client     *http.Client
	log        *slog.Logger
	metrics    *metrics
	now        func() time.Time
	cookies    cookieNames
}

// jwtChecker checks bearer JWTs: go-oidc's verifier (signature, algorithm,
// iss, aud, exp, nbf) over the rate-limited key set.
type jwtChecker struct {
	verifier *oidc.IDTokenVerifier
	keys     *keySet
	mapping  ClaimMapping
	algs     []string
}

// New validates opts and returns an Authenticator. It does no I/O: the
// identity provider is reached on the first sign-in or token (see Probe).
func New(opts Options) (*Authenticator, error) {
	if opts.OIDC == nil && opts.JWT == nil && opts.HS256 == nil {
		return nil, errors.New("auth: nothing to sign in with: configure oidc, jwt or the HS256 secret")
	}
	a := &Authenticator{
		knownAgent: opts.KnownAgent,
		client:     opts.HTTPClient,
		log:        opts.Logger,
		now:        opts.Now,
		sessions:   opts.Sessions,
		logins:     opts.Logins,
	}
	if a.client == nil {
		a.client = &http.Client{Timeout: 10 * time.Second}
	}
	if a.log == nil {
		a.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.sessions == nil {
		a.sessions = newMemoryStore[Session](DefaultMaxSessions, a.now)
	}
	if a.logins == nil {
		a.logins = newMemoryStore[PendingLogin](DefaultMaxLogins, a.now)
	}
	var err error
	if a.metrics, err = newMetrics(opts.Registerer); err != nil {
		return nil, fmt.Errorf("auth: metrics: %w", err)
	}
	var errs []error
	if opts.OIDC != nil {
		cfg := *opts.OIDC
		cfg.SetDefaults()
		if err := cfg.Validate(); err != nil {
			errs = append(errs, err)
		} else if opts.ClientSecret == "" {
			errs = append(errs, errors.New("auth.oidc: the client secret is empty"))
		} else {
			a.signIn = newSignIn(cfg, opts.ClientSecret)
			a.cookies = cookieNamesFor(a.signIn.secure)
		}
	}
	if opts.JWT != nil {
		cfg := *opts.JWT
		cfg.SetDefaults()
		if err := cfg.Validate(); err != nil {
			errs = append(errs, err)
		} else {
			a.jwt = a.newJWTChecker(cfg)
		}
	}
	if h := opts.HS256; h != nil {
		switch {
		case len(h.Secret) < MinHS256SecretLength:
			errs = append(errs, fmt.Errorf("auth: the HS256 secret is %d bytes, need at least %d", len(h.Secret), MinHS256SecretLength))
		case h.Issuer == "" || h.Audience == "":
			errs = append(errs, errors.New("auth: HS256 needs the issuer and audience of the tokens"))
		default:
			hs := *h
			hs.Secret = slices.Clone(h.Secret)
			if hs.ClockSkew == 0 {
				hs.ClockSkew = DefaultClockSkew
			}
			a.hs256 = &hs
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return a, nil
}

func (a *Authenticator) newJWTChecker(cfg JWTConfig) *jwtChecker {
	keys := a.newKeySet("jwt", cfg.JWKSURL, cfg.TokenChecks)
	return &jwtChecker{
		keys:     keys,
		verifier: a.newVerifier(cfg.Issuer, cfg.Audience, keys, cfg.TokenChecks),
		mapping:  cfg.ClaimMapping,
		algs:     cfg.Algorithms,
	}
}

func (a *Authenticator) newKeySet(name, url string, tc TokenChecks) *keySet {
	return &keySet{
		name:            name,
		url:             url,
		client:          a.client,
		now:             a.now,
		refreshInterval: tc.JWKSRefreshInterval,
		maxAge:          tc.JWKSMaxAge,
		log:             a.log.With("key_set", name),
		metrics:         a.metrics,
	}
}

// newVerifier returns go-oidc's verifier for tokens of issuer for audience.
// go-oidc allows no leeway on exp, so the skew is taken off the clock.
func (a *Authenticator) newVerifier(issuer, audience string, keys *keySet, tc TokenChecks) *oidc.IDTokenVerifier {
	skew := tc.ClockSkew
	return oidc.NewVerifier(issuer, keys, &oidc.Config{
		ClientID:             audience,
		SupportedSigningAlgs: tc.Algorithms,
		Now:                  func() time.Time { return a.now().Add(-skew) },
	})
}

// Probe reaches the identity provider: OIDC discovery and both key sets.
// Authenticate and the sign-in need none of it beforehand; screenpopd calls
// it to report a wrong issuer or an unreachable provider at start.
func (a *Authenticator) Probe(ctx context.Context) error {
	var errs []error
	if a.signIn != nil {
		if d, err := a.signIn.discover(ctx, a); err != nil {
			errs = append(errs, err)
		} else if _, _, err := d.keys.refresh(ctx); err != nil {
			errs = append(errs, fmt.Errorf("auth.oidc: key set: %w", err))
		}
	}
	if a.jwt != nil {
		if _, _, err := a.jwt.keys.refresh(ctx); err != nil {
			errs = append(errs, fmt.Errorf("auth.jwt: key set: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Authenticate returns who r comes from. A bearer token (the
// Authorization header, or a "bearer.<token>" WebSocket subprotocol) is
// judged alone when present; otherwise the session cookie, which a
// same-origin WebSocket upgrade carries. Errors wrap ErrUnauthenticated or
// ErrNotAgent; the reason is for the log, not for the client.
func (a *Authenticator) Authenticate(r *http.Request) (Identity, error) {
	id, method, err := a.authenticate(r)
	a.metrics.authentications.WithLabelValues(method, outcomeOf(err)).Inc()
	return id, err
}

func (a *Authenticator) authenticate(r *http.Request) (Identity, string, error) {
	tok, found, err := requestToken(r)
	if err != nil {
		return Identity{}, methodNone, err
	}
	if found {
		return a.verifyToken(r.Context(), tok)
	}
	if a.signIn != nil {
		if c, err := r.Cookie(a.cookies.session); err == nil && c.Value != "" {
			id, err := a.sessionIdentity(r.Context(), c.Value)
			return id, string(MethodSession), err
		}
	}
	return Identity{}, methodNone, fmt.Errorf("%w: no session cookie and no bearer token", ErrUnauthenticated)
}

func outcomeOf(err error) string {
	var expired *oidc.TokenExpiredError
	switch {
	case err == nil:
		return outcomeOK
	case errors.Is(err, ErrNotAgent):
		return outcomeNotAgent
	case errors.Is(err, errExpired), errors.Is(err, jwt.ErrExpired), errors.As(err, &expired):
		return outcomeExpired
	}
	return outcomeInvalid
}

// errExpired marks an expired session.
var errExpired = errors.New("expired")

// requestToken returns the bearer token of r: from the Authorization header
// (other clients) or from a "bearer.<token>" entry of
// Sec-WebSocket-Protocol (browsers cannot set headers on a WebSocket, and a
// token in the URL would end up in proxy logs). Never from the query.
func requestToken(r *http.Request) (tok string, found bool, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, err := bearer.Token(h)
		if err != nil {
			return "", false, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
		}
		return tok, true, nil
	}
	for _, header := range r.Header.Values("Sec-Websocket-Protocol") {
		for p := range strings.SplitSeq(header, ",") {
			if tok, ok := strings.CutPrefix(strings.TrimSpace(p), "bearer."); ok && tok != "" {
				return tok, true, nil
			}
		}
	}
	return "", false, nil
}

// verifyToken checks a bearer token by the algorithm its header names:
// HS256 with the shared secret, an asymmetric one with the key set. Each
// path accepts only its own algorithms, so a token cannot make the public
// key act as an HMAC secret.
func (a *Authenticator) verifyToken(ctx context.Context, tok string) (Identity, string, error) {
	if len(tok) > maxTokenBytes {
		return Identity{}, methodNone, fmt.Errorf("%w: bearer token of %d bytes", ErrUnauthenticated, len(tok))
	}
	jws, err := jose.ParseSigned(tok, joseAlgorithms(append([]string{"HS256"}, asymmetricAlgorithms...)))
	if err != nil || len(jws.Signatures) != 1 {
		return Identity{}, methodNone, fmt.Errorf("%w: malformed bearer token or unsupported algorithm", ErrUnauthenticated)
	}
	if jws.Signatures[0].Header.Algorithm == "HS256" {
		if a.hs256 == nil {
			return Identity{}, string(MethodHS256), fmt.Errorf("%w: HS256 token, but no HS256 secret is configured", ErrUnauthenticated)
		}
		id, err := a.verifyHS256(tok)
		return id, string(MethodHS256), err
	}
	if a.jwt == nil {
		return Identity{}, string(MethodJWT), fmt.Errorf("%w: %s token, but auth.jwt is not configured", ErrUnauthenticated, jws.Signatures[0].Header.Algorithm)
	}
	id, err := a.verifyJWT(ctx, tok)
	return id, string(MethodJWT), err
}

func (a *Authenticator) verifyJWT(ctx context.Context, tok string) (Identity, error) {
	t, err := a.jwt.verifier.Verify(ctx, tok)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: bearer token: %w", ErrUnauthenticated, err)
	}
	var c claims
	if err := t.Claims(&c); err != nil {
		return Identity{}, fmt.Errorf("%w: bearer token claims: %w", ErrUnauthenticated, err)
	}
	id, err := a.identify(&a.jwt.mapping, c)
	if err != nil {
		return Identity{}, err
	}
	id.Expires, id.Method = t.Expiry, MethodJWT
	return id, nil
}

// identify maps claims to an agent and asks KnownAgent.
func (a *Authenticator) identify(m *ClaimMapping, c claims) (Identity, error) {
	id, err := m.identify(c)
	if err != nil {
		return Identity{}, err
	}
	if err := a.checkKnown(id, m.account(c)); err != nil {
		return Identity{}, err
	}
	return id, nil
}

func (a *Authenticator) checkKnown(id Identity, account string) error {
	if a.knownAgent != nil && !a.knownAgent(id.AgentID) {
		return &NotAgentError{Account: account, Reason: fmt.Sprintf("agent %q is not configured", id.AgentID)}
	}
	return nil
}

// hs256Claims are the claims of pop.TokenAuth's tokens besides the
// registered ones.
type hs256Claims struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
}

func (a *Authenticator) verifyHS256(tok string) (Identity, error) {
	t, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		return Identity{}, fmt.Errorf("%w: HS256 token: %w", ErrUnauthenticated, err)
	}
	var std jwt.Claims
	var extra hs256Claims
	if err := t.Claims(a.hs256.Secret, &std, &extra); err != nil {
		return Identity{}, fmt.Errorf("%w: HS256 token: %w", ErrUnauthenticated, err)
	}
	if std.Expiry == nil || std.Subject == "" {
		return Identity{}, fmt.Errorf("%w: HS256 token without exp or sub", ErrUnauthenticated)
	}
	expected := jwt.Expected{Issuer: a.hs256.Issuer, AnyAudience: jwt.Audience{a.hs256.Audience}, Time: a.now()}
	if err := std.ValidateWithLeeway(expected, a.hs256.ClockSkew); err != nil {
		return Identity{}, fmt.Errorf("%w: HS256 token: %w", ErrUnauthenticated, err)
	}
	return Identity{
		AgentID: std.Subject,
		Name:    extra.Name,
		Roles:   extra.Roles,
		Expires: std.Expiry.Time(),
		Subject: std.Subject,
		Method:  MethodHS256,
	}, nil
}

// sessionIdentity returns the identity of the session whose cookie value is
// cookie.
func (a *Authenticator) sessionIdentity(ctx context.Context, cookie string) (Identity, error) {
	key := sessionKey(cookie)
	s, err := a.sessions.Get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return Identity{}, fmt.Errorf("%w: no such session (signed out or expired)", ErrUnauthenticated)
	}
	if err != nil {
		return Identity{}, fmt.Errorf("%w: session store: %w", ErrUnauthenticated, err)
	}
	if !a.now().Before(s.Identity.Expires) {
		return Identity{}, fmt.Errorf("%w: session %w at %s", ErrUnauthenticated, errExpired, s.Identity.Expires.Format(time.RFC3339))
	}
	if err := a.checkKnown(s.Identity, s.Identity.Subject); err != nil {
		return Identity{}, err
	}
	id := s.Identity
	id.Roles = slices.Clone(id.Roles)
	return id, nil
}

// sessionKey is the store key of a session cookie value.
func sessionKey(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(sum[:])
}
