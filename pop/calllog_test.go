package pop

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/internal/logbuf"
)

// Each call that rang an agent leaves one "call ended" line at info with
// its outcome and timings; the caller's number only masked.
func TestCallOutcomeLine(t *testing.T) {
	logs := &logbuf.Buffer{}
	e := startDispatcher(t, func(c *DispatcherConfig) {
		c.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	e.b.mu.Lock()
	e.b.started = make(chan string, 16) // more than this test builds
	e.b.mu.Unlock()
	started := func(callID string) {
		t.Helper()
		for {
			select {
			case id := <-e.b.started:
				if id == callID {
					return
				}
			case <-time.After(patience):
				t.Fatalf("the card of %s was never built", callID)
			}
		}
	}
	t0 := time.Now().Add(-time.Second)

	// Popped to both, answered by alice 3s after the ring, transferred to
	// bob, over a minute after the ring.
	e.d.HandleCall(ringing("c1", t0, "alice", "bob"))
	e.del.waitTypes(t, "alice", "c1", TypePop)
	e.del.waitTypes(t, "bob", "c1", TypePop)
	e.d.HandleCall(answered("c1", "alice", t0.Add(3*time.Second)))
	e.d.HandleCall(transferred("c1", "bob", t0.Add(30*time.Second)))
	e.d.HandleCall(ended("c1", "bob", screenpop.OutcomeAnswered, t0.Add(61*time.Second)))
	e.rec.waitRecorded(t, 1)

	// Answered before its card was ready: the pop came after the answer.
	// A marker call proves the answer was applied before the card is
	// released.
	release := e.b.gate("c2")
	e.d.HandleCall(ringing("c2", t0, "carol"))
	started("c2")
	e.d.HandleCall(answered("c2", "carol", t0.Add(2*time.Second)))
	e.d.HandleCall(ringing("marker", t0, "erin"))
	started("marker")
	e.del.waitTypes(t, "erin", "marker", TypePop)
	release()
	e.del.waitTypes(t, "carol", "c2", TypePop, TypeAnswered)
	e.d.HandleCall(ended("c2", "carol", screenpop.OutcomeAnswered, t0.Add(5*time.Second)))

	// Abandoned while it rang.
	e.d.HandleCall(ringing("c3", t0, "dave"))
	e.del.waitTypes(t, "dave", "c3", TypePop)
	e.d.HandleCall(ended("c3", "", screenpop.OutcomeAbandoned, t0.Add(9*time.Second)))
	e.rec.waitRecorded(t, 3)

	lines := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] != "call ended" {
			continue
		}
		if m["level"] != "INFO" {
			t.Errorf("call line at %v: %s", m["level"], l)
		}
		id, _ := m["call"].(string)
		if lines[id] != nil {
			t.Errorf("call %s logged twice", id)
		}
		// Only what each call has: the pop's time is the daemon's, checked
		// for being there.
		if _, ok := m["ring_to_pop"].(float64); !ok {
			t.Errorf("call %s without ring_to_pop: %s", id, l)
		}
		for _, k := range []string{"time", "level", "msg", "ring_to_pop"} {
			delete(m, k)
		}
		lines[id] = m
	}
	want := map[string]map[string]any{
		"c1": {"call": "c1", "source": "test", "outcome": "answered", "caller": "+*******456", "rung": 2.0,
			"answered_by": "alice", "ring_to_answer": 3.0, "ring_to_end": 61.0, "pop_sent_before_answer": true, "transfers": 1.0},
		"c2": {"call": "c2", "source": "test", "outcome": "answered", "caller": "+*******456", "rung": 1.0,
			"answered_by": "carol", "ring_to_answer": 2.0, "ring_to_end": 5.0, "pop_sent_before_answer": false},
		"c3": {"call": "c3", "source": "test", "outcome": "abandoned", "caller": "+*******456", "rung": 1.0, "ring_to_end": 9.0},
	}
	if len(lines) != len(want) {
		t.Errorf("call lines for %d calls, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for id, w := range want {
		got, _ := json.Marshal(lines[id])
		exp, _ := json.Marshal(w)
		if string(got) != string(exp) {
			t.Errorf("call %s:\n got %s\nwant %s", id, got, exp)
		}
	}
	if strings.Contains(logs.String(), "4930123456") {
		t.Errorf("the caller's number is in the log in clear:\n%s", logs.String())
	}
}
