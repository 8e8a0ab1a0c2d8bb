// Package bearer reads and checks "Authorization: Bearer <token>" headers
// (RFC 6750) the same way for every endpoint of screenpop: the PBX's
// call-event endpoint (telephony/httpin), the eviction API (aggregator) and
// the agent WebSocket (pop). It imports only the standard library, so none
// of them depends on another to share it.
package bearer

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// MinLength is the shortest shared token Set accepts: shorter ones are
// within reach of guessing.
const MinLength = 16

// Errors of Token, wrapped with what was wrong. They never hold the token.
var (
	ErrNoToken   = errors.New("no bearer token")
	ErrMalformed = errors.New("Authorization header is not a bearer token")
)

// Token returns the token of an Authorization header value: the scheme
// "Bearer" in any case (RFC 6750 and RFC 9110 make it case-insensitive),
// one space, and a token without white space.
func Token(header string) (string, error) {
	if header == "" {
		return "", ErrNoToken
	}
	scheme, token, _ := strings.Cut(header, " ")
	switch {
	case !strings.EqualFold(scheme, "Bearer"):
		return "", fmt.Errorf("%w: the scheme is not Bearer", ErrMalformed)
	case token == "":
		return "", fmt.Errorf("%w: %w after the scheme", ErrMalformed, ErrNoToken)
	case strings.IndexFunc(token, unicode.IsSpace) >= 0:
		return "", fmt.Errorf("%w: white space in the token (one space after Bearer)", ErrMalformed)
	}
	return token, nil
}

// Set is the shared tokens an endpoint accepts; several let a token be
// rotated without downtime. The zero Set accepts nothing.
type Set struct {
	sums [][sha256.Size]byte
}

// NewSet checks the configured tokens: each must be at least MinLength
// characters with no white space. Errors number the token and give its
// length, never the token, since they end up in logs. An empty list is an
// error: an endpoint that nobody can call is a configuration mistake.
func NewSet(tokens []string) (*Set, error) {
	if len(tokens) == 0 {
		return nil, errors.New("at least one bearer token is required")
	}
	s := &Set{}
	for i, tok := range tokens {
		if strings.IndexFunc(tok, unicode.IsSpace) >= 0 {
			return nil, fmt.Errorf("token %d contains white space", i+1)
		}
		if len(tok) < MinLength {
			return nil, fmt.Errorf("token %d is %d characters long; use at least %d random characters (e.g. openssl rand -hex 24)", i+1, len(tok), MinLength)
		}
		s.sums = append(s.sums, sha256.Sum256([]byte(tok)))
	}
	return s, nil
}

// Check returns nil when header carries one of the set's tokens. The
// presented token is compared with every configured one in constant time,
// as SHA-256 digests so that neither the tokens' lengths nor which one
// matched shows in the timing.
func (s *Set) Check(header string) error {
	token, err := Token(header)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(token))
	match := 0
	if s != nil {
		for i := range s.sums {
			match |= subtle.ConstantTimeCompare(sum[:], s.sums[i][:])
		}
	}
	if match != 1 {
		return errors.New("wrong bearer token")
	}
	return nil
}

// SplitList reads a comma-separated list of tokens, as an environment
// variable holds them ("tok1,tok2" while one is rotated): each trimmed of
// white space, empty ones left out.
func SplitList(v string) []string {
	var tokens []string
	for _, tok := range strings.Split(v, ",") {
		if tok = strings.TrimSpace(tok); tok != "" {
			tokens = append(tokens, tok)
		}
	}
	return tokens
}
