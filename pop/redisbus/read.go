package redisbus

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/pop"
)

// Every append script PUBLISHes its entry on its agent's news channel,
// <prefix>news:{<tag>} (the agent's tag, the entry's seq, the seq it
// follows, its name and its sealed bytes), and each daemon subscribes to
// the channels of the agents it watches only: it hears none of the other
// agents' entries. One whose agent has browsers here, positioned exactly
// on the seq it follows, goes to the hub as it comes, with no read; any
// other entry of a watched agent (one that comes after a gap, a
// resnapshot marker) makes the reader read that agent's stream from where
// it left it. Pub/sub loses what is published while a daemon is not
// subscribed: the confirmation of an agent's channel makes the reader
// catch that agent up; a (re)subscription of the connection, and anything
// else that may have lost news (a failed read, a resync, Redis serving
// again), makes it catch up every agent it watches, once. An idle agent
// costs nothing.

// fetchCount bounds the entries read from one stream per round trip.
const fetchCount = 256

// readLoop reads the streams of the agents marked active (news after a
// gap, a catch-up, a browser connecting) and sends snapshots to browsers
// that wait for one from Redis.
func (b *Bus) readLoop(ctx context.Context) {
	caughtUp := false
	var gen uint64
	for ctx.Err() == nil {
		if !b.serving() {
			caughtUp = false
			sleep(ctx, b.cfg.HealthInterval, b.serves)
			continue
		}
		if g := b.syncGen.Load(); !caughtUp || g != gen {
			caughtUp, gen = true, g
			b.markAllActive()
		}
		if agents := b.takeActive(); len(agents) > 0 {
			if err := b.fetch(ctx, agents); err != nil {
				b.readFailed(ctx, err)
				caughtUp = false
			}
			continue
		}
		// Browsers waiting for a snapshot are tried again after ReadBlock.
		sleep(ctx, b.cfg.ReadBlock, b.newsWake)
	}
}

// wakeReader tells the reader that agents were marked active.
func (b *Bus) wakeReader() {
	select {
	case b.newsWake <- struct{}{}:
	default:
	}
}

// newsLoop listens on the news channels until ctx ends: newsChannel, and
// the channel of every agent watched here (subscribeNews). A subscription
// silent for ReadBlock is pinged; one that does not answer twice in a row
// is dropped and made again (a connection that died without a word).
func (b *Bus) newsLoop(ctx context.Context) {
	for ctx.Err() == nil {
		ps := b.client.Subscribe(ctx, b.newsChannel)
		stop := context.AfterFunc(ctx, func() { ps.Close() })
		done := make(chan struct{})
		var subs sync.WaitGroup
		subs.Go(func() { b.subscribeNews(ctx, ps, done) })
		b.listenNews(ctx, ps)
		close(done)
		subs.Wait()
		b.subscribed.Store(false)
		b.mu.Lock()
		clear(b.newsOn)
		b.mu.Unlock()
		stop()
		ps.Close()
		if ctx.Err() == nil {
			sleep(ctx, b.cfg.HealthInterval, nil)
		}
	}
}

// subscribeNews keeps ps subscribed to the news channels of the agents
// watched here, and to those only, until done closes: it subscribes to an
// agent's channel when the agent starts being watched (its first browser
// here), unsubscribes when it stops. go-redis keeps the list and
// subscribes again to all of it when it reconnects; a channel's
// confirmation makes the reader catch its agent up (listenNews).
func (b *Bus) subscribeNews(ctx context.Context, ps *redis.PubSub, done <-chan struct{}) {
	on := map[string]bool{} // the tags whose channels ps was asked for
	b.mu.Lock()
	for _, w := range b.watching {
		b.newsDirty[w.keys.tag] = struct{}{}
	}
	b.mu.Unlock()
	for {
		var add, drop []string
		b.mu.Lock()
		for tag := range b.newsDirty {
			_, want := b.byTag[tag]
			switch {
			case want && !on[tag]:
				on[tag] = true
				add = append(add, b.newsChannelOf(tag))
			case !want && on[tag]:
				delete(on, tag)
				drop = append(drop, b.newsChannelOf(tag))
			}
		}
		clear(b.newsDirty)
		b.mu.Unlock()
		if len(add) > 0 {
			if b.holdSubscribe != nil {
				b.holdSubscribe(add)
			}
			// Kept by go-redis even when this fails: it subscribes again
			// when it reconnects.
			if err := ps.Subscribe(ctx, add...); err != nil && ctx.Err() == nil {
				b.logger.Debug("news subscription", "err", err)
			}
		}
		if len(drop) > 0 { // never none: Unsubscribe() would drop every channel
			if err := ps.Unsubscribe(ctx, drop...); err != nil && ctx.Err() == nil {
				b.logger.Debug("news unsubscription", "err", err)
			}
		}
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-b.newsSubs:
		}
	}
}

