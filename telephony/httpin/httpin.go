// Package httpin is the telephony source for PBXs without ARI: an
// authenticated HTTP endpoint where a PBX, a CTI server or a dialplan script
// posts call events in a small documented JSON form (README.md). It checks
// them, translates endpoints to agents, fills in what a PBX only sends once
// (the caller, the DID) and hands them to the pipeline.
package httpin

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/bearer"
	"github.com/screenpop/screenpop/telephony"
)

// SourceName is what the source writes in CallEvent.Source when
// Config.Name is empty.
const SourceName = "http"

// Limits.
const (
	// DefaultMaxBody is the request body limit when Config.MaxBody is 0:
	// room for a few thousand events.
	DefaultMaxBody = 1 << 20
	maxMaxBody     = 64 << 20
	// MinTokenLength keeps tokens out of reach of guessing.
	MinTokenLength = bearer.MinLength

	maxEventsPerRequest = 1000
	maxIDLength         = 200 // call_id, agent IDs, endpoints, DID
	maxNumberLength     = 64
	maxNameLength       = 200
	maxAgentsPerEvent   = 200

	// An open call nobody ended (the PBX lost the ended event) is
	// forgotten after openCallTTL; at most maxOpenCalls are tracked.
	openCallTTL  = 12 * time.Hour
	maxOpenCalls = 10000
)

// Config configures the endpoint. The keys of a telephony entry of type
// http decode straight into it (NewFromSpec); Tokens come from the
// environment variable tokens_env names.
type Config struct {
	// Name is the configured name of the source (the telephony entry's
	// name), written in CallEvent.Source; default SourceName.
	Name string `yaml:"-"`
	// Tokens the PBX may present as "Authorization: Bearer <token>". Several
	// let a token be rotated without downtime.
	Tokens []string `yaml:"-"`
	// MaxBody limits a request body in bytes (default 1 MiB).
	MaxBody int64 `yaml:"max_body"`
}

// Source receives call events over HTTP.
type Source struct {
	name    string
	tokens  *bearer.Set
	maxBody int64
	agentOf func(string) (string, bool)
	logger  *slog.Logger
	metrics *metrics
	now     func() time.Time

	mu   sync.Mutex
	sink screenpop.CallSink // nil unless Run is active
	open map[string]*openCall
}

// openCall is what the source remembers of a call between events, so that a
// PBX may send the caller and the DID with the first event only.
type openCall struct {
	caller    screenpop.Caller
	hasCaller bool
	did       string
	touched   time.Time
}

// New checks cfg and builds the source. agentOf maps a PBX endpoint
// ("PJSIP/1001") to an agent ID; nil means events must name agents, not
// endpoints. New does no I/O.
func New(cfg Config, agentOf func(string) (string, bool), logger *slog.Logger, reg prometheus.Registerer) (*Source, error) {
	tokens, err := cfg.check(func(_, format string, args ...any) error {
		return fmt.Errorf(format, args...)
	})
	if err != nil {
		return nil, err
	}
	return newSource(cfg, tokens, agentOf, logger, reg)
}

// check fills in the defaults of c and checks it: every problem, each made
// by at with the key of the option at fault ("tokens" for Tokens), so that
// NewFromSpec can place it at that key.
func (c *Config) check(at telephony.ErrorAt) (*bearer.Set, error) {
	var errs []error
	tokens, err := bearer.NewSet(c.Tokens)
	if err != nil {
		errs = append(errs, at("tokens", "%w", err))
	}
	switch {
	case c.MaxBody == 0:
		c.MaxBody = DefaultMaxBody
	case c.MaxBody < 1024 || c.MaxBody > maxMaxBody:
		errs = append(errs, at("max_body", "max_body %d is outside 1024..%d bytes", c.MaxBody, maxMaxBody))
	}
	return tokens, errors.Join(errs...)
}

// newSource builds the source from a checked cfg.
func newSource(cfg Config, tokens *bearer.Set, agentOf func(string) (string, bool), logger *slog.Logger, reg prometheus.Registerer) (*Source, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &Source{
		name:    cmp.Or(cfg.Name, SourceName),
		tokens:  tokens,
		maxBody: cfg.MaxBody,
		agentOf: agentOf,
		logger:  logger,
		metrics: m,
		now:     time.Now,
		open:    map[string]*openCall{},
	}, nil
}

