package pop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/pop/msglog"
	"github.com/screenpop/screenpop/pop/popstate"
)

// HubConfig configures NewHub. Zero values take the defaults named.
type HubConfig struct {
	Auth Authenticator // required
	// AllowedOrigins are the origins (scheme://host[:port]) besides the
	// page's own host that may open the socket: an agent page embedded in
	// the company's CRM, for instance.
	AllowedOrigins []string
	// OutboxSize is how many messages may wait for one slow browser before
	// it is disconnected; default 64.
	OutboxSize int
	// ReplaySize and ReplayBytes bound the messages kept per agent for a
	// browser that reconnects; defaults 256 messages and 1 MiB.
	ReplaySize  int
	ReplayBytes int
	// ReplayEndedAge is how long every message of a call that ended (or
	// was withdrawn from the agent) is kept; after it, only those that
	// say how the call went (answered, withdrawn, ended, note_saved,
	// wrapped_up): its pop, cards, sections, history and search results
	// go. Default 15s, about the page's first five reconnection attempts;
	// negative: kept as long as the bounds allow.
	ReplayEndedAge time.Duration
	// ReplayAge is how long they are kept: a browser away longer gets a
	// snapshot, and an agent who got no message for ReplayAge is forgotten
	// (messages, seq and name, when no page of theirs is open). Default 10m.
	ReplayAge time.Duration
	// ReadLimit is the largest message a browser may send; default 64 KiB.
	ReadLimit int64
	// WriteTimeout bounds one write to a browser; default 10s.
	WriteTimeout time.Duration
	// PingInterval and PongTimeout detect dead connections (a laptop lid
	// closed): a ping every PingInterval, and the connection is closed when
	// nothing arrives for PongTimeout. Defaults 25s and 60s.
	PingInterval time.Duration
	PongTimeout  time.Duration
	// RequestTimeout bounds the handling of one browser request (saving a
	// note); default 5s.
	RequestTimeout time.Duration
	// LoginURL, when set, is where a person who is not signed in goes to
	// sign in and come back to returnTo: the login_url of a 401 or 403
	// answer (auth.Authenticator.LoginURL). returnTo is the page's path, or
	// what the request asks for (/session?return=): LoginURL must send
	// back only to local paths, as the auth package's does.
	LoginURL func(returnTo string) string
	// SignOutOrigins are the origins besides the page's own that its
	// sign-out form may lead to: the identity provider's, where signing
	// out continues (auth.Authenticator.SignOutOrigins). The page's
	// Content-Security-Policy allows forms nowhere else, and browsers
	// apply that to the form's redirects too.
	SignOutOrigins []string
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
}

// CloseSignedOut is the close code of a socket whose sign-in ended (the
// session or token expired): the page says "signed out, sign in again"
// instead of reconnecting with credentials that no longer work.
const CloseSignedOut = 4401

// closeSignedOutText is the reason sent with CloseSignedOut.
const closeSignedOutText = "signed out: session expired"

// Socket buffer sizes. A page's requests are small and rare; the read
// buffer is kept for the life of the socket, so it is just over what a
// control frame needs. The write buffer is pooled, held only while a
// message is written: room for a card in one frame.
const (
	readBufferSize  = 256
	writeBufferSize = 16 << 10
)

// Hub is the agents' WebSocket transport: it upgrades and authenticates
// browsers, checks their origin, runs each connection's read and write
// loops (pings, a bounded outbox) and routes their requests. It
// implements Deliverer: it numbers each agent's messages in its message
// log (msglog), which resumes browsers that reconnect, and fans them out
// to every tab of the agent.
type Hub struct {
	cfg     HubConfig
	logger  *slog.Logger
	metrics *hubMetrics
	// sentByType is metrics.messages of each of messageTypes, looked up
	// once: a message counted costs an atomic add, not a label lookup
	// (hashing the type, a read lock, a map). Read-only after NewHub.
	sentByType map[string]prometheus.Counter
	origins    map[string]bool
	upgrader   websocket.Upgrader
	reqs       atomic.Pointer[requestsBox]
	acks       atomic.Pointer[ackBox] // what hears pages' shown acknowledgements (ack.go)
	// shared, when set, numbers messages and resumes browsers across
	// daemons (see SharedStream).
	shared atomic.Pointer[sharedBox]

	mu sync.Mutex
	// now is the log's clock; tests replace it (under mu).
	now    func() time.Time
	agents map[string]*agentBox // agents with a page open, or in the log
	log    *msglog.Log[Encoded]
	expiry *time.Timer // forgets idle agents; set while armed
	closed bool
	nextID uint64
	// wg counts the connections' goroutines: each reader, and each
	// writer while it runs. A writer is started only for a connection
	// still open (see conn.writing), whose reader is still counted.
	wg sync.WaitGroup
}