// newsChanged tells the subscriber that the agent of tag started or
// stopped being watched. b.mu must be held.
func (b *Bus) newsChanged(tag string) {
	b.newsDirty[tag] = struct{}{}
	select {
	case b.newsSubs <- struct{}{}:
	default:
	}
}

// newsChannelOf is the news channel of the agent whose tag is tag,
// <prefix>news:{<tag>}: PUBLISH names no key (heard on every node of a
// Redis Cluster), the tag only makes the channel the agent's.
func (b *Bus) newsChannelOf(tag string) string {
	return b.newsPrefix + "{" + tag + "}"
}

// tagOfChannel is the tag of an agent's news channel ("" for any other).
func (b *Bus) tagOfChannel(channel string) string {
	rest, ok := strings.CutPrefix(channel, b.newsPrefix+"{")
	if !ok {
		return ""
	}
	tag, ok := strings.CutSuffix(rest, "}")
	if !ok {
		return ""
	}
	return tag
}

func (b *Bus) listenNews(ctx context.Context, ps *redis.PubSub) {
	silent := 0
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, b.cfg.ReadBlock)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if silent++; silent > 2 {
					return
				}
				if ps.Ping(ctx) != nil {
					return
				}
				continue
			}
			if ctx.Err() == nil {
				b.failed(opRead, err)
				sleep(ctx, b.cfg.HealthInterval, nil)
			}
			// go-redis reconnects and subscribes again, to every channel,
			// on the next Receive; newsChannel's confirmation starts a
			// catch-up of every agent watched.
			continue
		}
		silent = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			b.confirmed(m)
		case *redis.Message:
			b.newsIn.Add(1)
			b.news(m.Payload)
		}
	}
}

// confirmed handles a (un)subscription's confirmation. What was published
// on a channel before its confirmation is in the streams, not heard: a
// (re)subscription to newsChannel (a new connection) makes the reader
// catch up every agent watched, one of an agent's channel that agent.
func (b *Bus) confirmed(m *redis.Subscription) {
	if m.Channel == b.newsChannel {
		if m.Kind == "subscribe" {
			b.subscribed.Store(true)
			b.syncGen.Add(1)
			b.wakeReader()
		}
		return
	}
	tag := b.tagOfChannel(m.Channel)
	if tag == "" {
		return
	}
	b.mu.Lock()
	if m.Kind != "subscribe" {
		delete(b.newsOn, tag)
		b.mu.Unlock()
		return
	}
	b.newsOn[tag] = true
	agent, ok := b.byTag[tag]
	if ok && b.watching[agent] != nil {
		b.active[agent] = true
	}
	b.mu.Unlock()
	if ok {
		b.wakeReader()
	}
}

