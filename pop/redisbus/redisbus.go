// Package redisbus carries pops between screenpop daemons through Redis: a
// call seen by one daemon reaches an agent whose browser is connected to
// another, and a browser that reconnects to any daemon resumes where it
// left off. Each agent has a short stream of numbered messages
// (<prefix>agent:<id>); each daemon reads the streams of the agents
// connected to it and hands their messages to its pop.Hub.
package redisbus

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/tidwall/gjson"

	"github.com/screenpop/screenpop/pop"
	"github.com/screenpop/screenpop/queue"
)

// LocalHub is what the bus needs from this daemon's pop.Hub.
type LocalHub interface {
	// Deliver numbers and sends a message itself: the path while Redis is
	// down.
	Deliver(agentID string, m pop.Encoded)
	// DeliverNumbered sends a message read from Redis, numbered by it.
	DeliverNumbered(agentID string, m pop.Encoded)
}

// Config configures New. Zero values take the defaults named.
type Config struct {
	Client *redis.Client // required; shared with the card cache
	Hub    LocalHub      // required
	// KeyPrefix starts every key ("screenpop:"). Daemons share pops when
	// they share the Redis and the prefix.
	KeyPrefix string
	// StreamLength is how many messages each agent's stream keeps (MAXLEN
	// ~, so a few more); a browser that missed more gets a snapshot.
	// Default 256.
	StreamLength int64
	// StreamTTL removes the stream and seq of an agent with no message for
	// this long; default 24h.
	StreamTTL time.Duration
	// PopsTTL bounds how long an agent's current pops (the snapshot, which
	// holds cards: personal data) outlive their last change; default 4h,
	// the dispatcher's StaleAfter.
	PopsTTL time.Duration
	// DedupTTL is how long a message's de-duplication key lives: longer
	// than two daemons watching the same PBX can lag behind each other.
	// Default 15m.
	DedupTTL time.Duration
	// DisableDedup turns de-duplication off, for daemons that each watch
	// their own PBX and cannot see the same call.
	DisableDedup bool
	// HealthInterval is how often Redis is pinged, and how soon after it
	// comes back pops go through it again; default 1s.
	HealthInterval time.Duration
	// OpTimeout bounds one Redis operation of the delivery path; default 1s.
	OpTimeout time.Duration
	// ReadBlock is how long one XREAD waits for messages; default 5s.
	ReadBlock time.Duration
	// ForwardTimeout is how long a browser request about a call the local
	// dispatcher does not know waits for another daemon to claim it before
	// the browser gets unknown_call; default 500ms.
	ForwardTimeout time.Duration
	// MaxQueuedMessages bounds the messages Deliver queued and Run has not
	// taken yet; default 100000. Past it, a message goes straight to the
	// local Hub, as while Redis is down, and is counted as dropped (from
	// Redis: other daemons' browsers miss it).
	MaxQueuedMessages int
	Logger            *slog.Logger
	Registerer        prometheus.Registerer
}

// Bus implements pop.Deliverer (for the Dispatcher) and pop.SharedStream
// (for the Hub).
type Bus struct {
	cfg     Config
	client  *redis.Client
	hub     LocalHub
	logger  *slog.Logger
	metrics *metrics
	wakeKey string
	up      atomic.Bool
	// daemonID names this daemon on the wake stream and the replies
	// channel.
	daemonID string
	// local answers the requests other daemons forward (pop.Hub).
	localReqs atomic.Pointer[localBox]
	// listening is true once the requests subscription is confirmed.
	listening atomic.Bool

	pmu     sync.Mutex
	pending map[string]chan forwardReply // forwarded request -> its answers

	queue       *queue.Bounded[outgoing]
	overflowing atomic.Bool // in a burst of overflows, logged once

	mu       sync.Mutex
	watching map[string]*watch // connected agents -> position
	ordinals map[string]*ordinal
}