var _ Deliverer = (*Hub)(nil)

type requestsBox struct{ Requests }

// agentBox is one agent's connections, and the name its latest token gave.
// It goes once the agent has no page open and the log forgot them.
type agentBox struct {
	id    string
	name  string
	conns map[*conn]struct{}
}

// conn is one browser tab. An idle tab, which is what a tab mostly is,
// costs one goroutine (its reader, parked in the poller), this struct,
// the socket's and a timer: no writer goroutine, no write buffer, and
// room for a few messages at most (idleOutbox).
type conn struct {
	id     uint64
	agent  Agent
	remote string // the browser's address, for the log
	ws     *websocket.Conn
	opened time.Time

	outMu sync.Mutex
	// outbox[sent:] are the messages waiting for the writer, oldest
	// first: at most OutboxSize (more and the page is too slow).
	outbox  []Encoded
	sent    int
	initial []Encoded // written before outbox: the replay or the snapshot
	// after is the last seq initial covers when it came from a
	// SharedStream: DeliverNumbered skips what the connection already has.
	after uint64
	// writing: a writer goroutine runs, or will (serveWS starts the
	// first). It is started when there is something to write and ends
	// when there is nothing left, so that an idle tab has none; whoever
	// sets writing starts it. pingDue: it pings next.
	writing bool
	pingDue bool
	// closed: the connection was detached; its writer says goodbye with
	// code and text, and closes the socket (which ends the reader).
	closed bool
	code   int
	text   string
	// timer pings the browser every PingInterval, and signs the tab out
	// when its sign-in ends (see tick).
	timer *time.Timer
}

// logger is the hub's logger with what says which tab c is. It is made
// when something is logged: an idle tab keeps no logger of its own.
func (c *conn) logger(h *Hub) *slog.Logger {
	return h.logger.With("agent", c.agent.ID, "conn", c.id, "remote", c.remote)
}

// NewHub checks cfg and returns a Hub.
func NewHub(cfg HubConfig) (*Hub, error) {
	if cfg.Auth == nil {
		return nil, errors.New("pop: hub: Auth is required")
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.OutboxSize, 64)
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = 64 << 10
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&cfg.WriteTimeout, 10*time.Second)
	defDur(&cfg.PingInterval, 25*time.Second)
	defDur(&cfg.PongTimeout, 60*time.Second)
	defDur(&cfg.RequestTimeout, 5*time.Second)
	defDur(&cfg.ReplayAge, 10*time.Minute)
	if cfg.PingInterval >= cfg.PongTimeout {
		return nil, fmt.Errorf("pop: hub: ping interval %s must be shorter than pong timeout %s", cfg.PingInterval, cfg.PongTimeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	origins := map[string]bool{}
	for i, o := range cfg.AllowedOrigins {
		n, err := normalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("pop: hub: allowed_origins[%d]: %w", i, err)
		}
		origins[n] = true
	}
	m, err := newHubMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("pop: hub metrics: %w", err)
	}
	def(&cfg.ReplayBytes, 1<<20)
	if cfg.ReplayEndedAge == 0 {
		cfg.ReplayEndedAge = 15 * time.Second
	}
	log, err := msglog.New[Encoded](msglog.Options{
		MaxMessages: max(cfg.ReplaySize, 0),
		MaxBytes:    cfg.ReplayBytes,
		MaxAge:      cfg.ReplayAge,
		EndedAge:    cfg.ReplayEndedAge,
		// The first seq of every agent in this process is its start time
		// in microseconds, so that a seq a browser kept from before a
		// restart is below anything this process assigns, never a seq of it.
		Base: uint64(time.Now().UnixMicro()),
	})
	if err != nil {
		return nil, fmt.Errorf("pop: hub: %w", err)
	}
	h := &Hub{
		cfg:        cfg,
		logger:     cfg.Logger,
		metrics:    m,
		sentByType: make(map[string]prometheus.Counter, len(messageTypes)),
		origins:    origins,
		now:        time.Now,
		agents:     map[string]*agentBox{},
		log:        log,
	}
	for _, t := range messageTypes {
		h.sentByType[t] = m.messages.WithLabelValues(t)
	}
	h.upgrader = websocket.Upgrader{
		// No Subprotocols: serveWS names the one chosen in the answer's
		// header. The upgrader would keep the browser's own string, a
		// piece of the header that carries the bearer token, for the life
		// of the socket.
		HandshakeTimeout: 10 * time.Second,
		// An idle page costs as little as can be: a small read buffer (a
		// page's requests are short; a long note is read in several
		// goes), and a write buffer only while a message is written,
		// taken from a pool every connection shares.
		ReadBufferSize:  readBufferSize,
		WriteBufferSize: writeBufferSize,
		WriteBufferPool: &sync.Pool{},
		// AdmitSocket checks the origin, before authenticating, so that a
		// foreign page learns nothing about tokens.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	return h, nil
}

