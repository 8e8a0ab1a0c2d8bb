package pop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
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
	// browser that reconnects; defaults 256 messages and 4 MiB.
	ReplaySize  int
	ReplayBytes int
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
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
}

// Hub holds the agents' WebSocket connections. It implements Deliverer:
// it numbers each agent's messages, keeps the last ones for browsers that
// reconnect, and fans them out to every tab of the agent.
type Hub struct {
	cfg      HubConfig
	logger   *slog.Logger
	metrics  *hubMetrics
	origins  map[string]bool
	upgrader websocket.Upgrader
	// base is the first seq of every agent in this process. It is the start
	// time in microseconds, so that a seq a browser kept from before a
	// restart is below anything this process assigns, never a seq of it.
	base uint64
	reqs atomic.Pointer[requestsBox]
	// shared, when set, numbers messages and resumes browsers across
	// daemons (see SharedStream).
	shared atomic.Pointer[sharedBox]

	mu     sync.Mutex
	agents map[string]*agentBox
	closed bool
	nextID uint64
	wg     sync.WaitGroup
}

var _ Deliverer = (*Hub)(nil)

type requestsBox struct{ Requests }

// agentBox is one agent's message sequence, replay ring and connections.
type agentBox struct {
	id        string
	name      string // from the latest token
	seq       uint64
	ring      []ringEntry // oldest first
	ringBytes int
	conns     map[*conn]struct{}
}

type ringEntry struct {
	seq  uint64
	data []byte
}

// conn is one browser tab.
type conn struct {
	id      uint64
	agent   Agent
	ws      *websocket.Conn
	out     chan []byte
	initial [][]byte // written before out: the replay or the snapshot
	// after is the last seq initial covers when it came from a
	// SharedStream: DeliverNumbered skips what the connection already has.
	after   uint64
	closing chan struct{}
	once    sync.Once
	code    int // close code, set before closing is closed
	text    string
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
	def(&cfg.ReplaySize, 256)
	def(&cfg.ReplayBytes, 4<<20)
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
	h := &Hub{
		cfg:     cfg,
		logger:  cfg.Logger,
		metrics: m,
		origins: origins,
		base:    uint64(time.Now().UnixMicro()),
		agents:  map[string]*agentBox{},
	}
	h.upgrader = websocket.Upgrader{
		Subprotocols:     []string{Subprotocol},
		HandshakeTimeout: 10 * time.Second,
		// serveWS checks the origin itself, before authenticating, so that
		// a foreign page learns nothing about tokens.
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
		b = &agentBox{id: agentID, seq: h.base, conns: map[*conn]struct{}{}}
		h.agents[agentID] = b
	}
	return b
}

// Deliver implements Deliverer. It never blocks: a browser whose outbox is
// full is disconnected and resumes from the replay ring when it returns.
func (h *Hub) Deliver(agentID string, m Message) {
	if m.At.IsZero() {
		m.At = time.Now()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.box(agentID)
	m.Seq = b.seq + 1
	data, err := json.Marshal(m)
	if err != nil {
		// Only a card holding a value JSON cannot encode (NaN from a
		// source) gets here. The seq is not used, so the ring stays
		// without holes.
		h.logger.Error("cannot encode message", "type", m.Type, "call", m.CallID, "agent", agentID, "err", err)
		return
	}
	h.metrics.messages.WithLabelValues(m.Type).Inc()
	h.record(b, m.Seq, data)
	for c := range b.conns {
		h.enqueue(b, c, data)
	}
}

// record keeps a message in the agent's replay ring; it runs with h.mu held.
func (h *Hub) record(b *agentBox, seq uint64, data []byte) {
	b.seq = max(b.seq, seq)
	b.ring = append(b.ring, ringEntry{seq: seq, data: data})
	b.ringBytes += len(data)
	for len(b.ring) > h.cfg.ReplaySize || (len(b.ring) > 1 && b.ringBytes > h.cfg.ReplayBytes) {
		b.ringBytes -= len(b.ring[0].data)
		b.ring[0] = ringEntry{}
		b.ring = b.ring[1:]
	}
}

// enqueue runs with h.mu held.
func (h *Hub) enqueue(b *agentBox, c *conn, data []byte) {
	select {
	case c.out <- data:
	default:
		h.logger.Warn("agent page too slow, disconnected", "agent", c.agent.ID, "conn", c.id)
		h.metrics.dropped.WithLabelValues(dropSlow).Inc()
		h.detach(b, c, websocket.CloseTryAgainLater, "too slow; reconnect")
	}
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
	}
	c.once.Do(func() {
		c.code, c.text = code, text
		close(c.closing)
	})
}

