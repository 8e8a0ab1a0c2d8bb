package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/historytest"
)

// historyConfig writes the demo configuration with extra blocks (a
// history, a redis) into a folder of its own, beside the demo's data, and
// returns its path.
func historyConfig(t *testing.T, extra string) string {
	t.Helper()
	demo, err := os.ReadFile(filepath.Join("..", "..", "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data, err := filepath.Abs(filepath.Join("..", "..", "configs", "demo"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(data, filepath.Join(dir, "demo")); err != nil {
		t.Fatal(err)
	}
	// The demo's own history block gives way to the test's; a free port.
	text, _, _ := strings.Cut(string(demo), "\nhistory:")
	text = strings.Replace(text, "\nlisten: 127.0.0.1:8080", "\nlisten: 127.0.0.1:0", 1)
	path := filepath.Join(dir, "screenpop.yaml")
	if err := os.WriteFile(path, []byte(text+"\n"+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// screenpopd runs the command line as main does.
func screenpopd(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), args, &stdout, &stderr, func(k string) string { return env[k] })
	return stdout.String() + stderr.String(), err
}

// srcKeys counts the cached source answers under a Redis prefix.
func srcKeys(t *testing.T, prefix string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: testRedis})
	defer c.Close()
	keys, err := c.Keys(context.Background(), prefix+"*src:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// The history commands as IT runs them, on the daemon's configuration:
// db migrate, access-log, and erase, which evicts the person's cached
// answers from the Redis every daemon caches in, through the aggregator.
func TestHistoryCommandsOnTheConfiguration(t *testing.T) {
	dsn := historytest.PostgresSchema(t, historytest.TestDSN)
	prefix := "screenpop-test-" + randomHex(t) + ":"
	t.Cleanup(func() { cleanRedis(t, prefix) })
	env := map[string]string{"HISTORY_DSN": dsn}
	path := historyConfig(t, "history: {type: postgres, dsn_env: HISTORY_DSN}\nredis: {address: "+testRedis+", key_prefix: \""+prefix+"\"}\n")

	out, err := screenpopd(t, env, "db", "migrate", "-config", path, "-status")
	if err != nil || !strings.Contains(out, "version 0 of 2, 2 migration(s) pending") {
		t.Fatalf("db migrate -status: %q, %v", out, err)
	}
	if out, err := screenpopd(t, env, "db", "migrate", "-config", path); err != nil || !strings.Contains(out, "up 00001_history.sql") {
		t.Fatalf("db migrate: %q, %v", out, err)
	}
	historyWithEntries(t, dsn)

	// A card of C-10002 (Hoffmann Logistik) caches its answers in Redis.
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMain(cfg, Options{Env: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// The daemon's near cache listens, as in Run.
	nctx, stopNear := context.WithCancel(context.Background())
	nearDone := make(chan struct{})
	go func() { defer close(nearDone); m.rcache.Run(nctx) }()
	defer func() { stopNear(); <-nearDone }()
	near := func(name string, want func(float64) bool) func() error {
		return func() error {
			if v := metricValue(t, m, name); !want(v) {
				return fmt.Errorf("%s = %v", name, v)
			}
			return nil
		}
	}
	waitUntilOK(t, "the near cache listens", near("screenpop_rediscache_near_listening", func(v float64) bool { return v == 1 }))
	build := func() screenpop.Card {
		return m.agg.Build(context.Background(), screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "cli-1", Caller: screenpop.Caller{Number: "+49403456789"}, At: time.Now()})
	}
	card := build()
	if card.Customer == nil || card.Customer.ID != "C-10002" {
		t.Fatalf("card of %+v", card.Customer)
	}
	if n := srcKeys(t, prefix); n == 0 {
		t.Fatal("nothing cached in Redis")
	}
	// Cards read again keep the answers in the daemon's memory too.
	waitUntilOK(t, "the answers in the near cache", func() error {
		build()
		return near("screenpop_rediscache_near_entries", func(v float64) bool { return v > 0 })()
	})

	out, err = screenpopd(t, env, "erase", "-config", path, "-customer", "C-10002", "-by", "DPO ticket 4711", "-yes")
	if err != nil || out != "erased 1 call(s) and 0 note(s) of customer C-10002; the access log records the erasure\ncached source answers evicted\n" {
		t.Fatalf("erase: %q, %v", out, err)
	}
	if n := srcKeys(t, prefix); n != 0 {
		t.Errorf("%d cached answers left in Redis after the erasure", n)
	}
	// The erasure, from another process, reached the running daemon's
	// memory: once the daemon heard a marker published after it (Redis
	// delivers in order), it holds none of the person's answers.
	heard := metricValue(t, m, "screenpop_rediscache_near_invalidations_total")
	marker := redis.NewClient(&redis.Options{Addr: testRedis})
	defer marker.Close()
	if err := marker.Publish(context.Background(), prefix+"cache-invalidate", "test-marker").Err(); err != nil {
		t.Fatal(err)
	}
	waitUntilOK(t, "the marker heard", func() error {
		if v := metricValue(t, m, "screenpop_rediscache_near_invalidations_total"); v == heard {
			return fmt.Errorf("invalidations heard: %v", v)
		}
		return nil
	})
	if err := near("screenpop_rediscache_near_entries", func(v float64) bool { return v == 0 })(); err != nil {
		t.Errorf("after the erasure: %v", err)
	}

	out, err = screenpopd(t, env, "access-log", "-customer", "C-10002", "-json", "-config="+path)
	if err != nil {
		t.Fatalf("access-log: %v\n%s", err, out)
	}
	var entries []history.AccessEntry
	if err := json.Unmarshal([]byte(out), &entries); err != nil || len(entries) != 3 || entries[0].Action != history.ActionErase || entries[0].Agent != "DPO ticket 4711" {
		t.Fatalf("access log after the erasure: %+v, %v\n%s", entries, err, out)
	}

	// The demo's history is in memory: nothing to read or erase outside it.
	if _, err := screenpopd(t, env, "access-log", "-customer", "C-10002"); err == nil || !strings.Contains(err.Error(), "not in PostgreSQL") {
		t.Errorf("access-log on the demo: %v", err)
	}
	if _, err := screenpopd(t, nil, "erase", "-config", path, "-customer", "C-1", "-by", "x", "-yes"); err == nil || !strings.Contains(err.Error(), "HISTORY_DSN is not set") {
		t.Errorf("erase without the DSN: %v", err)
	}
	if _, err := screenpopd(t, env, "db", "status"); err == nil || !strings.Contains(err.Error(), "usage: screenpopd db migrate") {
		t.Errorf("db status: %v", err)
	}
	if out, _ := screenpopd(t, env, "help"); !strings.Contains(out, "screenpopd db migrate") || !strings.Contains(out, "screenpopd access-log") || !strings.Contains(out, "screenpopd erase") {
		t.Errorf("usage: %s", out)
	}
}

// Without Redis each daemon caches in its own process: erase asks the
// running daemon to evict, through its eviction API.
func TestEraseEvictsInTheRunningDaemon(t *testing.T) {
	dsn := historytest.PostgresSchema(t, historytest.TestDSN)
	env := map[string]string{"HISTORY_DSN": dsn, "EVICT_TOKENS": testEvictToken}
	path := historyConfig(t, "history: {type: postgres, dsn_env: HISTORY_DSN}\napi: {evict_tokens_env: EVICT_TOKENS}\n")
	cfg, err := configs.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	m := runMain(t, cfg, Options{Env: func(k string) string { return env[k] }})
	waitUntilOK(t, "the history migrated", func() error {
		if _, body := readyz(t, m); !strings.Contains(body, "history (postgres): ok") {
			return errors.New(body)
		}
		return nil
	})
	// The command reads where the daemon is from the configuration.
	if err := os.WriteFile(path, append(must(os.ReadFile(path)), []byte("public_url: http://"+m.Addr().String()+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	before := evictions(t, m)
	out, err := screenpopd(t, env, "erase", "-config", path, "-phone", "+49403456789", "-by", "dpo", "-yes")
	if err != nil || !strings.HasSuffix(out, "cached source answers evicted\n") {
		t.Fatalf("erase: %q, %v", out, err)
	}
	if got := evictions(t, m); got != before+1 {
		t.Errorf("evictions in the daemon: %v -> %v", before, got)
	}
}

// Without Redis and without an eviction token, erase cannot reach the
// daemon's in-process cache: it says so, and does not claim the answers
// are evicted.
func TestEraseSaysWhenItCannotEvict(t *testing.T) {
	dsn := historytest.PostgresSchema(t, historytest.TestDSN)
	historyWithEntries(t, dsn)
	env := map[string]string{"HISTORY_DSN": dsn}
	path := historyConfig(t, "history: {type: postgres, dsn_env: HISTORY_DSN}\n")
	out, err := screenpopd(t, env, "erase", "-config", path, "-customer", "C-10002", "-by", "dpo", "-yes")
	if err != nil {
		t.Fatalf("erase: %v\n%s", err, out)
	}
	if strings.Contains(out, evictedLine+"\n") || !strings.Contains(out, "cached source answers NOT evicted: ") || !strings.Contains(out, "set api.evict_tokens_env") {
		t.Errorf("erase without a way to the cache said:\n%s\nwant that the answers were NOT evicted, and how to make it so", out)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func evictions(t *testing.T, m *Main) float64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "screenpop_aggregator_evictions_total" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == "ok" {
					return s.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatal("no screenpop_aggregator_evictions_total")
	return 0
}
