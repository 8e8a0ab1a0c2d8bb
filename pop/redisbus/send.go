package redisbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/pop"
)

// The sender is one goroutine: it alone appends to Redis, changes the
// bus's state and delivers locally while Redis is down, so that an
// agent's messages keep their order across every switch.
//
//	up:   take what Deliver queued, append it (pipelined, BatchSize per round
//	      trip). A failure is retried, the messages held, until Redis has
//	      kept failing for DownAfter: a slow Redis delays pops, no more.
//	down: hand every message to the local Hub, and keep it in the outage
//	      buffer (backlog). When a probe answers: raise the seqs of the
//	      agents connected here, append what was held then the buffer, in
//	      order (de-duplicated as any append), put back the live calls the
//	      dispatcher knows (resync), and only then go up.
func (b *Bus) sendLoop(ctx context.Context) {
	everUp := false
	for ctx.Err() == nil {
		if b.state.Load() == stateDown {
			b.drainLocally()
			if b.link.healthy() {
				cause := causeRecovered
				if c := b.resync.Swap(nil); c != nil {
					cause = *c
				}
				if err := b.recoverRedis(ctx, cause, everUp); err != nil {
					b.failed(opResync, err)
					b.bufferPending()
				} else {
					everUp = true
					continue
				}
			}
			// Local browsers get what comes at once; Redis is tried again
			// after the next probe.
			t := time.NewTimer(b.cfg.HealthInterval)
			select {
			case <-ctx.Done():
			case <-b.intake.Ready():
			case <-b.kick:
			case <-t.C:
			}
			t.Stop()
			continue
		}

		if c := b.resync.Load(); c != nil {
			// Redis answers but lost data (or another server answers): put
			// back what this daemon knows before going on.
			if err := b.resyncRedis(ctx, c); err != nil {
				b.failed(opResync, err)
				if !b.goDownIfDue() {
					b.wait(ctx, b.retryDelay())
				}
			}
			continue
		}
		if len(b.pending) == 0 {
			b.pending = append(b.pending, b.intake.Take()...)
		}
		if len(b.pending) == 0 {
			b.bursts[burstQueue].end(b.logger, "redisbus: queue to Redis drained")
			if b.goDownIfDue() {
				continue
			}
			select {
			case <-ctx.Done():
			case <-b.intake.Ready():
			case <-b.kick:
			}
			continue
		}
		if err := b.appendPending(ctx, len(b.pending)); err != nil {
			b.failed(opDeliver, err)
			if !b.goDownIfDue() {
				b.metrics.retries.Inc()
				b.wait(ctx, b.retryDelay())
			}
		}
	}
	// Shutting down: whatever this daemon's browsers have not had goes to
	// them now; Redis gets nothing more.
	for _, o := range b.pending {
		if !o.local {
			b.deliverLocally(&o)
		}
	}
	b.pending = nil
	for _, o := range b.intake.Take() {
		b.deliverLocally(&o)
	}
	b.backlog.Take()
}

// wait sleeps for d, or until ctx ends or someone kicks the sender.
func (b *Bus) wait(ctx context.Context, d time.Duration) { sleep(ctx, d, b.kick) }

// wake kicks the sender without blocking.
func (b *Bus) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// retryDelay is the pause before appending again after a failure: short,
// since a slow Redis should cost little delay.
func (b *Bus) retryDelay() time.Duration { return min(b.cfg.HealthInterval, 50*time.Millisecond) }

// goDownIfDue switches to delivering locally once Redis has kept failing
// for DownAfter. The messages held are handed to the local Hub first, in
// order, then kept for Redis.
func (b *Bus) goDownIfDue() bool {
	now := time.Now()
	if b.link.failingFor(now) < b.cfg.DownAfter && b.writes.failingFor(now) < b.cfg.DownAfter {
		return false
	}
	b.state.Store(stateDown)
	b.metrics.up.Set(0)
	b.logger.Error("Redis down: pops go to this daemon's browsers only, and are kept for Redis",
		"failing_for", max(b.link.failingFor(now), b.writes.failingFor(now)).Seconds(), "held", len(b.pending))
	for i := range b.pending {
		if !b.pending[i].local {
			b.deliverLocally(&b.pending[i])
		}
	}
	b.bufferPending()
	return true
}

