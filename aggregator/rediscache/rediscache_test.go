package rediscache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/aggregator"
)

// newTestCache returns a cache on the real Redis under a prefix of its own,
// whose keys are removed when the test ends.
func newTestCache(t *testing.T, mod func(*Config)) (*Cache, redis.UniversalClient, string) {
	t.Helper()
	client, err := NewClient(ClientConfig{Addr: "127.0.0.1:6379"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Fatalf("the tests need Redis on 127.0.0.1:6379: %v", err)
	}
	prefix := fmt.Sprintf("test:rediscache:%s:%d:", t.Name(), time.Now().UnixNano())
	t.Cleanup(func() {
		keys, _ := client.Keys(ctx, prefix+"*").Result()
		if len(keys) > 0 {
			client.Del(ctx, keys...)
		}
		client.Close()
	})
	cfg := Config{Client: client, KeyPrefix: prefix}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, client, prefix
}

func TestCacheRoundTrip(t *testing.T) {
	ctx := context.Background()
	c, client, prefix := newTestCache(t, nil)
	if _, err := c.Get(ctx, "k1"); !errors.Is(err, aggregator.ErrCacheMiss) {
		t.Fatalf("Get of an absent key: err = %v, want ErrCacheMiss", err)
	}
	if err := c.Set(ctx, "k1", []byte(`{"balance":12}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "k1")
	if err != nil || string(got) != `{"balance":12}` {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if raw, _ := client.Get(ctx, prefix+"k1").Result(); raw != `{"balance":12}` {
		t.Fatalf("without a key the value is stored as is under the prefix; got %q", raw)
	}
	if err := c.Delete(ctx, "k1", "absent"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "k1"); !errors.Is(err, aggregator.ErrCacheMiss) {
		t.Fatalf("Get after Delete: err = %v, want ErrCacheMiss", err)
	}
	// A TTL of zero removes, as MemoryCache does.
	c.Set(ctx, "k2", []byte("x"), time.Minute)
	c.Set(ctx, "k2", []byte("y"), 0)
	if _, err := c.Get(ctx, "k2"); !errors.Is(err, aggregator.ErrCacheMiss) {
		t.Fatalf("Set with ttl 0 must remove: err = %v", err)
	}
}

func TestCacheTTLCapped(t *testing.T) {
	ctx := context.Background()
	c, client, prefix := newTestCache(t, func(cfg *Config) { cfg.MaxTTL = 30 * time.Second })
	if err := c.Set(ctx, "long", []byte("v"), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	ttl, err := client.PTTL(ctx, prefix+"long").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 30*time.Second {
		t.Fatalf("TTL in Redis = %s, want capped at 30s", ttl)
	}
	c.Set(ctx, "short", []byte("v"), 5*time.Second)
	if ttl, _ := client.PTTL(ctx, prefix+"short").Result(); ttl <= 0 || ttl > 5*time.Second {
		t.Fatalf("a TTL under the cap is kept; got %s", ttl)
	}
}

func TestCacheEncryption(t *testing.T) {
	ctx := context.Background()
	keys, err := NewKeyring(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	c, client, prefix := newTestCache(t, func(cfg *Config) { cfg.Keys = keys })
	secret := []byte(`{"name":"ACME Logistics GmbH","phone":"+4930123456"}`)
	if err := c.Set(ctx, "card", secret, time.Minute); err != nil {
		t.Fatal(err)
	}
	raw, err := client.Get(ctx, prefix+"card").Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("ACME")) || bytes.Contains(raw, []byte("4930123456")) {
		t.Fatalf("value stored in clear: %q", raw)
	}
	got, err := c.Get(ctx, "card")
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Get = %q, %v", got, err)
	}
	// The same ciphertext under another key does not open: values are bound
	// to their key.
	client.Set(ctx, prefix+"other", raw, time.Minute)
	if _, err := c.Get(ctx, "other"); !errors.Is(err, aggregator.ErrCacheMiss) {
		t.Fatalf("moved ciphertext: err = %v, want ErrCacheMiss", err)
	}
	// Another key (a rotation) reads nothing, rather than garbage.
	otherKeys, _ := NewKeyring(bytes.Repeat([]byte{8}, 32))
	other, err := New(Config{Client: client, KeyPrefix: prefix, Keys: otherKeys})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Get(ctx, "card"); !errors.Is(err, aggregator.ErrCacheMiss) {
		t.Fatalf("wrong key: err = %v, want ErrCacheMiss", err)
	}
}

func TestNewValidates(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer client.Close()
	for name, cfg := range map[string]Config{
		"no client":    {},
		"negative ttl": {Client: client, MaxTTL: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	for name, cfg := range map[string]ClientConfig{
		"no address":              {},
		"master without sentinel": {MasterName: "screenpop"},
		"sentinels without name":  {SentinelAddrs: []string{"127.0.0.1:26379"}},
		"cluster and address":     {ClusterAddrs: []string{"127.0.0.1:7000"}, Addr: "127.0.0.1:6379"},
		"cluster and sentinel":    {ClusterAddrs: []string{"127.0.0.1:7000"}, MasterName: "screenpop", SentinelAddrs: []string{"127.0.0.1:26379"}},
		"cluster database":        {ClusterAddrs: []string{"127.0.0.1:7000"}, DB: 2},
	} {
		if _, err := NewClient(cfg); err == nil {
			t.Errorf("NewClient %s: accepted", name)
		}
	}
}

// TestCacheRedisDown: with nothing listening, Get fails (not a miss) and
// the failure is counted, so the aggregator asks the source.
func TestCacheRedisDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // a port nobody listens on
	client, _ := NewClient(ClientConfig{Addr: addr})
	defer client.Close()
	reg := prometheus.NewRegistry()
	c, err := New(Config{Client: client, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Get(ctx, "k"); err == nil || errors.Is(err, aggregator.ErrCacheMiss) {
		t.Fatalf("Get with Redis down: err = %v, want a connection error", err)
	}
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); err == nil {
		t.Fatal("Set with Redis down succeeded")
	}
	if n := counterValue(c.metrics.errors.WithLabelValues(opGet)); n != 1 {
		t.Fatalf("get errors = %v, want 1", n)
	}
	if n := counterValue(c.metrics.errors.WithLabelValues(opSet)); n != 1 {
		t.Fatalf("set errors = %v, want 1", n)
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
