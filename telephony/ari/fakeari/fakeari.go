// Package fakeari is a fake Asterisk ARI server for tests: the part of ARI
// that screenpop observes (the events WebSocket, applications, the channel
// list), with the faults a real PBX and a real network produce (sockets cut,
// half-open sockets, Asterisk down), and a guard that fails the test if the
// client ever does something that could touch a call.
//
// It behaves like Asterisk 20 where screenpop depends on it:
//   - every request needs the ARI user's credentials, as HTTP basic auth or
//     as api_key=user:password;
//   - subscribeAll=true only holds when the connection creates the
//     application; an application that already exists keeps the
//     subscription model it was created with;
//   - a second socket for the same application takes it over and the first
//     one receives ApplicationReplaced;
//   - events are not queued for a client that is not connected: they are
//     lost, but the channel list (GET /ari/channels) still follows them, as
//     the real calls go on while the daemon is away.
package fakeari

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Default credentials of the fake's ARI user.
const (
	DefaultUser     = "screenpop"
	DefaultPassword = "secret"
)

// Markers Asterisk lists among an application's subscriptions when it is
// subscribed to every channel, bridge or endpoint (res/stasis/app.c).
const (
	AllChannels  = "__AST_CHANNEL_ALL_TOPIC"
	AllBridges   = "__AST_BRIDGE_ALL_TOPIC"
	AllEndpoints = "__AST_ENDPOINT_ALL_TOPIC"
)

// Option changes how the fake behaves.
type Option func(*Server)

// WithCredentials sets the ARI user and password the fake accepts.
func WithCredentials(user, password string) Option {
	return func(s *Server) { s.user, s.password = user, password }
}

// WithReadOnlyUser makes the ARI user read_only=yes: every request that is
// not a GET is refused with 403, as Asterisk does.
func WithReadOnlyUser() Option {
	return func(s *Server) { s.readOnly = true }
}

// WithExistingApp registers application name before any client connects,
// without subscribeAll, as if another connection had created it: a client
// that asks for subscribeAll=true will not get it and must subscribe
// explicitly.
func WithExistingApp(name string) Option {
	return func(s *Server) {
		s.apps[name] = &application{name: name, pinned: true, channelIDs: map[string]bool{}}
	}
}

// WithLateApplication makes the first n GET /ari/applications/{name}
// answer 404, as Asterisk may between the WebSocket handshake and the
// registration of the application the socket asked for.
func WithLateApplication(n int) Option {
	return func(s *Server) { s.late = n }
}

// WithAsteriskVersion sets the version GET /ari/asterisk/info reports
// (system.version); the default is "20.20.1".
func WithAsteriskVersion(v string) Option {
	return func(s *Server) { s.version = v }
}

// WithoutEventsModule makes the fake an Asterisk without res_ari_events:
// the REST API answers, but the upgrade at /ari/events gets 404 "Resource
// not found", as when that module is not loaded.
func WithoutEventsModule() Option {
	return func(s *Server) { s.noEvents = true }
}

// WithEventFilter gives application name an event filter, as if another
// client had set it with PUT /applications/{name}/eventFilter: its JSON
// lists allowed and disallowed ({"type": ...} objects in events_allowed and
// events_disallowed) and its sockets only get the events the filter lets
// through (Asterisk's rule: a disallowed type never, and when allowed is
// not empty only the types it lists). The application is registered
// beforehand like WithExistingApp, but created with subscribeAll, unless
// WithExistingApp came first.
func WithEventFilter(name string, allowed, disallowed []string) Option {
	return func(s *Server) {
		a := s.apps[name]
		if a == nil {
			a = &application{name: name, all: true, allBridges: true, allEndpts: true, pinned: true, channelIDs: map[string]bool{}}
			s.apps[name] = a
		}
		a.allowed, a.disallowed = slices.Clone(allowed), slices.Clone(disallowed)
	}
}