var (
	_ pop.Deliverer    = (*Bus)(nil)
	_ pop.SharedStream = (*Bus)(nil)
)

type outgoing struct {
	agent string
	msg   pop.Encoded
}

// watch is an agent with browsers on this daemon.
type watch struct {
	pos  uint64 // last seq handed to the hub
	refs int    // Opens not yet Closed
}

// ordinal counts the messages of one type for one agent and call, so that
// two daemons that saw the same events name the same message alike.
type ordinal struct {
	n    int
	used time.Time
}

// New checks cfg and returns a Bus. It does no I/O; Run starts it.
func New(cfg Config) (*Bus, error) {
	if cfg.Client == nil {
		return nil, errors.New("redisbus: Client is required")
	}
	if cfg.Hub == nil {
		return nil, errors.New("redisbus: Hub is required")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "screenpop:"
	}
	if cfg.StreamLength < 0 || cfg.StreamTTL < 0 || cfg.PopsTTL < 0 || cfg.DedupTTL < 0 ||
		cfg.HealthInterval < 0 || cfg.OpTimeout < 0 || cfg.ReadBlock < 0 || cfg.ForwardTimeout < 0 ||
		cfg.MaxQueuedMessages < 0 {
		return nil, errors.New("redisbus: lengths and durations must not be negative")
	}
	if cfg.StreamLength == 0 {
		cfg.StreamLength = 256
	}
	if cfg.MaxQueuedMessages == 0 {
		cfg.MaxQueuedMessages = DefaultMaxQueuedMessages
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defDur(&cfg.StreamTTL, 24*time.Hour)
	defDur(&cfg.PopsTTL, 4*time.Hour)
	defDur(&cfg.DedupTTL, 15*time.Minute)
	defDur(&cfg.HealthInterval, time.Second)
	defDur(&cfg.OpTimeout, time.Second)
	defDur(&cfg.ReadBlock, 5*time.Second)
	defDur(&cfg.ForwardTimeout, 500*time.Millisecond)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("redisbus metrics: %w", err)
	}
	id := make([]byte, 8)
	rand.Read(id)
	daemonID := hex.EncodeToString(id)
	return &Bus{
		cfg:      cfg,
		client:   cfg.Client,
		hub:      cfg.Hub,
		logger:   cfg.Logger,
		metrics:  m,
		wakeKey:  cfg.KeyPrefix + "wake:" + daemonID,
		daemonID: daemonID,
		pending:  map[string]chan forwardReply{},
		queue:    queue.New(queue.Options[outgoing]{MaxItems: cfg.MaxQueuedMessages, Depth: m.queued, Refused: m.dropped}),
		watching: map[string]*watch{},
		ordinals: map[string]*ordinal{},
	}, nil
}

func (b *Bus) streamKey(agent string) string { return b.cfg.KeyPrefix + "agent:" + agent }
func (b *Bus) seqKey(agent string) string    { return b.cfg.KeyPrefix + "seq:" + agent }
func (b *Bus) popsKey(agent string) string   { return b.cfg.KeyPrefix + "pops:" + agent }

// Ready is nil while pops go through Redis; for /readyz. Not ready still
// means working: this daemon's own browsers get their pops.
func (b *Bus) Ready() error {
	if b.up.Load() {
		return nil
	}
	return errors.New("redis unavailable: pops reach only the browsers connected to this daemon")
}

// AgentName passes the Hub's agent names on, so that the Dispatcher finds
// them through its Deliverer as it does without the bus.
func (b *Bus) AgentName(agentID string) string {
	if n, ok := b.hub.(interface{ AgentName(string) string }); ok {
		return n.AgentName(agentID)
	}
	return ""
}

// DefaultMaxQueuedMessages is Config.MaxQueuedMessages' default: minutes
// of a busy call centre's messages, a few tens of MB at most.
const DefaultMaxQueuedMessages = 100000

