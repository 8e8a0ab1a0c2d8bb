package auth

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Identity is who a request comes from: the agent it signs in as, and until
// when. The daemon closes an agent's socket at Expires.
type Identity struct {
	AgentID string    `json:"agent_id"`
	Name    string    `json:"name,omitempty"`
	Roles   []string  `json:"roles"`
	Expires time.Time `json:"expires"`
	// Subject is the identity provider's sub (the agent ID for HS256 tokens).
	Subject string `json:"subject,omitempty"`
	Method  Method `json:"method"`
}

// Method is how an identity was established.
type Method string

const (
	MethodSession Method = "session" // the session cookie of an OIDC sign-in
	MethodJWT     Method = "jwt"     // a bearer token checked against the JWKS
	MethodHS256   Method = "hs256"   // a bearer token minted by screenpopd token
)

var (
	// ErrUnauthenticated is returned (wrapped, with the reason) when a
	// request carries no valid session or token: answer 401.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrNotAgent is returned (wrapped, naming the account) when the
	// credentials are valid but name no agent of this daemon: answer 403
	// and tell the user to ask IT.
	ErrNotAgent = errors.New("not an agent here")
)

// NotAgentError is the error of valid credentials that name no agent here;
// errors.Is(err, ErrNotAgent) holds.
type NotAgentError struct {
	// Account is how the identity provider knows the user (the users
	// table's claim, email, preferred_username or sub).
	Account string
	// Reason says why it maps to no agent, for the log and for IT.
	Reason string
}

func (e *NotAgentError) Error() string {
	return fmt.Sprintf("%v: account %q: %s", ErrNotAgent, e.Account, e.Reason)
}

func (e *NotAgentError) Is(target error) bool { return target == ErrNotAgent }

// claims are the decoded claims of a verified token.
type claims map[string]any

// lookup returns the claim name, following a dotted path into objects when
// no claim has the whole name.
func (c claims) lookup(name string) (any, bool) {
	if v, ok := c[name]; ok {
		return v, true
	}
	var cur any = map[string]any(c)
	for part := range strings.SplitSeq(name, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// text returns a string or number claim as text.
func (c claims) text(name string) string {
	v, _ := c.lookup(name)
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v)
	case float64: // JSON numbers: an extension stored as a number
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// list returns a claim that is a list of strings, or one string.
func (c claims) list(name string) []string {
	v, _ := c.lookup(name)
	switch v := v.(type) {
	case string:
		if v != "" {
			return []string{v}
		}
	case []any:
		out := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// account is how the user is named in messages: the mapped claim, else the
// first of email, preferred_username and sub.
func (m *ClaimMapping) account(c claims) string {
	for _, name := range []string{m.UserClaim, "email", "preferred_username", "sub"} {
		if v := c.text(name); v != "" {
			return v
		}
	}
	return "(an account without name)"
}

// identify maps verified claims to an agent. Expires and Method are the
// caller's.
func (m *ClaimMapping) identify(c claims) (Identity, error) {
	id := Identity{Subject: c.text("sub")}
	if id.Subject == "" {
		return Identity{}, fmt.Errorf("%w: the token has no sub", ErrUnauthenticated)
	}
	if user := m.user(c); user != "" {
		id.AgentID = m.lookupUser(user)
	}
	if id.AgentID == "" && m.AgentClaim != "" {
		id.AgentID = c.text(m.AgentClaim)
	}
	if id.AgentID == "" {
		return Identity{}, &NotAgentError{Account: m.account(c), Reason: m.why()}
	}
	id.Name = c.text(m.NameClaim)
	if id.Name == "" {
		id.Name = c.text("preferred_username")
	}
	if id.Name == "" {
		id.Name = id.AgentID
	}
	id.Roles = m.roles(c)
	return id, nil
}

// user returns the value of UserClaim, or "" when it is an email the
// provider says is not verified: anyone can type any address into a profile.
func (m *ClaimMapping) user(c claims) string {
	if len(m.Users) == 0 {
		return ""
	}
	if m.UserClaim == "email" {
		if v, ok := c["email_verified"].(bool); ok && !v {
			return ""
		}
	}
	return c.text(m.UserClaim)
}

// lookupUser finds user in Users. Names and addresses compare without case,
// as identity providers normalise them differently; sub and object IDs are
// opaque and compare exactly.
func (m *ClaimMapping) lookupUser(user string) string {
	if agent, ok := m.Users[user]; ok {
		return agent
	}
	if m.UserClaim == "sub" || m.UserClaim == "oid" {
		return ""
	}
	for _, k := range sortedKeys(m.Users) {
		if strings.EqualFold(k, user) {
			return m.Users[k]
		}
	}
	return ""
}

func (m *ClaimMapping) why() string {
	switch {
	case m.AgentClaim != "" && len(m.Users) > 0:
		return fmt.Sprintf("it is not in the users table (by %s) and has no %s claim", m.UserClaim, m.AgentClaim)
	case m.AgentClaim != "":
		return fmt.Sprintf("it has no %s claim", m.AgentClaim)
	}
	return fmt.Sprintf("it is not in the users table (by %s)", m.UserClaim)
}

// roles returns the roles of RolesClaim, through RoleMap when it is set,
// sorted and without duplicates.
func (m *ClaimMapping) roles(c claims) []string {
	if m.RolesClaim == "" {
		return nil
	}
	groups := c.list(m.RolesClaim)
	roles := make([]string, 0, len(groups))
	for _, g := range groups {
		if len(m.RoleMap) == 0 {
			roles = append(roles, g)
		} else if r, ok := m.RoleMap[g]; ok {
			roles = append(roles, r)
		}
	}
	slices.Sort(roles)
	return slices.Compact(roles)
}

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
