package pop

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/screenpop/screenpop/auth"
)

// IdentitySource is what FromAuth adapts: *auth.Authenticator.
type IdentitySource interface {
	Authenticate(r *http.Request) (auth.Identity, error)
}

var _ IdentitySource = (*auth.Authenticator)(nil)

// FromAuth makes the auth package's Authenticator the Hub's: an Identity
// becomes an Agent (its expiry included, so the socket closes when the
// session or token ends), a not-agent error stays one (ErrNotAgent: 403),
// and any other refusal wraps ErrUnauthenticated (401).
func FromAuth(a IdentitySource) Authenticator { return fromAuth{a} }

type fromAuth struct{ src IdentitySource }

func (f fromAuth) Authenticate(r *http.Request) (Agent, error) {
	id, err := f.src.Authenticate(r)
	switch {
	case errors.Is(err, ErrNotAgent):
		return Agent{}, err
	case err != nil:
		return Agent{}, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	case id.AgentID == "":
		return Agent{}, fmt.Errorf("%w: an identity without agent ID", ErrUnauthenticated)
	}
	return Agent{ID: id.AgentID, Name: id.Name, Roles: id.Roles, Expires: id.Expires, Method: string(id.Method)}, nil
}