// attach runs with h.mu held.
func (h *Hub) attach(b *agentBox, c *conn) {
	if len(b.conns) == 0 {
		h.metrics.connectedAgents.Inc()
	}
	b.conns[c] = struct{}{}
	h.metrics.connections.Inc()
}

// replay returns the messages after since, or false when the ring cannot
// fill the gap (it overflowed, or since is from another process). Seqs
// numbered by a SharedStream are increasing but not consecutive, so since
// is looked up rather than computed.
func (b *agentBox) replay(since uint64) ([][]byte, bool) {
	if since == b.seq {
		return nil, true
	}
	if since > b.seq || len(b.ring) == 0 {
		return nil, false
	}
	from := -1
	if since+1 == b.ring[0].seq {
		from = 0
	} else {
		for i, e := range b.ring {
			if e.seq == since {
				from = i + 1
				break
			}
		}
	}
	if from < 0 {
		return nil, false
	}
	out := make([][]byte, 0, len(b.ring)-from)
	for _, e := range b.ring[from:] {
		out = append(out, e.data)
	}
	return out, true
}

// Close disconnects every browser (they reconnect to the next daemon) and
// refuses new ones. It returns once the connections' goroutines are done.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
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
	if !h.originAllowed(r) {
		h.metrics.dropped.WithLabelValues(dropOrigin).Inc()
		h.logger.Warn("WebSocket from a foreign origin refused", "origin", r.Header.Get("Origin"), "host", r.Host)
		http.Error(w, "origin not allowed", http.StatusForbidden)
		return
	}
	agent, err := h.cfg.Auth.Authenticate(r)
	if err != nil {
		h.metrics.dropped.WithLabelValues(dropAuth).Inc()
		h.logger.Info("WebSocket without a valid token refused", "remote", r.RemoteAddr, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="screenpop"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.wg.Add(2) // reader (this goroutine) and writer
	}
	h.mu.Unlock()
	if closed {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer h.wg.Done()
	writerStarted := false
	defer func() {
		if !writerStarted {
			h.wg.Done()
		}
	}()

	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered the client
	}
	h.mu.Lock()
	h.nextID++
	c := &conn{
		id:      h.nextID,
		agent:   agent,
		ws:      ws,
		out:     make(chan []byte, h.cfg.OutboxSize),
		closing: make(chan struct{}),
	}
	h.mu.Unlock()
	log := h.logger.With("agent", agent.ID, "conn", c.id)

	since, resume := parseSince(r.URL.Query().Get("since"))
	resumed, attached := false, false
	if s := h.sharedStream(); s != nil {
		ctx, cancel := context.WithTimeout(r.Context(), sharedOpenTimeout)
		initial, upTo, err := s.Open(ctx, agent, since, resume)
		cancel()
		defer s.Close(agent.ID)
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
	log.Debug("agent page connected", "resumed", resumed)
	writerStarted = true
	go func() {
		defer h.wg.Done()
		h.writeLoop(c, log)
	}()
	h.readLoop(c, log)
	h.mu.Lock()
	if b := h.agents[agent.ID]; b != nil {
		h.detach(b, c, websocket.CloseNormalClosure, "")
	}
	h.mu.Unlock()
	log.Debug("agent page disconnected")
}

func parseSince(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// attachReplay registers c with the messages it missed, if the ring has
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
	b := h.box(c.agent.ID)
	missed, ok := b.replay(since)
	if !ok {
		return false
	}
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
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.closed {
			return
		}
		b := h.box(c.agent.ID)
		b.name = c.agent.Name
		m := Message{Type: TypeSnapshot, Seq: b.seq, At: time.Now(), Data: SnapshotData{
			Agent: AgentRef{ID: c.agent.ID, Name: c.agent.Name},
			Pops:  pops,
		}}
		data, err := json.Marshal(m)
		if err != nil {
			h.logger.Error("cannot encode snapshot", "agent", c.agent.ID, "err", err)
			return
		}
		h.metrics.messages.WithLabelValues(TypeSnapshot).Inc()
		c.initial = [][]byte{data}
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

func (h *Hub) writeLoop(c *conn, log *slog.Logger) {
	defer c.ws.Close() // also ends the read loop
	ping := time.NewTicker(h.cfg.PingInterval)
	defer ping.Stop()
	write := func(data []byte) bool {
		c.ws.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
		if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
			h.writeFailed(c, log, err)
			return false
		}
		return true
	}
	for _, data := range c.initial {
		select {
		case <-c.closing:
			h.goodbye(c)
			return
		default:
		}
		if !write(data) {
			return
		}
	}
	c.initial = nil
	for {
		// A closing connection says goodbye before anything else queued.
		select {
		case <-c.closing:
			h.goodbye(c)
			return
		default:
		}
		select {
		case data := <-c.out:
			if !write(data) {
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout)); err != nil {
				h.writeFailed(c, log, err)
				return
			}
		case <-c.closing:
			h.goodbye(c)
			return
		}
	}
}