// SetRequests connects the hub to what answers browser requests and
// snapshots (the Dispatcher). Until it is set, connecting browsers get an
// empty snapshot and requests are refused.
func (h *Hub) SetRequests(r Requests) { h.reqs.Store(&requestsBox{r}) }

func (h *Hub) requests() Requests {
	if b := h.reqs.Load(); b != nil {
		return b.Requests
	}
	return nil
}

// AgentName is the name the agent's latest token gave, if it connected.
func (h *Hub) AgentName(agentID string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if b := h.agents[agentID]; b != nil {
		return b.name
	}
	return ""
}

func (h *Hub) box(agentID string) *agentBox {
	b := h.agents[agentID]
	if b == nil {
		b = &agentBox{id: agentID, conns: map[*conn]struct{}{}}
		h.agents[agentID] = b
	}
	return b
}

// Deliver implements Deliverer. It never blocks: a browser whose outbox is
// full is disconnected and resumes from the log when it returns.
func (h *Hub) Deliver(agentID string, m Encoded) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m.Seq = h.log.Last(agentID) + 1
	h.log.Add(agentID, m.Seq, m, h.now())
	h.logChanged()
	if b := h.agents[agentID]; b != nil && len(b.conns) > 0 {
		// Counted as sent only when a page takes it: one kept for a page
		// that is not open is no delivery.
		h.countSent(m.Type)
		for c := range b.conns {
			h.enqueue(b, c, m)
		}
	}
}

// countSent counts a message of type typ sent to an agent's pages
// (screenpop_pop_messages_total).
func (h *Hub) countSent(typ string) {
	if c, ok := h.sentByType[typ]; ok {
		c.Inc()
		return
	}
	h.metrics.messages.WithLabelValues(typ).Inc()
}

// LogKey implements msglog.Keyed: the message log compacts a call's
// messages by it (HubConfig.ReplayEndedAge). Its pop, cards, sections,
// history and search results are details the page needs only while the
// call goes on; what says how it went is kept: a page that saw the call
// gets its answer and end, one that did not gets nothing of it, as from
// a snapshot. A type not named here is kept.
func (e Encoded) LogKey() (string, msglog.Kind) {
	switch e.Type {
	case TypePop, TypeCard, TypeSection, TypeHistory, TypeSearchResults:
		return e.CallID, msglog.Detail
	case TypeEnded, TypeWithdrawn:
		return e.CallID, msglog.End
	}
	return e.CallID, msglog.Lasting
}

var _ msglog.Keyed = Encoded{}

// logChanged updates the log's gauges and makes sure the agents it holds
// are forgotten in time; it runs with h.mu held.
func (h *Hub) logChanged() {
	h.metrics.logAgents.Set(float64(h.log.Agents()))
	h.metrics.logBytes.Set(float64(h.log.Bytes()))
	if h.expiry != nil || h.closed {
		return
	}
	if next, ok := h.log.NextExpiry(); ok {
		h.expiry = time.AfterFunc(next.Sub(h.now()), h.expire)
	}
}

// expire forgets the agents who got no message for ReplayAge: their
// messages (cards: personal data) and, when no page of theirs is open,
// everything else.
func (h *Hub) expire() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expiry = nil
	for _, id := range h.log.Expire(h.now()) {
		if b := h.agents[id]; b != nil && len(b.conns) == 0 {
			delete(h.agents, id)
		}
	}
	h.logChanged()
}

