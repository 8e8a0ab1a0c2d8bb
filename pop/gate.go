package pop

import (
	"errors"
	"net/http"

	"github.com/screenpop/screenpop/auth"
)

// The daemon serves other pages than the agent's (the supervisors' floor
// view) to the same people, signed in the same ways. The Hub's checks are
// theirs too, so that no endpoint is more lenient than the agent socket.

// Origin refusals of AdmitSocket, answered 403 by Refuse.
var (
	// ErrForeignOrigin: the request comes from a page of another origin.
	ErrForeignOrigin = errors.New("forbidden origin")
	// ErrOriginRequired: a socket signed in by the session cookie without
	// an Origin to check (no page of ours).
	ErrOriginRequired = errors.New("a socket signed in by cookie needs an Origin")
)

// Authenticate says who r comes from, as GET /session judges it: the
// Authenticator's answer, refused when that identity has expired already.
// An error wraps ErrUnauthenticated or ErrNotAgent.
func (h *Hub) Authenticate(r *http.Request) (Agent, error) { return h.authenticate(r) }

// AdmitSocket judges a WebSocket upgrade, the agent socket's (serveWS)
// and those of the daemon's other endpoints alike: its origin first (the
// page's own, or AllowedOrigins), then the sign-in, and credentials the
// browser adds by itself (the session cookie) only with an Origin that
// passed — every browser sends one on a WebSocket, so a request without
// is no page of ours. An error is ErrForeignOrigin, ErrOriginRequired, or
// wraps ErrUnauthenticated or ErrNotAgent; Refuse answers it.
func (h *Hub) AdmitSocket(r *http.Request) (Agent, error) {
	if !h.originAllowed(r) {
		return Agent{}, ErrForeignOrigin
	}
	agent, err := h.authenticate(r)
	if err != nil {
		return Agent{}, err
	}
	if r.Header.Get("Origin") == "" && (!carriesBearer(r) || agent.Method == string(auth.MethodSession)) {
		return Agent{}, ErrOriginRequired
	}
	return agent, nil
}

// Refuse answers a request Authenticate or AdmitSocket refused, in JSON
// as the agent socket and /session answer: 403 for an origin or an
// account that is no agent here, else 401 (with login_url when the Hub
// has a LoginURL).
func (h *Hub) Refuse(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrForeignOrigin):
		writeJSON(w, http.StatusForbidden, refusal{Error: "forbidden_origin", Message: "this page may not open the socket"})
	case errors.Is(err, ErrOriginRequired):
		writeJSON(w, http.StatusForbidden, refusal{Error: "origin_required", Message: "a socket signed in by cookie must come from the daemon's page"})
	default:
		h.refuseSignIn(w, r, err)
	}
}