func (h *Hub) goodbye(c *conn) {
	if c.code != 0 && c.code != websocket.CloseNormalClosure {
		c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.code, c.text), time.Now().Add(time.Second))
	}
}

func (h *Hub) writeFailed(c *conn, log *slog.Logger, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.agents[c.agent.ID]
	if b == nil {
		return
	}
	if _, attached := b.conns[c]; !attached {
		return // already closed on purpose; the failure is the consequence
	}
	log.Info("write to agent page failed, disconnected", "err", err)
	h.metrics.dropped.WithLabelValues(dropWriteError).Inc()
	h.detach(b, c, websocket.CloseAbnormalClosure, "")
}

func (h *Hub) readLoop(c *conn, log *slog.Logger) {
	c.ws.SetReadLimit(h.cfg.ReadLimit)
	alive := func() { c.ws.SetReadDeadline(time.Now().Add(h.cfg.PongTimeout)) }
	alive()
	c.ws.SetPongHandler(func(string) error { alive(); return nil })
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway) && !errors.Is(err, websocket.ErrReadLimit) {
				log.Debug("agent page read ended", "err", err)
			}
			if errors.Is(err, websocket.ErrReadLimit) {
				log.Warn("agent page sent a message over the read limit, disconnected", "limit", h.cfg.ReadLimit)
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
		h.reply(c, Request{}, &RequestError{Code: "bad_request", Message: "not a JSON request"})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.RequestTimeout)
	defer cancel()
	err := h.handle(ctx, c.agent, req)
	var re *RequestError
	if errors.As(err, &re) && re.Code == codeUnknownCall {
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
		return &RequestError{Code: "unavailable", Message: "the server is starting; try again"}
	}
	switch req.Type {
	case RequestSelect:
		return reqs.Select(agent, req.CallID, req.CustomerID)
	case RequestNote:
		return reqs.Note(ctx, agent, req.CallID, req.Text, req.Ref)
	}
	return &RequestError{Code: "bad_request", Message: fmt.Sprintf("unknown request type %q", req.Type)}
}

// reply sends an error to the one connection that made the request. It has
// no seq: it is not replayed, and other tabs did not ask.
func (h *Hub) reply(c *conn, req Request, err error) {
	var re *RequestError
	if !errors.As(err, &re) {
		re = &RequestError{Code: "unavailable", Message: "the request failed"}
	}
	data, merr := json.Marshal(Message{Type: TypeError, CallID: req.CallID, At: time.Now(), Data: ErrorData{
		Code: re.Code, Message: re.Message, Request: req.Type, Ref: req.Ref,
	}})
	if merr != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.agents[c.agent.ID]
	if b == nil {
		return
	}
	if _, ok := b.conns[c]; !ok {
		return
	}
	h.metrics.messages.WithLabelValues(TypeError).Inc()
	h.enqueue(b, c, data)
}

func (h *Hub) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser; the token still decides
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	n, err := normalizeOrigin(origin)
	return err == nil && h.origins[n]
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