// WithChannelVars makes the fake an Asterisk whose ari.conf [general] has
// channelvars = names: every channel snapshot in the events given to Send
// (and so in the channel list) gets a "channelvars" object with exactly
// these names, each with the value the channel's last ChannelVarset event
// gave it (inherited variables' leading underscores dropped), or "" as
// Asterisk lists a variable that is not set.
func WithChannelVars(names ...string) Option {
	return func(s *Server) { s.channelVars = slices.Clone(names) }
}

// ReadOnlyProbePath is a resource ARI does not have. Asterisk refuses any
// write (POST, PUT, DELETE) of a read_only user with 403 before it even
// looks the resource up, and answers 404 to a user with write access; a
// write there changes nothing either way. screenpopd pbx check uses it to
// tell whether its user is read-only, and the guard allows it.
const ReadOnlyProbePath = "/ari/screenpop-read-only-probe"

// WithWriteTimeout sets how long the fake waits for a client to take one
// event before it drops the socket (Asterisk's websocket_write_timeout,
// 100 ms by default on a real PBX). The fake's default is 2 s.
func WithWriteTimeout(d time.Duration) Option {
	return func(s *Server) { s.writeTimeout = d }
}

// Server is a fake ARI server listening on a loopback port. Its address
// stays the same across Down and Up, like a PBX that restarts.
type Server struct {
	tb           testing.TB
	user         string
	password     string
	readOnly     bool
	late         int
	writeTimeout time.Duration
	upgrader     websocket.Upgrader
	version      string
	noEvents     bool
	channelVars  []string

	mu         sync.Mutex
	addr       string
	srv        *http.Server
	up         bool
	closed     bool
	sockets    map[*socket]bool
	accepted   int
	changed    chan struct{} // closed and replaced when sockets come or go
	apps       map[string]*application
	channels   map[string]json.RawMessage
	order      []string // channel ids in creation order
	override   []json.RawMessage
	overridden bool
	requests   []string
	violations []string
	lastAll    bool
	sent       int64
	delivered  int64
	pings      int64
	varValues  map[string]map[string]string // channel id -> channelvars values (WithChannelVars)
	started    time.Time                    // status.startup_time of GET /ari/asterisk/info; Restart moves it
}

type application struct {
	name        string
	all         bool // created with subscribeAll or subscribed to channel: and bridge:
	allBridges  bool
	allEndpts   bool
	channelIDs  map[string]bool
	pinned      bool // created by "another connection": never cleaned up
	active      *socket
	subscribeAt int      // how many POST /subscription it received
	allowed     []string // event filter (WithEventFilter)
	disallowed  []string
}

// lets says whether the application's event filter lets an event of type
// typ through (res/stasis/app.c: disallowed wins; an empty allowed list
// allows everything).
func (a *application) lets(typ string) bool {
	return !slices.Contains(a.disallowed, typ) && (len(a.allowed) == 0 || slices.Contains(a.allowed, typ))
}

type socket struct {
	conn     *websocket.Conn
	app      string
	halfOpen atomic.Bool
	writeMu  sync.Mutex
	done     chan struct{}
}