// enqueue runs with h.mu held, c attached.
func (h *Hub) enqueue(b *agentBox, c *conn, m Encoded) {
	c.outMu.Lock()
	full := len(c.outbox)-c.sent >= h.cfg.OutboxSize
	start := false
	if !full {
		c.outbox = append(c.outbox, m)
		start = h.claimWriter(c)
	}
	c.outMu.Unlock()
	if full {
		h.logger.Warn("agent page too slow, disconnected", "agent", c.agent.ID, "conn", c.id)
		h.metrics.dropped.WithLabelValues(dropSlow).Inc()
		h.detach(b, c, websocket.CloseTryAgainLater, "too slow; reconnect")
		return
	}
	if start {
		go h.write(c)
	}
}

// claimWriter runs with c.outMu held, c not closed: it reports whether
// the caller starts c's writer (none runs), and counts it in h.wg. The
// count cannot be at zero then: c's reader is counted until c is closed.
func (h *Hub) claimWriter(c *conn) bool {
	if c.writing {
		return false
	}
	c.writing = true
	h.wg.Add(1)
	return true
}

// idleOutbox is the most room an emptied outbox keeps for the next
// messages: a pop and its updates come without a new allocation, and a
// burst's room is let go.
const idleOutbox = 4

// next takes the oldest message waiting for c's writer.
func (c *conn) next() (Encoded, bool) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	return c.nextLocked()
}

// nextLocked is next with c.outMu held.
func (c *conn) nextLocked() (Encoded, bool) {
	if c.sent == len(c.outbox) {
		if cap(c.outbox) > idleOutbox {
			c.outbox = nil
		}
		c.outbox, c.sent = c.outbox[:0], 0
		return Encoded{}, false
	}
	m := c.outbox[c.sent]
	c.outbox[c.sent] = Encoded{} // the message's bytes are not kept for it
	c.sent++
	return m, true
}

// detach runs with h.mu held: c gets no more messages and its writer says
// goodbye.
func (h *Hub) detach(b *agentBox, c *conn, code int, text string) {
	if _, ok := b.conns[c]; !ok {
		return
	}
	delete(b.conns, c)
	h.metrics.connections.Dec()
	if len(b.conns) == 0 {
		h.metrics.connectedAgents.Dec()
		if !h.log.Holds(b.id) {
			delete(h.agents, b.id)
		}
	}
	c.outMu.Lock()
	start := false
	if !c.closed {
		start = h.claimWriter(c)
		c.closed, c.code, c.text = true, code, text
	}
	c.outMu.Unlock()
	if start {
		go h.write(c)
	}
}

// attached returns the box of c's agent while c is attached to it, else
// nil (c was closed); it runs with h.mu held.
func (h *Hub) attached(c *conn) *agentBox {
	b := h.agents[c.agent.ID]
	if b == nil {
		return nil
	}
	if _, ok := b.conns[c]; !ok {
		return nil
	}
	return b
}

// attach runs with h.mu held.
func (h *Hub) attach(b *agentBox, c *conn) {
	if len(b.conns) == 0 {
		h.metrics.connectedAgents.Inc()
	}
	b.conns[c] = struct{}{}
	h.metrics.connections.Inc()
}

// Close disconnects every browser (they reconnect to the next daemon) and
// refuses new ones. It returns once the connections' goroutines are done.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	if h.expiry != nil {
		h.expiry.Stop()
		h.expiry = nil
	}
	for _, b := range h.agents {
		for c := range b.conns {
			h.detach(b, c, websocket.CloseGoingAway, "server shutting down")
			// A writer stuck on a browser that stopped reading gives up
			// now rather than at its write timeout.
			c.ws.NetConn().SetWriteDeadline(time.Now().Add(time.Second))
		}
	}
	h.mu.Unlock()
	h.wg.Wait()
}

