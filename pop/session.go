package pop

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"time"
)

// refusal is the JSON answer of a refused upgrade or GET /session, the
// same as the auth package's /auth/session: error "unauthenticated" (401)
// or "not_agent" (403), what to tell the person, and where to sign in.
type refusal struct {
	Error    string `json:"error"`
	Message  string `json:"message,omitempty"`
	LoginURL string `json:"login_url,omitempty"`
}

// sessionInfo is the answer of GET /session for a signed-in agent, in the
// shape of the auth package's /auth/session.
type sessionInfo struct {
	AgentID string     `json:"agent_id"`
	Name    string     `json:"name,omitempty"`
	Roles   []string   `json:"roles"`
	Expires *time.Time `json:"expires,omitempty"`
	Method  string     `json:"method,omitempty"`
}

// serveSession answers who the request comes from, as the socket would
// judge it: 200 with the agent, 401 or 403 as a refused upgrade. A page
// whose socket closes without a word (browsers say 1006 both for a refused
// upgrade and for a daemon that is gone) asks here whether its link or
// session is the problem.
func (h *Hub) serveSession(w http.ResponseWriter, r *http.Request) {
	agent, err := h.authenticate(r)
	if err != nil {
		h.logger.Debug("session check refused", "remote", r.RemoteAddr, "err", err)
		h.refuseSignIn(w, r, err)
		return
	}
	info := sessionInfo{AgentID: agent.ID, Name: agent.Name, Roles: agent.Roles, Method: agent.Method}
	if info.Roles == nil {
		info.Roles = []string{}
	}
	if !agent.Expires.IsZero() {
		info.Expires = &agent.Expires
	}
	writeJSON(w, http.StatusOK, info)
}

// refuseSignIn answers a request whose sign-in failed: 403 for an account
// that is no agent here, else 401. The reason stays in the log.
func (h *Hub) refuseSignIn(w http.ResponseWriter, r *http.Request, err error) {
	login := h.loginURL(r)
	if errors.Is(err, ErrNotAgent) {
		msg := "Your account is not an agent here. Ask IT to set it up as an agent."
		if na := (*NotAgentError)(nil); errors.As(err, &na) {
			msg = fmt.Sprintf("Your account %s is not an agent here (%s). Ask IT to set it up as an agent.", na.Account, na.Reason)
		}
		writeJSON(w, http.StatusForbidden, refusal{Error: "not_agent", Message: msg, LoginURL: login})
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="screenpop"`)
	writeJSON(w, http.StatusUnauthorized, refusal{Error: "unauthenticated", LoginURL: login})
}

// loginURL is HubConfig.LoginURL for r: back to the page the request came
// from (the folder of /ws or /session), or to its "return" parameter.
func (h *Hub) loginURL(r *http.Request) string {
	if h.cfg.LoginURL == nil {
		return ""
	}
	back := r.URL.Query().Get("return")
	if back == "" {
		if back = path.Dir(r.URL.Path); back != "/" {
			back += "/"
		}
	}
	return h.cfg.LoginURL(back)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