// New starts a fake ARI server on 127.0.0.1 and stops it when the test
// ends. tb may be nil: then forbidden requests are only recorded
// (Violations), not reported as test failures.
func New(tb testing.TB, opts ...Option) *Server {
	s := &Server{
		tb:           tb,
		user:         DefaultUser,
		password:     DefaultPassword,
		writeTimeout: 2 * time.Second,
		started:      time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC),
		version:      "20.20.1",
		varValues:    map[string]map[string]string{},
		sockets:      map[*socket]bool{},
		changed:      make(chan struct{}),
		apps:         map[string]*application{},
		channels:     map[string]json.RawMessage{},
	}
	s.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	for _, o := range opts {
		o(s)
	}
	l, err := listenStable()
	if err != nil {
		if tb != nil {
			tb.Fatalf("fakeari: listen: %v", err)
		}
		panic(err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	if tb != nil {
		tb.Cleanup(s.Close)
	}
	return s
}

// listenStable listens on a random loopback port below Linux's ephemeral
// range (32768-60999). Down gives the port up so that clients really get
// "connection refused"; a port from the ephemeral range could meanwhile be
// handed to any other process's connection, and Up would fail with "address
// already in use". Ports below the range are never handed out that way.
func listenStable() (net.Listener, error) {
	for range 50 {
		port := 20000 + rand.IntN(12000)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			return l, nil
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// URL is the base URL a client is configured with ("http://127.0.0.1:port").
func (s *Server) URL() string { return "http://" + s.addr }

func (s *Server) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.srv, s.up = srv, true
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// Down makes Asterisk unreachable: the port refuses connections, every
// socket and every REST connection is closed.
func (s *Server) Down() {
	s.mu.Lock()
	srv := s.srv
	s.srv, s.up = nil, false
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	s.Cut()
}

// Restart is Asterisk restarting: every socket and connection drops, every
// channel is gone (its calls were cut, no event tells), and it comes back
// on the same address with a new start time (GET /ari/asterisk/info).
func (s *Server) Restart() error {
	s.Down()
	s.mu.Lock()
	s.started = s.started.Add(time.Minute)
	s.channels, s.order = map[string]json.RawMessage{}, nil
	s.override, s.overridden = nil, false
	s.varValues = map[string]map[string]string{}
	s.mu.Unlock()
	return s.Up()
}

// Up brings Asterisk back on the same address after Down.
func (s *Server) Up() error {
	s.mu.Lock()
	if s.up || s.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("fakeari: listen again on %s: %w", s.addr, err)
	}
	s.serve(l)
	return nil
}

// Close stops the server for good.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.Down()
}

// Cut closes every event socket abruptly (no close frame), like a network
// that drops the TCP connection. The server keeps accepting new ones.
func (s *Server) Cut() {
	for _, sk := range s.openSockets() {
		_ = sk.conn.Close()
	}
}

// HalfOpen freezes every open event socket: the TCP connection stays, but
// no event is sent on it and pings are not answered any more, like a peer
// that vanished without closing (a NAT timeout, a pulled cable). Sockets
// opened later behave normally.
func (s *Server) HalfOpen() {
	for _, sk := range s.openSockets() {
		sk.halfOpen.Store(true)
	}
}

func (s *Server) openSockets() []*socket {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*socket, 0, len(s.sockets))
	for sk := range s.sockets {
		out = append(out, sk)
	}
	return out
}

// Sockets is how many event sockets are open now (half-open ones included).
func (s *Server) Sockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sockets)
}

// Accepted is how many event sockets the server accepted since New.
func (s *Server) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}

// WaitAccepted waits until the server has accepted at least n event
// sockets since New and one of them is still open.
func (s *Server) WaitAccepted(ctx context.Context, n int) error {
	for {
		s.mu.Lock()
		ok := s.accepted >= n && len(s.sockets) > 0
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakeari: waiting for event socket #%d: %w", n, context.Cause(ctx))
		}
	}
}

// WaitClosed waits until no event socket is open.
func (s *Server) WaitClosed(ctx context.Context) error {
	for {
		s.mu.Lock()
		ok := len(s.sockets) == 0
		ch := s.changed
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakeari: waiting for the event sockets to close: %w", context.Cause(ctx))
		}
	}
}

// SubscribeAllAsked reports whether the most recent event socket asked for
// subscribeAll.
func (s *Server) SubscribeAllAsked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAll
}

// Subscriptions is how many POST /applications/{name}/subscription the
// application received.
func (s *Server) Subscriptions(app string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.apps[app]; a != nil {
		return a.subscribeAt
	}
	return 0
}

// Requests lists the REST requests received, as "METHOD /path".
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Violations lists the requests that could have changed a call or put a
// channel into Stasis. A client that only observes makes none.
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.violations)
}

// Sent is how many events were given to Send (or Replay); Delivered is
// how many copies went out on event sockets.
func (s *Server) Sent() int64      { return atomic.LoadInt64(&s.sent) }
func (s *Server) Delivered() int64 { return atomic.LoadInt64(&s.delivered) }

