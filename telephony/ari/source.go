// Package ari follows the calls of an Asterisk PBX over ARI (the Asterisk
// REST Interface) and turns them into screenpop.CallEvents, without ever
// controlling a call: it only reads the event socket (subscribeAll) and the
// channel list, so calls flow whether screenpop runs or not.
//
// The event socket and the few REST calls are screenpop's own (gorilla
// websocket, net/http with deadlines); ari/v5 is used only for its event
// and resource types, and ari.DecodeEvent for the frames the package's
// own decoder (decode.go) leaves to it. README.md says why.
package ari

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	arilib "github.com/CyCoreSystems/ari/v5"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/queue"
	"github.com/screenpop/screenpop/telephony"
)

// Config configures an ARI telephony source. The keys of a telephony entry
// of type ari decode straight into it (NewFromSpec); the fields tagged "-"
// are set by the wiring (Name, AgentOf), come from an environment variable
// (Password, from password_env) or are for tests.
type Config struct {
	// URL is Asterisk's HTTP server, e.g. http://pbx:8088 (https for TLS;
	// a path prefix set in http.conf may follow). Never put credentials in
	// it: use User and Password.
	URL string `yaml:"url"`
	// User and Password of the ARI user (ari.conf); read_only = yes is
	// enough unless the application must be subscribed explicitly (see
	// README.md).
	User     string `yaml:"user"`
	Password string `yaml:"-"`
	// App is the ARI application name. Each screenpop instance needs its
	// own: a second socket with the same name takes the events away from
	// the first.
	App string `yaml:"app"`
	// Name is the source label of every metric of this source (two PBXs in
	// one daemon register side by side) and CallEvent.Source; default "ari".
	Name string `yaml:"-"`
	// AgentOf maps an endpoint ("PJSIP/1001") to an agent ID. Required.
	AgentOf func(endpoint string) (agent string, ok bool) `yaml:"-"`
	// InboundContexts are the dialplan contexts where calls from customers
	// enter (e.g. "from-carrier"). Empty: any incoming channel whose
	// endpoint is not an agent's.
	InboundContexts []string `yaml:"inbound_contexts"`
	// OnUnknownPresentation says what to do with a caller whose
	// presentation the PBX does not report (ARI snapshots carry none: it
	// takes CALLERID(pres) in ari.conf channelvars, or the dialplan's
	// SCREENPOP_PRES): PresentationWithhold (default) or PresentationShow.
	// Either way such calls are counted, logged and named in Warnings.
	OnUnknownPresentation string `yaml:"on_unknown_presentation"`
	// Heartbeat is how often the socket is pinged; a socket that brings
	// neither an event nor a pong for two heartbeats (plus a small margin)
	// is dropped and reconnected. Default 5s.
	Heartbeat time.Duration `yaml:"heartbeat"`
	// MinBackoff and MaxBackoff bound the wait between connection attempts
	// (exponential with full jitter). Defaults 500ms and 30s.
	MinBackoff time.Duration `yaml:"-"`
	MaxBackoff time.Duration `yaml:"-"`
	// RESTTimeout bounds each REST request and the WebSocket handshake.
	// Default 5s.
	RESTTimeout time.Duration `yaml:"-"`
	// MaxQueuedEvents and MaxQueuedBytes bound the frames read from the
	// socket and not yet applied (defaults 200000 and 256 MiB; the bytes
	// at least 8 MiB, the largest frame). Past either, the pipeline is
	// too far behind to catch up: the source drops the socket, applies
	// what it queued, and reconnects, and the resync from the live
	// channels repairs what the socket brought meanwhile. A burst of
	// 1,000 simultaneous calls is about 91,000 events, 53 MB. The bytes
	// counted are the memory the frames hold: each is kept in a buffer
	// of a power-of-two size up to 64 KiB (framepool.go).
	MaxQueuedEvents int   `yaml:"max_queued_events"`
	MaxQueuedBytes  int64 `yaml:"max_queued_bytes"`
}

// Defaults of Config.
const (
	DefaultName        = "ari"
	DefaultHeartbeat   = 5 * time.Second
	DefaultMinBackoff  = 500 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	DefaultRESTTimeout = 5 * time.Second

	DefaultMaxQueuedEvents = 200000
	DefaultMaxQueuedBytes  = 256 << 20
)

