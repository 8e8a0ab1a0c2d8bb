package rediscache

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// The near cache keeps, in this daemon's memory, values it read from
// Redis, so that a card read again soon (the same caller ringing back, a
// ring-all, a transfer) costs no round trip to Redis; it drops a key as
// soon as anyone changes or removes it.
//
// Every Set and Delete of this package publishes the keys it changed on
// <prefix>cache-invalidate, in the same MULTI as the change, and every
// daemon listens there (Cache.Run). What it keeps is correct because:
//   - it keeps entries only while its subscription is confirmed and
//     unbroken: a failed read, a reconnection or a resubscription empties
//     it, since what was published meanwhile was not heard;
//   - a value read from Redis is kept only when nothing was invalidated
//     between the moment the read was sent and its answer (gen): the
//     news of a change that overtook the read would otherwise be undone
//     by the older value the read returned;
//   - an entry lives no longer than the key's TTL in Redis (read with it)
//     nor than maxAge: a change made outside screenpop (an operator's DEL
//     or FLUSHALL, which publish nothing) is seen within maxAge.
//
// Redis runs a MULTI's SET and PUBLISH as one, in order: a daemon that
// hears of a change reads the new value, or nothing, afterwards. On a
// Redis Cluster a PUBLISH may reach the listeners through another node
// before the change is made on the key's: the near cache is off there.
type near struct {
	max    int
	maxAge time.Duration

	mu      sync.Mutex
	entries map[string]nearEntry
	gen     uint64 // moves at every invalidation and reset; 0 is never used
	live    bool   // the subscription is confirmed and unbroken since
}

type nearEntry struct {
	value []byte
	until time.Time
}

// Defaults of Config.NearEntries and Config.NearMaxAge.
const (
	DefaultNearEntries = 10000
	DefaultNearMaxAge  = time.Minute
)

func newNear(max int, maxAge time.Duration) *near {
	return &near{max: max, maxAge: maxAge, entries: make(map[string]nearEntry), gen: 1}
}

// get returns a copy of key's value (the caller may keep or change it),
// if it is held and not past its time.
func (n *near) get(key string, now time.Time) ([]byte, bool) {
	if n == nil {
		return nil, false
	}
	n.mu.Lock()
	e, ok := n.entries[key]
	if ok && !now.Before(e.until) {
		delete(n.entries, key)
		ok = false
	}
	n.mu.Unlock()
	if !ok {
		return nil, false
	}
	return append([]byte(nil), e.value...), true
}

// begin is called before a read is sent; put keeps its answer only when
// nothing was invalidated since. 0: not listening, nothing can be kept.
func (n *near) begin() uint64 {
	if n == nil {
		return 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.live {
		return 0
	}
	return n.gen
}

// put keeps value (which it owns from now on) for ttl (the key's
// remaining TTL in Redis), at most maxAge, when gen is still current.
func (n *near) put(key string, value []byte, ttl time.Duration, gen uint64, now time.Time) {
	if n == nil || gen == 0 || ttl <= 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if gen != n.gen || !n.live {
		return
	}
	if _, held := n.entries[key]; !held && len(n.entries) >= n.max {
		n.shrink(now)
	}
	n.entries[key] = nearEntry{value: value, until: now.Add(min(ttl, n.maxAge))}
}

// shrink makes room: the entries past their time go, then others (in
// the map's random order) until a tenth of the room is free.
func (n *near) shrink(now time.Time) {
	for k, e := range n.entries {
		if !now.Before(e.until) {
			delete(n.entries, k)
		}
	}
	for k := range n.entries {
		if len(n.entries) < n.max-n.max/10 {
			break
		}
		delete(n.entries, k)
	}
}

// invalidate drops keys, and keeps no read sent before.
func (n *near) invalidate(keys ...string) {
	if n == nil {
		return
	}
	n.mu.Lock()
	n.gen++
	for _, k := range keys {
		delete(n.entries, k)
	}
	n.mu.Unlock()
}

// reset drops everything and keeps no read sent before; live says
// whether what is published from now on is heard.
func (n *near) reset(live bool) {
	if n == nil {
		return
	}
	n.mu.Lock()
	n.gen++
	clear(n.entries)
	n.live = live
	n.mu.Unlock()
}

func (n *near) size() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.entries)
}

// invalidationSep separates the keys of one published invalidation (the
// aggregator's keys hold no newline).
const invalidationSep = "\n"

// Run keeps the near cache until ctx ends: it listens on the invalidation
// channel and drops the keys published there. Without Run (or on a
// cluster, or with the near cache off) every read goes to Redis.
func (c *Cache) Run(ctx context.Context) error {
	if c.near == nil {
		<-ctx.Done()
		return nil
	}
	for ctx.Err() == nil {
		ps := c.client.Subscribe(ctx, c.channel)
		stop := context.AfterFunc(ctx, func() { ps.Close() })
		c.listen(ctx, ps)
		c.near.reset(false)
		c.metrics.nearLive.Set(0)
		stop()
		ps.Close()
		if ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-time.After(c.retry):
			}
		}
	}
	return nil
}

// listen handles what the subscription ps hears, until it fails or stays
// silent through two pings.
func (c *Cache) listen(ctx context.Context, ps *redis.PubSub) {
	silent := 0
	for ctx.Err() == nil {
		msg, err := ps.ReceiveTimeout(ctx, c.listenBlock)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Silence is no loss (go-redis keeps the connection):
				// a ping tells a quiet channel from a dead connection.
				if silent++; silent > 2 || ps.Ping(ctx) != nil {
					return
				}
				continue
			}
			if ctx.Err() == nil {
				c.metrics.errors.WithLabelValues(opListen).Inc()
				if !c.unheard {
					// Once per outage: Run retries every second.
					c.unheard = true
					c.logger.Warn("near cache: invalidations not heard; every read goes to Redis until subscribed again", "err", err)
				}
			}
			return
		}
		silent = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			// (Re)subscribed: what was published before was not heard.
			c.near.reset(m.Kind == "subscribe")
			if m.Kind == "subscribe" {
				c.metrics.nearLive.Set(1)
				if c.unheard {
					c.unheard = false
					c.logger.Info("near cache: invalidations heard again")
				}
			}
		case *redis.Message:
			c.near.invalidate(strings.Split(m.Payload, invalidationSep)...)
			c.metrics.nearHeard.Inc()
		}
	}
}