// Pings is how many pings the event sockets received (half-open ones
// included, though they no longer answer).
func (s *Server) Pings() int64 { return atomic.LoadInt64(&s.pings) }

// SetChannels replaces the channel list GET /ari/channels returns with
// these channel objects (Asterisk's Channel JSON), until FollowChannels.
// Without it, the list is the channels the events given to Send created
// and did not destroy. Events sent while the list is set by hand are not
// followed (which also makes Send cheaper for load tests).
func (s *Server) SetChannels(channels ...json.RawMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.override = slices.Clone(channels)
	s.overridden = true
}

// FollowChannels undoes SetChannels: the channel list follows the events
// again.
func (s *Server) FollowChannels() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.override, s.overridden = nil, false
}

// Channels is what GET /ari/channels answers now.
func (s *Server) Channels() []json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channelsLocked()
}

func (s *Server) channelsLocked() []json.RawMessage {
	if s.overridden {
		return slices.Clone(s.override)
	}
	out := make([]json.RawMessage, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.channels[id])
	}
	return out
}

// Send hands one event line (one JSON object, as Asterisk sends it) to
// every open, subscribed, not half-open event socket and returns how many
// took it. The line is sent as is, malformed or not. Well-formed channel
// events also update the channel list, whether or not a socket was there
// to receive them.
func (s *Server) Send(line []byte) int {
	atomic.AddInt64(&s.sent, 1)
	if len(s.channelVars) > 0 {
		line = s.addChannelVars(line)
	}
	s.follow(line)
	s.mu.Lock()
	targets := make([]*socket, 0, len(s.sockets))
	typ, typed := "", false
	for sk := range s.sockets {
		a := s.apps[sk.app]
		if a == nil || a.active != sk || !a.all || sk.halfOpen.Load() {
			continue
		}
		if len(a.allowed)+len(a.disallowed) > 0 {
			if !typed {
				typ, typed = eventType(line), true
			}
			if !a.lets(typ) {
				continue
			}
		}
		targets = append(targets, sk)
	}
	s.mu.Unlock()
	n := 0
	for _, sk := range targets {
		if sk.write(line, s.writeTimeout) == nil {
			n++
		}
	}
	atomic.AddInt64(&s.delivered, int64(n))
	return n
}

func eventType(line []byte) string {
	var ev struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(line, &ev)
	return ev.Type
}

// addChannelVars puts the configured channelvars into every channel
// snapshot of an event, as Asterisk does (WithChannelVars).
func (s *Server) addChannelVars(line []byte) []byte {
	var ev map[string]json.RawMessage
	if json.Unmarshal(line, &ev) != nil {
		return line
	}
	typ := eventType(line)
	s.mu.Lock()
	defer s.mu.Unlock()
	if typ == "ChannelVarset" {
		var v struct {
			Variable string `json:"variable"`
			Value    string `json:"value"`
			Channel  struct {
				ID string `json:"id"`
			} `json:"channel"`
		}
		if json.Unmarshal(line, &v) == nil && v.Channel.ID != "" {
			if name := strings.TrimLeft(v.Variable, "_"); slices.Contains(s.channelVars, name) {
				if s.varValues[v.Channel.ID] == nil {
					s.varValues[v.Channel.ID] = map[string]string{}
				}
				s.varValues[v.Channel.ID][name] = v.Value
			}
		}
	}
	for key, raw := range ev {
		var snap map[string]json.RawMessage
		if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &snap) != nil || snap["dialplan"] == nil {
			continue // not a channel snapshot
		}
		var id string
		if json.Unmarshal(snap["id"], &id) != nil || id == "" {
			continue
		}
		vars := make(map[string]string, len(s.channelVars))
		for _, name := range s.channelVars {
			vars[name] = s.varValues[id][name]
		}
		snap["channelvars"], _ = json.Marshal(vars)
		ev[key], _ = json.Marshal(snap)
		if typ == "ChannelDestroyed" && key == "channel" {
			delete(s.varValues, id)
		}
	}
	out, err := json.Marshal(ev)
	if err != nil {
		return line
	}
	return out
}

