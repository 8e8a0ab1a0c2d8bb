package redisbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
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
// this daemon wrote to: <prefix>epoch names the data set, and the server's
// run_id the process. A missing epoch means Redis lost its data (a restart
// without persistence, a flush): a new one is set, and every daemon puts
// back what it knows (data_lost). Another run_id with the same epoch is a
// restart with persistence or a failover, which may have lost the last
// writes (new_primary).
func (b *Bus) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.OpTimeout)
	defer cancel()
	pipe := b.client.Pipeline()
	get := pipe.Get(ctx, b.epochKey)
	info := pipe.Info(ctx, "server")
	// notify holds no personal data, but nothing in Redis lives forever.
	pipe.PExpire(ctx, b.notifyKey, b.cfg.StreamTTL)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	epoch, err := get.Result()
	if errors.Is(err, redis.Nil) {
		id := make([]byte, 8)
		rand.Read(id)
		if err := b.client.SetNX(ctx, b.epochKey, hex.EncodeToString(id), 0).Err(); err != nil {
			return fmt.Errorf("set epoch: %w", err)
		}
		if epoch, err = b.client.Get(ctx, b.epochKey).Result(); err != nil {
			return fmt.Errorf("read epoch: %w", err)
		}
	}
	b.noteEpoch(epoch, runID(info.Val()))
	return nil
}

// noteEpoch compares what Redis says with what this daemon knew, and asks
// for a resync when Redis lost data or is another server.
func (b *Bus) noteEpoch(epoch, server string) {
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
	b.epoch = epoch
	if server != "" {
		b.serverID = server
	}
}

// knownEpoch is the data set this daemon last saw.
func (b *Bus) knownEpoch() string {
	b.emu.Lock()
	defer b.emu.Unlock()
	return b.epoch
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