// callTracker is what the source needs from the call model: one goroutine
// (the session loop) owns it.
type callTracker interface {
	Apply(ev arilib.Event) []screenpop.CallEvent
	Resync(channels []arilib.ChannelData) []screenpop.CallEvent
	Restarted() []screenpop.CallEvent
	Active() int
}

// Source follows one Asterisk's calls. Build it with New, start it with Run.
type Source struct {
	cfg         Config
	base        *url.URL // REST base: .../ari
	eventsURL   string   // ws(s)://.../ari/events?app=...&subscribeAll=true
	readTimeout time.Duration
	log         *slog.Logger
	m           *metrics
	tracker     callTracker
	client      *http.Client
	dialer      *websocket.Dialer
	running     atomic.Bool

	mu    sync.Mutex
	state readiness

	pres *presentationWatch

	// Owned by the Run goroutine.
	everReady bool
	// startedAt is Asterisk's start time as last read (GET
	// /ari/asterisk/info): a different one after a reconnect means the PBX
	// restarted and cut every call it had.
	startedAt string
	logged    map[string]bool // unknown/malformed types already logged
	// dec decodes the frames, in the session loop (handle).
	dec *eventDecoder
}

type readiness struct {
	started bool
	stopped bool
	ready   bool
	err     error     // why the last attempt failed or the socket dropped
	retryAt time.Time // when the next attempt starts (zero: connecting now)
}

// maxFrame bounds one event frame: attended-transfer events carry several
// channel and bridge snapshots, but nothing legitimate comes near this.
const maxFrame = 8 << 20

// maxLoggedTypes bounds how many distinct unknown or malformed event
// types are logged (each once): a PBX cannot grow the set without limit.
const maxLoggedTypes = 64

// New validates cfg and builds a Source. It does no I/O: the daemon starts
// while Asterisk is down, and Run connects.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Source, error) {
	if err := cfg.check(func(_, format string, args ...any) error {
		return fmt.Errorf("ari: "+format, args...)
	}); err != nil {
		return nil, err
	}
	return newSource(cfg, logger, reg)
}

// check fills in the defaults of c and checks it: every problem, each made
// by at with the key of the option at fault as a telephony entry writes it
// ("user", "heartbeat"; "password" for Password and "" for what no key
// sets), so that NewFromSpec can place it at that key.
func (c *Config) check(at telephony.ErrorAt) error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if c.URL == "" {
		add(at("url", "url is required (Asterisk's HTTP server, e.g. http://pbx:8088)"))
	} else if u, err := url.Parse(c.URL); err != nil {
		add(at("url", "url %q: %w", c.URL, err))
	} else {
		switch {
		case u.Scheme != "http" && u.Scheme != "https":
			add(at("url", "url %q must start with http:// or https://", c.URL))
		case u.Host == "":
			add(at("url", "url %q has no host", c.URL))
		case u.User != nil:
			add(at("url", "url must not contain credentials: set user and password instead"))
		case u.RawQuery != "" || u.Fragment != "":
			add(at("url", "url %q must not have a query or fragment", u.Redacted()))
		}
	}
	if c.User == "" {
		add(at("user", "user is required (an ARI user from ari.conf)"))
	}
	if c.Password == "" {
		add(at("password", "password is required"))
	}
	switch {
	case c.App == "":
		add(at("app", "app is required (the ARI application name, e.g. screenpop)"))
	case strings.ContainsAny(c.App, "/?#& "):
		add(at("app", "app %q may not contain '/', '?', '#', '&' or spaces", c.App))
	}
	if c.AgentOf == nil {
		add(at("", "AgentOf is required (the endpoint to agent mapping)"))
	}
	if c.Name == "" {
		c.Name = DefaultName
	}
	switch c.OnUnknownPresentation {
	case "":
		c.OnUnknownPresentation = PresentationWithhold
	case PresentationWithhold, PresentationShow:
	default:
		add(at("on_unknown_presentation", "on_unknown_presentation %q: use %s or %s", c.OnUnknownPresentation, PresentationWithhold, PresentationShow))
	}
	add(at.Duration("heartbeat", &c.Heartbeat, DefaultHeartbeat))
	add(at.Duration("min_backoff", &c.MinBackoff, DefaultMinBackoff))
	add(at.Duration("max_backoff", &c.MaxBackoff, DefaultMaxBackoff))
	add(at.Duration("rest_timeout", &c.RESTTimeout, DefaultRESTTimeout))
	if c.MinBackoff > c.MaxBackoff {
		add(at("min_backoff", "min_backoff (%s) is larger than max_backoff (%s)", c.MinBackoff, c.MaxBackoff))
	}
	switch {
	case c.MaxQueuedEvents < 0:
		add(at("max_queued_events", "max_queued_events must not be negative, got %d", c.MaxQueuedEvents))
	case c.MaxQueuedEvents == 0:
		c.MaxQueuedEvents = DefaultMaxQueuedEvents
	}
	switch {
	case c.MaxQueuedBytes == 0:
		c.MaxQueuedBytes = DefaultMaxQueuedBytes
	case c.MaxQueuedBytes < maxFrame:
		add(at("max_queued_bytes", "max_queued_bytes must be at least %d (8 MiB, the largest event frame), got %d", maxFrame, c.MaxQueuedBytes))
	}
	return errors.Join(errs...)
}

