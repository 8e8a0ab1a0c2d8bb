package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// failures tells a slow Redis from a dead one: how long operations have
// kept failing, with no success in between.
type failures struct {
	mu    sync.Mutex
	since time.Time // first failure of the current run; zero after a success
	ok    bool      // the last operation succeeded
}

// failed notes a failure; it reports whether it starts a run of them.
func (f *failures) failed(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ok = false
	if f.since.IsZero() {
		f.since = now
		return true
	}
	return false
}

func (f *failures) succeeded() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ok, f.since = true, time.Time{}
}

// failingFor is how long operations have failed without a success.
func (f *failures) failingFor(now time.Time) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() {
		return 0
	}
	return now.Sub(f.since)
}

// healthy reports whether the last operation succeeded.
func (f *failures) healthy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ok
}

// healthLoop probes Redis every HealthInterval and tells the sender.
func (b *Bus) healthLoop(ctx context.Context) {
	t := time.NewTicker(b.cfg.HealthInterval)
	defer t.Stop()
	for {
		if err := b.probe(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			b.failed(opPing, err)
		} else {
			b.link.succeeded()
		}
		b.wake()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe checks that Redis answers, and that it still holds the data set
// this daemon wrote to: each epoch key (dataSets) names the data of one
// server, and the server's run_id the process. A missing epoch key means
// that server lost its data (a restart without persistence, a flush): a
// new one is set, and every daemon puts back what it knows (data_lost).
// Another run_id with the same epoch is a restart with persistence or a
// failover, which may have lost the last writes (new_primary).
func (b *Bus) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	sets, err := b.dataSets(ctx)
	if err != nil {
		return err
	}
	pipe := b.client.Pipeline()
	gets := make([]*redis.StringCmd, len(sets))
	for i, s := range sets {
		gets[i] = pipe.Get(ctx, s.epochKey)
	}
	var info *redis.StringCmd
	if b.cluster == nil {
		info = pipe.Info(ctx, "server")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	servers := make([]string, len(sets))
	if info != nil {
		servers[0] = runID(info.Val())
	} else if err := b.runIDs(ctx, sets, servers); err != nil {
		return err
	}
	epochs := make([]string, len(sets))
	for i, s := range sets {
		epoch, err := gets[i].Result()
		if errors.Is(err, redis.Nil) {
			id := make([]byte, 8)
			rand.Read(id)
			if err := b.client.SetNX(ctx, s.epochKey, hex.EncodeToString(id), 0).Err(); err != nil {
				return fmt.Errorf("set epoch: %w", err)
			}
			epoch, err = b.client.Get(ctx, s.epochKey).Result()
		}
		if err != nil {
			return fmt.Errorf("read epoch: %w", err)
		}
		epochs[i] = epoch
	}
	b.noteEpoch(sets, epochs, servers)
	return nil
}

// dataSet is where one server keeps the bus's data: all of it on one
// Redis (or a Sentinel-managed primary), the slots a master serves on a
// Redis Cluster.
type dataSet struct {
	// epochKey names the server's data: gone, the server lost it. On a
	// cluster it is in a slot the master serves.
	epochKey string
	// server answers INFO with the server's run_id (the bus's client when
	// there is one server).
	server redis.Cmdable
}

// dataSets are the servers the bus's data is spread over: one, or every
// master of a cluster (CLUSTER SLOTS, asked at each probe: a failover or a
// resharding shows at the next). On a cluster each master gets an epoch
// key of its own, so that one master restarted empty is noticed as a
// single Redis restarted empty is. A master that serves no slot holds
// nothing of the bus's.
func (b *Bus) dataSets(ctx context.Context) ([]dataSet, error) {
	if b.cluster == nil {
		return []dataSet{{epochKey: b.epochKey, server: b.client}}, nil
	}
	ranges, err := b.cluster.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("cluster slots: %w", err)
	}
	lowest := map[string]int{} // master -> the lowest slot it serves
	for _, r := range ranges {
		if len(r.Nodes) == 0 {
			continue
		}
		if s, ok := lowest[r.Nodes[0].Addr]; !ok || int(r.Start) < s {
			lowest[r.Nodes[0].Addr] = int(r.Start)
		}
	}
	sets := make([]dataSet, 0, len(lowest))
	for _, slot := range lowest {
		key := b.cfg.KeyPrefix + "epoch:{" + slotTag(slot) + "}"
		// The client go-redis routes the key's commands to: the master
		// that holds the epoch key is the one asked for its run_id.
		node, err := b.cluster.MasterForKey(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("cluster master of %s: %w", key, err)
		}
		sets = append(sets, dataSet{epochKey: key, server: node})
	}
	if len(sets) == 0 {
		return nil, errors.New("the cluster serves no slot")
	}
	slices.SortFunc(sets, func(x, y dataSet) int { return strings.Compare(x.epochKey, y.epochKey) })
	return sets, nil
}

// runIDs asks every master of a cluster for its run_id, at once.
func (b *Bus) runIDs(ctx context.Context, sets []dataSet, ids []string) error {
	errs := make([]error, len(sets))
	var wg sync.WaitGroup
	for i, s := range sets {
		wg.Go(func() {
			info, err := s.server.Info(ctx, "server").Result()
			ids[i], errs[i] = runID(info), err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("info: %w", err)
	}
	return nil
}

// noteEpoch compares what Redis says with what this daemon knew, and asks
// for a resync when Redis lost data or is another server.
func (b *Bus) noteEpoch(sets []dataSet, epochs, servers []string) {
	keys := make([]string, len(sets))
	for i, s := range sets {
		keys[i] = s.epochKey
	}
	epoch, server := joinEpoch(keys, epochs), strings.Join(servers, " ")
	b.emu.Lock()
	defer b.emu.Unlock()
	switch {
	case b.epoch == "":
		// First contact: whatever Redis holds is this daemon's starting
		// point; it has no calls to put back yet.
	case epoch != b.epoch:
		b.askResync(causeDataLost)
	case server != "" && b.serverID != "" && server != b.serverID:
		b.askResync(causeNewPrimary)
	}
	b.epoch, b.epochKeys = epoch, keys
	if server != "" {
		b.serverID = server
	}
}

// joinEpoch names the data sets the epoch keys hold: values[i] is keys[i]'s
// ("" when it is missing). A cluster whose masters changed has another
// name even when none lost data: one resync too many, nothing worse.
func joinEpoch(keys, values []string) string {
	var sb strings.Builder
	for i, k := range keys {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(k)
		sb.WriteByte('=')
		sb.WriteString(values[i])
	}
	return sb.String()
}

// knownEpoch is the data set this daemon last saw, and the epoch keys
// that name it (none before the first probe).
func (b *Bus) knownEpoch() (keys []string, epoch string) {
	b.emu.Lock()
	defer b.emu.Unlock()
	return b.epochKeys, b.epoch
}

// askResync has the sender put back what this daemon knows; until then
// snapshots are not served from Redis.
func (b *Bus) askResync(cause string) {
	b.resync.Store(&cause)
	b.wake()
}

func runID(info string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(line, "run_id:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