// SendJSON marshals v and sends it (see Send).
func (s *Server) SendJSON(v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("fakeari: SendJSON: %v", err))
	}
	return s.Send(b)
}

// follow keeps the channel list in step with the events, like Asterisk's
// own channel table.
func (s *Server) follow(line []byte) {
	s.mu.Lock()
	overridden := s.overridden
	s.mu.Unlock()
	if overridden {
		// The list is set by hand: no need to pay for decoding the event.
		return
	}
	var ev struct {
		Type    string          `json:"type"`
		Channel json.RawMessage `json:"channel"`
		Peer    json.RawMessage `json:"peer"`
		Caller  json.RawMessage `json:"caller"`
	}
	if json.Unmarshal(line, &ev) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	update := func(raw json.RawMessage, destroyed bool) {
		var ch struct {
			ID string `json:"id"`
		}
		if len(raw) == 0 || json.Unmarshal(raw, &ch) != nil || ch.ID == "" {
			return
		}
		if destroyed {
			if _, ok := s.channels[ch.ID]; ok {
				delete(s.channels, ch.ID)
				s.order = slices.DeleteFunc(s.order, func(id string) bool { return id == ch.ID })
			}
			return
		}
		if _, ok := s.channels[ch.ID]; !ok {
			s.order = append(s.order, ch.ID)
		}
		s.channels[ch.ID] = slices.Clone(raw)
	}
	switch ev.Type {
	case "ChannelDestroyed":
		update(ev.Channel, true)
	case "Dial":
		update(ev.Peer, false)
		update(ev.Caller, false)
	default:
		if strings.HasPrefix(ev.Type, "Channel") {
			update(ev.Channel, false)
		}
	}
}

// Replay sends every line of a recording (one event per line, as in
// telephony/ari/testdata). scale 0 sends them as fast as possible; scale 1
// keeps the gaps between the events' timestamps; 0.01 replays 100 times
// faster. It returns how many events it sent.
func (s *Server) Replay(ctx context.Context, r io.Reader, scale float64) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	var prev time.Time
	n := 0
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if scale > 0 {
			if ts, ok := timestamp(line); ok {
				if !prev.IsZero() && ts.After(prev) {
					t := time.NewTimer(time.Duration(float64(ts.Sub(prev)) * scale))
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return n, context.Cause(ctx)
					}
				}
				prev = ts
			}
		}
		if err := ctx.Err(); err != nil {
			return n, context.Cause(ctx)
		}
		s.Send(slices.Clone(line))
		n++
	}
	return n, sc.Err()
}

// ReplayFile replays the recording at path (see Replay).
func (s *Server) ReplayFile(ctx context.Context, path string, scale float64) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return s.Replay(ctx, f, scale)
}

// TimeLayout is how Asterisk writes timestamps in events.
const TimeLayout = "2006-01-02T15:04:05.000-0700"

func timestamp(line []byte) (time.Time, bool) {
	var ev struct {
		Timestamp string `json:"timestamp"`
	}
	if json.Unmarshal(line, &ev) != nil || ev.Timestamp == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(TimeLayout, ev.Timestamp)
	return t, err == nil
}

func (sk *socket) write(line []byte, timeout time.Duration) error {
	sk.writeMu.Lock()
	defer sk.writeMu.Unlock()
	_ = sk.conn.SetWriteDeadline(time.Now().Add(timeout))
	if err := sk.conn.WriteMessage(websocket.TextMessage, line); err != nil {
		// Asterisk drops a client that does not keep up.
		_ = sk.conn.Close()
		return err
	}
	return nil
}