// newSource builds a Source from a checked cfg.
func newSource(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Source, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ari: url %q: %w", cfg.URL, err) // check parsed it
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg, cfg.Name)
	if err != nil {
		return nil, fmt.Errorf("ari: metrics: %w", err)
	}
	pres, err := newPresentationWatch(reg, cfg.Name, cfg.OnUnknownPresentation, logger)
	if err != nil {
		return nil, fmt.Errorf("ari: metrics: %w", err)
	}

	base := u.JoinPath("ari")
	ws := *base.JoinPath("events")
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	ws.RawQuery = url.Values{"app": {cfg.App}, "subscribeAll": {"true"}}.Encode()

	// Our own transport: no proxy from the environment, connection and
	// handshake bounded; every request also carries a context deadline.
	netDialer := &net.Dialer{Timeout: cfg.RESTTimeout, KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		DialContext:           netDialer.DialContext,
		TLSHandshakeTimeout:   cfg.RESTTimeout,
		ResponseHeaderTimeout: cfg.RESTTimeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     false,
	}

	s := &Source{
		cfg:         cfg,
		base:        base,
		eventsURL:   ws.String(),
		readTimeout: 2*cfg.Heartbeat + min(cfg.Heartbeat/2, time.Second),
		log:         logger,
		m:           m,
		client:      &http.Client{Transport: transport},
		dialer: &websocket.Dialer{
			NetDialContext:   netDialer.DialContext,
			HandshakeTimeout: cfg.RESTTimeout,
			ReadBufferSize:   64 << 10,
		},
		logged: map[string]bool{},
		pres:   pres,
		dec:    newEventDecoder(),
	}
	s.tracker = newTracker(cfg, pres.observe)
	return s, nil
}

// Warnings lists what works but needs IT's attention (/readyz shows it
// without failing): today, a PBX that does not report callers'
// presentation.
func (s *Source) Warnings() []string {
	if w := s.pres.warning(); w != "" {
		return []string{"ari: " + w}
	}
	return nil
}

// Ready returns nil while the event socket is up and the call state has
// been resynchronised, and otherwise an error saying why not, e.g.
// "ari: not connected to http://pbx:8088: dial tcp ...: connection refused
// (retry in 3.2s)".
func (s *Source) Ready() error {
	s.mu.Lock()
	st := s.state
	s.mu.Unlock()
	switch {
	case st.ready:
		return nil
	case !st.started:
		return fmt.Errorf("ari: not started (%s)", s.cfg.URL)
	case st.stopped:
		return fmt.Errorf("ari: stopped (%s)", s.cfg.URL)
	case st.err == nil:
		return fmt.Errorf("ari: connecting to %s", s.cfg.URL)
	case st.retryAt.IsZero():
		return fmt.Errorf("ari: not connected to %s: %v (reconnecting now)", s.cfg.URL, st.err)
	}
	wait := max(time.Until(st.retryAt), 0)
	return fmt.Errorf("ari: not connected to %s: %v (retry in %.1fs)", s.cfg.URL, st.err, wait.Seconds())
}

func (s *Source) setState(f func(*readiness)) {
	s.mu.Lock()
	f(&s.state)
	s.mu.Unlock()
}