// news handles one entry heard on a news channel: "<tag> <seq>
// <previous seq> <name> <sealed message>", or a tag alone (a resnapshot
// marker: read the stream).
func (b *Bus) news(payload string) {
	tag, rest, full := strings.Cut(payload, " ")
	b.mu.Lock()
	agent, ok := b.byTag[tag]
	var w *watch
	if ok {
		w = b.watching[agent]
	}
	if w == nil || w.degraded || !b.serving() {
		b.mu.Unlock()
		return // not watched here; or a snapshot comes first
	}
	keys := w.keys
	seqS, rest, ok1 := strings.Cut(rest, " ")
	prevS, rest, ok2 := strings.Cut(rest, " ")
	name, payload, ok3 := strings.Cut(rest, " ")
	// Kept by seen for a while: not as a slice of the whole message.
	name = strings.Clone(name)
	seq, err1 := strconv.ParseUint(seqS, 10, 64)
	prev, err2 := strconv.ParseUint(prevS, 10, 64)
	if !full || !ok1 || !ok2 || !ok3 || err1 != nil || err2 != nil || prev == 0 {
		b.active[agent] = true // a marker, a new epoch or an entry not understood: read
		b.mu.Unlock()
		b.wakeReader()
		return
	}
	pos := w.pos
	b.mu.Unlock()
	switch {
	case seq <= pos:
		return // handed over already (by the sender, most often)
	case prev != pos:
		b.requeue([]string{agent}) // entries in between: read them
		b.wakeReader()
		return
	}
	// Opened and checked outside the locks: the costly part.
	m, err := b.decodeEntry(keys, seq, payload)
	if b.handOne(agent, seq, name, m, err, func(at uint64) bool { return at == prev }) {
		b.heard.Add(1)
	} else if b.fresh(agent, seq) {
		b.requeue([]string{agent}) // another entry came first: read
		b.wakeReader()
	}
}

// handOne gives the hub agent's entry seq, named name (m, or err when it
// could not be opened), when the agent's browsers here are positioned so
// that they take it now (next(their position)); their position moves to
// seq. One lock (hmu) orders every hand-over (the sender's, the news', the
// reader's), so the hub gets each agent's messages in seq order, each
// once. It reports whether the position moved.
func (b *Bus) handOne(agent string, seq uint64, name string, m pop.Encoded, err error, next func(at uint64) bool) bool {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	b.mu.Lock()
	w := b.watching[agent]
	take := w != nil && !w.degraded && next(w.pos)
	if take {
		w.pos = seq
	}
	b.mu.Unlock()
	switch {
	case !take || b.seen(name):
	case err != nil:
		b.metrics.errors.WithLabelValues(opUnsealing).Inc()
		b.logger.Warn("unreadable stream entry skipped", "seq", seq, "err", err)
	default:
		b.hub.DeliverNumbered(agent, m)
	}
	return take
}

// sleep waits for d, or until ctx ends or wake receives (nil: never).
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-wake:
	}
}

func (b *Bus) readFailed(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	b.failed(opRead, err)
	sleep(ctx, b.cfg.HealthInterval, nil)
}

func (b *Bus) markAllActive() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for a := range b.watching {
		b.active[a] = true
	}
}

// takeActive returns the agents to read now: those with news, and those
// whose browsers wait for a snapshot from Redis.
func (b *Bus) takeActive() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.degraded > 0 {
		for a, w := range b.watching {
			if w.degraded {
				b.active[a] = true
			}
		}
	}
	if len(b.active) == 0 {
		return nil
	}
	agents := make([]string, 0, len(b.active))
	for a := range b.active {
		agents = append(agents, a)
	}
	clear(b.active)
	return agents
}

// fetch reads the streams of agents from where the reader left each, in
// one pipeline, and hands the messages to the hub. An agent with more
// entries than one read returns stays active.
func (b *Bus) fetch(ctx context.Context, agents []string) error {
	type read struct {
		agent string
		keys  agentKeys
		cmd   *redis.XMessageSliceCmd
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	pipe := b.client.Pipeline()
	reads := make([]read, 0, len(agents))
	var snaps []string
	b.mu.Lock()
	for _, a := range agents {
		w := b.watching[a]
		switch {
		case w == nil:
		case w.degraded:
			snaps = append(snaps, a)
		default:
			start := "(" + strconv.FormatUint(w.pos, 10) + "-0"
			reads = append(reads, read{a, w.keys, pipe.XRangeN(ctx, w.keys.stream, start, "+", fetchCount)})
		}
	}
	b.mu.Unlock()
	if len(reads) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			b.requeue(agents)
			return err
		}
		b.link.succeeded()
	}
	for _, r := range reads {
		entries := r.cmd.Val()
		if b.handOver(ctx, r.agent, r.keys, entries) || len(entries) == fetchCount {
			b.requeue([]string{r.agent})
		}
	}
	for _, a := range snaps {
		if err := b.resnapshot(ctx, a, 0); err != nil {
			b.requeue([]string{a})
			return err
		}
	}
	return nil
}