func (h *Hub) serveWS(w http.ResponseWriter, r *http.Request) {
	if !websocket.IsWebSocketUpgrade(r) {
		http.Error(w, "this is the agent page's WebSocket; open / instead", http.StatusBadRequest)
		return
	}
	agent, err := h.AdmitSocket(r)
	if err != nil {
		h.refuseSocket(w, r, err)
		return
	}
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.wg.Add(2) // the reader, and the first writer
	}
	h.mu.Unlock()
	if closed {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	// The reader runs in a goroutine of its own, and the writer in one
	// while there is something to write; this handler returns once they
	// are started: what the HTTP request needed (its buffers, headers,
	// context, this goroutine's stack) is not kept for the life of the
	// socket. Until they start, it answers for them.
	started := false
	var closeShared func()
	defer func() {
		if !started {
			h.wg.Done()
			h.wg.Done()
			if closeShared != nil {
				closeShared()
			}
		}
	}()

	var answer http.Header
	if slices.Contains(websocket.Subprotocols(r), Subprotocol) {
		answer = http.Header{"Sec-Websocket-Protocol": {Subprotocol}}
	}
	ws, err := h.upgrader.Upgrade(w, r, answer)
	if err != nil {
		return // Upgrade has answered the client
	}
	h.mu.Lock()
	h.nextID++
	c := &conn{
		id:     h.nextID,
		agent:  agent,
		remote: r.RemoteAddr,
		ws:     ws,
		opened: time.Now(),
		// serveWS starts the first writer, once the initial messages are
		// in place: nobody else may until then.
		writing: true,
	}
	h.mu.Unlock()
	// Sign-in and sign-out at info: who was reachable when, from where. No
	// name, no roles: the agent's ID says who; the pipeline needs no more.
	log := c.logger(h)
	hello, greet := h.hello(r.Context(), agent)

	since, resume := parseSince(r.URL.Query().Get("since"))
	resumed, attached := false, false
	if s := h.sharedStream(); s != nil {
		ctx, cancel := context.WithTimeout(r.Context(), sharedOpenTimeout)
		initial, upTo, err := s.Open(ctx, agent, since, resume)
		cancel()
		closeShared = func() { s.Close(agent.ID) }
		if err == nil {
			attached = h.attachShared(c, initial, upTo)
			resumed = attached && (len(initial) == 0 || initial[0].Type != TypeSnapshot)
		} else {
			log.Warn("shared stream unavailable; this daemon's own replay and snapshot used", "err", err)
		}
	}
	if !attached {
		resumed = h.attachReplay(c, since, resume)
	}
	if !attached && !resumed && !h.attachSnapshot(c) {
		ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down"), time.Now().Add(time.Second))
		ws.Close()
		return
	}
	c.outMu.Lock()
	if greet {
		// First, before the replay or snapshot: the page renders them
		// knowing what the server asks of it.
		c.initial = append([]Encoded{hello}, c.initial...)
	}
	if !c.closed {
		c.timer = time.AfterFunc(h.untilTick(c, time.Now()), func() { h.tick(c) })
	}
	c.outMu.Unlock()
	log.Info("agent page connected", "method", agent.Method, "resumed", resumed)
	started = true
	go h.write(c)
	go func() {
		defer h.wg.Done()
		h.readLoop(c)
		h.mu.Lock()
		if b := h.agents[c.agent.ID]; b != nil {
			h.detach(b, c, websocket.CloseNormalClosure, "")
		}
		h.mu.Unlock()
		c.logger(h).Info("agent page disconnected", "connected_for", time.Since(c.opened).Seconds())
		if closeShared != nil {
			closeShared()
		}
	}()
}

// refuseSocket answers an upgrade AdmitSocket refused, and counts and
// logs it.
func (h *Hub) refuseSocket(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrForeignOrigin):
		h.metrics.dropped.WithLabelValues(dropOrigin).Inc()
		h.logger.Warn("WebSocket from a foreign origin refused", "origin", r.Header.Get("Origin"), "host", r.Host)
	case errors.Is(err, ErrOriginRequired):
		h.metrics.dropped.WithLabelValues(dropOrigin).Inc()
		h.logger.Warn("WebSocket signed in by cookie without Origin refused", "remote", r.RemoteAddr)
	default:
		h.metrics.dropped.WithLabelValues(dropAuth).Inc()
		h.logger.Info("WebSocket without a valid sign-in refused", "remote", r.RemoteAddr, "err", err)
	}
	h.Refuse(w, r, err)
}

// authenticate asks the Authenticator who r comes from, and refuses an
// identity that has expired already (a token within its clock skew).
func (h *Hub) authenticate(r *http.Request) (Agent, error) {
	agent, err := h.cfg.Auth.Authenticate(r)
	if err != nil {
		return Agent{}, err
	}
	if !agent.Expires.IsZero() && !time.Now().Before(agent.Expires) {
		return Agent{}, fmt.Errorf("%w: signed in until %s", ErrUnauthenticated, agent.Expires.Format(time.RFC3339))
	}
	return agent, nil
}