// bufferPending puts the messages held back at the front of the outage
// buffer, in order, so that the buffer (and its gauge) holds everything
// Redis has yet to get.
func (b *Bus) bufferPending() {
	if len(b.pending) == 0 {
		return
	}
	all := append(b.pending, b.backlog.Take()...)
	b.pending = nil
	for _, o := range all {
		b.buffer(o)
	}
}

// buffer keeps o, which this daemon's browsers got, for Redis.
func (b *Bus) buffer(o outgoing) {
	if !b.backlog.Push(o) {
		b.bursts[burstBuffer].start(b.logger, "redisbus: outage buffer full: messages reach this daemon's browsers only, other daemons' browsers will miss them",
			"max_buffered_messages", b.cfg.MaxBufferedMessages, "max_buffered_bytes", b.cfg.MaxBufferedBytes)
	}
}

// deliverLocally hands o to this daemon's browsers and remembers it, so
// that the copy read back from Redis later is not handed over again.
func (b *Bus) deliverLocally(o *outgoing) {
	o.local = true
	b.lmu.Lock()
	b.localSeen.use(o.dedup, time.Now())
	b.lmu.Unlock()
	b.metrics.delivered.WithLabelValues(pathLocalFallback).Inc()
	b.hub.Deliver(o.agent, o.msg)
}

// drainLocally, while Redis is down, delivers what Deliver queued to this
// daemon's browsers and keeps it in the outage buffer.
func (b *Bus) drainLocally() {
	for _, o := range b.intake.Take() {
		b.deliverLocally(&o)
		b.buffer(o)
	}
	b.bursts[burstQueue].end(b.logger, "redisbus: queue to Redis drained")
}

// recoverRedis brings the bus back up once Redis answers: every seq above
// what browsers saw, the held and buffered messages appended in order,
// the live calls put back; only then are snapshots served from Redis
// again.
func (b *Bus) recoverRedis(ctx context.Context, cause string, count bool) error {
	if err := b.raiseWatched(ctx); err != nil {
		return err
	}
	// The buffer joins what is held: a message appended again must not
	// overtake, on a page, a later one of its call the page already had
	// from this daemon (resendLost).
	b.drainLocally()
	b.pending = append(b.pending, b.backlog.Take()...)
	b.dropExpired()
	if err := b.resendLost(ctx); err != nil {
		return err
	}
	for {
		b.drainLocally()
		if len(b.pending) == 0 {
			b.pending = append(b.pending, b.backlog.Take()...)
			b.dropExpired()
		}
		if len(b.pending) == 0 {
			break
		}
		if err := b.appendPending(ctx, min(len(b.pending), b.cfg.BatchSize)); err != nil {
			return err
		}
	}
	b.bursts[burstBuffer].end(b.logger, "redisbus: outage buffer drained")
	if err := b.republish(ctx); err != nil {
		return err
	}
	// Nothing is buffered and only this goroutine buffers: from now on
	// Deliver's messages are appended, and go to this daemon's browsers
	// through Redis.
	b.state.Store(stateUp)
	b.metrics.up.Set(1)
	b.served()
	if count {
		b.metrics.resyncs.WithLabelValues(cause).Inc()
		b.logger.Info("Redis available again: buffered pops appended, live calls put back", "cause", cause)
	} else {
		b.logger.Info("Redis available: pops go through it")
	}
	return nil
}

// served tells the reader that Redis serves again, holding what this
// daemon knows: it catches up every agent it watches, at once.
func (b *Bus) served() {
	b.syncGen.Add(1)
	select {
	case b.serves <- struct{}{}:
	default:
	}
}

// resyncRedis puts back what this daemon knows while Redis is up but has
// lost data (restarted empty before anyone took it for down) or is another
// server (a failover).
func (b *Bus) resyncRedis(ctx context.Context, asked *string) error {
	cause := *asked
	if err := b.raiseWatched(ctx); err != nil {
		return err
	}
	if err := b.resendLost(ctx); err != nil {
		return err
	}
	// What waited during the failure goes first: the calls put back after
	// it are those still missing.
	b.pending = append(b.pending, b.intake.Take()...)
	if err := b.appendPending(ctx, len(b.pending)); err != nil {
		return err
	}
	if err := b.republish(ctx); err != nil {
		return err
	}
	// Asked again meanwhile: another round.
	if !b.resync.CompareAndSwap(asked, nil) {
		return nil
	}
	b.served()
	b.metrics.resyncs.WithLabelValues(cause).Inc()
	b.logger.Warn("Redis lost data or failed over: live calls put back", "cause", cause)
	return nil
}

