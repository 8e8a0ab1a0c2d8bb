// Package rediscache keeps the aggregator's source results in Redis, so that
// several screenpop daemons share one cache: a caller who rings back within
// minutes, on whichever daemon, gets a card without asking accounting again.
package rediscache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/aggregator"
)

// ClientConfig configures NewClient: the one Redis connection pool a daemon
// shares between the card cache and the pop bus. Exactly one of Addr,
// MasterName (with SentinelAddrs) and ClusterAddrs says where Redis is.
type ClientConfig struct {
	// Addr is the Redis server's host:port.
	Addr     string
	Password string // from the environment, never from the YAML file
	DB       int    // not on a cluster, which has database 0 only
	// MasterName and SentinelAddrs find the primary through Redis
	// Sentinel, which promotes a replica when the primary dies: the
	// client asks the sentinels where the primary is, and asks again
	// after a failover. SentinelPassword is the sentinels' own password,
	// if they have one.
	MasterName       string
	SentinelAddrs    []string
	SentinelPassword string
	// ClusterAddrs are host:ports of Redis Cluster nodes: the client
	// learns the others and which master serves which slots from them,
	// and follows the cluster's failovers and reshardings (MOVED, ASK).
	// One is enough; more let the client start while some are down.
	ClusterAddrs []string
	// DialTimeout and ReadTimeout are short on purpose (defaults 500ms and
	// 300ms): when Redis is down, a card must fall back to asking the
	// sources well inside its two-second budget, not wait for TCP. The pop
	// bus tells a slow Redis from a dead one above that (its DownAfter).
	DialTimeout time.Duration
	ReadTimeout time.Duration
}

// NewClient returns a go-redis client with screenpop's timeouts: a plain
// client, with MasterName one that follows Sentinel's failovers, with
// ClusterAddrs a *redis.ClusterClient. It does no I/O: connections are
// opened, and reopened after Redis restarts or fails over, on use.
func NewClient(cfg ClientConfig) (redis.UniversalClient, error) {
	cluster := len(cfg.ClusterAddrs) > 0
	switch {
	case cluster && (cfg.Addr != "" || cfg.MasterName != "" || len(cfg.SentinelAddrs) > 0):
		return nil, errors.New("rediscache: cluster addresses exclude an address, a master name and sentinel addresses")
	case cluster && cfg.DB != 0:
		return nil, fmt.Errorf("rediscache: database %d: a Redis Cluster has database 0 only", cfg.DB)
	case !cluster && cfg.MasterName == "" && cfg.Addr == "":
		return nil, errors.New("rediscache: address is required (or a master name and sentinel addresses, or cluster addresses)")
	case cfg.MasterName != "" && len(cfg.SentinelAddrs) == 0:
		return nil, errors.New("rediscache: master name " + cfg.MasterName + " needs sentinel addresses")
	case cfg.MasterName == "" && len(cfg.SentinelAddrs) > 0:
		return nil, errors.New("rediscache: sentinel addresses need the master name the sentinels monitor")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 500 * time.Millisecond
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 300 * time.Millisecond
	}
	addrs := cfg.SentinelAddrs
	switch {
	case cluster:
		addrs = cfg.ClusterAddrs
	case cfg.MasterName == "":
		addrs = []string{cfg.Addr}
	}
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:            addrs,
		IsClusterMode:    cluster,
		MasterName:       cfg.MasterName,
		SentinelPassword: cfg.SentinelPassword,
		Password:         cfg.Password,
		DB:               cfg.DB,
		DialTimeout:      cfg.DialTimeout,
		ReadTimeout:      cfg.ReadTimeout,
		WriteTimeout:     cfg.ReadTimeout,
		// One retry at most: a retry loop against a dead Redis is time
		// taken from the card.
		MaxRetries:      1,
		MinRetryBackoff: 10 * time.Millisecond,
		MaxRetryBackoff: 50 * time.Millisecond,
		// Identify the connection as screenpop's in CLIENT LIST.
		ClientName: "screenpop",
	}), nil
}

