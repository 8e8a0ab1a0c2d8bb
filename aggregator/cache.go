package aggregator

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"time"
)

// Cache keeps source results between calls. The aggregator declares it;
// MemoryCache implements it in-process and a Redis cache can implement it
// for several daemons. Implementations must be safe for concurrent use and
// should honour ctx: a cache that hangs costs the source its time budget.
type Cache interface {
	// Get returns the value stored under key, or ErrCacheMiss.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores value under key for ttl.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// Delete removes keys; absent keys are not an error.
	Delete(ctx context.Context, keys ...string) error
}

// BatchCache is a Cache that reads several keys in one round trip (a
// shared cache such as Redis). When the cache has it, a card reads the
// entries of all the sources it can look up at once in one batch, before
// asking any of them.
type BatchCache interface {
	Cache
	// GetMany returns what Get would return for each of keys, in their
	// order: errs[i] nil with values[i] the value, ErrCacheMiss, or
	// another error (the key's read failed).
	GetMany(ctx context.Context, keys []string) (values [][]byte, errs []error)
}

// ErrCacheMiss is what Cache.Get returns when nothing is stored under the
// key (or it expired).
var ErrCacheMiss = errors.New("cache miss")

// cacheKeyPrefix starts every key the aggregator writes, so that a shared
// Redis can hold other data beside it.
const cacheKeyPrefix = "screenpop:src:"

// cacheKey names the cached result of one source for one lookup value. The
// value (a phone number, a customer id) is hashed: cache keys show up in
// Redis MONITOR output, key listings and dumps, where a caller's number
// must not. The parameter name is hashed with it so that a source whose
// `needs` changes on reload cannot be served the other parameter's result.
func cacheKey(source, param, value string) string {
	// Built in one allocation: every source of every card has its key.
	var in [64]byte
	sum := sha256.Sum256(append(append(append(in[:0], param...), 0), value...))
	var hexSum [32]byte
	hex.Encode(hexSum[:], sum[:16])
	var b strings.Builder
	b.Grow(len(cacheKeyPrefix) + len(source) + 1 + len(hexSum))
	b.WriteString(cacheKeyPrefix)
	b.WriteString(source)
	b.WriteByte(':')
	b.Write(hexSum[:])
	return b.String()
}

// MemoryCache is an in-process Cache with per-entry TTL and a bound on the
// number of entries. When full, the entry written longest ago goes first:
// with TTLs of minutes that is almost always one about to expire anyway.
type MemoryCache struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*list.Element // of *memoryEntry
	order   *list.List               // oldest write at the front
}

type memoryEntry struct {
	key     string
	value   []byte
	expires time.Time
	// decoded is value as the aggregator read it the first time it was
	// hit (a cacheEntry), so later hits skip decoding JSON: the cache
	// exists to make cards cheaper. Nil until then.
	decoded any
}

// getDecoded returns decode(value) of key, decoding only on the first hit
// of a value; the result is shared by every later hit, so it must be
// treated as read-only. Misses and expiry are as in Get.
func (c *MemoryCache) getDecoded(key string, decode func([]byte) (any, error)) (any, error) {
	c.mu.Lock()
	el, ok := c.entries[key]
	if !ok {
		c.mu.Unlock()
		return nil, ErrCacheMiss
	}
	e := el.Value.(*memoryEntry)
	if !c.now().Before(e.expires) {
		c.remove(el)
		c.mu.Unlock()
		return nil, ErrCacheMiss
	}
	if e.decoded != nil {
		v := e.decoded
		c.mu.Unlock()
		return v, nil
	}
	value := e.value // never changed after Set; a Set replaces the entry
	c.mu.Unlock()
	v, err := decode(value) // outside the lock: other keys are not held up
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if cur, ok := c.entries[key]; ok && cur == el {
		e.decoded = v
	}
	c.mu.Unlock()
	return v, nil
}

var _ Cache = (*MemoryCache)(nil)

// DefaultMemoryCacheEntries is the bound NewMemoryCache uses when given
// zero or less.
const DefaultMemoryCacheEntries = 10000

// NewMemoryCache returns an empty cache holding at most maxEntries entries
// (DefaultMemoryCacheEntries when maxEntries <= 0).
func NewMemoryCache(maxEntries int) *MemoryCache {
	if maxEntries <= 0 {
		maxEntries = DefaultMemoryCacheEntries
	}
	return &MemoryCache{
		max:     maxEntries,
		now:     time.Now,
		entries: make(map[string]*list.Element),
		order:   list.New(),
	}
}

// Get implements Cache.
func (c *MemoryCache) Get(_ context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[key]
	if !ok {
		return nil, ErrCacheMiss
	}
	e := el.Value.(*memoryEntry)
	if !c.now().Before(e.expires) {
		c.remove(el)
		return nil, ErrCacheMiss
	}
	// A copy: the caller may keep or change what it got.
	return append([]byte(nil), e.value...), nil
}

// Set implements Cache. A ttl of zero or less stores nothing and removes
// what was stored.
func (c *MemoryCache) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[key]; ok {
		c.remove(el)
	}
	if ttl <= 0 {
		return nil
	}
	e := &memoryEntry{key: key, value: append([]byte(nil), value...), expires: c.now().Add(ttl)}
	c.entries[key] = c.order.PushBack(e)
	for c.order.Len() > c.max {
		c.remove(c.order.Front())
	}
	return nil
}

// Delete implements Cache.
func (c *MemoryCache) Delete(_ context.Context, keys ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		if el, ok := c.entries[k]; ok {
			c.remove(el)
		}
	}
	return nil
}

// Len returns the number of entries held, expired ones not yet dropped
// included.
func (c *MemoryCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

func (c *MemoryCache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*memoryEntry).key)
	c.order.Remove(el)
}