// Run hands the events posted from now on to sink, until ctx ends. Before
// Run and after it returns, the endpoint answers 503 so that the PBX knows
// its events are not being taken. Run returns nil when ctx ends.
func (s *Source) Run(ctx context.Context, sink screenpop.CallSink) error {
	s.mu.Lock()
	if s.sink != nil {
		s.mu.Unlock()
		return errors.New("http call-event source is already running")
	}
	s.sink = sink
	s.mu.Unlock()

	<-ctx.Done()

	// Under the lock: no request is delivering events once this returns.
	s.mu.Lock()
	s.sink = nil
	s.mu.Unlock()
	return nil
}

// Handler is the endpoint the PBX posts to. It does not look at the path:
// the daemon mounts it where it likes (/api/v1/call-events/<name>).
func (s *Source) Handler() http.Handler {
	return http.HandlerFunc(s.serveHTTP)
}

// httpError is a refusal with its status code and the message the PBX gets.
type httpError struct {
	code int
	msg  string
	// events is how many events the refused request held, when known.
	events int
}

func (e *httpError) Error() string { return e.msg }

func refuse(code int, format string, args ...any) *httpError {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...), events: 1}
}

func (s *Source) serveHTTP(w http.ResponseWriter, r *http.Request) {
	n, herr := s.accept(w, r)
	if herr != nil {
		s.metrics.requests[herr.code].Inc()
		s.metrics.rejected.Add(float64(max(herr.events, 1)))
		s.logger.Warn("call events refused", "status", herr.code, "err", herr.msg, "remote", r.RemoteAddr)
		switch herr.code {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", http.MethodPost)
		case http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", `Bearer realm="screenpop"`)
		case http.StatusServiceUnavailable:
			w.Header().Set("Retry-After", "5")
		}
		writeJSON(w, herr.code, map[string]string{"error": herr.msg})
		return
	}
	s.metrics.requests[http.StatusOK].Inc()
	s.metrics.accepted.Add(float64(n))
	writeAccepted(w, n)
}

// accept runs one request through the checks and delivers its events: all
// of them, or none when one is invalid, so a PBX can simply resend a batch
// after fixing it.
func (s *Source) accept(w http.ResponseWriter, r *http.Request) (int, *httpError) {
	if r.Method != http.MethodPost {
		return 0, refuse(http.StatusMethodNotAllowed, "method %s not allowed: POST the events", r.Method)
	}
	if s.tokens.Check(r.Header.Get("Authorization")) != nil {
		return 0, refuse(http.StatusUnauthorized, "missing or wrong bearer token (send Authorization: Bearer <token>)")
	}
	if !s.running() {
		return 0, refuse(http.StatusServiceUnavailable, "not accepting call events: the daemon is starting or stopping")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return 0, refuse(http.StatusUnsupportedMediaType, "content type %q: send application/json", ct)
		}
	}
	buf := getBody(r.ContentLength, s.maxBody)
	defer putBody(buf)
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.maxBody)); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return 0, refuse(http.StatusRequestEntityTooLarge, "body larger than %d bytes: send fewer events per request", s.maxBody)
		}
		return 0, refuse(http.StatusBadRequest, "reading the body: %v", err)
	}
	// The decoded events hold copies of what they need: buf goes back to
	// the pool when the request is done.
	wire, herr := decode(buf.Bytes())
	if herr != nil {
		return 0, herr
	}
	now := s.now()
	events := make([]screenpop.CallEvent, len(wire))
	for i, we := range wire {
		ev, err := s.translate(we, now)
		if err != nil {
			return 0, &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf("event %d: %v", i+1, err), events: len(wire)}
		}
		events[i] = ev
	}
	if !s.deliver(wire, events) {
		return 0, &httpError{code: http.StatusServiceUnavailable, msg: "not accepting call events: the daemon is starting or stopping", events: len(wire)}
	}
	return len(events), nil
}

func (s *Source) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sink != nil
}

