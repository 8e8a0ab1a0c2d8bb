// Package rediscache keeps the aggregator's source results in Redis, so that
// several screenpop daemons share one cache: a caller who rings back within
// minutes, on whichever daemon, gets a card without asking accounting again.
package rediscache

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/aggregator"
)

// ClientConfig configures NewClient: the one Redis connection pool a daemon
// shares between the card cache and the pop bus.
type ClientConfig struct {
	Addr     string // host:port; required
	Password string // from the environment, never from the YAML file
	DB       int
	// DialTimeout and ReadTimeout are short on purpose (defaults 500ms and
	// 300ms): when Redis is down, a card must fall back to asking the
	// sources well inside its two-second budget, not wait for TCP.
	DialTimeout time.Duration
	ReadTimeout time.Duration
}

// NewClient returns a go-redis client with screenpop's timeouts. It does no
// I/O: connections are opened, and reopened after Redis restarts, on use.
func NewClient(cfg ClientConfig) (*redis.Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("rediscache: address is required")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 500 * time.Millisecond
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 300 * time.Millisecond
	}
	return redis.NewClient(&redis.Options{
		Addr:         cfg.Addr,
		Password:     cfg.Password,
		DB:           cfg.DB,
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		WriteTimeout: cfg.ReadTimeout,
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
	Client *redis.Client // required; see NewClient
	// KeyPrefix starts every key this cache writes ("screenpop:" by
	// default), so that daemons of another site or a test can share the
	// Redis.
	KeyPrefix string
	// MaxTTL caps the TTL of every entry, whatever the source asked for:
	// cached cards are personal data and must not outlive it. Default 1h.
	MaxTTL time.Duration
	// EncryptionKey, when set, must be 32 bytes: values are sealed with
	// AES-256-GCM before they reach Redis (a dump or a replica holds no
	// readable customer data). The key comes from the environment.
	EncryptionKey []byte
	Logger        *slog.Logger
	Registerer    prometheus.Registerer
}

// Cache implements aggregator.Cache on Redis.
type Cache struct {
	client  *redis.Client
	prefix  string
	maxTTL  time.Duration
	aead    cipher.AEAD // nil: stored in clear
	logger  *slog.Logger
	metrics *metrics
}

var _ aggregator.Cache = (*Cache)(nil)

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
	c := &Cache{client: cfg.Client, prefix: cfg.KeyPrefix, maxTTL: cfg.MaxTTL, logger: cfg.Logger}
	if cfg.EncryptionKey != nil {
		if len(cfg.EncryptionKey) != 32 {
			return nil, fmt.Errorf("rediscache: encryption key must be 32 bytes (AES-256), got %d", len(cfg.EncryptionKey))
		}
		block, err := aes.NewCipher(cfg.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("rediscache: %w", err)
		}
		if c.aead, err = cipher.NewGCM(block); err != nil {
			return nil, fmt.Errorf("rediscache: %w", err)
		}
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("rediscache metrics: %w", err)
	}
	c.metrics = m
	return c, nil
}

// Get implements aggregator.Cache. A missing key is aggregator.ErrCacheMiss;
// any other error (Redis down) comes back fast, and the aggregator asks
// the source instead.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := c.client.Get(ctx, c.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		c.metrics.lookups.WithLabelValues(resultMiss).Inc()
		return nil, aggregator.ErrCacheMiss
	}
	if err != nil {
		c.metrics.lookups.WithLabelValues(resultError).Inc()
		c.metrics.errors.WithLabelValues(opGet).Inc()
		return nil, fmt.Errorf("rediscache: get: %w", err)
	}
	if c.aead != nil {
		if v, err = c.open(key, v); err != nil {
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
	if c.aead != nil {
		value = c.seal(key, value)
	}
	if err := c.client.Set(ctx, c.prefix+key, value, ttl).Err(); err != nil {
		c.metrics.errors.WithLabelValues(opSet).Inc()
		return fmt.Errorf("rediscache: set: %w", err)
	}
	return nil
}

// Delete implements aggregator.Cache.
func (c *Cache) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = c.prefix + k
	}
	if err := c.client.Del(ctx, full...).Err(); err != nil {
		c.metrics.errors.WithLabelValues(opDelete).Inc()
		return fmt.Errorf("rediscache: delete: %w", err)
	}
	return nil
}

// seal encrypts value with a fresh nonce, bound to key as additional data:
// a value copied under another key does not decrypt.
func (c *Cache) seal(key string, value []byte) []byte {
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(value)+c.aead.Overhead())
	rand.Read(nonce) // never fails (crypto/rand documents it)
	return c.aead.Seal(nonce, nonce, value, []byte(key))
}

func (c *Cache) open(key string, sealed []byte) ([]byte, error) {
	n := c.aead.NonceSize()
	if len(sealed) < n+c.aead.Overhead() {
		return nil, errors.New("value too short to be sealed")
	}
	return c.aead.Open(nil, sealed[:n], sealed[n:], []byte(key))
}