// Deliver implements pop.Deliverer. It never blocks: the message is queued
// for Run, which appends it to Redis, or hands it to the local Hub while
// Redis is down. One queue keeps an agent's messages in order across a
// switch between the two paths.
//
// When the queue is full (Redis too slow, or Run stalled), the message
// goes to the local Hub at once, ahead of those queued, and is counted as
// dropped: this daemon's browsers still get it, others' do not. That is a
// stopgap; what a full queue should do belongs to the Redis delivery work
// (README.md, Limits).
func (b *Bus) Deliver(agentID string, m pop.Encoded) {
	o := outgoing{agent: agentID, msg: m}
	if b.queue.Push(o) {
		return
	}
	if !b.overflowing.Swap(true) {
		b.logger.Error("redisbus: queue full: messages go to this daemon's browsers only until it drains",
			"max_queued_messages", b.cfg.MaxQueuedMessages, "agent", agentID, "type", m.Type)
	}
	b.local(o)
}

// Run delivers, reads and watches Redis until ctx ends. Messages still
// queued then go to the local Hub.
func (b *Bus) Run(ctx context.Context) error {
	b.setUp(b.ping(ctx) == nil)
	var wg sync.WaitGroup
	wg.Go(func() { b.readLoop(ctx) })
	wg.Go(func() { b.healthLoop(ctx) })
	wg.Go(func() { b.requestLoop(ctx) })
	b.sendLoop(ctx)
	wg.Wait()
	return nil
}

func (b *Bus) sendLoop(ctx context.Context) {
	for {
		batch := b.queue.Take()
		for _, o := range batch {
			if ctx.Err() != nil {
				b.local(o)
				continue
			}
			b.send(ctx, o)
		}
		if len(batch) > 0 {
			continue
		}
		if b.overflowing.Swap(false) {
			b.logger.Warn("redisbus: queue drained; messages go through Redis again")
		}
		select {
		case <-ctx.Done():
			for _, o := range b.queue.Take() {
				b.local(o)
			}
			return
		case <-b.queue.Ready():
		}
	}
}

func (b *Bus) local(o outgoing) {
	b.metrics.delivered.WithLabelValues(pathLocalFallback).Inc()
	b.hub.Deliver(o.agent, o.msg)
}

// send appends one message to the agent's stream, or delivers it locally
// when Redis is down or fails now. The stream gets the message as it was
// encoded, without seq (Redis numbers it); the pops hash gets parts of
// those same bytes.
func (b *Bus) send(ctx context.Context, o outgoing) {
	if !b.up.Load() {
		b.local(o)
		return
	}
	m := o.msg
	dedupKey, dedupTTL := b.cfg.KeyPrefix+"dedup:none", int64(0)
	if k, ok := b.dedupKey(o.agent, m); ok {
		dedupKey, dedupTTL = k, b.cfg.DedupTTL.Milliseconds()
	}
	args := append([]any{dedupTTL, b.cfg.StreamLength, b.cfg.StreamTTL.Milliseconds(), b.cfg.PopsTTL.Milliseconds(), m.Unnumbered()}, popsOps(m)...)
	octx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	res, err := deliverScript.Run(octx, b.client,
		[]string{dedupKey, b.seqKey(o.agent), b.streamKey(o.agent), b.popsKey(o.agent)}, args...).Result()
	if err != nil {
		b.metrics.errors.WithLabelValues(opDeliver).Inc()
		b.failed("deliver", err)
		b.local(o)
		return
	}
	if n, ok := res.(int64); ok && n == 0 {
		b.metrics.deduplicated.Inc()
		return
	}
	b.metrics.delivered.WithLabelValues(pathRedis).Inc()
}

// dedupTypes are the messages every daemon watching the same PBX produces
// from the same events. The others answer one browser's request, which
// reaches one daemon only.
var dedupTypes = map[string]bool{pop.TypePop: true, pop.TypeAnswered: true, pop.TypeWithdrawn: true, pop.TypeEnded: true}