// wireEvent is one event as the PBX posts it (README.md).
type wireEvent struct {
	Event     string      `json:"event"`
	CallID    string      `json:"call_id"`
	Caller    *wireCaller `json:"caller"`
	DID       string      `json:"did"`
	Agents    []string    `json:"agents"`
	Endpoints []string    `json:"endpoints"`
	Agent     string      `json:"agent"`
	Endpoint  string      `json:"endpoint"`
	Outcome   string      `json:"outcome"`
	At        string      `json:"at"`
	// RangOut and Transfer qualify a ringing set (screenpop.CallEvent).
	RangOut  bool          `json:"rang_out"`
	Transfer *wireTransfer `json:"transfer"`
}

// wireTransfer says that a ringing call is being transferred by an agent
// (named by agent ID or endpoint).
type wireTransfer struct {
	From         string `json:"from"`
	FromEndpoint string `json:"from_endpoint"`
	Consult      bool   `json:"consult"`
}

type wireCaller struct {
	Number   string `json:"number"`
	Name     string `json:"name"`
	Withheld bool   `json:"withheld"`
}

// decode reads one event object or an array of them, refusing unknown
// fields: a misspelt "calller" must not silently lose the caller.
//
// The bodies PBXs post are decoded by decodeFast, without reflection.
// Anything it does not take goes to decodeEach, which decodes with
// encoding/json event by event, to say which one is wrong and how.
func decode(body []byte) ([]wireEvent, *httpError) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, refuse(http.StatusBadRequest, "empty body: post a JSON event object or an array of them")
	}
	if out, ok := decodeFast(body); ok {
		return out, nil
	}
	return decodeEach(body)
}

// decodeEach is decode with encoding/json: the reference decodeFast
// follows, and the words for what is wrong with a body.
func decodeEach(body []byte) ([]wireEvent, *httpError) {
	var raws []json.RawMessage
	if body[0] == '[' {
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, refuse(http.StatusBadRequest, "invalid JSON: %s", jsonMessage(err))
		}
		if len(raws) == 0 {
			return nil, refuse(http.StatusBadRequest, "empty array: no events")
		}
		if len(raws) > maxEventsPerRequest {
			return nil, &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf("%d events in one request; send at most %d", len(raws), maxEventsPerRequest), events: len(raws)}
		}
	} else {
		raws = []json.RawMessage{body}
	}
	out := make([]wireEvent, len(raws))
	for i, raw := range raws {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		err := dec.Decode(&out[i])
		if err == nil && dec.More() {
			err = errors.New("unexpected data after the event object")
		}
		if err != nil {
			return nil, &httpError{code: http.StatusBadRequest, msg: fmt.Sprintf("event %d: %s", i+1, jsonMessage(err)), events: len(raws)}
		}
	}
	return out, nil
}

