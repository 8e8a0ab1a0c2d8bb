package floor

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/websocket"

	"github.com/screenpop/screenpop/pop"
)

// The supervisor page: plain HTML, CSS and JavaScript embedded in the
// binary, nothing from a CDN, as the agent page.
//
//go:embed web/*.html web/*.js web/*.css
var webFiles embed.FS

// Role is the role that opens the floor view.
const Role = "supervisor"

// Subprotocol is the supervisor socket's WebSocket subprotocol; a
// browser offers it beside "bearer.<token>".
const Subprotocol = "screenpop.floor.v1"

// CloseSignedOut and CloseNotSupervisor close a supervisor socket whose
// sign-in ended, or whose supervisor role was taken away (a reload).
const (
	CloseSignedOut     = pop.CloseSignedOut
	CloseNotSupervisor = 4403
)

// Gate is how the daemon signs people in: *pop.Hub, so that the floor is
// never more lenient than the agent socket.
type Gate interface {
	// Authenticate judges a request as GET /session does.
	Authenticate(r *http.Request) (pop.Agent, error)
	// AdmitSocket judges a WebSocket upgrade as the agent socket's.
	AdmitSocket(r *http.Request) (pop.Agent, error)
	// Refuse answers a refusal of either in JSON (401, 403).
	Refuse(w http.ResponseWriter, r *http.Request, err error)
}

// HandlerOptions configures Handler.
type HandlerOptions struct {
	Gate Gate // required
	// Roles are a signed-in person's roles: their sign-in's and those the
	// configuration gives them (agents.roles). Asked at every connection,
	// every view sent and every second of an open page, so a reload that
	// takes the supervisor role away closes the page. nil: the sign-in's
	// alone.
	Roles func(pop.Agent) []string
	// WriteTimeout, PingInterval, PongTimeout: as the agent socket's;
	// defaults 10s, 25s, 60s.
	WriteTimeout time.Duration
	PingInterval time.Duration
	PongTimeout  time.Duration
	Logger       *slog.Logger
}

// Handler serves the supervisor page under /supervisor/: the page and its
// files to anyone (they hold no data), the floor view to supervisors only
// — GET /supervisor/view (JSON) and the WebSocket /supervisor/ws, which
// sends the view at once and again at every change. Anyone else gets 401
// (not signed in) or 403 (signed in, not a supervisor), the socket before
// it is upgraded.
func (f *Floor) Handler(o HandlerOptions) http.Handler {
	if o.Gate == nil {
		panic("floor: Handler needs a Gate")
	}
	if o.Roles == nil {
		o.Roles = func(a pop.Agent) []string { return a.Roles }
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.WriteTimeout, 10*time.Second)
	def(&o.PingInterval, 25*time.Second)
	def(&o.PongTimeout, 60*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	h := &handler{f: f, o: o, upgrader: websocket.Upgrader{
		Subprotocols:     []string{Subprotocol},
		HandshakeTimeout: 10 * time.Second,
		// AdmitSocket checks the origin, before the sign-in.
		CheckOrigin: func(*http.Request) bool { return true },
	}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /supervisor", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/supervisor/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /supervisor/view", h.serveView)
	mux.HandleFunc("GET /supervisor/ws", h.serveWS)
	mux.Handle("GET /supervisor/", pageHeaders(http.StripPrefix("/supervisor/", http.FileServerFS(sub))))
	return mux
}

type handler struct {
	f        *Floor
	o        HandlerOptions
	upgrader websocket.Upgrader
}

func (h *handler) supervisor(a pop.Agent) bool { return slices.Contains(h.o.Roles(a), Role) }

// refusal is the JSON of a 403 for a person who is no supervisor.
type refusal struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func (h *handler) notSupervisor(w http.ResponseWriter, a pop.Agent) {
	writeJSON(w, http.StatusForbidden, refusal{Error: "not_supervisor",
		Message: fmt.Sprintf("Your account %s has no supervisor role here. Ask IT for it (agents.roles or your sign-in's roles).", a.ID)})
}

// serveView answers the floor view in JSON, for a supervisor: the page's
// sign-in check, and integrations.
func (h *handler) serveView(w http.ResponseWriter, r *http.Request) {
	a, err := h.o.Gate.Authenticate(r)
	if err != nil {
		h.o.Gate.Refuse(w, r, err)
		return
	}
	if !h.supervisor(a) {
		h.o.Logger.Info("floor view refused: not a supervisor", "agent", a.ID)
		h.notSupervisor(w, a)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Supervisor pop.AgentRef `json:"supervisor"`
		View       View         `json:"view"`
	}{pop.AgentRef{ID: a.ID, Name: a.Name}, h.f.Current()})
}

