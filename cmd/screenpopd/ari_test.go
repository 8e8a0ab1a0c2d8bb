package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/internal/logbuf"
	"github.com/screenpop/screenpop/telephony/ari/fakeari"
)

// Issue 3 end to end through the real daemon: Asterisk is down when
// screenpopd starts (/readyz says so, the daemon keeps serving), comes up,
// and replays the real recording of a ring-all call answered by 1002. Each
// agent's browser sees what it must: 1002 the pop and the answer, 1001 the
// pop and its withdrawal because a colleague answered.
func TestAsteriskRecordingThroughDaemon(t *testing.T) {
	pbx := fakeari.New(t)
	pbx.Down()

	cfg, err := configs.Demo()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	m := runWithARI(t, cfg, ariEntry("pbx", pbx, ""))
	base := "http://" + m.Addr().String()

	// Asterisk down: the daemon serves, but is not ready.
	get(t, base+"/healthz", http.StatusOK)
	get(t, base+"/readyz", http.StatusServiceUnavailable)

	alice, bob := dialAgent(t, m, "1001"), dialAgent(t, m, "1002")
	for _, c := range []*websocket.Conn{alice, bob} {
		expect(t, c, "snapshot")
	}

	if err := pbx.Up(); err != nil {
		t.Fatal(err)
	}
	waitReady(t, base)
	// The recording in two parts: the ring, then from 1002's answer on.
	// Sent in one go, the three seconds of ringing shrink to microseconds
	// and the call may be answered before its card is ready - when, rightly,
	// only the agent who answered gets a pop.
	lines, answer := answeredRecording(t)
	for _, l := range lines[:answer] {
		pbx.Send(l)
	}

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fake Asterisk: %d events sent, %d delivered", pbx.Sent(), pbx.Delivered())
			resp, err := http.Get(base + "/metrics")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				for _, l := range strings.Split(string(b), "\n") {
					if strings.HasPrefix(l, "screenpop_pop_messages_total") || strings.HasPrefix(l, "screenpop_ari_events_total{type=\"Dial") || strings.HasPrefix(l, "screenpop_telephony") {
						t.Log(l)
					}
				}
			}
		}
	})
	bobPop := expect(t, bob, "pop")
	callID := bobPop.CallID
	expect(t, alice, "pop")
	for _, l := range lines[answer:] {
		pbx.Send(l)
	}
	if got := expect(t, bob, "answered").CallID; got != callID {
		t.Errorf("answered for call %q, popped %q", got, callID)
	}
	expect(t, bob, "ended")

	w := expect(t, alice, "withdrawn")
	var data struct {
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(w.Data, &data); err != nil || data.Reason != "answered_elsewhere" {
		t.Errorf("alice's pop withdrawn with %s, want reason answered_elsewhere", w.Data)
	}
	if v := pbx.Violations(); len(v) > 0 {
		t.Errorf("the daemon made requests that could touch a call: %v", v)
	}

	// The recorded PBX reports no presentation: the caller was withheld
	// (the safe default) and /readyz tells IT why, without failing.
	var pop struct {
		Card struct {
			Caller struct {
				Withheld bool `json:"withheld"`
			} `json:"caller"`
			Phone string `json:"phone"`
		} `json:"card"`
	}
	if err := json.Unmarshal(bobPop.Data, &pop); err != nil || !pop.Card.Caller.Withheld || pop.Card.Phone != "" {
		t.Errorf("bob's pop: %s, want a withheld caller", bobPop.Data)
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "telephony pbx (ari): WARNING: ari: caller presentation unknown (1 calls so far)") ||
		!strings.Contains(string(body), "add CALLERID(pres) to channelvars in ari.conf") {
		t.Errorf("/readyz = %d:\n%s", resp.StatusCode, body)
	}
}

// expect reads messages until one of type typ, skipping none of another
// kind that would mean a wrong sequence (a second pop, say), but for the
// hello a connection starts with.
func expect(t *testing.T, c *websocket.Conn, typ string) envelope {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var env envelope
	if err := c.ReadJSON(&env); err != nil {
		t.Fatalf("waiting for %s: %v", typ, err)
	}
	if env.Type == "hello" && typ != "hello" {
		if err := c.ReadJSON(&env); err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
	}
	if env.Type != typ {
		t.Fatalf("got %s (%s), want %s", env.Type, env.Data, typ)
	}
	return env
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		why := fmt.Sprint(err)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			why = string(body)
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %s", why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ariEntry is the YAML of a telephony entry of type ari for a fake PBX;
// extra adds options ("on_unknown_presentation: show").
func ariEntry(name string, pbx *fakeari.Server, extra string) string {
	e := `{name: ` + name + `, type: ari, url: "` + pbx.URL() + `", user: ` + fakeari.DefaultUser +
		`, password_env: ARI_PASSWORD, app: screenpop, inbound_contexts: [from-carrier]`
	if extra != "" {
		e += ", " + extra
	}
	return e + "}"
}

// runWithARI runs the daemon on cfg with the given telephony entries (the
// ARI password from the environment), and logs the daemon's output if the
// test fails.
func runWithARI(t *testing.T, cfg *configs.Config, entries ...string) *Main {
	t.Helper()
	var node yaml.Node
	if err := yaml.Unmarshal([]byte("["+strings.Join(entries, ", ")+"]"), &node); err != nil {
		t.Fatal(err)
	}
	if err := node.Content[0].Decode(&cfg.Telephony); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == "ARI_PASSWORD" {
			return fakeari.DefaultPassword
		}
		return ""
	}
	logs := &logbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	return runMain(t, cfg, Options{Env: env, Stderr: logs})
}

// answeredRecording is the real recording of a ring-all call answered by
// 1002, one event a line, and the index of its answer: tests send the ring
// first and the rest once the card popped.
func answeredRecording(t *testing.T) (lines [][]byte, answer int) {
	t.Helper()
	rec, err := os.ReadFile("../../telephony/ari/testdata/answered.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines = bytes.Split(bytes.TrimSpace(rec), []byte("\n"))
	answer = slices.IndexFunc(lines, func(l []byte) bool { return bytes.Contains(l, []byte(`"dialstatus":"ANSWER"`)) })
	if answer < 0 {
		t.Fatal("the recording has no answer")
	}
	return lines, answer
}