// Run follows Asterisk until ctx ends: connect, check the application's
// subscription, resynchronise from the channel list, read events; on any
// failure drop the socket, wait (exponential backoff with full jitter) and
// start over, forever. It returns nil when ctx is cancelled. sink.HandleCall
// is called from Run's goroutine only, in the order of the events.
func (s *Source) Run(ctx context.Context, sink screenpop.CallSink) error {
	if sink == nil {
		return errors.New("ari: Run needs a sink")
	}
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("ari: Run is already running")
	}
	defer s.running.Store(false)
	defer s.setState(func(r *readiness) { *r = readiness{started: true, stopped: true} })
	s.setState(func(r *readiness) { r.started = true })

	attempt := 0
	var lastErr string
	for {
		s.setState(func(r *readiness) { r.retryAt = time.Time{} })
		wasReady, err := s.session(ctx, sink)
		s.m.connected.Set(0)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("the events socket closed")
		}
		if wasReady {
			attempt = 0
			lastErr = ""
		}
		wait := s.backoff(attempt)
		attempt++
		s.setState(func(r *readiness) { r.ready, r.err, r.retryAt = false, err, time.Now().Add(wait) })
		switch {
		case wasReady:
			s.log.Warn("ari: connection lost; calls are repaired from the channel list on reconnect",
				"err", err, "retry_in_seconds", wait.Seconds())
		case err.Error() != lastErr:
			s.log.Warn("ari: cannot connect", "url", s.cfg.URL, "err", err, "attempt", attempt, "retry_in_seconds", wait.Seconds())
		default:
			s.log.Debug("ari: cannot connect", "url", s.cfg.URL, "err", err, "attempt", attempt, "retry_in_seconds", wait.Seconds())
		}
		lastErr = err.Error()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
	}
}

// backoff is exponential with full jitter: a PBX coming back after a
// restart is not hit by every client at the same instant.
func (s *Source) backoff(attempt int) time.Duration {
	ceiling := s.cfg.MinBackoff
	for range attempt {
		if ceiling > s.cfg.MaxBackoff/2 {
			ceiling = s.cfg.MaxBackoff
			break
		}
		ceiling *= 2
	}
	ceiling = min(ceiling, s.cfg.MaxBackoff)
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling + 1)
}

// errReplaced ends a session whose application another socket took over.
var errReplaced = errors.New("another connection took over the ARI application (ApplicationReplaced): give every screenpop instance its own app name")

// session runs one connection: it returns whether it got ready (socket up
// and state resynchronised) and why it ended.
func (s *Source) session(ctx context.Context, sink screenpop.CallSink) (bool, error) {
	conn, err := s.dial(ctx)
	if err != nil {
		return false, err
	}
	q := s.newFrameQueue()
	ctx, cancel := context.WithCancel(ctx)
	// Closing the socket is what unblocks the reader, on cancellation as on
	// any error.
	stopClose := context.AfterFunc(ctx, func() { _ = conn.Close() })
	var wg sync.WaitGroup
	defer func() {
		cancel()
		stopClose()
		_ = conn.Close()
		wg.Wait()
		// What a cancelled or replaced session leaves is stale: dropped,
		// and the depth gauge says so.
		q.Take()
	}()

	// Start reading before anything else: Asterisk drops a client that
	// does not take its events, and events that arrive during the resync
	// below must be kept, in order, for after it (q, above).
	readerDone := make(chan struct{})
	var readErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		readErr = s.read(conn, q)
		close(readerDone)
	}()
	pingFailed := make(chan error, 1)
	go func() {
		defer wg.Done()
		if err := s.ping(ctx, conn); err != nil {
			pingFailed <- err
		}
	}()
	// readFailure is why the reader stopped: a failed ping closes the
	// socket, and then the ping's error is the one worth reporting.
	readFailure := func() error {
		if errors.Is(readErr, net.ErrClosed) {
			select {
			case err := <-pingFailed:
				return err
			default:
			}
		}
		return readErr
	}

	if err := s.ensureSubscribed(ctx); err != nil {
		return false, err
	}
	if s.pbxRestarted(ctx) {
		s.log.Warn("ari: Asterisk restarted while disconnected; the calls it had end as interrupted",
			"url", s.cfg.URL, "active_calls", s.tracker.Active())
		s.emit(sink, s.tracker.Restarted())
	}
	channels, err := s.channels(ctx)
	if err != nil {
		return false, err
	}
	s.emit(sink, s.resync(channels))
	s.m.resyncs.Inc()
	ready := false
	select {
	case <-readerDone:
		// The socket died during the resync: apply what it brought, then
		// report the failure without ever having claimed to be ready.
	default:
		ready = true
		s.m.connected.Set(1)
		if s.everReady {
			s.m.reconnects.Inc()
		}
		s.everReady = true
		s.setState(func(r *readiness) { r.ready, r.err, r.retryAt = true, nil, time.Time{} })
		s.log.Info("ari: connected", "url", s.cfg.URL, "app", s.cfg.App,
			"channels", len(channels), "active_calls", s.tracker.Active())
	}

	for {
		batch := q.Take()
		if len(batch) == 0 {
			select {
			case <-q.Ready():
				continue
			case <-readerDone:
				if q.Len() > 0 {
					continue
				}
				return ready, readFailure()
			case <-ctx.Done():
				return ready, context.Cause(ctx)
			}
		}
		for i, frame := range batch {
			if ctx.Err() != nil {
				// A large backlog must not hold up shutdown.
				return ready, context.Cause(ctx)
			}
			batch[i] = nil // a long batch frees its frames as it goes
			err := s.handle(frame, sink)
			releaseFrame(frame)
			if err != nil {
				return ready, err
			}
		}
	}
}

