package redisbus

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/screenpop/screenpop/pop"
)

// TestRingWhileConnecting: a call rings while the agent's browser is
// connecting to another daemon — before, during or after the daemon opens
// the agent's shared stream. The browser gets the call exactly once: in its
// snapshot, or as a pop after it. This is the window between the WebSocket
// upgrade and the attach to the shared stream (issue 12).
func TestRingWhileConnecting(t *testing.T) {
	client := sharedRedis(t)
	prefix := testPrefix(t, client)
	a, b := startDaemon(t, "127.0.0.1:6379", prefix), startDaemon(t, "127.0.0.1:6379", prefix)
	for _, d := range []*daemon{a, b} {
		waitFor(t, "bus up", func() bool { return d.bus.Ready() == nil })
	}
	// 240 rounds in a row were clean when this was written; 20 keep the
	// window covered in every run without slowing make test.
	rounds := 20
	for i := range rounds {
		agent, call := fmt.Sprintf("3%03d", i), fmt.Sprintf("race-%d", i)
		var ws *websocket.Conn
		var wg sync.WaitGroup
		// The ring goes anywhere from before the dial to well after the
		// upgrade; Open takes a few Redis round trips.
		delay := time.Duration(rand.IntN(6000)) * time.Microsecond
		wg.Go(func() {
			time.Sleep(delay)
			a.disp.HandleCall(ring(call, agent))
		})
		ws = browser(t, b, agent, "")
		wg.Wait()
		if n := timesSeen(t, ws, call); n != 1 {
			t.Fatalf("round %d (ring after %v): call seen %d times, want exactly once", i, delay, n)
		}
		ws.Close()
	}
}

// timesSeen reads ws until it goes quiet and counts how often call was
// shown: as a pop in the snapshot or as a pop message.
func timesSeen(t *testing.T, ws *websocket.Conn, call string) int {
	t.Helper()
	seen := 0
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// Once the call was seen, a short quiet period ends the count: a
		// duplicate would come right behind.
		wait := 5 * time.Second
		if seen > 0 {
			wait = 300 * time.Millisecond
		}
		ws.SetReadDeadline(time.Now().Add(wait))
		var m received
		if err := ws.ReadJSON(&m); err != nil {
			if seen > 0 {
				return seen
			}
			t.Fatalf("read: %v (call %s not seen)", err, call)
		}
		switch m.Type {
		case pop.TypeSnapshot:
			var snap pop.SnapshotData
			if err := json.Unmarshal(m.Data, &snap); err != nil {
				t.Fatal(err)
			}
			for _, p := range snap.Pops {
				if p.CallID == call {
					seen++
				}
			}
		case pop.TypePop:
			if m.CallID == call {
				seen++
			}
		}
	}
	return seen
}