// handle serves every request: authentication, the guard, then the few
// resources screenpop may use.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(r.URL.Path, "/")
	if path != "/ari/events" {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+path)
		s.mu.Unlock()
	}
	if !s.authenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Authentication required"})
		return
	}
	if !allowed(r.Method, path) {
		msg := fmt.Sprintf("%s %s", r.Method, r.URL.RequestURI())
		s.mu.Lock()
		s.violations = append(s.violations, msg)
		s.mu.Unlock()
		if s.tb != nil {
			s.tb.Errorf("fakeari: the client called %s: screenpop must only observe (no Stasis, no call control)", msg)
		}
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "fakeari: forbidden for an observer"})
		return
	}
	if s.readOnly && r.Method != http.MethodGet && r.Method != http.MethodOptions {
		writeJSON(w, http.StatusForbidden, map[string]string{"message": "Write access denied"})
		return
	}
	parts := strings.Split(strings.TrimPrefix(path, "/ari/"), "/")
	switch {
	case path == "/ari/events" && s.noEvents:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Resource not found"})
	case path == "/ari/events":
		s.events(w, r)
	case path == "/ari/applications":
		s.mu.Lock()
		out := make([]map[string]any, 0, len(s.apps))
		for _, a := range s.apps {
			out = append(out, a.json())
		}
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	case parts[0] == "applications" && len(parts) == 2:
		s.mu.Lock()
		a := s.apps[parts[1]]
		if s.late > 0 {
			s.late--
			a = nil
		}
		var body map[string]any
		if a != nil {
			body = a.json()
		}
		s.mu.Unlock()
		if a == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "Application not found"})
			return
		}
		writeJSON(w, http.StatusOK, body)
	case parts[0] == "applications" && len(parts) == 3 && parts[2] == "subscription":
		s.subscribe(w, r, parts[1])
	case path == "/ari/channels":
		s.mu.Lock()
		list := s.channelsLocked()
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, list)
	case parts[0] == "channels" && len(parts) == 2:
		s.mu.Lock()
		var ch json.RawMessage
		for _, c := range s.channelsLocked() {
			var v struct {
				ID string `json:"id"`
			}
			if json.Unmarshal(c, &v) == nil && v.ID == parts[1] {
				ch = c
			}
		}
		s.mu.Unlock()
		if ch == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "Channel not found"})
			return
		}
		writeJSON(w, http.StatusOK, ch)
	case path == "/ari/asterisk/info":
		s.mu.Lock()
		started := s.started
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{
			"system": map[string]any{"version": s.version, "entity_id": "02:fc:00:00:00:01"},
			"status": map[string]any{"startup_time": started.UTC().Format(TimeLayout), "last_reload_time": started.UTC().Format(TimeLayout)},
		})
	case path == "/ari/asterisk/ping":
		writeJSON(w, http.StatusOK, map[string]any{
			"asterisk_id": "02:fc:00:00:00:01", "ping": "pong",
			"timestamp": time.Now().UTC().Format(TimeLayout),
		})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Resource not found"})
	}
}

// allowed says whether an observer may make this request: reading events,
// applications, channels and Asterisk's info, and subscribing its own
// application. Everything else (originate, answer, hangup, continue,
// redirect, variables, bridges, ...) changes calls.
func allowed(method, path string) bool {
	parts := strings.Split(strings.TrimPrefix(path, "/ari/"), "/")
	switch method {
	case http.MethodGet:
		switch {
		case path == "/ari/events", path == "/ari/applications", path == "/ari/channels",
			path == "/ari/asterisk/info", path == "/ari/asterisk/ping":
			return true
		case parts[0] == "applications" && len(parts) == 2:
			return true
		case parts[0] == "channels" && len(parts) == 2:
			return true
		}
	case http.MethodPost:
		return path == ReadOnlyProbePath ||
			parts[0] == "applications" && len(parts) == 3 && parts[2] == "subscription"
	}
	return false
}

