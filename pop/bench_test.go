package pop

import (
	"io"
	"runtime"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// BenchmarkDeliverRingingPop measures what one ringing pop costs between
// the dispatcher and the browsers: the message with its card (the agent
// page test's, about 3 KB of JSON), encoded as the Dispatcher does (once),
// delivered to the three agents whose phones ring, each with two tabs
// open, kept in their logs and written to the six sockets. One op is the message read by all six tabs, over real
// WebSockets; they discard what they read. allocs/delivery is per agent
// the message goes to (the browsers' reading included).
func BenchmarkDeliverRingingPop(b *testing.B) {
	e := startHub(b, nil)
	agents := []string{"alice", "bob", "carol"}
	got := make(chan struct{}, 64)
	for _, a := range agents {
		for range 2 {
			c := e.dial(b, a, "")
			readType(b, c, TypeSnapshot)
			go func() {
				for {
					_, r, err := c.NextReader()
					if err != nil {
						return
					}
					io.Copy(io.Discard, r)
					got <- struct{}{}
				}
			}()
		}
	}
	card := richCard(screenpop.CallEvent{CallID: "c1", Caller: screenpop.Caller{Number: "030 123456", Name: "ACME LOGISTICS"}, DID: "100"})
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		m := encode(b, Message{Type: TypePop, CallID: "c1", At: time.Now(), Data: PopData{State: StateRinging, Card: card}})
		for _, a := range agents {
			e.hub.Deliver(a, m)
		}
		for range 2 * len(agents) {
			<-got
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*len(agents)), "allocs/delivery")
}
