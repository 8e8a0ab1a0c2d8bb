// Package redisbus carries pops between screenpop daemons through Redis: a
// call seen by one daemon reaches an agent whose browser is connected to
// another, and a browser that reconnects to any daemon resumes where it
// left off. Each agent has a short stream of numbered messages; each daemon
// reads the streams of the agents connected to it that have news and hands
// their messages to its pop.Hub.
//
// Redis failing is part of the design: a slow Redis only delays pops; a
// dead one makes each daemon serve its own browsers and keep what it could
// not append, in order, for when Redis is back; a Redis that comes back
// empty gets back what the daemons know of live calls before it serves
// snapshots again (README.md).
package redisbus

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

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
	// Client is required; shared with the card cache (rediscache.NewClient:
	// one server, a Sentinel-managed primary, or a Redis Cluster).
	Client redis.UniversalClient
	Hub    LocalHub // required
	// KeyPrefix starts every key ("screenpop:"). Daemons share pops when
	// they share the Redis and the prefix. It must not hold { or }.
	KeyPrefix string
	// StreamLength is how many messages each agent's stream keeps (MAXLEN
	// ~, so a few more); a browser that missed more gets a snapshot.
	// Default 256.
	StreamLength int64
	// StreamTTL bounds how long a message (personal data) stays in a
	// stream, and removes the stream of an agent with no message for this
	// long; default 1h, at most 24h. A browser away longer gets a snapshot.
	StreamTTL time.Duration
	// PopsTTL bounds how long an agent's current pops (the snapshot, which
	// holds cards) outlive their last change; default 4h (the dispatcher's
	// StaleAfter), at most 24h.
	PopsTTL time.Duration
	// DedupTTL is how long a message's de-duplication key lives: longer
	// than two daemons watching the same PBX can lag behind each other,
	// and the longest outage after which buffered messages are still
	// appended (older ones could come twice). Default 15m, at most 24h.
	DedupTTL time.Duration
	// DisableDedup turns de-duplication between daemons off, for daemons
	// that each watch their own PBX and cannot see the same call. (A
	// daemon's own retries are still never appended twice.)
	DisableDedup bool
	// HealthInterval is how often Redis is probed, and how soon after it
	// comes back pops go through it again; default 1s.
	HealthInterval time.Duration
	// OpTimeout bounds one probe, and one Open attempt; default 1s.
	OpTimeout time.Duration
	// DownAfter is how long Redis must keep failing before this daemon
	// takes it for down and delivers to its own browsers alone. A stall
	// shorter than this (a slow disk, a fork for a snapshot, a timeout or
	// two) only delays pops: nothing falls back, nothing is lost or doubled.
	// Default 2s.
	DownAfter time.Duration
	// ReadBlock is how long the news subscription may stay silent before
	// it is pinged (twice without an answer: made again), and how often
	// browsers waiting for a snapshot from Redis are tried again; default
	// 5s.
	ReadBlock time.Duration
	// ForwardTimeout is how long a browser request about a call the local
	// dispatcher does not know waits for another daemon to claim it before
	// the browser gets unknown_call; default 500ms.
	ForwardTimeout time.Duration
	// MaxQueuedMessages bounds the messages Deliver queued and Run has not
	// taken yet; default 100000. Past it (Redis far too slow, Run stalled)
	// a message goes straight to the local Hub and never to Redis.
	MaxQueuedMessages int
	// MaxBufferedMessages and MaxBufferedBytes bound the outage buffer:
	// messages delivered to this daemon's browsers while Redis was down,
	// kept to be appended when it is back; defaults 100000 and 256 MiB.
	// Past them, a message reaches this daemon's browsers only (counted,
	// logged).
	MaxBufferedMessages int
	MaxBufferedBytes    int64
	// BatchSize is how many messages one pipelined round trip appends;
	// default 256.
	BatchSize int
	// Sealer, when set, encrypts messages, snapshots and forwarded
	// requests before they reach Redis (*rediscache.Keyring). nil: stored
	// as they are.
	Sealer     Sealer
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Bus implements pop.Deliverer (for the Dispatcher) and pop.SharedStream
// (for the Hub).
type Bus struct {
	cfg    Config
	client redis.UniversalClient
	// cluster is client when it is a Redis Cluster's, else nil: a
	// cluster's pipelines run on its masters in parallel, its data sets
	// are one per master, and PUBLISH counts the subscribers of one node.
	cluster  *redis.ClusterClient
	hub      LocalHub
	logger   *slog.Logger
	metrics  *metrics
	daemonID string // names this daemon in dedup keys and on the replies channel

	// newsChannel, <prefix>news, is subscribed for as long as the news
	// loop runs: its confirmation tells a (re)subscription, and daemons of
	// earlier versions publish every entry on it. newsPrefix starts the
	// agents' channels, <prefix>news:{<tag>} (newsChannelOf).
	newsChannel string
	newsPrefix  string
	epochKey    string

	// state is stateUp or stateDown; only the sender changes it.
	state atomic.Int32
	// resync is a cause waiting to be handled by the sender ("" none).
	resync atomic.Pointer[string]
	// syncGen grows with every resync: the reader then catches up every
	// agent it watches.
	syncGen  atomic.Uint64
	kick     chan struct{} // wakes the sender: a probe's result, a resync asked
	serves   chan struct{} // wakes the reader: Redis serves again
	newsWake chan struct{} // wakes the reader: agents to read
	link     failures      // every Redis operation
	writes   failures      // appends only

	emu       sync.Mutex
	epoch     string   // the Redis data set this daemon knows (its epoch keys and their values)
	epochKeys []string // the epoch keys of the last probe
	serverID  string   // the run_id of the server (of each master) that answers

	intake  *queue.Bounded[outgoing] // Deliver -> sender
	backlog *queue.Bounded[outgoing] // the outage buffer
	pending []outgoing               // sender only: the head, taken and not yet appended
	bursts  [3]burst                 // queue full, buffer full, expired: logged once per burst

	omu      sync.Mutex
	ordinals *recency[map[string]int] // (agent, call) -> (type, part) -> messages named so far, until the call ends for the agent
	keyCache *recency[agentKeys]      // agent -> key names
	msgN     atomic.Uint64            // this daemon's messages that are not de-duplicated
	directs  atomic.Uint64            // entries the sender handed over itself (handDirect)
	heard    atomic.Uint64            // entries handed over as their news came, not read
	newsIn   atomic.Uint64            // entries (and markers) heard on news channels
	// subscribed: the news subscription (newsChannel) is confirmed; with
	// newsOn, every watched agent's channel (tests wait for both).
	subscribed atomic.Bool
	// newsSubs wakes the subscriber (subscribeNews): agents started or
	// stopped being watched (newsDirty).
	newsSubs chan struct{}
	// holdSubscribe, when set (tests), runs before the subscriber
	// subscribes to channels.
	holdSubscribe func(channels []string)

	lmu sync.Mutex
	// localSeen are the dedup names of the messages this daemon's browsers
	// got while Redis was down: read back from Redis later (its own, or
	// another daemon's copy), they are not handed to the hub again.
	localSeen *recency[struct{}]
	// readSeen are the names of the messages the reader handed to the hub
	// lately: appended again after Redis lost them (resendLost), they are
	// not handed over twice.
	readSeen *recency[struct{}]

	// recent are the messages appended within resendWindow (sender
	// only): what Redis may have taken and lost before every reader read it.
	recent []appended

	// hmu orders what goes to the hub numbered: held from a move of a
	// watch's pos to the hand-over of the message at that pos, by the
	// reader and by the sender handing its own appends over (handDirect),
	// so that the hub gets each agent's messages in seq order. Taken
	// before mu.
	hmu      sync.Mutex
	mu       sync.Mutex
	watching map[string]*watch // connected agents
	byTag    map[string]string // tag -> agent, for the agents watched
	active   map[string]bool   // watched agents whose streams have news
	degraded int               // watches opened without Redis
	// newsDirty are the tags of agents that started or stopped being
	// watched since the subscriber last looked; newsOn the tags whose
	// channels' subscriptions were confirmed.
	newsDirty map[string]struct{}
	newsOn    map[string]bool

	// Forwarded requests (requests.go).
	localReqs atomic.Pointer[localBox]
	listening atomic.Bool
	pmu       sync.Mutex
	pendingFw map[string]chan forwardReply
}

