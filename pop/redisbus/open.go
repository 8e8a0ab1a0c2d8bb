package redisbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/pop"
)

// errNotServing is Open's answer while Redis is down or is being given
// back what it lost: the Hub uses its own replay and the local snapshot,
// and the browser gets a snapshot from Redis once it can.
var errNotServing = errors.New("redis unavailable or resyncing")

// Open implements pop.SharedStream. A browser whose since belongs to the
// agent's stream's current epoch, and which the stream still holds, gets
// what it missed; any other gets a snapshot (Redis's, corrected by this
// daemon's dispatcher), never a replay of messages it may have seen and
// never an empty list while its calls ring. A failed attempt is tried
// again within ctx: a slow Redis is not a dead one.
func (b *Bus) Open(ctx context.Context, agent pop.Agent, since uint64, resume bool) ([]pop.Encoded, uint64, error) {
	keys := b.keys(agent.ID)
	arg := ""
	if resume {
		arg = strconv.FormatUint(since, 10)
	}
	var res openResult
	err := errNotServing
	for attempt := 0; b.serving(); attempt++ {
		res, err = b.open(ctx, keys, arg, since)
		if err == nil || ctx.Err() != nil {
			break
		}
		b.metrics.errors.WithLabelValues(opOpen).Inc()
		sleep(ctx, min(time.Duration(attempt+1)*50*time.Millisecond, b.cfg.HealthInterval), nil)
	}
	if err != nil {
		// Watch anyway: the browser gets this daemon's own snapshot now, and
		// one from Redis (with the other daemons' calls) once Redis serves.
		b.watch(agent.ID, keys, 0, true)
		return nil, 0, fmt.Errorf("redisbus: open: %w", err)
	}
	if b.watch(agent.ID, keys, res.last, false) {
		// News of entries appended since the script ran was not heard for
		// this agent: the reader reads them.
		b.requeue([]string{agent.ID})
		b.wakeReader()
	}
	if res.kind == "replay" {
		msgs := make([]pop.Encoded, 0, len(res.items))
		for _, it := range res.items {
			m, ok := b.entryMessage(keys, it)
			if !ok {
				// A replay with a hole would mislead: the snapshot instead.
				return b.snapshotOnly(ctx, agent, keys, since)
			}
			msgs = append(msgs, m)
		}
		return msgs, res.last, nil
	}
	snap, err := b.snapshot(agent, keys, res.items)
	if err != nil {
		return nil, 0, err
	}
	snap.Seq = res.last
	return []pop.Encoded{snap}, res.last, nil
}

// snapshotOnly answers with a snapshot when a replay cannot be trusted.
func (b *Bus) snapshotOnly(ctx context.Context, agent pop.Agent, keys agentKeys, since uint64) ([]pop.Encoded, uint64, error) {
	res, err := b.openScript(ctx, keys, "", since)
	if err != nil {
		return nil, 0, fmt.Errorf("redisbus: open: %w", err)
	}
	snap, err := b.snapshot(agent, keys, res.items)
	if err != nil {
		return nil, 0, err
	}
	snap.Seq = res.last
	return []pop.Encoded{snap}, res.last, nil
}

type openResult struct {
	kind  string // "replay" or "snapshot"
	last  uint64
	items []any // stream entries, or the pops hash flattened
}

// open runs the open script, after checking that Redis still holds the
// data set this daemon knows: one that lost it is resynced before it
// serves snapshots.
func (b *Bus) open(ctx context.Context, keys agentKeys, since string, floor uint64) (openResult, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	pipe := b.client.Pipeline()
	epochKeys, known := b.knownEpoch()
	epochs := make([]*redis.StringCmd, len(epochKeys))
	for i, k := range epochKeys {
		epochs[i] = pipe.Get(ctx, k)
	}
	cmd := openScript.EvalSha(ctx, pipe, []string{keys.meta, keys.stream, keys.pops}, since, floor, b.cfg.StreamTTL.Milliseconds())
	pipe.Exec(ctx)
	if err := cmd.Err(); isNoScript(err) {
		if err := b.loadScripts(ctx); err != nil {
			return openResult{}, err
		}
		return b.openScript(ctx, keys, since, floor)
	}
	values := make([]string, len(epochs))
	for i, c := range epochs {
		v, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return openResult{}, err
		}
		values[i] = v
	}
	if joinEpoch(epochKeys, values) != known {
		b.askResync(causeDataLost)
		return openResult{}, errNotServing
	}
	return parseOpen(cmd)
}