// missingEventsFix is what a 404 on the events socket means: the socket is
// served by its own module, res_ari_events, so the REST API may well answer
// while nothing serves /ari/events.
const missingEventsFix = "nothing serves /ari/events: load res_ari_events (modules.conf: load = res_ari_events.so) / enable ARI in ari.conf ([general] enabled = yes)"

// dial opens the events socket.
func (s *Source) dial(ctx context.Context) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set("Authorization", "Basic "+basicAuth(s.cfg.User, s.cfg.Password))
	conn, resp, err := s.dialer.DialContext(ctx, s.eventsURL, h)
	if err != nil {
		if resp != nil {
			defer resp.Body.Close()
			err := statusError("open the events socket", resp)
			if resp.StatusCode == http.StatusNotFound {
				err = fmt.Errorf("%w; %s", err, missingEventsFix)
			}
			return nil, err
		}
		return nil, err
	}
	conn.SetReadLimit(maxFrame)
	return conn, nil
}

// read only reads: every frame goes to the queue at once, whatever the
// pipeline is doing, so that Asterisk never waits on screenpop. Any frame
// or pong proves the socket alive; silence past readTimeout means it is
// half-open. A full queue means the pipeline fell too far behind: the
// socket is dropped, and the resync of the next connection repairs what
// is lost with it.
func (s *Source) read(conn *websocket.Conn, q *queue.Bounded[[]byte]) error {
	alive := func() error { return conn.SetReadDeadline(time.Now().Add(s.readTimeout)) }
	_ = alive()
	conn.SetPongHandler(func(string) error { return alive() })
	// Each frame is read into buf and copied out into a pooled buffer
	// (copyFrame), which the session loop gives back once handled, where
	// ReadMessage (io.ReadAll) grows a new buffer from 512 bytes for
	// every one.
	var buf bytes.Buffer
	for {
		frame, err := readFrame(conn, &buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("no event and no pong for %s: the socket is half-open", s.readTimeout)
			}
			return fmt.Errorf("events socket: %w", err)
		}
		_ = alive()
		if !q.Push(frame) {
			_ = conn.Close()
			return fmt.Errorf("the pipeline fell behind by %d events (%d bytes; max_queued_events %d, max_queued_bytes %d): "+
				"socket dropped, the calls are repaired from the channel list on reconnect",
				q.Len(), q.Bytes(), s.cfg.MaxQueuedEvents, s.cfg.MaxQueuedBytes)
		}
	}
}

// maxKeptReadBuffer bounds the read buffer kept between frames: a rare
// large frame (a transfer with many snapshots) does not pin its size.
const maxKeptReadBuffer = 256 << 10

// readFrame reads the next message as conn.ReadMessage does, into buf,
// and returns a copy of it.
func readFrame(conn *websocket.Conn, buf *bytes.Buffer) ([]byte, error) {
	_, r, err := conn.NextReader()
	if err != nil {
		return nil, err
	}
	buf.Reset()
	_, err = buf.ReadFrom(r)
	frame := copyFrame(buf.Bytes())
	if buf.Cap() > maxKeptReadBuffer {
		*buf = bytes.Buffer{}
	}
	if frame == nil {
		frame = []byte{}
	}
	return frame, err
}