// dedupKey names the n-th message of its type for an agent and call: the
// same on every daemon that applied the same call events.
func (b *Bus) dedupKey(agent string, m pop.Encoded) (string, bool) {
	if b.cfg.DisableDedup || m.CallID == "" || !dedupTypes[m.Type] {
		return "", false
	}
	now := time.Now()
	name := agent + "\x00" + m.CallID + "\x00" + m.Type
	b.mu.Lock()
	o := b.ordinals[name]
	if o == nil {
		o = &ordinal{}
		b.ordinals[name] = o
	}
	o.n++
	o.used = now
	n := o.n
	if len(b.ordinals) > 1024 {
		for k, v := range b.ordinals {
			if now.Sub(v.used) > b.cfg.DedupTTL {
				delete(b.ordinals, k)
			}
		}
	}
	b.mu.Unlock()
	sum := sha256.Sum256([]byte(name + "\x00" + strconv.Itoa(n)))
	return b.cfg.KeyPrefix + "dedup:" + hex.EncodeToString(sum[:16]), true
}

// Hash fields of an agent's current pops: the card, who answered, the
// transfer a ringing pop rings for, and the At of the pop (snapshots list
// the oldest call first).
const (
	fieldCard     = "c:"
	fieldAnswered = "a:"
	fieldTransfer = "x:"
	fieldAt       = "t:"
)

// popsOps translates a message into its effect on the agent's current
// pops: (op, field, value) triples for the append script. The values are
// cut from the message's JSON (its card, who answered, the transfer), not
// encoded again.
func popsOps(m pop.Encoded) []any {
	id := m.CallID
	part := func(path string) (string, bool) {
		r := gjson.GetBytes(m.Unnumbered(), path)
		return r.Raw, r.Exists() && r.Type != gjson.Null
	}
	switch m.Type {
	case pop.TypePop:
		card, _ := part("data.card")
		ops := []any{"set", fieldCard + id, card, "setnx", fieldAt + id, strconv.FormatInt(m.At.UnixNano(), 10)}
		if tr, ok := part("data.transfer"); ok {
			ops = append(ops, "set", fieldTransfer+id, tr)
		} else {
			ops = append(ops, "del", fieldTransfer+id, "")
		}
		if by, ok := part("data.answered_by"); ok {
			return append(ops, "set", fieldAnswered+id, by)
		}
		return append(ops, "del", fieldAnswered+id, "")
	case pop.TypeCard:
		card, _ := part("data.card")
		return []any{"set", fieldCard + id, card}
	case pop.TypeAnswered:
		by, _ := part("data.agent")
		return []any{"set", fieldAnswered + id, by, "del", fieldTransfer + id, ""}
	case pop.TypeWithdrawn, pop.TypeEnded:
		return []any{"del", fieldCard + id, "", "del", fieldAnswered + id, "", "del", fieldTransfer + id, "", "del", fieldAt + id, ""}
	}
	return nil
}

