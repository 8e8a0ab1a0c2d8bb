package fakeari

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func request(t *testing.T, s *Server, method, path string, auth bool) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(DefaultUser, DefaultPassword)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func dial(t *testing.T, s *Server, query string) *websocket.Conn {
	t.Helper()
	before := s.Accepted()
	u := strings.Replace(s.URL(), "http://", "ws://", 1) + "/ari/events?" + query
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The handshake completes before the server registers the socket, as
	// with Asterisk: wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitAccepted(ctx, before+1); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAuthentication(t *testing.T) {
	s := New(t)
	if code, _ := request(t, s, "GET", "/ari/channels", false); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", code)
	}
	if code, _ := request(t, s, "GET", "/ari/channels?api_key=screenpop:wrong", false); code != http.StatusUnauthorized {
		t.Errorf("wrong api_key: %d, want 401", code)
	}
	if code, _ := request(t, s, "GET", "/ari/channels?api_key="+DefaultUser+":"+DefaultPassword, false); code != http.StatusOK {
		t.Errorf("api_key: %d, want 200", code)
	}
	if code, _ := request(t, s, "GET", "/ari/channels", true); code != http.StatusOK {
		t.Errorf("basic auth: %d, want 200", code)
	}
}

func TestGuardRecordsCallControl(t *testing.T) {
	s := New(nil) // no test to fail: the violations are checked below
	defer s.Close()
	for _, r := range []string{
		"POST /ari/channels", "POST /ari/channels/1.0/answer", "DELETE /ari/channels/1.0",
		"POST /ari/channels/1.0/continue", "POST /ari/bridges", "POST /ari/channels/1.0/variable",
	} {
		method, path, _ := strings.Cut(r, " ")
		if code, _ := request(t, s, method, path, true); code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", r, code)
		}
	}
	if code, _ := request(t, s, "GET", "/ari/channels", true); code != http.StatusOK {
		t.Errorf("GET channels: %d", code)
	}
	if got := len(s.Violations()); got != 6 {
		t.Errorf("%d violations recorded, want 6: %v", got, s.Violations())
	}
}

func TestSubscribeAllOnlyWhenCreating(t *testing.T) {
	s := New(t)
	c := dial(t, s, "app=screenpop&subscribeAll=true&api_key="+DefaultUser+":"+DefaultPassword)
	_ = c
	_, body := request(t, s, "GET", "/ari/applications/screenpop", true)
	var app struct {
		Name       string   `json:"name"`
		ChannelIDs []string `json:"channel_ids"`
		BridgeIDs  []string `json:"bridge_ids"`
		Allowed    []any    `json:"events_allowed"`
	}
	if err := json.Unmarshal([]byte(body), &app); err != nil {
		t.Fatal(err)
	}
	if app.Name != "screenpop" || len(app.ChannelIDs) != 1 || app.ChannelIDs[0] != AllChannels || app.BridgeIDs[0] != AllBridges || app.Allowed == nil {
		t.Errorf("application = %s", body)
	}

	existing := New(t, WithExistingApp("screenpop"))
	dial(t, existing, "app=screenpop&subscribeAll=true&api_key="+DefaultUser+":"+DefaultPassword)
	_, body = request(t, existing, "GET", "/ari/applications/screenpop", true)
	if strings.Contains(body, AllChannels) {
		t.Errorf("subscribeAll held on an existing application: %s", body)
	}
	if n := existing.Send([]byte(`{"type":"ChannelCreated","channel":{"id":"1.0"}}`)); n != 0 {
		t.Errorf("an application not subscribed got %d events", n)
	}
	if code, body := request(t, existing, "POST", "/ari/applications/screenpop/subscription?eventSource=channel:&eventSource=bridge:", true); code != 200 || !strings.Contains(body, AllChannels) {
		t.Errorf("explicit subscription: %d %s", code, body)
	}
	if n := existing.Send([]byte(`{"type":"ChannelCreated","channel":{"id":"1.0"}}`)); n != 1 {
		t.Errorf("after subscribing: %d sockets got the event, want 1", n)
	}
}

func TestReadOnlyUser(t *testing.T) {
	s := New(t, WithExistingApp("screenpop"), WithReadOnlyUser())
	code, body := request(t, s, "POST", "/ari/applications/screenpop/subscription?eventSource=channel:", true)
	if code != http.StatusForbidden || !strings.Contains(body, "Write access denied") {
		t.Errorf("read-only POST: %d %s", code, body)
	}
}

func TestChannelsFollowEvents(t *testing.T) {
	s := New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f, err := os.Open("../testdata/answered.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// No socket: the events are lost, but Asterisk's channels follow them.
	lines, _ := io.ReadAll(f)
	all := strings.Split(strings.TrimSpace(string(lines)), "\n")
	n, err := s.Replay(ctx, strings.NewReader(strings.Join(all[:40], "\n")), 0)
	if err != nil || n != 40 {
		t.Fatalf("Replay: %d, %v", n, err)
	}
	if got := len(s.Channels()); got != 4 {
		t.Errorf("%d channels while ringing, want 4 (caller and three agents)", got)
	}
	if s.Delivered() != 0 || s.Sent() != 40 {
		t.Errorf("sent %d delivered %d, want 40 and 0", s.Sent(), s.Delivered())
	}
	if _, err := s.Replay(ctx, strings.NewReader(strings.Join(all[40:], "\n")), 0); err != nil {
		t.Fatal(err)
	}
	if got := len(s.Channels()); got != 0 {
		t.Errorf("%d channels after the call, want 0", got)
	}
	s.SetChannels(json.RawMessage(`{"id":"9.9"}`))
	if _, body := request(t, s, "GET", "/ari/channels", true); !strings.Contains(body, `"9.9"`) {
		t.Errorf("set channels not served: %s", body)
	}
}

func TestReplacedAndFaults(t *testing.T) {
	s := New(t)
	auth := "&api_key=" + DefaultUser + ":" + DefaultPassword
	first := dial(t, s, "app=screenpop&subscribeAll=true"+auth)
	dial(t, s, "app=screenpop&subscribeAll=true"+auth)
	_ = first.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := first.ReadMessage()
	if err != nil || !strings.Contains(string(msg), `"ApplicationReplaced"`) {
		t.Fatalf("first socket got %s, %v; want ApplicationReplaced", msg, err)
	}

	s.Down()
	if _, err := http.Get(s.URL() + "/ari/channels"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("while down: %v, want connection refused", err)
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	if code, _ := request(t, s, "GET", "/ari/channels", true); code != 200 {
		t.Errorf("after Up: %d", code)
	}
}