// dropExpired drops, from the head of what is to be appended, messages
// kept longer than DedupTTL: another daemon's copy may no longer be
// recognised, and the agent would get them twice. Live calls are put back
// by the resync anyway.
func (b *Bus) dropExpired() {
	now := time.Now()
	n := 0
	for n < len(b.pending) && now.Sub(b.pending[n].at) >= b.cfg.DedupTTL {
		n++
	}
	if n == 0 {
		return
	}
	b.metrics.dropped.WithLabelValues(dropExpired).Add(float64(n))
	b.logger.Error("redisbus: messages buffered longer than dedup_ttl not appended: other daemons' browsers miss them",
		"messages", n, "dedup_ttl", b.cfg.DedupTTL.Seconds())
	b.pending = slices.Delete(b.pending, 0, n)
}

// appendPending appends the first n pending messages, BatchSize per round
// trip, and removes from pending those Redis confirmed. On an error the
// rest stays, in order, for the next attempt.
func (b *Bus) appendPending(ctx context.Context, n int) error {
	reloaded := false
	for n > 0 {
		k := min(n, b.cfg.BatchSize)
		done, err := b.appendBatch(ctx, b.pending[:k])
		b.pending = b.pending[done:]
		n -= done
		if errors.Is(err, errScriptsLoaded) && !reloaded {
			// Redis restarted (or failed over) and forgot the scripts:
			// not a failure.
			reloaded = true
			continue
		}
		if err != nil {
			return err
		}
		b.writes.succeeded()
		b.link.succeeded()
	}
	if len(b.pending) == 0 {
		b.pending = b.pending[:0:0] // let the array go
	}
	return nil
}

// appendBatch runs the append script of each message of batch, in one
// pipeline, and hands to this daemon's browsers what it can (handDirect);
// each script publishes its entry to the other daemons' readers itself.
// It returns how many messages, from the first, Redis confirmed.
func (b *Bus) appendBatch(ctx context.Context, batch []outgoing) (int, error) {
	if len(batch) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	pipe := b.client.Pipeline()
	cmds := make([]*redis.Cmd, len(batch))
	for i, o := range batch {
		keys, args := b.appendArgs(o)
		cmds[i] = deliverScript.EvalSha(ctx, pipe, keys, args...)
	}
	_, err := pipe.Exec(ctx)
	answered := time.Now()
	direct := b.serving()
	for i, c := range cmds {
		res, cerr := c.Text()
		if cerr != nil {
			// This one and those after it may have been appended or not
			// (then published: readers heard of them).
			if isNoScript(cerr) {
				if lerr := b.loadScripts(ctx); lerr != nil {
					return i, lerr
				}
				return i, errScriptsLoaded
			}
			return i, fmt.Errorf("append: %w", cerr)
		}
		b.metrics.appendDelay.Observe(answered.Sub(batch[i].at).Seconds())
		if owner, ok := strings.CutPrefix(res, "d"); ok {
			// Appended already, and published then: by another daemon, or
			// by an attempt of this one whose answer was lost.
			if owner != b.daemonID {
				b.metrics.deduplicated.Inc()
			} else {
				b.metrics.delivered.WithLabelValues(pathRedis).Inc()
			}
			b.remember(batch[i])
			continue
		}
		b.metrics.delivered.WithLabelValues(pathRedis).Inc()
		b.remember(batch[i])
		seq, prev, ok := parseAppended(res)
		if ok && direct {
			b.handDirect(&batch[i], seq, prev)
		}
	}
	if err != nil {
		return len(batch), fmt.Errorf("append: %w", err)
	}
	return len(batch), nil
}

// appendArgs are the KEYS and ARGV of the append script (deliverScript)
// for o.
func (b *Bus) appendArgs(o outgoing) ([]string, []any) {
	keys := b.keys(o.agent)
	args := make([]any, 0, 10+9)
	args = append(args, b.cfg.DedupTTL.Milliseconds(), b.cfg.StreamLength, b.cfg.StreamTTL.Milliseconds(), b.cfg.PopsTTL.Milliseconds(),
		b.seal(o.msg.Unnumbered(), keys.stream), o.dedup, b.daemonID, b.floor(o.agent), keys.news, keys.tag)
	args = b.popsOps(args, keys.pops, o.msg)
	return []string{keys.dedup + o.dedup, keys.meta, keys.stream, keys.pops}, args
}