// Open implements pop.SharedStream.
func (b *Bus) Open(ctx context.Context, agent pop.Agent, since uint64, resume bool) ([]pop.Encoded, uint64, error) {
	arg := ""
	if resume {
		arg = strconv.FormatUint(since, 10)
	}
	res, err := b.open(ctx, agent.ID, arg)
	if err != nil {
		// Watch anyway, from now on: when Redis is back, what is appended
		// then (numbered from Redis' clock) reaches this browser.
		b.watch(agent.ID, uint64(time.Now().UnixMicro()))
		b.metrics.errors.WithLabelValues(opOpen).Inc()
		b.failed("open", err)
		return nil, 0, fmt.Errorf("redisbus: open: %w", err)
	}
	kind, _ := res[0].(string)
	last, err := strconv.ParseUint(fmt.Sprint(res[1]), 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("redisbus: open: bad seq %v", res[1])
	}
	if b.watch(agent.ID, last) {
		// The reader is blocked on the streams it knew; it must add this
		// one before the next message for the agent, not after its block.
		b.client.XAdd(ctx, &redis.XAddArgs{Stream: b.wakeKey, MaxLen: 10, Approx: true, Values: []string{"w", "1"}})
		b.client.Expire(ctx, b.wakeKey, time.Hour)
	}
	items, _ := res[2].([]any)
	if kind == "replay" {
		msgs := make([]pop.Encoded, 0, len(items))
		for _, it := range items {
			if m, ok := decodeEntry(it); ok {
				msgs = append(msgs, m)
			}
		}
		return msgs, last, nil
	}
	snap, err := pop.Encode(pop.Message{Type: pop.TypeSnapshot, At: time.Now(), Data: pop.SnapshotData{
		Agent: pop.AgentRef{ID: agent.ID, Name: agent.Name},
		Pops:  decodePops(items),
	}})
	if err != nil {
		return nil, 0, fmt.Errorf("redisbus: snapshot: %w", err)
	}
	snap.Seq = last
	return []pop.Encoded{snap}, last, nil
}

func (b *Bus) open(ctx context.Context, agent, since string) ([]any, error) {
	res, err := openScript.Run(ctx, b.client, []string{b.seqKey(agent), b.streamKey(agent), b.popsKey(agent)}, since).Slice()
	if err != nil {
		return nil, err
	}
	if len(res) != 3 {
		return nil, fmt.Errorf("unexpected answer of %d items", len(res))
	}
	return res, nil
}

// watch adds a reference to agent; it reports whether the agent is new to
// the reader.
func (b *Bus) watch(agent string, pos uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.watching[agent]
	if w != nil {
		w.refs++
		return false
	}
	b.watching[agent] = &watch{pos: pos, refs: 1}
	return true
}

// Close implements pop.SharedStream.
func (b *Bus) Close(agentID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w := b.watching[agentID]; w != nil {
		if w.refs--; w.refs <= 0 {
			delete(b.watching, agentID)
		}
	}
}

// decodeEntry turns an XRANGE/XREAD entry (["<seq>-0", ["m", json]]) into
// a message numbered by its ID.
func decodeEntry(it any) (pop.Encoded, bool) {
	e, ok := it.([]any)
	if len(e) != 2 || !ok {
		return pop.Encoded{}, false
	}
	id, _ := e[0].(string)
	fields, _ := e[1].([]any)
	var payload string
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i] == "m" {
			payload, _ = fields[i+1].(string)
		}
	}
	return decodeMessage(id, payload)
}

// decodeMessage takes a stream entry's message as it was encoded; only
// the seq comes from the entry's ID.
func decodeMessage(id, payload string) (pop.Encoded, bool) {
	seq, ok := parseID(id)
	if !ok {
		return pop.Encoded{}, false
	}
	m, err := pop.ParseEncoded([]byte(payload))
	if err != nil {
		return pop.Encoded{}, false
	}
	m.Seq = seq
	return m, true
}

func parseID(id string) (uint64, bool) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(ms, 10, 64)
	return n, err == nil
}