// untilTick is how long c's timer waits from now: PingInterval, or less
// when c's sign-in ends before.
func (h *Hub) untilTick(c *conn, now time.Time) time.Duration {
	d := h.cfg.PingInterval
	if !c.agent.Expires.IsZero() {
		d = max(min(d, c.agent.Expires.Sub(now)), 0)
	}
	return d
}

// tick is c's timer: it signs c out once its sign-in ended, else pings
// the browser, as c's writer in this goroutine when none runs, and sets
// the timer again.
func (h *Hub) tick(c *conn) {
	now := time.Now()
	if !c.agent.Expires.IsZero() && !now.Before(c.agent.Expires) {
		h.signOut(c)
		return
	}
	c.outMu.Lock()
	if c.closed {
		c.outMu.Unlock()
		return
	}
	c.pingDue = true
	write := h.claimWriter(c)
	c.timer.Reset(h.untilTick(c, now))
	c.outMu.Unlock()
	if write {
		h.write(c)
	}
}

// signOut closes c because its agent's sign-in ended.
func (h *Hub) signOut(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.attached(c)
	if b == nil {
		return
	}
	c.logger(h).Info("sign-in expired, agent page disconnected", "expired", c.agent.Expires)
	h.metrics.dropped.WithLabelValues(dropExpired).Inc()
	h.detach(b, c, CloseSignedOut, closeSignedOutText)
}

// carriesBearer reports whether r brings a bearer token of its own (the
// Authorization header or a bearer subprotocol), as opposed to
// credentials a browser attaches by itself.
func carriesBearer(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" {
		return true
	}
	return slices.ContainsFunc(websocket.Subprotocols(r), func(p string) bool { return strings.HasPrefix(p, BearerSubprotocolPrefix) })
}

