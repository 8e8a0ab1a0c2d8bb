package pop

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/screenpop/screenpop/auth"
	"github.com/screenpop/screenpop/bearer"
)

// Agent is who is signed in on an agent page.
type Agent struct {
	ID    string
	Name  string
	Roles []string
	// Expires is when the session or token behind the sign-in ends: the
	// Hub closes the agent's socket then (close code CloseSignedOut).
	// Zero: never.
	Expires time.Time
	// Method is how the agent signed in: "hs256" (TokenAuth), or
	// auth.Identity's method ("session", "jwt", "hs256") through FromAuth.
	Method string
}

// Authenticator says who opens a WebSocket. TokenAuth is the HS256
// implementation; FromAuth plugs in the auth package (company sign-in,
// bearer JWTs against a key set).
type Authenticator interface {
	// Authenticate returns the agent r comes from, or an error wrapping
	// ErrUnauthenticated (the Hub answers 401) or ErrNotAgent (403).
	Authenticate(r *http.Request) (Agent, error)
}

// ErrUnauthenticated is returned (wrapped) by Authenticate when the request
// carries no valid token. The hub answers 401 and never says more: the
// reason is for the log.
var ErrUnauthenticated = errors.New("unauthenticated")

// ErrNotAgent is returned (wrapped, best as a *NotAgentError) for valid
// credentials of an account that is no agent of this daemon. The hub
// answers 403 and tells the person to ask IT.
var ErrNotAgent = auth.ErrNotAgent

// NotAgentError names the account that is no agent here, and why; it is
// the auth package's, so that FromAuth passes it on unchanged.
type NotAgentError = auth.NotAgentError

const (
	// Subprotocol is the WebSocket subprotocol of the agent page. The
	// server answers with it, so a browser that offered it together with
	// the bearer token accepts the connection.
	Subprotocol = "screenpop.v1"
	// BearerSubprotocolPrefix precedes the token in the subprotocol list:
	// browsers cannot set an Authorization header on a WebSocket, and a
	// token in the URL would end up in proxy logs.
	BearerSubprotocolPrefix = "bearer."

	TokenIssuer   = "screenpop"
	TokenAudience = "screenpop-agent"

	// MinSecretLength is the shortest HS256 secret TokenAuth accepts.
	MinSecretLength = 32

	// MethodHS256 is Agent.Method for TokenAuth's tokens.
	MethodHS256 = "hs256"
)

// TokenAuth signs and checks agent tokens: HS256 JWTs with issuer
// "screenpop", audience "screenpop-agent", the agent ID as subject and the
// claims name and roles.
type TokenAuth struct {
	secret []byte
	parser *jwt.Parser
	now    func() time.Time
}

var _ Authenticator = (*TokenAuth)(nil)

type agentClaims struct {
	Name  string   `json:"name,omitempty"`
	Roles []string `json:"roles,omitempty"`
	jwt.RegisteredClaims
}

// NewTokenAuth returns a TokenAuth signing with secret, which must be at
// least MinSecretLength bytes: a short HMAC secret can be brute-forced from
// one captured token.
func NewTokenAuth(secret []byte) (*TokenAuth, error) {
	if len(secret) < MinSecretLength {
		return nil, fmt.Errorf("pop: token secret is %d bytes, need at least %d", len(secret), MinSecretLength)
	}
	t := &TokenAuth{secret: append([]byte(nil), secret...), now: time.Now}
	t.parser = jwt.NewParser(
		// Pinning the algorithm is what stops "alg": "none" and the
		// RS256-public-key-as-HMAC-secret confusion.
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(TokenIssuer),
		jwt.WithAudience(TokenAudience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second), // clocks of the issuing machine drift
		jwt.WithTimeFunc(func() time.Time { return t.now() }),
	)
	return t, nil
}

// Issue signs a token for agentID valid for ttl.
func (t *TokenAuth) Issue(agentID, name string, roles []string, ttl time.Duration) (string, error) {
	if agentID == "" {
		return "", errors.New("pop: issue token: agent ID is empty")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("pop: issue token: ttl %s is not positive", ttl)
	}
	now := t.now()
	claims := agentClaims{
		Name:  name,
		Roles: roles,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    TokenIssuer,
			Subject:   agentID,
			Audience:  jwt.ClaimStrings{TokenAudience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.secret)
}

// Authenticate checks the token of r (see TokenFromRequest).
func (t *TokenAuth) Authenticate(r *http.Request) (Agent, error) {
	tok, err := TokenFromRequest(r)
	if err != nil {
		return Agent{}, err
	}
	return t.Verify(tok)
}

// Verify checks a token's signature, algorithm, issuer, audience and expiry
// and returns the agent it names.
func (t *TokenAuth) Verify(token string) (Agent, error) {
	var claims agentClaims
	_, err := t.parser.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return t.secret, nil })
	if err != nil {
		return Agent{}, fmt.Errorf("%w: %v", ErrUnauthenticated, err)
	}
	if claims.Subject == "" {
		return Agent{}, fmt.Errorf("%w: token has no subject", ErrUnauthenticated)
	}
	return Agent{ID: claims.Subject, Name: claims.Name, Roles: claims.Roles, Expires: claims.ExpiresAt.Time, Method: MethodHS256}, nil
}

// TokenFromRequest returns the bearer token of an upgrade request: from
// "Authorization: Bearer <t>" (non-browser clients) or from a
// "bearer.<t>" entry of Sec-WebSocket-Protocol (browsers). Never from the
// URL query, which proxies log.
func TokenFromRequest(r *http.Request) (string, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, err := bearer.Token(h)
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrUnauthenticated, err)
		}
		return tok, nil
	}
	for _, p := range websocket.Subprotocols(r) {
		if tok, ok := strings.CutPrefix(p, BearerSubprotocolPrefix); ok && tok != "" {
			return tok, nil
		}
	}
	return "", fmt.Errorf("%w: no bearer token", ErrUnauthenticated)
}