// decodePops turns the HGETALL of an agent's pops into a snapshot's list,
// oldest call first.
func decodePops(flat []any) []pop.PopView {
	type entry struct {
		view pop.PopView
		at   int64
	}
	byCall := map[string]*entry{}
	get := func(id string) *entry {
		e := byCall[id]
		if e == nil {
			e = &entry{view: pop.PopView{CallID: id, State: pop.StateRinging}}
			byCall[id] = e
		}
		return e
	}
	cards := map[string]bool{}
	for i := 0; i+1 < len(flat); i += 2 {
		f, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		switch {
		case strings.HasPrefix(f, fieldCard):
			e := get(f[len(fieldCard):])
			if json.Unmarshal([]byte(v), &e.view.Card) == nil {
				cards[e.view.CallID] = true
			}
		case strings.HasPrefix(f, fieldAnswered):
			e := get(f[len(fieldAnswered):])
			var by pop.AgentRef
			if json.Unmarshal([]byte(v), &by) == nil {
				e.view.State, e.view.AnsweredBy = pop.StateAnswered, &by
			}
		case strings.HasPrefix(f, fieldTransfer):
			e := get(f[len(fieldTransfer):])
			var tr pop.TransferInfo
			if json.Unmarshal([]byte(v), &tr) == nil {
				e.view.Transfer = &tr
			}
		case strings.HasPrefix(f, fieldAt):
			get(f[len(fieldAt):]).at, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	list := make([]*entry, 0, len(byCall))
	for id, e := range byCall {
		if cards[id] { // a pop without its card is half a write: skip it
			list = append(list, e)
		}
	}
	slices.SortFunc(list, func(a, b *entry) int {
		if a.at != b.at {
			if a.at < b.at {
				return -1
			}
			return 1
		}
		return strings.Compare(a.view.CallID, b.view.CallID)
	})
	pops := make([]pop.PopView, len(list))
	for i, e := range list {
		pops[i] = e.view
	}
	return pops
}

// readLoop hands the messages of the agents connected here to the Hub.
func (b *Bus) readLoop(ctx context.Context) {
	wakePos := "0-0"
	for ctx.Err() == nil {
		b.mu.Lock()
		agents := make([]string, 0, len(b.watching))
		for a := range b.watching {
			agents = append(agents, a)
		}
		streams := make([]string, 0, 2*len(agents)+2)
		streams = append(streams, b.wakeKey)
		for _, a := range agents {
			streams = append(streams, b.streamKey(a))
		}
		streams = append(streams, wakePos)
		for _, a := range agents {
			streams = append(streams, strconv.FormatUint(b.watching[a].pos, 10)+"-0")
		}
		b.mu.Unlock()

		res, err := b.client.XRead(ctx, &redis.XReadArgs{Streams: streams, Count: 100, Block: b.cfg.ReadBlock}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.metrics.errors.WithLabelValues(opRead).Inc()
			b.failed("read", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(b.cfg.HealthInterval):
			}
			continue
		}
		for _, s := range res {
			if s.Stream == b.wakeKey {
				if n := len(s.Messages); n > 0 {
					wakePos = s.Messages[n-1].ID
				}
				continue
			}
			agent := strings.TrimPrefix(s.Stream, b.cfg.KeyPrefix+"agent:")
			for _, e := range s.Messages {
				payload, _ := e.Values["m"].(string)
				m, ok := decodeMessage(e.ID, payload)
				if !ok {
					b.logger.Warn("unreadable stream entry skipped", "agent", agent, "id", e.ID)
					continue
				}
				b.mu.Lock()
				w := b.watching[agent]
				fresh := w != nil && m.Seq > w.pos
				if fresh {
					w.pos = m.Seq
				}
				b.mu.Unlock()
				if fresh {
					b.hub.DeliverNumbered(agent, m)
				}
			}
		}
	}
}

func (b *Bus) healthLoop(ctx context.Context) {
	t := time.NewTicker(b.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := b.ping(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			b.metrics.errors.WithLabelValues(opPing).Inc()
			b.failed("ping", err)
			continue
		}
		b.setUp(true)
	}
}

func (b *Bus) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	return b.client.Ping(ctx).Err()
}

func (b *Bus) failed(op string, err error) {
	if b.up.Swap(false) {
		b.logger.Error("Redis unavailable: pops go to this daemon's browsers only", "op", op, "err", err)
	}
	b.metrics.up.Set(0)
}

func (b *Bus) setUp(up bool) {
	was := b.up.Swap(up)
	if up {
		b.metrics.up.Set(1)
		if !was {
			b.logger.Info("Redis available: pops go through it")
		}
	} else {
		b.metrics.up.Set(0)
	}
}