// ping sends a ping every heartbeat; a ping that cannot be written within
// a heartbeat closes the socket.
func (s *Source) ping(ctx context.Context, conn *websocket.Conn) error {
	t := time.NewTicker(s.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.cfg.Heartbeat)); err != nil {
				_ = conn.Close()
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("ping not sent within %s: %w", s.cfg.Heartbeat, err)
			}
		}
	}
}

// handle decodes one frame and applies it to the call state. Only an
// ApplicationReplaced ends the session; everything else that cannot be
// used is counted and skipped.
func (s *Source) handle(frame []byte, sink screenpop.CallSink) error {
	ev, err := s.dec.decode(frame)
	if err != nil || ev == nil {
		// Only now find out why, to keep the common path to one decode.
		typ, ok := eventType(frame)
		switch {
		case !ok:
			s.m.malformed.Inc()
			s.logOnce("malformed:", "ari: skipping frames that are not ARI events", "frame_bytes", len(frame))
		case !knownTypes[typ]:
			s.m.unknown.Inc()
			s.logOnce("unknown:"+typ, "ari: skipping events of a type ari/v5 does not know (logged once per type)", "type", typ)
		default:
			s.m.malformed.Inc()
			s.logOnce("malformed:"+typ, "ari: skipping malformed events (logged once per type)", "type", typ, "err", err)
		}
		return nil
	}
	typ := ev.GetType()
	c, ok := s.m.eventsByT[typ]
	if !ok {
		// DecodeEvent and the Events list disagree: count it, do not crash.
		s.m.unknown.Inc()
		return nil
	}
	if typ == arilib.Events.ApplicationReplaced {
		c.Inc()
		return errReplaced
	}
	s.emit(sink, s.apply(typ, ev))
	// Counted once handled, so that the counter is also a progress mark.
	c.Inc()
	return nil
}

// apply hands the event to the call model; a panic there is a bug that
// must cost one event, not the daemon.
func (s *Source) apply(typ string, ev arilib.Event) (out []screenpop.CallEvent) {
	defer func() {
		if r := recover(); r != nil {
			s.m.malformed.Inc()
			s.log.Error("ari: the call model failed on an event; skipped", "type", typ, "panic", fmt.Sprint(r))
			out = nil
		}
	}()
	return s.tracker.Apply(ev)
}

func (s *Source) resync(channels []arilib.ChannelData) (out []screenpop.CallEvent) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("ari: the call model failed to resynchronise", "panic", fmt.Sprint(r))
			out = nil
		}
	}()
	return s.tracker.Resync(channels)
}

func (s *Source) emit(sink screenpop.CallSink, evs []screenpop.CallEvent) {
	// Metrics first: whoever sees the event sees metrics that include it.
	s.m.active.Set(float64(s.tracker.Active()))
	for _, ev := range evs {
		if ev.Kind == screenpop.EventEnded {
			s.m.ended(ev.Outcome)
		}
	}
	for _, ev := range evs {
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("ari: call event", "kind", ev.Kind, "call_id", ev.CallID,
				"caller", screenpop.MaskPhone(ev.Caller.Number), "withheld", ev.Caller.Withheld,
				"did", ev.DID, "agents", ev.Agents, "agent", ev.Agent, "outcome", ev.Outcome)
		}
		sink.HandleCall(ev)
	}
}

func (s *Source) logOnce(key, msg string, args ...any) {
	if s.logged[key] || len(s.logged) >= maxLoggedTypes {
		return
	}
	s.logged[key] = true
	s.log.Warn(msg, args...)
}

// newFrameQueue is the queue between the socket reader, which must never
// wait (Asterisk drops a slow client after websocket_write_timeout), and
// the session loop. It is bounded, so that a stalled pipeline costs a
// reconnect and a resync rather than the daemon's memory.
func (s *Source) newFrameQueue() *queue.Bounded[[]byte] {
	return queue.New(queue.Options[[]byte]{
		MaxItems: s.cfg.MaxQueuedEvents,
		MaxBytes: s.cfg.MaxQueuedBytes,
		// The memory a frame holds: its pooled buffer (copyFrame) may be
		// up to twice its length (or 512 bytes).
		Size:    func(frame []byte) int { return cap(frame) },
		Depth:   s.m.queued,
		Refused: s.m.overflows,
	})
}