func parseSince(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// helloTimeout bounds the Greeter's hello: a page would rather connect
// without it than wait for a history that does not answer.
const helloTimeout = time.Second

// hello is the TypeHello message of a connection of agent, when the
// Requests is a Greeter with something to say. It has no seq: it is not
// replayed, each connection gets its own.
func (h *Hub) hello(ctx context.Context, agent Agent) (Encoded, bool) {
	g, ok := h.requests().(Greeter)
	if !ok {
		return Encoded{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	data, ok := g.Hello(ctx, agent)
	if !ok {
		return Encoded{}, false
	}
	enc, err := Encode(Message{Type: TypeHello, At: time.Now(), Data: data})
	if err != nil {
		h.logger.Error("cannot encode hello", "agent", agent.ID, "err", err)
		return Encoded{}, false
	}
	h.countSent(TypeHello)
	return enc, true
}

// attachReplay registers c with the messages it missed, if the log has
// them all.
func (h *Hub) attachReplay(c *conn, since uint64, resume bool) bool {
	if !resume {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	missed, ok := h.log.Replay(c.agent.ID, since, h.now())
	h.logChanged()
	if !ok {
		return false
	}
	b := h.box(c.agent.ID)
	b.name = c.agent.Name
	c.initial = missed
	h.attach(b, c)
	return true
}

// attachSnapshot registers c with a snapshot of the agent's pops. The
// dispatcher holds every delivery for the agent while attach runs, so the
// snapshot and the messages after it neither overlap nor leave a gap.
func (h *Hub) attachSnapshot(c *conn) bool {
	attached := false
	attach := func(pops []PopView) {
		snap, err := Encode(Message{Type: TypeSnapshot, At: time.Now(), Data: SnapshotData{
			Agent: AgentRef{ID: c.agent.ID, Name: c.agent.Name},
			Pops:  pops,
		}})
		if err != nil {
			h.logger.Error("cannot encode snapshot", "agent", c.agent.ID, "err", err)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.closed {
			return
		}
		b := h.box(c.agent.ID)
		b.name = c.agent.Name
		snap.Seq = h.log.Last(c.agent.ID)
		h.countSent(TypeSnapshot)
		c.initial = []Encoded{snap}
		h.attach(b, c)
		attached = true
	}
	if reqs := h.requests(); reqs != nil {
		reqs.Snapshot(c.agent.ID, attach)
	} else {
		attach([]PopView{})
	}
	return attached
}

// What c's writer does next (take).
type writeJob int

const (
	writeNone writeJob = iota // nothing: the writer ends
	writeMsg                  // the message taken
	writePing
	writeGoodbye // c is closed: the close message, then the socket goes
)

// take says what c's writer does next. When there is nothing to write,
// the writer ends: writing goes false with c.outMu held, so that whoever
// has something for c next starts another (claimWriter).
func (c *conn) take() (Encoded, writeJob) {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	switch {
	case c.closed:
		// A closing connection says goodbye before anything else queued.
		return Encoded{}, writeGoodbye
	case c.pingDue:
		c.pingDue = false
		return Encoded{}, writePing
	case len(c.initial) > 0:
		m := c.initial[0]
		c.initial[0] = Encoded{}
		if c.initial = c.initial[1:]; len(c.initial) == 0 {
			c.initial = nil
		}
		return m, writeMsg
	}
	if m, ok := c.nextLocked(); ok {
		return m, writeMsg
	}
	c.writing = false
	return Encoded{}, writeNone
}

// write is c's writer: it writes what c has to write, and ends when
// nothing is left; a closed connection's writer closes the socket, which
// ends the reader too. At most one runs for c (c.writing).
func (h *Hub) write(c *conn) {
	defer h.wg.Done()
	var head []byte // the seq prefix of this writer's messages, reused
	for {
		m, job := c.take()
		var err error
		switch job {
		case writeNone:
			return
		case writeMsg:
			c.ws.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
			head, err = writeMessage(c.ws, m, head)
		case writePing:
			err = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout))
		case writeGoodbye:
			h.goodbye(c)
		}
		if err != nil {
			h.writeFailed(c, err)
		}
		if err != nil || job == writeGoodbye {
			// writing stays true: no writer starts again.
			c.outMu.Lock()
			if c.timer != nil {
				c.timer.Stop()
			}
			c.outMu.Unlock()
			c.ws.Close()
			return
		}
	}
}

// writeMessage writes m as one WebSocket message: its seq, then the bytes
// it was encoded in, shared with every other tab, without copying them
// into one buffer per tab. head is scratch for the seq, returned for reuse.
func writeMessage(ws *websocket.Conn, m Encoded, head []byte) ([]byte, error) {
	w, err := ws.NextWriter(websocket.TextMessage)
	if err != nil {
		return head, err
	}
	body := m.raw
	if m.Seq != 0 {
		head = m.appendHead(head[:0])
		body = m.rest()
		if _, err := w.Write(head); err != nil {
			w.Close()
			return head, err
		}
	}
	if _, err := w.Write(body); err != nil {
		w.Close()
		return head, err
	}
	return head, w.Close()
}

func (h *Hub) goodbye(c *conn) {
	if c.code != 0 && c.code != websocket.CloseNormalClosure {
		c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, c.text), time.Now().Add(time.Second))
	}
}

func (h *Hub) writeFailed(c *conn, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.attached(c)
	if b == nil {
		return // already closed on purpose; the failure is the consequence
	}
	c.logger(h).Info("write to agent page failed, disconnected", "err", err)
	h.metrics.dropped.WithLabelValues(dropWriteError).Inc()
	h.detach(b, c, websocket.CloseAbnormalClosure, "")
}

func (h *Hub) readLoop(c *conn) {
	c.ws.SetReadLimit(h.cfg.ReadLimit)
	alive := func() { c.ws.SetReadDeadline(time.Now().Add(h.cfg.PongTimeout)) }
	alive()
	c.ws.SetPongHandler(func(string) error { alive(); return nil })
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) && !errors.Is(err, websocket.ErrReadLimit) {
				c.logger(h).Debug("agent page read ended", "err", err)
			}
			if errors.Is(err, websocket.ErrReadLimit) {
				c.logger(h).Warn("agent page sent a message over the read limit, disconnected", "limit", h.cfg.ReadLimit)
			}
			return
		}
		alive()
		if kind != websocket.TextMessage {
			continue
		}
		h.handleRequest(c, data)
	}
}