func (b *Bus) requeue(agents []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, a := range agents {
		if b.watching[a] != nil {
			b.active[a] = true
		}
	}
}

// handOver gives the hub the entries above the agent's position, each once.
// A resnapshot marker stops it: the agent's browsers get a new snapshot
// instead, and the entries after it come with the next read. It reports
// whether it stopped early.
func (b *Bus) handOver(ctx context.Context, agent string, keys agentKeys, entries []redis.XMessage) (again bool) {
	for _, e := range entries {
		seq, ok := parseID(e.ID)
		if !ok {
			continue
		}
		if _, marker := e.Values["r"]; marker {
			// The snapshot changed without a message: a new one, numbered
			// with the marker, then the entries after it as they come
			// (their effects may be in the snapshot already: a page takes
			// a pop of a call it shows as the same call, an end of a call
			// it does not show as nothing).
			if b.resnapshot(ctx, agent, seq) != nil {
				return true // the agent stays active and is read again
			}
			continue
		}
		payload, _ := e.Values["m"].(string)
		name, _ := e.Values["k"].(string)
		if !b.fresh(agent, seq) {
			continue // handed over already (by the sender, maybe)
		}
		// Opened and checked outside the locks: the costly part.
		m, err := b.decodeEntry(keys, seq, payload)
		b.handOne(agent, seq, name, m, err, func(at uint64) bool { return seq > at })
	}
	return false
}

// fresh reports whether the agent's browsers here may still need the
// entry seq: it is above the position handed over.
func (b *Bus) fresh(agent string, seq uint64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.watching[agent]
	return w != nil && !w.degraded && seq > w.pos
}

// seen reports whether this daemon's hub had the message named name
// already: delivered locally while Redis was down, or read before Redis
// lost it and it was appended again. Otherwise it notes it as read.
func (b *Bus) seen(name string) bool {
	if name == "" {
		return false
	}
	now := time.Now()
	b.lmu.Lock()
	defer b.lmu.Unlock()
	if b.localSeen.len() > 0 && b.localSeen.has(name, now) || b.readSeen.has(name, now) {
		return true
	}
	b.readSeen.use(name, now)
	return false
}

// decodeEntry opens a stream entry's message and numbers it with the
// entry's seq; the bytes go to browsers as they were encoded, checked but
// not decoded and encoded again.
func (b *Bus) decodeEntry(keys agentKeys, seq uint64, payload string) (pop.Encoded, error) {
	raw, err := b.unseal([]byte(payload), keys.stream)
	if err != nil {
		return pop.Encoded{}, err
	}
	m, err := pop.ParseEncoded(raw)
	if err != nil {
		return pop.Encoded{}, err
	}
	m.Seq = seq
	return m, nil
}

func parseID(id string) (uint64, bool) {
	ms, _, ok := strings.Cut(id, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(ms, 10, 64)
	return n, err == nil
}

// resnapshot sends agent's browsers connected here a snapshot from Redis
// (corrected by this daemon's dispatcher): Redis's snapshot of the agent
// changed without a message (a daemon put back calls Redis had lost; the
// snapshot is numbered with the marker's seq, at), or the browsers
// connected while Redis could not answer (at 0: numbered with the
// stream's last seq, and the reader goes on from there).
func (b *Bus) resnapshot(ctx context.Context, agent string, at uint64) error {
	keys := b.keys(agent)
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	res, err := b.openScript(ctx, keys, "", b.floor(agent))
	if err != nil {
		return err
	}
	snap, err := b.snapshot(pop.Agent{ID: agent, Name: b.AgentName(agent)}, keys, res.items)
	if err != nil {
		return err
	}
	snap.Seq = res.last
	b.hmu.Lock()
	defer b.hmu.Unlock()
	b.mu.Lock()
	w := b.watching[agent]
	if w == nil {
		b.mu.Unlock()
		return nil
	}
	if w.degraded {
		w.degraded = false
		b.degraded--
	}
	if at != 0 {
		snap.Seq = at
	}
	snap.Seq = max(snap.Seq, w.pos)
	w.pos = snap.Seq
	b.mu.Unlock()
	b.metrics.resnapshots.Inc()
	b.hub.DeliverNumbered(agent, snap)
	return nil
}
