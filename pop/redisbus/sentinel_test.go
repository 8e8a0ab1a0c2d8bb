package redisbus

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/aggregator/rediscache"
)

// startSentinel runs a Redis Sentinel (redis-server --sentinel) watching
// the primary at primaryPort under the name sp.
func startSentinel(t *testing.T, primaryPort string) string {
	t.Helper()
	port := freePort(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor sp 127.0.0.1 %s 2\n"+
		"sentinel down-after-milliseconds sp 1000\nsentinel failover-timeout sp 4000\nsentinel parallel-syncs sp 1\n", port, dir, primaryPort)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/redis-server", conf, "--sentinel")
	if err := cmd.Start(); err != nil {
		t.Fatalf("redis-server --sentinel: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	c := redis.NewSentinelClient(&redis.Options{Addr: "127.0.0.1:" + port})
	defer c.Close()
	waitFor(t, "sentinel to start", func() bool { return c.Ping(context.Background()).Err() == nil })
	return "127.0.0.1:" + port
}

// TestSentinelFailover: a primary, a replica and three sentinels; the
// daemons find the primary through the sentinels (rediscache.NewClient
// with MasterName). The primary is killed mid-drill: the sentinels
// promote the replica, the daemons follow it, and every browser still
// gets every ring.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("a failover takes seconds")
	}
	primary := startRedisServer(t)
	replica := startRedisServer(t, "--replicaof", "127.0.0.1", primary.port)
	rc := redis.NewClient(&redis.Options{Addr: replica.addr()})
	defer rc.Close()
	waitFor(t, "the replica to sync", func() bool {
		info, _ := rc.Info(context.Background(), "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	})
	sentinels := []string{startSentinel(t, primary.port), startSentinel(t, primary.port), startSentinel(t, primary.port)}
	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinels[0]})
	defer sc.Close()
	waitFor(t, "the sentinels to know each other and the replica", func() bool {
		m, err := sc.Master(context.Background(), "sp").Result()
		return err == nil && m["num-other-sentinels"] == "2" && m["num-slaves"] == "1"
	})
	client := func() redis.UniversalClient {
		c, err := rediscache.NewClient(rediscache.ClientConfig{MasterName: "sp", SentinelAddrs: sentinels,
			DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The card cache's near cache, on the same sentinels, holds a value
	// read from the old primary.
	nearReg := prometheus.NewRegistry()
	nc := client()
	defer nc.Close()
	cache, err := rediscache.New(rediscache.Config{Client: nc, KeyPrefix: "sp-near:", Registerer: nearReg})
	if err != nil {
		t.Fatal(err)
	}
	nctx, stopNear := context.WithCancel(context.Background())
	nearDone := make(chan struct{})
	go func() { defer close(nearDone); cache.Run(nctx) }()
	defer func() { stopNear(); <-nearDone }()
	near := func(name string) float64 {
		mfs, err := nearReg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				m := mf.GetMetric()[0]
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	}
	nearSet := func(value string) {
		heard := near("screenpop_rediscache_near_invalidations_total")
		if err := cache.Set(context.Background(), "card", []byte(value), time.Minute); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the near cache to hear the change", func() bool {
			return near("screenpop_rediscache_near_invalidations_total") > heard
		})
	}
	waitFor(t, "the near cache to listen", func() bool { return near("screenpop_rediscache_near_listening") == 1 })
	nearSet("before")
	if v, err := cache.Get(context.Background(), "card"); err != nil || string(v) != "before" || near("screenpop_rediscache_near_entries") != 1 {
		t.Fatalf("near cache before the failover: %q %v, %v entries", v, err, near("screenpop_rediscache_near_entries"))
	}

	var redisBefore float64
	a, b := runDrillOn(t, "", client, time.Second, 2*time.Second, func(a, _ *daemon) {
		redisBefore = counter(a.bus.metrics.delivered.WithLabelValues(pathRedis))
		primary.kill()
		deadline := time.Now().Add(30 * time.Second)
		for {
			addr, err := sc.GetMasterAddrByName(context.Background(), "sp").Result()
			if err == nil && len(addr) == 2 && addr[1] == replica.port {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("the sentinels did not promote the replica: %v %v", addr, err)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if after := counter(a.bus.metrics.delivered.WithLabelValues(pathRedis)); after <= redisBefore {
		t.Errorf("daemon a appended nothing to the new primary (%v before the failover, %v after)", redisBefore, after)
	}
	for name, d := range map[string]*daemon{"a": a, "b": b} {
		n := counter(d.bus.metrics.resyncs.WithLabelValues(causeNewPrimary)) + counter(d.bus.metrics.resyncs.WithLabelValues(causeRecovered))
		if n == 0 {
			t.Errorf("daemon %s never resynced with the new primary", name)
		}
	}

	// The near cache forgot what it read from the old primary (its
	// subscription broke), listens on the new one, and reads what the new
	// primary holds, not the value it kept.
	waitFor(t, "the near cache to listen on the new primary", func() bool { return near("screenpop_rediscache_near_listening") == 1 })
	if n := near("screenpop_rediscache_near_entries"); n != 0 {
		t.Errorf("near cache after the failover: %v entries kept from the old primary", n)
	}
	np := redis.NewClient(&redis.Options{Addr: replica.addr()})
	defer np.Close()
	if err := np.Set(context.Background(), "sp-near:card", "changed on the new primary", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := cache.Get(context.Background(), "card"); err != nil || string(v) != "changed on the new primary" {
		t.Errorf("near cache after the failover: Get = %q, %v", v, err)
	}
	nearSet("after") // its invalidations are heard through the new primary
	if v, err := cache.Get(context.Background(), "card"); err != nil || string(v) != "after" {
		t.Errorf("near cache after the failover: Get = %q, %v; want after", v, err)
	}
}