// jsonMessage words encoding/json's errors for the person writing the PBX
// integration.
func jsonMessage(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		if typeErr.Field == "" {
			return fmt.Sprintf("want a JSON object, got %s", typeErr.Value)
		}
		return fmt.Sprintf("%s: want %s, got %s", typeErr.Field, typeName(typeErr.Type.String()), typeErr.Value)
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Sprintf("%s (at byte %d)", strings.TrimPrefix(syn.Error(), "json: "), syn.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return "unexpected end of JSON"
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func typeName(goType string) string {
	switch goType {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "[]string":
		return "an array of strings"
	case "httpin.wireCaller", "*httpin.wireCaller":
		return "an object"
	}
	return goType
}

var kinds = map[string]screenpop.CallEventKind{
	"ringing":     screenpop.EventRinging,
	"answered":    screenpop.EventAnswered,
	"transferred": screenpop.EventTransferred,
	"ended":       screenpop.EventEnded,
}

var outcomes = map[string]screenpop.Outcome{
	"answered":  screenpop.OutcomeAnswered,
	"abandoned": screenpop.OutcomeAbandoned,
	"busy":      screenpop.OutcomeBusy,
	"noanswer":  screenpop.OutcomeNoAnswer,
	"failed":    screenpop.OutcomeFailed,
	// The PBX went down or restarted and cut the call.
	"interrupted": screenpop.OutcomeInterrupted,
}

// withheldNumbers are what PBXs put in the number field of a caller who
// restricted presentation.
var withheldNumbers = []string{"anonymous", "restricted", "private", "withheld", "unknown", "unavailable"}

// translate checks one event and turns it into a CallEvent. The caller and
// DID a later event leaves out are filled in at delivery.
func (s *Source) translate(we wireEvent, now time.Time) (screenpop.CallEvent, error) {
	kind, ok := kinds[we.Event]
	if !ok {
		if we.Event == "" {
			return screenpop.CallEvent{}, errors.New("event is required: ringing, answered, transferred or ended")
		}
		return screenpop.CallEvent{}, fmt.Errorf("event %q is unknown: use ringing, answered, transferred or ended", we.Event)
	}
	ev := screenpop.CallEvent{Kind: kind, Source: s.name, At: now}

	if we.CallID == "" {
		return ev, errors.New("call_id is required")
	}
	if err := checkText("call_id", we.CallID, maxIDLength); err != nil {
		return ev, err
	}
	ev.CallID = we.CallID

	if we.DID != "" {
		if err := checkText("did", we.DID, maxIDLength); err != nil {
			return ev, err
		}
		ev.DID = we.DID
	}

	if we.Caller != nil {
		c := *we.Caller
		c.Number = strings.TrimSpace(c.Number)
		if err := checkText("caller.number", c.Number, maxNumberLength); err != nil {
			return ev, err
		}
		if err := checkText("caller.name", c.Name, maxNameLength); err != nil {
			return ev, err
		}
		// A withheld caller's number is dropped here, at the edge, so that
		// no later stage can show it by mistake.
		if c.Withheld || c.Number == "" || slices.Contains(withheldNumbers, strings.ToLower(c.Number)) {
			c.Withheld, c.Number = true, ""
		}
		ev.Caller = screenpop.Caller{Number: c.Number, Name: c.Name, Withheld: c.Withheld}
	}

	if we.At != "" {
		at, err := time.Parse(time.RFC3339Nano, we.At)
		if err != nil {
			return ev, fmt.Errorf("at %q is not an RFC 3339 time like 2026-11-23T10:15:00Z", we.At)
		}
		ev.At = at
	}

	if kind != screenpop.EventRinging && (we.Agents != nil || we.Endpoints != nil) {
		return ev, fmt.Errorf("agents and endpoints are for ringing events; %s takes agent (or endpoint)", we.Event)
	}
	if kind == screenpop.EventRinging && (we.Agent != "" || we.Endpoint != "") {
		return ev, errors.New("agent and endpoint are for answered, transferred and ended events; ringing takes agents (or endpoints)")
	}
	if kind != screenpop.EventEnded && we.Outcome != "" {
		return ev, fmt.Errorf("outcome is for ended events only")
	}
	if kind != screenpop.EventRinging && (we.RangOut || we.Transfer != nil) {
		return ev, fmt.Errorf("rang_out and transfer are for ringing events only")
	}

	switch kind {
	case screenpop.EventRinging:
		agents, err := s.ringingAgents(we)
		if err != nil {
			return ev, err
		}
		ev.Agents, ev.RangOut = agents, we.RangOut
		if we.Transfer != nil {
			if we.Transfer.From == "" && we.Transfer.FromEndpoint == "" {
				return ev, errors.New("transfer.from is required: the agent ID transferring the call (or transfer.from_endpoint)")
			}
			from, err := s.agent(wireEvent{Agent: we.Transfer.From, Endpoint: we.Transfer.FromEndpoint}, true)
			if err != nil {
				return ev, fmt.Errorf("transfer: %w", err)
			}
			ev.Transfer = &screenpop.Transfer{From: from, Consult: we.Transfer.Consult}
		}
	case screenpop.EventAnswered, screenpop.EventTransferred:
		agent, err := s.agent(we, true)
		if err != nil {
			return ev, err
		}
		ev.Agent = agent
	case screenpop.EventEnded:
		agent, err := s.agent(we, false)
		if err != nil {
			return ev, err
		}
		ev.Agent = agent
		if we.Outcome == "" {
			return ev, errors.New("outcome is required for ended: answered, abandoned, busy, noanswer, failed or interrupted")
		}
		if ev.Outcome, ok = outcomes[we.Outcome]; !ok {
			return ev, fmt.Errorf("outcome %q is unknown: use answered, abandoned, busy, noanswer, failed or interrupted", we.Outcome)
		}
	}
	return ev, nil
}

// ringingAgents is the set of agents an event rings: the agents it names
// and the agents of its endpoints. Endpoints that are no agent's (a
// voicemail box, a colleague outside screenpop) are left out; if that leaves
// nobody, the event still goes through, because "ringing nobody we know" is
// news too: the agents rung before lose the pop.
func (s *Source) ringingAgents(we wireEvent) ([]string, error) {
	if we.Agents == nil && we.Endpoints == nil && !we.RangOut {
		// An explicit "agents": [] (nobody rings now) or rang_out is fine.
		return nil, errors.New("ringing needs agents (agent IDs) or endpoints (e.g. PJSIP/1001); \"agents\": [] when nobody's phone rings any more")
	}
	if len(we.Agents)+len(we.Endpoints) > maxAgentsPerEvent {
		return nil, fmt.Errorf("more than %d agents and endpoints", maxAgentsPerEvent)
	}
	if len(we.Endpoints) > 0 && s.agentOf == nil {
		return nil, errors.New("endpoints are not accepted by this source: send agents (agent IDs)")
	}
	agents := make([]string, 0, len(we.Agents)+len(we.Endpoints))
	for i, a := range we.Agents {
		if err := checkText("", a, maxIDLength); err != nil {
			return nil, checkText(fmt.Sprintf("agents[%d]", i), a, maxIDLength)
		}
		if a == "" {
			return nil, fmt.Errorf("agents[%d] is empty", i)
		}
		if !slices.Contains(agents, a) {
			agents = append(agents, a)
		}
	}
	for i, e := range we.Endpoints {
		if err := checkText("", e, maxIDLength); err != nil {
			return nil, checkText(fmt.Sprintf("endpoints[%d]", i), e, maxIDLength)
		}
		a, ok := s.agentOf(e)
		if !ok {
			continue
		}
		if !slices.Contains(agents, a) {
			agents = append(agents, a)
		}
	}
	return agents, nil
}

// agent is the agent of an answered, transferred or ended event.
func (s *Source) agent(we wireEvent, required bool) (string, error) {
	if we.Agent != "" && we.Endpoint != "" {
		return "", errors.New("send agent or endpoint, not both")
	}
	if we.Agent != "" {
		return we.Agent, checkText("agent", we.Agent, maxIDLength)
	}
	if we.Endpoint != "" {
		if err := checkText("endpoint", we.Endpoint, maxIDLength); err != nil {
			return "", err
		}
		if s.agentOf == nil {
			return "", errors.New("endpoints are not accepted by this source: send agent (an agent ID)")
		}
		if a, ok := s.agentOf(we.Endpoint); ok {
			return a, nil
		}
		if required {
			return "", fmt.Errorf("endpoint %q is no agent's (see agents.patterns and agents.table in the configuration)", we.Endpoint)
		}
		return "", nil // ended: who had it matters less than that it ended
	}
	if required {
		return "", fmt.Errorf("%s needs agent (an agent ID) or endpoint", we.Event)
	}
	return "", nil
}

// checkText refuses over-long values and control characters, which have no
// business in IDs and names and would garble logs.
func checkText(field, v string, limit int) error {
	if len(v) > limit {
		return fmt.Errorf("%s is longer than %d bytes", field, limit)
	}
	if strings.IndexFunc(v, unicode.IsControl) >= 0 {
		return fmt.Errorf("%s contains control characters", field)
	}
	return nil
}

// deliver hands the events to the sink in order, completing each from what
// is known of its call. It holds the lock throughout: two requests about
// the same call reach the sink in the order they were tracked, and none
// after Run returned. It reports false when Run is not active.
func (s *Source) deliver(wire []wireEvent, events []screenpop.CallEvent) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sink == nil {
		return false
	}
	now := s.now()
	// Asked once: the arguments of a log line cost allocations even when
	// the line is not written.
	debug := s.logger.Enabled(context.Background(), slog.LevelDebug)
	for i := range events {
		ev := &events[i]
		oc := s.open[ev.CallID]
		if oc == nil && ev.Kind != screenpop.EventEnded {
			// An answered or transferred call we never saw ring (the
			// PBX started posting mid-call) is tracked from here on.
			oc = &openCall{}
			s.track(ev.CallID, oc, now)
		}
		if oc != nil {
			if wire[i].Caller != nil {
				oc.caller, oc.hasCaller = ev.Caller, true
			} else if oc.hasCaller {
				ev.Caller = oc.caller
			}
			if ev.DID != "" {
				oc.did = ev.DID
			} else {
				ev.DID = oc.did
			}
			oc.touched = now
		}
		if ev.Kind == screenpop.EventEnded {
			delete(s.open, ev.CallID)
		}
		// No caller ever sent for this call (a call first heard of
		// mid-call, after screenpop restarted): a caller with no number
		// that the card calls unknown, not one who withheld it, which
		// only a caller the PBX sent can be.
		if debug {
			caller := "withheld"
			if !ev.Caller.Withheld {
				caller = screenpop.MaskPhone(ev.Caller.Number)
			}
			s.logger.Debug("call event", "kind", ev.Kind, "call_id", ev.CallID, "caller", caller)
		}
		s.sink.HandleCall(*ev)
	}
	return true
}

// track remembers a new open call, forgetting stale ones when the table is
// full: a PBX that never sends ended must not grow it without bound.
func (s *Source) track(id string, oc *openCall, now time.Time) {
	if len(s.open) >= maxOpenCalls {
		var oldestID string
		var oldest time.Time
		for cid, c := range s.open {
			if now.Sub(c.touched) > openCallTTL {
				delete(s.open, cid)
				continue
			}
			if oldestID == "" || c.touched.Before(oldest) {
				oldestID, oldest = cid, c.touched
			}
		}
		if len(s.open) >= maxOpenCalls {
			delete(s.open, oldestID)
		}
	}
	oc.touched = now
	s.open[id] = oc
}

// jsonHeader and noStore are the values of every answer's headers, shared
// (net/http only reads them).
var (
	jsonHeader = []string{"application/json; charset=utf-8"}
	noStore    = []string{"no-store"}
)

// writeAccepted is writeJSON(w, 200, {"accepted": n}) without reflection:
// it answers every request that a PBX makes when all is well.
func writeAccepted(w http.ResponseWriter, n int) {
	h := w.Header()
	h["Content-Type"], h["Cache-Control"] = jsonHeader, noStore
	w.WriteHeader(http.StatusOK)
	if n < len(acceptedBodies) {
		_, _ = w.Write(acceptedBodies[n])
		return
	}
	_, _ = w.Write(acceptedBody(n))
}

// acceptedBodies are the answers to requests of up to 100 events, made
// once.
var acceptedBodies = func() [][]byte {
	out := make([][]byte, 101)
	for n := range out {
		out[n] = acceptedBody(n)
	}
	return out
}()

// acceptedBody is what encoding/json makes of {"accepted": n}.
func acceptedBody(n int) []byte {
	b := strconv.AppendInt([]byte(`{"accepted":`), int64(n), 10)
	return append(b, "}\n"...)
}

// bodies are the buffers request bodies are read into, reused: reading
// into a fresh slice that grows was much of a request's garbage.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBody is the largest buffer put back into bodies: a rare big
// batch does not pin its memory.
const maxPooledBody = 64 << 10

// getBody returns an empty buffer with room for a body of length (as the
// request says, -1 when it does not), up to limit and maxPooledBody: a
// larger body grows the buffer as it arrives, not on the client's word.
func getBody(length, limit int64) *bytes.Buffer {
	buf := bodies.Get().(*bytes.Buffer)
	if length > 0 {
		// ReadFrom wants bytes.MinRead free after the body to see its
		// end: with that room it reads without growing the buffer.
		buf.Grow(int(min(length, limit, maxPooledBody)) + bytes.MinRead)
	}
	return buf
}

func putBody(buf *bytes.Buffer) {
	if buf.Cap() > maxPooledBody {
		return
	}
	buf.Reset()
	bodies.Put(buf)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