// parseAppended reads the append script's "<seq> <previous seq>".
func parseAppended(res string) (seq, prev uint64, ok bool) {
	s, p, found := strings.Cut(res, " ")
	if !found {
		return 0, 0, false
	}
	seq, err1 := strconv.ParseUint(s, 10, 64)
	prev, err2 := strconv.ParseUint(p, 10, 64)
	return seq, prev, err1 == nil && err2 == nil
}

// handDirect gives a message this daemon just appended, numbered seq, to
// its own browsers at once, without reading it back, when the agent's
// browsers here have everything up to prev, the entry seq follows in the
// stream: it is then exactly the next message the reader would hand over
// (the same bytes, the same seq), and the reader, whose position moves to
// seq, does not read it again. Otherwise (another daemon's entry came in
// between, a new epoch, a browser waiting for a snapshot) the reader reads
// it as any entry.
func (b *Bus) handDirect(o *outgoing, seq, prev uint64) {
	if o.local || prev == 0 {
		return
	}
	m := o.msg
	m.Seq = seq
	if b.handOne(o.agent, seq, o.dedup, m, nil, func(at uint64) bool { return at == prev }) {
		b.directs.Add(1)
	}
}

// remember keeps o for resendWindow: Redis may lose it before every
// reader read it.
func (b *Bus) remember(o outgoing) {
	now := time.Now()
	n := 0
	for n < len(b.recent) && now.Sub(b.recent[n].at) > resendWindow {
		n++
	}
	// Forget from the front; the array is compacted only when half of it is
	// forgotten, so that each message costs O(1).
	if b.recent = b.recent[n:]; cap(b.recent) > 2*len(b.recent)+64 {
		b.recent = append(make([]appended, 0, 2*len(b.recent)+64), b.recent...)
	}
	b.recent = append(b.recent, appended{o, now})
}

// resendLost puts at the head of what is to be appended the messages
// appended within resendWindow that Redis no longer has (their
// de-duplication keys are gone): it restarted empty, or a promoted replica
// missed them. A lost message followed by one of the same agent and call
// that Redis has, or that is still to be appended, is not appended again:
// the page has, or will have, newer news of that call (this daemon's pages
// may have had it while Redis was down). Readers that had handed a message
// to their pages before it was lost do not hand it over again (readSeen).
func (b *Bus) resendLost(ctx context.Context) error {
	if len(b.recent) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	pipe := b.client.Pipeline()
	exists := make([]*redis.IntCmd, len(b.recent))
	for i, r := range b.recent {
		exists[i] = pipe.Exists(ctx, b.keys(r.o.agent).dedup+r.o.dedup)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("check appended messages: %w", err)
	}
	type call struct{ agent, id string }
	newest := map[call]int{} // the last message Redis still has or will get, per agent and call
	for i, r := range b.recent {
		if exists[i].Val() == 1 {
			newest[call{r.o.agent, r.o.msg.CallID}] = i
		}
	}
	for _, o := range b.pending {
		newest[call{o.agent, o.msg.CallID}] = len(b.recent)
	}
	var lost []outgoing
	for i, r := range b.recent {
		if exists[i].Val() == 1 {
			continue
		}
		if j, ok := newest[call{r.o.agent, r.o.msg.CallID}]; ok && j > i && r.o.msg.CallID != "" {
			continue
		}
		lost = append(lost, r.o)
	}
	b.recent = b.recent[:0]
	if len(lost) > 0 {
		b.logger.Warn("Redis lost messages it had taken; appended again", "messages", len(lost))
		b.pending = append(lost, b.pending...)
	}
	return nil
}

// errScriptsLoaded: a batch met a Redis without the scripts, which are
// loaded now; the batch is tried again at once.
var errScriptsLoaded = errors.New("scripts were not loaded; loaded now")

func isNoScript(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") }

// loadScripts loads the scripts where they run: the server, or every
// master of a cluster (not its replicas, which run none: one that is down
// must not hold up a resync).
func (b *Bus) loadScripts(ctx context.Context) error {
	load := func(ctx context.Context, c redis.Scripter) error {
		for _, s := range scripts {
			if err := s.Load(ctx, c).Err(); err != nil {
				return fmt.Errorf("load scripts: %w", err)
			}
		}
		return nil
	}
	if b.cluster != nil {
		return b.cluster.ForEachMaster(ctx, func(ctx context.Context, master *redis.Client) error { return load(ctx, master) })
	}
	return load(ctx, b.client)
}

// floor is the last seq this daemon handed to agent's browsers: the next
// one must be above it, whatever Redis's clock says.
func (b *Bus) floor(agent string) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w := b.watching[agent]; w != nil {
		return w.pos
	}
	return 0
}