func (s *Server) authenticated(r *http.Request) bool {
	if u, p, ok := r.BasicAuth(); ok {
		return u == s.user && p == s.password
	}
	if key := r.URL.Query().Get("api_key"); key != "" {
		u, p, _ := strings.Cut(key, ":")
		return u == s.user && p == s.password
	}
	return false
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "Method not allowed"})
		return
	}
	name := r.URL.Query().Get("app")
	if name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Missing parameter app"})
		return
	}
	all := astTrue(r.URL.Query().Get("subscribeAll"))
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	sk := &socket{conn: conn, app: name, done: make(chan struct{})}
	conn.SetPingHandler(func(data string) error {
		atomic.AddInt64(&s.pings, 1)
		if sk.halfOpen.Load() {
			return nil
		}
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})

	s.mu.Lock()
	if s.closed || !s.up {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	a := s.apps[name]
	var replaced *socket
	if a == nil {
		a = &application{name: name, all: all, allBridges: all, allEndpts: all, channelIDs: map[string]bool{}}
		s.apps[name] = a
	} else if a.active != nil {
		replaced = a.active
	}
	a.active = sk
	s.sockets[sk] = true
	s.accepted++
	s.lastAll = all
	s.notifyLocked()
	s.mu.Unlock()

	if replaced != nil {
		b, _ := json.Marshal(map[string]any{
			"type": "ApplicationReplaced", "application": name,
			"timestamp": time.Now().UTC().Format(TimeLayout),
		})
		_ = replaced.write(b, s.writeTimeout)
	}

	// Read until the client goes: control frames (pings) are handled by the
	// ping handler while reading.
	for {
		if _, _, err := conn.ReadMessage(); err != nil {
			break
		}
	}
	_ = conn.Close()
	s.mu.Lock()
	delete(s.sockets, sk)
	if a := s.apps[name]; a != nil && a.active == sk {
		a.active = nil
		// Asterisk destroys an inactive application only when it has no
		// subscriptions left; one created with subscribeAll never has none.
		if !a.pinned && !a.all && len(a.channelIDs) == 0 {
			delete(s.apps, name)
		}
	}
	s.notifyLocked()
	s.mu.Unlock()
	close(sk.done)
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// subscribe handles POST /applications/{name}/subscription?eventSource=...
// "channel:" (no id) subscribes the application to every channel, "bridge:"
// to every bridge, "endpoint:" to every endpoint.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request, name string) {
	sources := r.URL.Query()["eventSource"]
	var split []string
	for _, src := range sources {
		for _, one := range strings.Split(src, ",") {
			if one = strings.TrimSpace(one); one != "" {
				split = append(split, one)
			}
		}
	}
	if len(split) == 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": "Missing parameter eventSource"})
		return
	}
	s.mu.Lock()
	a := s.apps[name]
	if a == nil {
		s.mu.Unlock()
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Application not found"})
		return
	}
	a.subscribeAt++
	for _, src := range split {
		scheme, id, _ := strings.Cut(src, ":")
		switch {
		case scheme == "channel" && id == "":
			a.all = true
		case scheme == "channel":
			a.channelIDs[id] = true
		case scheme == "bridge" && id == "":
			a.allBridges = true
		case scheme == "endpoint" && id == "":
			a.allEndpts = true
		}
	}
	body := a.json()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (a *application) json() map[string]any {
	channels := []string{}
	if a.all {
		channels = append(channels, AllChannels)
	}
	for id := range a.channelIDs {
		channels = append(channels, id)
	}
	slices.Sort(channels)
	bridges := []string{}
	if a.allBridges {
		bridges = append(bridges, AllBridges)
	}
	endpoints := []string{}
	if a.allEndpts {
		endpoints = append(endpoints, AllEndpoints)
	}
	return map[string]any{
		"name":              a.name,
		"channel_ids":       channels,
		"bridge_ids":        bridges,
		"endpoint_ids":      endpoints,
		"device_names":      []string{},
		"events_allowed":    typeList(a.allowed),
		"events_disallowed": typeList(a.disallowed),
	}
}

// typeList is an event filter list as Asterisk shows it: [{"type": ...}].
func typeList(types []string) []any {
	out := []any{}
	for _, t := range types {
		out = append(out, map[string]string{"type": t})
	}
	return out
}

// astTrue is Asterisk's ast_true: what it accepts as "yes".
func astTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "y", "t", "1", "on":
		return true
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
