package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/internal/logbuf"
)

// startDemo runs the whole daemon in-process on the embedded demo
// configuration, with calls coming faster than a human would want.
func startDemo(t *testing.T) *Main {
	t.Helper()
	cfg, err := configs.Demo()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	var opts yaml.Node
	if err := yaml.Unmarshal([]byte("{interval: 100ms, agents: ['1001','1002','1003'], ring: 2s, talk: 1s, seed: 7}"), &opts); err != nil {
		t.Fatal(err)
	}
	cfg.Telephony[0].Options = opts.Content[0]
	cfg.API.EvictTokensEnv = "EVICT_TOKENS"
	env := func(k string) string {
		if k == "EVICT_TOKENS" {
			return testEvictToken
		}
		return ""
	}
	return runMain(t, cfg, Options{Env: env, Stdout: &logbuf.Buffer{}, Stderr: io.Discard})
}

// runMain builds and runs a whole daemon for one test, on the address its
// configuration names (use 127.0.0.1:0), and stops it when the test ends.
// It returns once the daemon listens.
func runMain(t *testing.T, cfg *configs.Config, opts Options) *Main {
	t.Helper()
	m, err := NewMain(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		m.Close()
	})
	m.Addr()
	return m
}

const testEvictToken = "evict-token-0123456789"

// A company system tells screenpop a customer's data changed: only with its
// token, and the answer says the card was evicted.
func TestEvictEndpoint(t *testing.T) {
	m := startDemo(t)
	url := "http://" + m.Addr().String() + "/api/v1/evict"
	post := func(token, body string) int {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("", `{"customer_id":"C-20001"}`); code != http.StatusUnauthorized {
		t.Errorf("without token: %d, want 401", code)
	}
	if code := post("wrong-token-0123456789", `{"customer_id":"C-20001"}`); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d, want 401", code)
	}
	if code := post(testEvictToken, `{}`); code != http.StatusBadRequest {
		t.Errorf("empty request: %d, want 400", code)
	}
	if code := post(testEvictToken, `{"customer_id":"C-20001"}`); code != http.StatusNoContent {
		t.Errorf("evict: %d, want 204", code)
	}
}

type envelope struct {
	Type   string          `json:"type"`
	Seq    uint64          `json:"seq"`
	CallID string          `json:"call_id"`
	Data   json.RawMessage `json:"data"`
}