// raiseWatched makes the next seq of every agent connected here higher
// than what its browsers saw: Redis may have come back empty, or be a
// replica that missed the last appends.
func (b *Bus) raiseWatched(ctx context.Context) error {
	b.mu.Lock()
	type raise struct {
		keys agentKeys
		pos  uint64
	}
	raises := make([]raise, 0, len(b.watching))
	for _, w := range b.watching {
		raises = append(raises, raise{w.keys, w.pos})
	}
	b.mu.Unlock()
	if err := b.loadScripts(ctx); err != nil {
		return err
	}
	for chunk := range slices.Chunk(raises, b.cfg.BatchSize) {
		ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
		pipe := b.client.Pipeline()
		for _, r := range chunk {
			raiseScript.EvalSha(ctx, pipe, []string{r.keys.meta, r.keys.stream}, r.pos, b.cfg.StreamTTL.Milliseconds())
		}
		_, err := pipe.Exec(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("raise seqs: %w", err)
		}
	}
	return nil
}

// republish puts back into Redis the pops of the live calls this daemon's
// dispatcher follows, where an agent's snapshot lacks them; a stream whose
// snapshot changed gets a marker, so that browsers connected anywhere get
// a new snapshot.
func (b *Bus) republish(ctx context.Context) error {
	live, ok := b.localRequests().(pop.LiveCalls)
	if !ok {
		return nil
	}
	all := live.LivePops()
	agents := make([]string, 0, len(all))
	for a := range all {
		agents = append(agents, a)
	}
	slices.Sort(agents)
	now := time.Now().UnixNano()
	for chunk := range slices.Chunk(agents, b.cfg.BatchSize) {
		ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
		pipe := b.client.Pipeline()
		cmds := make([]*redis.Cmd, 0, len(chunk))
		for _, a := range chunk {
			keys := b.keys(a)
			args := []any{b.cfg.PopsTTL.Milliseconds(), b.cfg.StreamTTL.Milliseconds(), b.cfg.StreamLength, keys.news, keys.tag}
			for _, p := range all[a] {
				args = b.popFields(args, keys.pops, p, now)
			}
			cmds = append(cmds, fillScript.EvalSha(ctx, pipe, []string{keys.pops, keys.meta, keys.stream}, args...))
		}
		_, err := pipe.Exec(ctx)
		cancel()
		if err != nil {
			return fmt.Errorf("republish: %w", err)
		}
		for _, c := range cmds {
			n, _ := c.Int()
			b.metrics.republished.Add(float64(n))
		}
	}
	return nil
}

// popFields appends a pop's (field, card, answered-by, transfer, time) as
// fillScript takes them: the same fields the append script writes.
func (b *Bus) popFields(args []any, popsKey string, p pop.PopView, now int64) []any {
	h := callField(p.CallID)
	card, err := json.Marshal(p.Card)
	if err != nil {
		return args
	}
	var by, tr []byte
	if p.AnsweredBy != nil {
		by, _ = json.Marshal(p.AnsweredBy)
		by = b.seal(by, popsKey, fieldAnswered+h)
	} else if p.Transfer != nil {
		tr, _ = json.Marshal(p.Transfer)
		tr = b.seal(tr, popsKey, fieldTransfer+h)
	}
	at := now
	if !p.Card.BuiltAt.IsZero() {
		at = p.Card.BuiltAt.UnixNano()
	}
	return append(args, h, b.seal(cardValue(p.CallID, card), popsKey, fieldCard+h), by, tr, strconv.FormatInt(at, 10))
}

// failed counts a failed operation and notes Redis failing.
func (b *Bus) failed(op string, err error) {
	b.metrics.errors.WithLabelValues(op).Inc()
	if errors.Is(err, context.Canceled) {
		return
	}
	now := time.Now()
	if b.link.failed(now) {
		b.logger.Warn("Redis operation failed; retrying", "op", op, "err", err)
	}
	if op == opDeliver || op == opResync {
		b.writes.failed(now)
	}
}