// Config configures New.
type Config struct {
	Client redis.UniversalClient // required; see NewClient
	// KeyPrefix starts every key this cache writes ("screenpop:" by
	// default), so that daemons of another site or a test can share the
	// Redis.
	KeyPrefix string
	// MaxTTL caps the TTL of every entry, whatever the source asked for:
	// cached cards are personal data and must not outlive it. Default 1h.
	MaxTTL time.Duration
	// Keys, when set, seal values with AES-256-GCM before they reach Redis
	// (a dump or a replica holds no readable customer data); the keys come
	// from the environment (ParseKeyring). nil: values stored as they are.
	Keys *Keyring
	// NearEntries bounds the near cache: values read from Redis kept in
	// this daemon's memory until anyone changes them (see near.go and the
	// README). 0: DefaultNearEntries; negative: no near cache. Always off
	// on a Redis Cluster.
	NearEntries int
	// NearMaxAge bounds how long the near cache keeps a value
	// (DefaultNearMaxAge when 0): a change made outside screenpop, which
	// publishes no invalidation, is seen within it.
	NearMaxAge time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Cache implements aggregator.Cache on Redis.
type Cache struct {
	client  redis.UniversalClient
	prefix  string
	maxTTL  time.Duration
	keys    *Keyring // nil: stored in clear
	logger  *slog.Logger
	metrics *metrics

	near        *near  // nil: off
	channel     string // where changed keys are published
	listenBlock time.Duration
	retry       time.Duration
	unheard     bool // Run's: the outage of the subscription was logged
}

var _ aggregator.BatchCache = (*Cache)(nil)

// DefaultKeyPrefix is the KeyPrefix New uses when none is configured.
const DefaultKeyPrefix = "screenpop:"

// New checks cfg and returns a Cache. It does no I/O.
func New(cfg Config) (*Cache, error) {
	if cfg.Client == nil {
		return nil, errors.New("rediscache: Client is required")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.MaxTTL < 0 {
		return nil, errors.New("rediscache: max TTL must not be negative")
	}
	if cfg.MaxTTL == 0 {
		cfg.MaxTTL = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Cache{client: cfg.Client, prefix: cfg.KeyPrefix, maxTTL: cfg.MaxTTL, keys: cfg.Keys, logger: cfg.Logger,
		channel: cfg.KeyPrefix + "cache-invalidate", listenBlock: 2 * time.Second, retry: time.Second}
	if _, cluster := cfg.Client.(*redis.ClusterClient); !cluster && cfg.NearEntries >= 0 {
		if cfg.NearEntries == 0 {
			cfg.NearEntries = DefaultNearEntries
		}
		if cfg.NearMaxAge <= 0 {
			cfg.NearMaxAge = DefaultNearMaxAge
		}
		c.near = newNear(cfg.NearEntries, cfg.NearMaxAge)
	}
	m, err := newMetrics(cfg.Registerer, c.near)
	if err != nil {
		return nil, fmt.Errorf("rediscache metrics: %w", err)
	}
	c.metrics = m
	return c, nil
}

// Get implements aggregator.Cache. A missing key is aggregator.ErrCacheMiss;
// any other error (Redis down) comes back fast, and the aggregator asks
// the source instead. A value the near cache holds costs no round trip.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	values, errs := c.GetMany(ctx, []string{key})
	return values[0], errs[0]
}

// GetMany implements aggregator.BatchCache: the values of keys in one
// round trip, a pipeline of GETs rather than one MGET, which a Redis
// Cluster refuses for keys in different slots (go-redis sends each master
// its part of the pipeline at once). Each key is counted and judged as Get
// judges it: errs[i] is nil (values[i] holds the value),
// aggregator.ErrCacheMiss, or the error of its GET. Keys the near cache
// holds are not asked for; with the near cache on, each GET goes with a
// PTTL, how long the near cache may keep the value.
func (c *Cache) GetMany(ctx context.Context, keys []string) (values [][]byte, errs []error) {
	if c.near == nil {
		return c.getFromRedis(ctx, keys)
	}
	now := time.Now()
	var asked []string
	var at []int // where each asked key's answer goes
	for i, k := range keys {
		if v, ok := c.near.get(k, now); ok {
			if values == nil {
				values, errs = make([][]byte, len(keys)), make([]error, len(keys))
			}
			values[i] = v
			c.metrics.lookups.WithLabelValues(resultHit).Inc()
			c.metrics.nearHits.Inc()
			continue
		}
		asked = append(asked, k)
		at = append(at, i)
	}
	if values == nil {
		return c.getFromRedis(ctx, keys) // none held here
	}
	if len(asked) > 0 {
		got, gotErrs := c.getFromRedis(ctx, asked)
		for j, i := range at {
			values[i], errs[i] = got[j], gotErrs[j]
		}
	}
	return values, errs
}

// getFromRedis reads keys in one round trip, and keeps what the near
// cache may keep.
func (c *Cache) getFromRedis(ctx context.Context, keys []string) (values [][]byte, errs []error) {
	values, errs = make([][]byte, len(keys)), make([]error, len(keys))
	gen := c.near.begin()
	if len(keys) == 1 && gen == 0 {
		values[0], errs[0] = c.opened(keys[0], c.client.Get(ctx, c.prefix+keys[0]))
		return values, errs
	}
	pipe := c.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	var ttls []*redis.DurationCmd
	if gen != 0 {
		ttls = make([]*redis.DurationCmd, len(keys))
	}
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, c.prefix+k)
		if ttls != nil {
			ttls[i] = pipe.PTTL(ctx, c.prefix+k)
		}
	}
	_, _ = pipe.Exec(ctx) // each command holds its own error
	now := time.Now()
	for i, cmd := range cmds {
		values[i], errs[i] = c.opened(keys[i], cmd)
		if errs[i] == nil && ttls != nil {
			if ttl, err := ttls[i].Result(); err == nil {
				c.near.put(keys[i], append([]byte(nil), values[i]...), ttl, gen, now)
			}
		}
	}
	return values, errs
}