// openScript runs the open script alone (the reader's snapshots).
func (b *Bus) openScript(ctx context.Context, keys agentKeys, since string, floor uint64) (openResult, error) {
	return parseOpen(openScript.Run(ctx, b.client, []string{keys.meta, keys.stream, keys.pops}, since, floor, b.cfg.StreamTTL.Milliseconds()))
}

func parseOpen(cmd *redis.Cmd) (openResult, error) {
	res, err := cmd.Slice()
	if err != nil {
		return openResult{}, err
	}
	if len(res) != 3 {
		return openResult{}, fmt.Errorf("unexpected answer of %d items", len(res))
	}
	kind, _ := res[0].(string)
	last, err := strconv.ParseUint(fmt.Sprint(res[1]), 10, 64)
	if err != nil {
		return openResult{}, fmt.Errorf("bad seq %v", res[1])
	}
	items, _ := res[2].([]any)
	return openResult{kind: kind, last: last, items: items}, nil
}

// entryMessage turns a stream entry as a script returns it (["<seq>-0",
// ["m", message, "k", name]]) into a message numbered by its ID.
func (b *Bus) entryMessage(keys agentKeys, it any) (pop.Encoded, bool) {
	e, ok := it.([]any)
	if len(e) != 2 || !ok {
		return pop.Encoded{}, false
	}
	id, _ := e[0].(string)
	seq, ok := parseID(id)
	if !ok {
		return pop.Encoded{}, false
	}
	fields, _ := e[1].([]any)
	var payload string
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i] == "m" {
			payload, _ = fields[i+1].(string)
		}
	}
	m, err := b.decodeEntry(keys, seq, payload)
	if err != nil {
		b.metrics.errors.WithLabelValues(opUnsealing).Inc()
		return pop.Encoded{}, false
	}
	return m, true
}

// snapshot encodes the agent's snapshot from the pops hash, corrected by
// this daemon's dispatcher.
func (b *Bus) snapshot(agent pop.Agent, keys agentKeys, flat []any) (pop.Encoded, error) {
	pops, bad := b.decodePops(keys.pops, flat)
	if bad > 0 {
		b.metrics.errors.WithLabelValues(opUnsealing).Add(float64(bad))
	}
	if live, ok := b.localRequests().(pop.LiveCalls); ok {
		pops = mergeLocal(pops, live.Pops(agent.ID), b.localRequests().Knows)
	}
	if agent.Name == "" {
		agent.Name = b.AgentName(agent.ID)
	}
	snap, err := pop.Encode(pop.Message{Type: pop.TypeSnapshot, At: time.Now(), Data: pop.SnapshotData{
		Agent: pop.AgentRef{ID: agent.ID, Name: agent.Name},
		Pops:  pops,
	}})
	if err != nil {
		return pop.Encoded{}, fmt.Errorf("redisbus: snapshot: %w", err)
	}
	return snap, nil
}

// watch adds a reference to agent; it reports whether the agent is new to
// the reader. degraded: the browser got no snapshot from Redis.
func (b *Bus) watch(agent string, keys agentKeys, pos uint64, degraded bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.watching[agent]
	if w != nil {
		w.refs++
		if degraded && !w.degraded {
			w.degraded = true
			b.degraded++
		}
		return false
	}
	b.watching[agent] = &watch{keys: keys, pos: pos, refs: 1, degraded: degraded}
	b.byTag[keys.tag] = agent
	b.newsChanged(keys.tag) // subscribe to its news
	if degraded {
		b.degraded++
	}
	return true
}

// Close implements pop.SharedStream.
func (b *Bus) Close(agentID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.watching[agentID]
	if w == nil {
		return
	}
	if w.refs--; w.refs > 0 {
		return
	}
	if w.degraded {
		b.degraded--
	}
	delete(b.watching, agentID)
	delete(b.byTag, w.keys.tag)
	delete(b.active, agentID)
	b.newsChanged(w.keys.tag) // unsubscribe from its news
}
