package floor

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
)

// floorServer is the supervisor page of a Floor behind a real hub (its
// sign-in and origin checks), as the daemon mounts it.
type floorServer struct {
	testFloor
	url    string
	tokens *pop.TokenAuth
	mu     sync.Mutex
	roles  map[string][]string // agents.roles, changed by a test as a reload would
}

func startFloorServer(t *testing.T, tweak ...func(*Options)) *floorServer {
	t.Helper()
	tokens, err := pop.NewTokenAuth([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	hub, err := pop.NewHub(pop.HubConfig{Auth: tokens})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hub.Close)
	s := &floorServer{testFloor: startFloor(t, "a", nil, tweak...), tokens: tokens, roles: map[string][]string{"sam": {"agent", Role}}}
	h := s.Handler(HandlerOptions{Gate: hub, Roles: func(a pop.Agent) []string {
		s.mu.Lock()
		defer s.mu.Unlock()
		return append(a.Roles, s.roles[a.ID]...)
	}})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *floorServer) token(t *testing.T, agent string, roles ...string) string {
	t.Helper()
	tok, err := s.tokens.Issue(agent, strings.ToUpper(agent[:1])+agent[1:], roles, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (s *floorServer) get(t *testing.T, path, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (s *floorServer) dial(token string, header http.Header) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{Subprotocols: []string{Subprotocol, pop.BearerSubprotocolPrefix + token}, HandshakeTimeout: 5 * time.Second}
	return d.Dial("ws"+strings.TrimPrefix(s.url, "http")+"/supervisor/ws", header)
}

// Only a supervisor gets the floor, over HTTP and WebSocket: whoever is
// not signed in gets 401, an agent without the role 403 — the socket
// before any upgrade. The role comes from the sign-in or the
// configuration, and taking it away closes the open page.
func TestSupervisorOnly(t *testing.T) {
	s := startFloorServer(t)
	if code, body := s.get(t, "/supervisor/view", ""); code != http.StatusUnauthorized || !strings.Contains(body, `"unauthenticated"`) {
		t.Errorf("no sign-in: %d %s", code, body)
	}
	if code, body := s.get(t, "/supervisor/view", s.token(t, "carol", "agent")); code != http.StatusForbidden || !strings.Contains(body, `"not_supervisor"`) {
		t.Errorf("an agent: %d %s", code, body)
	}
	if code, body := s.get(t, "/supervisor/view", s.token(t, "vic", "agent", Role)); code != http.StatusOK || !strings.Contains(body, `"supervisor":{"id":"vic"`) {
		t.Errorf("a supervisor by sign-in: %d %s", code, body)
	}
	if code, _ := s.get(t, "/supervisor/", ""); code != http.StatusOK {
		t.Errorf("the page itself: %d, want 200 (it holds no data)", code)
	}

	for _, c := range []struct {
		name   string
		token  string
		header http.Header
		code   int
	}{
		{"no sign-in", "", nil, http.StatusUnauthorized},
		{"an agent", s.token(t, "carol", "agent"), nil, http.StatusForbidden},
		{"a foreign page", s.token(t, "sam", "agent"), http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
	} {
		conn, resp, err := s.dial(c.token, c.header)
		if err == nil {
			conn.Close()
			t.Errorf("%s: the socket was opened", c.name)
			continue
		}
		if resp == nil || resp.StatusCode != c.code {
			t.Errorf("%s: %v %v, want %d", c.name, resp, err, c.code)
		}
	}

	// sam is a supervisor by the configuration: the view comes at once,
	// and again when a call rings.
	ws, _, err := s.dial(s.token(t, "sam", "agent"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	read := func() viewMessage {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		var m viewMessage
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := read(); m.Type != "floor" || m.Data.ServiceLevelSeconds != 20 {
		t.Fatalf("first message: %+v", m)
	}
	now := time.Now()
	s.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/7", Source: "pbx", At: now, Agents: []string{"alice"},
		Caller: screenpop.Caller{Number: "+49 30 1234567"}}, now)
	for {
		m := read()
		if len(m.Data.Waiting) == 1 {
			raw, _ := json.Marshal(m)
			if m.Data.Waiting[0].Caller != "+** ** ****567" || strings.Contains(string(raw), "1234567") {
				t.Errorf("the caller's number is not masked: %s", raw)
			}
			break
		}
	}
	s.mu.Lock()
	s.roles = map[string][]string{} // a reload takes the role away
	s.mu.Unlock()
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, CloseNotSupervisor) {
			t.Errorf("after the role went: %v, want close %d", err, CloseNotSupervisor)
		}
		break
	}
}