func (h *Hub) handleRequest(c *conn, data []byte) {
	var req Request
	if err := json.Unmarshal(data, &req); err != nil {
		h.reply(c, Request{}, &RequestError{Code: popstate.CodeBadRequest, Message: "not a JSON request"})
		return
	}
	if req.Type == RequestShown {
		h.shown(c, req) // an acknowledgement: no answer (ack.go)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.RequestTimeout)
	defer cancel()
	err := h.handle(ctx, c.agent, req)
	var re *RequestError
	if errors.As(err, &re) && re.Code == popstate.CodeUnknownCall {
		// The call may be another daemon's: the one that saw it from the
		// PBX. The identity forwarded is the one this Hub authenticated.
		if f, ok := h.sharedStream().(RequestForwarder); ok {
			err = f.Forward(ctx, c.agent, req)
		}
	}
	if err != nil {
		h.reply(c, req, err)
	}
}

// handle answers one request with the local Requests.
func (h *Hub) handle(ctx context.Context, agent Agent, req Request) error {
	reqs := h.requests()
	if reqs == nil {
		return &RequestError{Code: popstate.CodeUnavailable, Message: "the server is starting; try again"}
	}
	switch req.Type {
	case RequestSelect:
		return reqs.Select(agent, req.CallID, req.CustomerID)
	case RequestNote:
		return reqs.Note(ctx, agent, req.CallID, req.Text, req.Ref)
	case RequestEditNote:
		return reqs.EditNote(ctx, agent, req.CallID, req.NoteID, req.Text, req.Ref)
	case RequestWrapUp:
		return reqs.WrapUp(ctx, agent, req.CallID, req.Code, req.Ref)
	case RequestSearch:
		return reqs.Search(ctx, agent, req.CallID, req.Text, req.Ref)
	case RequestLink:
		return reqs.Link(ctx, agent, req.CallID, req.CustomerID, req.Ref)
	}
	return &RequestError{Code: popstate.CodeBadRequest, Message: fmt.Sprintf("unknown request type %q", req.Type)}
}

// reply sends an error to the one connection that made the request. It has
// no seq: it is not replayed, and other tabs did not ask.
func (h *Hub) reply(c *conn, req Request, err error) {
	var re *RequestError
	if !errors.As(err, &re) {
		re = &RequestError{Code: popstate.CodeUnavailable, Message: "the request failed"}
	}
	data, merr := Encode(Message{Type: TypeError, CallID: req.CallID, At: time.Now(), Data: ErrorData{
		Code: re.Code, Message: re.Message, Request: req.Type, Ref: req.Ref,
	}})
	if merr != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.attached(c)
	if b == nil {
		return
	}
	h.countSent(TypeError)
	h.enqueue(b, c, data)
}

// originAllowed lets in a request without Origin (not a browser: its
// token decides, and a cookie needs an Origin, see AdmitSocket), one from the
// page's own origin, and one from AllowedOrigins. Origins compare by
// scheme, host and port: a page of the same host over plain http (a
// network that rewrites it) is another origin than the daemon's https.
func (h *Hub) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	n, err := normalizeOrigin(origin)
	if err != nil {
		return false // "null" (a sandboxed frame, a file), or garbage
	}
	if own, err := normalizeOrigin(requestScheme(r) + "://" + r.Host); err == nil && n == own {
		return true
	}
	return h.origins[n]
}

// requestScheme is the scheme the browser reached the daemon with: https
// over TLS; behind a proxy that ends TLS, what it says in
// X-Forwarded-Proto or Forwarded (proto=); else http. Trusting these
// headers lets no foreign page in: script cannot set them on a WebSocket,
// and they only decide which of two origins of this host is the page's.
func requestScheme(r *http.Request) string {
	if r.TLS != nil {
		return "https"
	}
	proto := r.Header.Get("X-Forwarded-Proto")
	if proto == "" {
		first, _, _ := strings.Cut(r.Header.Get("Forwarded"), ",")
		for pair := range strings.SplitSeq(first, ";") {
			if k, v, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.EqualFold(k, "proto") {
				proto = strings.Trim(v, `"`)
			}
		}
	}
	proto, _, _ = strings.Cut(proto, ",")
	if p := strings.ToLower(strings.TrimSpace(proto)); p == "https" || p == "http" {
		return p
	}
	return "http"
}

// normalizeOrigin turns an origin into scheme://host[:port], lower case,
// without the scheme's default port, as browsers send it.
func normalizeOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%q is not an origin: %w", s, err)
	}
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "http" && scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin (want scheme://host[:port], e.g. https://crm.example.com)", s)
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return scheme + "://" + host + ":" + port, nil
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, nil
}