func dialAgent(t *testing.T, m *Main, agent string) *websocket.Conn {
	t.Helper()
	tok, err := m.auth.Issue(agent, "Test Agent", []string{"agent"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	d := websocket.Dialer{Subprotocols: []string{"screenpop.v1", "bearer." + tok}, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial("ws://"+m.Addr().String()+"/ws", nil)
	if err != nil {
		t.Fatalf("dial as %s: %v (response %v)", agent, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The whole pipeline on the demo configuration: the generator rings agent
// 1001, the aggregator resolves a demo customer and asks every demo source in
// parallel, and a complete card reaches the agent's WebSocket.
func TestDemoCallReachesAgentWithCompleteCard(t *testing.T) {
	m := startDemo(t)
	c := dialAgent(t, m, "1001")
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		var env envelope
		if err := c.ReadJSON(&env); err != nil {
			t.Fatalf("no complete card for a known customer before the read failed: %v", err)
		}
		if env.Type != "pop" {
			continue
		}
		env.Data = completePop(t, c, env) // sent in steps: judged once complete
		var data struct {
			Card struct {
				Resolution string `json:"resolution"`
				Customer   *struct {
					ID, Name string
				} `json:"customer"`
				Sections []struct {
					Name   string
					Status string
					Fields []json.RawMessage
					Lists  []json.RawMessage
				} `json:"sections"`
			} `json:"card"`
		}
		if err := json.Unmarshal(env.Data, &data); err != nil {
			t.Fatalf("pop data: %v\n%s", err, env.Data)
		}
		card := data.Card
		if card.Resolution != "customer" {
			continue // unknown, withheld or ambiguous callers come too; wait for a known one
		}
		if card.Customer == nil || card.Customer.Name == "" {
			t.Fatalf("resolved card without a customer: %s", env.Data)
		}
		got := map[string]string{}
		for _, s := range card.Sections {
			got[s.Name] = s.Status
			if s.Status == "ok" && len(s.Fields)+len(s.Lists) == 0 {
				t.Errorf("section %s is ok but empty", s.Name)
			}
		}
		// service is empty for a customer without open cases or claims.
		if s := got["service"]; s != "ok" && s != "empty" {
			t.Fatalf("section service: status %q, want ok or empty (card %s)", s, env.Data)
		}
		for _, want := range []string{"value", "accounting", "sales", "credit"} {
			if got[want] != "ok" {
				t.Fatalf("section %s: status %q, want ok (card %s)", want, got[want], env.Data)
			}
		}
		break
	}

	body := get(t, "http://"+m.Addr().String()+"/metrics", http.StatusOK)
	for _, metric := range []string{
		"screenpop_pop_latency_seconds_count",
		`screenpop_aggregator_source_duration_seconds_count{outcome="ok",source="credit"}`,
		"screenpop_pop_connected_agents 1",
	} {
		if !strings.Contains(body, metric) {
			t.Errorf("/metrics lacks %s", metric)
		}
	}
	get(t, "http://"+m.Addr().String()+"/healthz", http.StatusOK)
	get(t, "http://"+m.Addr().String()+"/readyz", http.StatusOK)
}

// A WebSocket upgrade without a valid token is refused before upgrading.
func TestSocketNeedsToken(t *testing.T) {
	m := startDemo(t)
	for _, protos := range [][]string{nil, {"screenpop.v1", "bearer.not-a-token"}} {
		d := websocket.Dialer{Subprotocols: protos}
		_, resp, err := d.Dial("ws://"+m.Addr().String()+"/ws", nil)
		if err == nil {
			t.Fatalf("upgrade with %v succeeded", protos)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("upgrade with %v: response %v, want 401", protos, resp)
		}
	}
}

func get(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %s", url, resp.StatusCode, want, b)
	}
	return string(b)
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("customers.csv", "id,phone,name\nc1,+4930123456,Jane Doe\n")
	good := write("good.yaml", `telephony:
  - {name: demo, type: demo, agents: ["1001"]}
directory:
  name: directory
  type: file
  needs: phone
  path: customers.csv
  match: phone
  param: phone
auth: {demo_links: true}
`)
	// Problems of the file itself and of the kinds' options, all in one
	// pass: a wrong value at the top does not hide the typos below.
	bad := write("bad.yaml", `deadline: fast
telephony:
  - {name: demo, type: demo, intervall: 3s}
  - {name: pbx, type: sip}
sources:
  - name: credit
    type: file
    sectoin: credit
    timeout: soon
    path: customers.csv
  - name: sales
    type: oracle
auth: {demo_links: true}
`)
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"config", "check", "-config", good}, &out, &errOut, noEnv); err != nil {
		t.Fatalf("good config: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "good.yaml: OK") {
		t.Errorf("good config output: %q", out.String())
	}
	out.Reset()
	errOut.Reset()
	if err := run(context.Background(), []string{"config", "check", "-config", bad}, &out, &errOut, noEnv); err == nil {
		t.Fatal("bad config passed the check")
	}
	// Each at the line and column of the key at fault, in file order.
	want := strings.Join([]string{
		bad + `:1:1: deadline: expected a duration such as 800ms, 2s or 5m, got "fast"`,
		bad + `:3:30: telephony[0] (demo): unknown option "intervall" (did you mean "interval"?)`,
		bad + `:4:17: telephony[1] (pbx): type: "sip" is not a telephony type (fix: use one of: ari, demo, http)`,
		bad + `:8:5: sources[0] (credit): unknown option "sectoin" (did you mean "section"?)`,
		bad + `:9:5: sources[0] (credit): timeout: expected a duration such as 800ms, 2s or 5m, got "soon"`,
		bad + `:12:5: sources[1] (sales): type: "oracle" is not a source type (fix: use one of: file, http, postgres)`,
		"6 problem(s) found",
	}, "\n") + "\n"
	if errOut.String() != want {
		t.Errorf("config check output:\n%s\nwant:\n%s", errOut.String(), want)
	}

	// The file as a plain argument, as IT types it, flags after it too:
	// the file is checked, never the embedded demo in its place.
	out.Reset()
	errOut.Reset()
	if err := run(context.Background(), []string{"config", "check", bad}, &out, &errOut, noEnv); err == nil || errOut.String() != want {
		t.Errorf("config check FILE: err %v, output:\n%s%s\nwant:\n%s", err, out.String(), errOut.String(), want)
	}
	out.Reset()
	errOut.Reset()
	if err := run(context.Background(), []string{"config", "check", good, "-timeout", "2s"}, &out, &errOut, noEnv); err != nil || !strings.Contains(out.String(), "good.yaml: OK") {
		t.Errorf("config check FILE -timeout 2s: err %v, output %q %q", err, out.String(), errOut.String())
	}
	for _, args := range [][]string{
		{"config", "check", "-config", good, bad},
		{"config", "check", good, bad},
		{"run", "-config", good, bad},
		{"token", "-agent", "1001", "extra"},
		{"source", "test", "credit", "extra", "-phone", "+4930123456"},
	} {
		out.Reset()
		errOut.Reset()
		err := run(context.Background(), args, &out, &errOut, noEnv)
		if err == nil || !strings.Contains(err.Error(), "usage: screenpopd") || out.Len() > 0 {
			t.Errorf("%q: err %v, output %q: want a usage error and nothing done", args, err, out.String())
		}
	}
}

func noEnv(string) string { return "" }

// A short eviction token is refused when the daemon is built, not at the
// first call of a company system.
func TestEvictTokenTooShort(t *testing.T) {
	cfg, err := configs.Demo()
	if err != nil {
		t.Fatal(err)
	}
	cfg.API.EvictTokensEnv = "EVICT_TOKENS"
	env := func(k string) string {
		if k == "EVICT_TOKENS" {
			return testEvictToken + ",short"
		}
		return ""
	}
	const want = "api.evict_tokens_env: environment variable EVICT_TOKENS: token 2 is 5 characters long; use at least 16 random characters (e.g. openssl rand -hex 24)"
	_, err = NewMain(cfg, Options{Env: env, Stdout: io.Discard, Stderr: io.Discard})
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("NewMain = %v; want an error ending %q", err, want)
	}
	// config check says so too.
	if err := checkBuild(cfg, env); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("checkBuild = %v; want an error with %q", err, want)
	}
}

// source test on the embedded demo: a source asked for a number the
// directory knows prints its record; for a number it does not, a source
// that looks up by customer is not asked (as a card skips it), and the
// command says so rather than "0 records".
func TestSourceTestCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"source", "test", "credit", "-phone", "030 1234567"}, &out, &errOut, noEnv); err != nil {
		t.Fatalf("known number: %v\n%s%s", err, out.String(), errOut.String())
	}
	if got := out.String(); !strings.Contains(got, "customer: C-10001 (") || !strings.Contains(got, "source:   credit answered 1 record(s)") || !strings.Contains(got, "credit_limit") {
		t.Errorf("known number:\n%s", got)
	}
	out.Reset()
	if err := run(context.Background(), []string{"source", "test", "credit", "-phone", "+44 20 7946 0958"}, &out, &errOut, noEnv); err != nil {
		t.Fatalf("unknown number: %v\n%s%s", err, out.String(), errOut.String())
	}
	if got := out.String(); !strings.Contains(got, "customer: not resolved (unknown)") ||
		!strings.Contains(got, "source:   credit not asked: it looks up by customer_id (needs)") || !strings.Contains(got, "give -customer ID") || strings.Contains(got, "answered") {
		t.Errorf("unknown number:\n%s", got)
	}
	// The directory looks up by number: asked for a customer only, it is
	// not asked, and the command says what to give.
	out.Reset()
	if err := run(context.Background(), []string{"source", "test", "directory", "-customer", "C-10001"}, &out, &errOut, noEnv); err != nil {
		t.Fatalf("directory by customer: %v\n%s%s", err, out.String(), errOut.String())
	}
	if got := out.String(); !strings.Contains(got, "directory not asked: it looks up by phone (needs)") || !strings.Contains(got, "give -phone NUMBER") {
		t.Errorf("directory by customer:\n%s", got)
	}
}
