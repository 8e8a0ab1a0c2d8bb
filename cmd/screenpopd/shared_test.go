package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/configs"
)

const testRedis = "127.0.0.1:6379"

// Two daemons share one Redis: daemon A sees the calls (demo generator),
// the agent's browser is connected to daemon B, and the pop still arrives —
// through the agent's Redis stream.
func TestPopReachesAgentOnAnotherDaemon(t *testing.T) {
	prefix := "screenpop-test-" + randomHex(t) + ":"
	t.Cleanup(func() { cleanRedis(t, prefix) })
	env := map[string]string{
		"SECRET": strings.Repeat("s", 40),
		"CTI":    "cti-token-0123456789",
	}
	getenv := func(k string) string { return env[k] }

	mk := func(telephony string) *Main {
		return runMain(t, daemonConfig(t, prefix, telephony), Options{Env: getenv, Stderr: io.Discard})
	}
	b := mk(`[{name: cti, type: http, tokens_env: CTI}]`)
	c := dialAgent(t, b, "1001")
	// Only now start the daemon that sees calls, so the first pop for 1001
	// is one the browser on B must receive.
	mk(`[{name: demo, type: demo, interval: 100ms, agents: ['1001'], ring: 2s, talk: 1s, seed: 3}]`)

	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		var env envelope
		if err := c.ReadJSON(&env); err != nil {
			t.Fatalf("no pop from daemon A reached the browser on daemon B: %v", err)
		}
		if env.Type == "pop" && strings.HasPrefix(env.CallID, "demo/demo-") {
			var data struct {
				Card json.RawMessage `json:"card"`
			}
			if err := json.Unmarshal(env.Data, &data); err != nil || len(data.Card) == 0 {
				t.Fatalf("pop without a card: %s", env.Data)
			}
			break
		}
	}
	body := get(t, "http://"+b.Addr().String()+"/readyz", 200)
	if !strings.Contains(body, "redis: ok") {
		t.Errorf("/readyz on B does not report Redis: %q", body)
	}
}

// Every configuration shipped in configs/ passes `config check`, so an
// example IT copies is known to load.
func TestShippedConfigsPassCheck(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("shipped configurations: %v %v", files, err)
	}
	env := map[string]string{
		"SCREENPOP_AUTH_SECRET": strings.Repeat("x", 40),
		"SCREENPOP_CTI_TOKENS":  "cti-token-0123456789",
		"SCREENPOP_DEMO_DSN":    "postgres://postgres@127.0.0.1:5432/test",
		"SCREENPOP_HISTORY_DSN": "postgres://postgres@127.0.0.1:5432/test",
		"SCREENPOP_CACHE_KEY":   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", // as configs/multi-daemon/README.md exports it
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			var out, errOut strings.Builder
			if err := run(context.Background(), []string{"config", "check", "-config", f}, &out, &errOut, func(k string) string { return env[k] }); err != nil {
				t.Errorf("config check %s failed:\n%s", f, errOut.String())
			}
		})
	}
}

// daemonConfig is the demo configuration for a daemon of a test: a free
// port, agents signed in with tokens of the secret in SECRET, the
// telephony entries given (YAML), and, with a key prefix, a shared Redis.
func daemonConfig(t *testing.T, prefix, telephony string) *configs.Config {
	t.Helper()
	cfg, err := configs.Demo()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Auth.SecretEnv = "SECRET"
	cfg.Auth.DemoLinks = false
	if prefix != "" {
		cfg.Redis = &configs.Redis{Address: testRedis, KeyPrefix: prefix, CardTTL: time.Minute}
	}
	var node yaml.Node
	if err := yaml.Unmarshal([]byte(telephony), &node); err != nil {
		t.Fatal(err)
	}
	if err := node.Content[0].Decode(&cfg.Telephony); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func randomHex(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func cleanRedis(t *testing.T, prefix string) {
	c := redis.NewClient(&redis.Options{Addr: testRedis})
	defer c.Close()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}