var (
	_ pop.Deliverer    = (*Bus)(nil)
	_ pop.SharedStream = (*Bus)(nil)
)

const (
	stateUp   int32 = iota // appending to Redis
	stateDown              // delivering locally, buffering
)

// outgoing is a message on its way to Redis.
type outgoing struct {
	agent string
	msg   pop.Encoded
	// dedup names the message in Redis: the same on every daemon that
	// applied the same call events, or unique to this daemon.
	dedup string
	at    time.Time // when Deliver took it
	// local: this daemon's browsers got it already (Redis was down).
	local bool
}

// watch is an agent with browsers on this daemon.
type watch struct {
	keys agentKeys
	pos  uint64 // last seq handed to the hub
	refs int    // Opens not yet Closed
	// degraded: a browser connected while Redis could not answer, and got
	// this daemon's own snapshot; it gets one from Redis once it can.
	degraded bool
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
	if strings.ContainsAny(cfg.KeyPrefix, "{}") {
		return nil, fmt.Errorf("redisbus: key prefix %q must not hold { or }: they mark the agents' hash tags", cfg.KeyPrefix)
	}
	if cfg.StreamLength < 0 || cfg.StreamTTL < 0 || cfg.PopsTTL < 0 || cfg.DedupTTL < 0 ||
		cfg.HealthInterval < 0 || cfg.OpTimeout < 0 || cfg.DownAfter < 0 || cfg.ReadBlock < 0 || cfg.ForwardTimeout < 0 ||
		cfg.MaxQueuedMessages < 0 || cfg.MaxBufferedMessages < 0 || cfg.MaxBufferedBytes < 0 || cfg.BatchSize < 0 {
		return nil, errors.New("redisbus: lengths and durations must not be negative")
	}
	for name, d := range map[string]time.Duration{"stream TTL": cfg.StreamTTL, "pops TTL": cfg.PopsTTL, "dedup TTL": cfg.DedupTTL} {
		if d > maxTTL {
			return nil, fmt.Errorf("redisbus: %s %s is over %s: what Redis holds is personal data", name, d, maxTTL)
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defInt(&cfg.MaxQueuedMessages, DefaultMaxQueuedMessages)
	defInt(&cfg.MaxBufferedMessages, DefaultMaxBufferedMessages)
	defInt(&cfg.BatchSize, 256)
	if cfg.StreamLength == 0 {
		cfg.StreamLength = 256
	}
	if cfg.MaxBufferedBytes == 0 {
		cfg.MaxBufferedBytes = 256 << 20
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defDur(&cfg.StreamTTL, time.Hour)
	defDur(&cfg.PopsTTL, 4*time.Hour)
	defDur(&cfg.DedupTTL, 15*time.Minute)
	defDur(&cfg.HealthInterval, time.Second)
	defDur(&cfg.OpTimeout, time.Second)
	defDur(&cfg.DownAfter, 2*time.Second)
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
	b := &Bus{
		cfg:         cfg,
		client:      cfg.Client,
		cluster:     clusterOf(cfg.Client),
		hub:         cfg.Hub,
		logger:      cfg.Logger,
		metrics:     m,
		daemonID:    hex.EncodeToString(id),
		newsChannel: cfg.KeyPrefix + "news",
		newsPrefix:  cfg.KeyPrefix + "news:",
		epochKey:    cfg.KeyPrefix + "epoch",
		kick:        make(chan struct{}, 1),
		serves:      make(chan struct{}, 1),
		newsWake:    make(chan struct{}, 1),
		newsSubs:    make(chan struct{}, 1),
		intake:      queue.New(queue.Options[outgoing]{MaxItems: cfg.MaxQueuedMessages, Depth: m.queued, Refused: m.dropped.WithLabelValues(dropQueueFull)}),
		backlog: queue.New(queue.Options[outgoing]{MaxItems: cfg.MaxBufferedMessages, MaxBytes: cfg.MaxBufferedBytes,
			Size: func(o outgoing) int { return o.msg.Size() }, Depth: m.buffered, Refused: m.dropped.WithLabelValues(dropBufferFull)}),
		ordinals:  newRecency[map[string]int](cfg.DedupTTL),
		keyCache:  newRecency[agentKeys](time.Hour),
		localSeen: newRecency[struct{}](cfg.DedupTTL),
		readSeen:  newRecency[struct{}](3 * resendWindow),
		watching:  map[string]*watch{},
		byTag:     map[string]string{},
		active:    map[string]bool{},
		newsDirty: map[string]struct{}{},
		newsOn:    map[string]bool{},
		pendingFw: map[string]chan forwardReply{},
	}
	// Down until the first probe answers: Open and Ready say so, and
	// messages are delivered here and kept for Redis meanwhile.
	b.state.Store(stateDown)
	return b, nil
}

// resendWindow is how long the sender remembers what it appended: longer
// than any reader takes to read an entry, so that what a Redis restarted
// empty (or a replica promoted) lost unread is appended again.
const resendWindow = 10 * time.Second

// appended is a message Redis confirmed.
type appended struct {
	o  outgoing
	at time.Time
}

// maxTTL bounds every TTL: what Redis holds is personal data.
const maxTTL = 24 * time.Hour

// DefaultMaxQueuedMessages is Config.MaxQueuedMessages' default: minutes
// of a busy call centre's messages, a few tens of MB at most.
const DefaultMaxQueuedMessages = 100000

// DefaultMaxBufferedMessages is Config.MaxBufferedMessages' default: a
// quarter of an hour (DedupTTL) of a busy call centre's messages.
const DefaultMaxBufferedMessages = 100000

// clusterOf is c when it is a Redis Cluster client, else nil.
func clusterOf(c redis.UniversalClient) *redis.ClusterClient {
	cc, _ := c.(*redis.ClusterClient)
	return cc
}

// keys returns the key names of agent, computed once an hour at most.
func (b *Bus) keys(agent string) agentKeys {
	b.omu.Lock()
	defer b.omu.Unlock()
	k := b.keyCache.use(agent, time.Now())
	if k.tag == "" {
		*k = keysOf(b.cfg.KeyPrefix, agent)
	}
	return *k
}

// Ready is nil while pops go through Redis; for /readyz. Not ready still
// means working: this daemon's own browsers get their pops.
func (b *Bus) Ready() error {
	if b.serving() {
		return nil
	}
	return errors.New("redis unavailable: pops reach only the browsers connected to this daemon")
}

// serving reports whether Redis is up and holds what the daemons know:
// snapshots may be served from it.
func (b *Bus) serving() bool { return b.state.Load() == stateUp && b.resync.Load() == nil }

// AgentName passes the Hub's agent names on, so that the Dispatcher finds
// them through its Deliverer as it does without the bus.
func (b *Bus) AgentName(agentID string) string {
	if n, ok := b.hub.(interface{ AgentName(string) string }); ok {
		return n.AgentName(agentID)
	}
	return ""
}

// Deliver implements pop.Deliverer. It never blocks: the message is queued
// for Run, which appends it to Redis, or, while Redis is down, hands it to
// the local Hub and keeps it for Redis. One queue keeps an agent's messages
// in order across the switches between the two.
//
// When the queue is full (Redis far too slow, or Run stalled), the message
// goes to the local Hub at once, ahead of those queued, and never to Redis:
// counted in screenpop_redisbus_dropped_messages_total{reason="queue_full"}
// and logged once per burst.
func (b *Bus) Deliver(agentID string, m pop.Encoded) {
	o := outgoing{agent: agentID, msg: m, dedup: b.dedupName(agentID, m), at: time.Now()}
	if b.intake.Push(o) {
		return
	}
	b.bursts[burstQueue].start(b.logger, "redisbus: queue to Redis full: messages go to this daemon's browsers only until it drains",
		"max_queued_messages", b.cfg.MaxQueuedMessages, "type", m.Type)
	b.metrics.delivered.WithLabelValues(pathLocalFallback).Inc()
	b.hub.Deliver(agentID, m)
}

// dedupTypes are the messages every daemon watching the same PBX produces
// from the same events: the call's course, and the steps of its card as
// it is built (a section, named by the section, and the earlier calls),
// which each daemon sends once per build, at most, and a second build of a
// call (an agent's pick) runs on one daemon only. The others answer one
// browser's request, which reaches one daemon only, or may come from
// either daemon for its own reason: a complete card (a build's last step
// on one daemon, a refresh on another) is not named by its ordinal.
var dedupTypes = map[string]bool{pop.TypePop: true, pop.TypeAnswered: true, pop.TypeWithdrawn: true, pop.TypeEnded: true,
	pop.TypeSection: true, pop.TypeHistory: true}

// dedupName names a message in Redis. A message every daemon watching the
// same PBX produces is the n-th of its type for its agent and call: the
// same name on each of them. Any other is this daemon's n-th message.
// Either way, a retry of an append whose answer was lost is recognised.
func (b *Bus) dedupName(agent string, m pop.Encoded) string {
	var name string
	if !b.cfg.DisableDedup && m.CallID != "" && dedupTypes[m.Type] {
		call, kind := agent+"\x00"+m.CallID, m.Type+"\x00"+m.Part
		b.omu.Lock()
		counts := b.ordinals.use(call, time.Now())
		if *counts == nil {
			*counts = make(map[string]int, 4)
		}
		(*counts)[kind]++
		k := (*counts)[kind]
		if m.Type == pop.TypeEnded {
			// The call is over for the agent: this daemon names no more of
			// its messages (a second end would be the first one's copy).
			b.ordinals.forget(call)
		}
		b.omu.Unlock()
		name = call + "\x00" + kind + "\x00" + strconv.Itoa(k)
	} else {
		name = b.daemonID + "\x00" + strconv.FormatUint(b.msgN.Add(1), 10)
	}
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:16])
}

// Run delivers, reads and watches Redis until ctx ends. Messages not yet
// appended then go to the local Hub, if it has not had them.
func (b *Bus) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { b.healthLoop(ctx) })
	wg.Go(func() { b.readLoop(ctx) })
	wg.Go(func() { b.newsLoop(ctx) })
	wg.Go(func() { b.requestLoop(ctx) })
	b.sendLoop(ctx)
	wg.Wait()
	return nil
}

// burst logs the start of a burst of refusals once, and its end.
type burst struct{ on atomic.Bool }

const (
	burstQueue = iota
	burstBuffer
	burstExpired
)

func (u *burst) start(logger *slog.Logger, msg string, args ...any) {
	if !u.on.Swap(true) {
		logger.Error(msg, args...)
	}
}

func (u *burst) end(logger *slog.Logger, msg string) {
	if u.on.Swap(false) {
		logger.Warn(msg)
	}
}