func (h *handler) serveWS(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "this is the supervisor page's WebSocket; open /supervisor/ instead", http.StatusBadRequest)
		return
	}
	a, err := h.o.Gate.AdmitSocket(r)
	if err != nil {
		h.o.Logger.Info("supervisor socket refused", "remote", r.RemoteAddr, "err", err)
		h.o.Gate.Refuse(w, r, err)
		return
	}
	if !h.supervisor(a) {
		h.o.Logger.Info("supervisor socket refused: not a supervisor", "agent", a.ID)
		h.notSupervisor(w, a)
		return
	}
	s, ok := h.f.subscribe()
	if !ok {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.f.unsubscribe(s)
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	log := h.o.Logger.With("supervisor", a.ID)
	log.Info("supervisor page connected")
	defer log.Info("supervisor page disconnected")
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.read(ws)
	}()
	code, text := h.write(ws, s, a, done)
	if code != 0 {
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	}
	ws.Close()
	<-done
}

// read reads (and drops) what the page sends, for pongs and the close.
func (h *handler) read(ws *websocket.Conn) {
	ws.SetReadLimit(4 << 10)
	alive := func() { ws.SetReadDeadline(time.Now().Add(h.o.PongTimeout)) }
	alive()
	ws.SetPongHandler(func(string) error { alive(); return nil })
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			return
		}
		alive()
	}
}

// roleCheckEvery is how often an open supervisor page's role is checked
// again while no view comes.
const roleCheckEvery = time.Second

// write sends every new view until the page goes, the daemon stops, the
// sign-in ends or the role is taken away; it returns the close code to
// send (0: none).
func (h *handler) write(ws *websocket.Conn, s *viewSub, a pop.Agent, done <-chan struct{}) (int, string) {
	ping := time.NewTicker(h.o.PingInterval)
	defer ping.Stop()
	// A quiet floor sends no view: the role is checked on its own too.
	roles := time.NewTicker(roleCheckEvery)
	defer roles.Stop()
	var expired <-chan time.Time
	if !a.Expires.IsZero() {
		t := time.NewTimer(time.Until(a.Expires))
		defer t.Stop()
		expired = t.C
	}
	for {
		select {
		case <-done:
			return 0, ""
		case <-expired:
			return CloseSignedOut, "signed out: session expired"
		case <-ping.C:
			if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.o.WriteTimeout)); err != nil {
				return 0, ""
			}
		case <-roles.C:
			if !h.supervisor(a) {
				return CloseNotSupervisor, "no supervisor role any more"
			}
		case data, ok := <-s.ch:
			if !ok {
				return websocket.CloseGoingAway, "server shutting down"
			}
			if !h.supervisor(a) {
				return CloseNotSupervisor, "no supervisor role any more"
			}
			ws.SetWriteDeadline(time.Now().Add(h.o.WriteTimeout))
			if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
				return 0, ""
			}
		}
	}
}

// pageHeaders lock the page down as the agent page's are: its own scripts
// and styles only, its socket on its own host, no form, never framed, no
// referrer.
func pageHeaders(next http.Handler) http.Handler {
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