// opened judges the answer of one GET of key: counts it and, when the
// values are sealed, opens it.
func (c *Cache) opened(key string, cmd *redis.StringCmd) ([]byte, error) {
	v, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		c.metrics.lookups.WithLabelValues(resultMiss).Inc()
		return nil, aggregator.ErrCacheMiss
	}
	if err != nil {
		c.metrics.lookups.WithLabelValues(resultError).Inc()
		c.metrics.errors.WithLabelValues(opGet).Inc()
		return nil, fmt.Errorf("rediscache: get: %w", err)
	}
	if c.keys != nil {
		if v, err = c.keys.Open(v, []byte(c.prefix+key)); err != nil {
			// A value sealed with another key (after a key rotation) or
			// tampered with is as good as absent.
			c.metrics.lookups.WithLabelValues(resultMiss).Inc()
			c.metrics.errors.WithLabelValues(opDecrypt).Inc()
			c.logger.Warn("cached value cannot be decrypted; ignored", "err", err)
			return nil, aggregator.ErrCacheMiss
		}
	}
	c.metrics.lookups.WithLabelValues(resultHit).Inc()
	return v, nil
}

// Set implements aggregator.Cache. The TTL is capped by MaxTTL; a TTL of
// zero or less removes the key, as MemoryCache does.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return c.Delete(ctx, key)
	}
	ttl = min(ttl, c.maxTTL)
	if c.keys != nil {
		value = c.keys.Seal(value, []byte(c.prefix+key))
	}
	var err error
	if c.near == nil {
		err = c.client.Set(ctx, c.prefix+key, value, ttl).Err()
	} else {
		// The change and its news as one: whoever hears of it reads the
		// new value.
		_, err = c.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, c.prefix+key, value, ttl)
			p.Publish(ctx, c.channel, key)
			return nil
		})
		c.near.invalidate(key) // whatever the outcome
	}
	if err != nil {
		c.metrics.errors.WithLabelValues(opSet).Inc()
		return fmt.Errorf("rediscache: set: %w", err)
	}
	return nil
}

// Delete implements aggregator.Cache. Each key has its own DEL, in one
// pipeline: on a Redis Cluster the keys of an eviction are in different
// slots, which one DEL refuses (CROSSSLOT), and the pipeline goes to each
// master at once. Elsewhere the DELs and the news of them, for the near
// caches, are one MULTI.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	var pipe redis.Pipeliner
	if c.near == nil {
		pipe = c.client.Pipeline()
	} else {
		pipe = c.client.TxPipeline()
	}
	for _, k := range keys {
		pipe.Del(ctx, c.prefix+k)
	}
	if c.near != nil {
		pipe.Publish(ctx, c.channel, strings.Join(keys, invalidationSep))
	}
	_, err := pipe.Exec(ctx)
	c.near.invalidate(keys...)
	if err != nil {
		c.metrics.errors.WithLabelValues(opDelete).Inc()
		return fmt.Errorf("rediscache: delete: %w", err)
	}
	return nil
}
