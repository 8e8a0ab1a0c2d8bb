package pop

import (
	"fmt"
	"io"
	"runtime"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// BenchmarkEncode measures a message made ready to travel: a ringing pop
// with the agent page test's card (about 3 KB of JSON), marshalled once
// (Encode) as the dispatcher does for all its agents, and the bytes one
// agent's browser gets, seq in front (AppendJSON into a reused buffer).
//
//	go test -run '^$' -bench 'Encode$' -benchmem ./pop/
func BenchmarkEncode(b *testing.B) {
	card := richCard(screenpop.CallEvent{CallID: "pbx/1795426551.0", Caller: screenpop.Caller{Number: "+4930123456", Name: "ACME LOGISTICS"}, DID: "100"})
	msg := Message{Type: TypePop, CallID: "pbx/1795426551.0", At: time.Now(), Data: PopData{State: StateRinging, Card: card}}
	b.Run("pop", func(b *testing.B) {
		b.ReportAllocs()
		var size int
		for b.Loop() {
			enc, err := Encode(msg)
			if err != nil {
				b.Fatal(err)
			}
			size = enc.Size()
		}
		b.SetBytes(int64(size))
	})
	b.Run("numbered", func(b *testing.B) {
		enc := encode(b, msg)
		enc.Seq = 1_733_040_000_000_042
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = enc.AppendJSON(buf[:0])
		}
		b.SetBytes(int64(len(buf)))
	})
}

// BenchmarkFanOut measures the hub carrying one encoded message (the pop
// of BenchmarkEncode) to its browsers over real local WebSockets: one
// agent with 1, 10 or 100 tabs open (one Deliver, the same bytes to every
// tab), and 100 agents with a tab each (a Deliver per agent). One op is
// the message delivered and read by every tab; the tabs discard what they
// read. allocs/tab counts every allocation of the process, the tabs'
// reading included, per tab reached: what fan-out costs per browser.
//
//	go test -run '^$' -bench FanOut -benchmem ./pop/
func BenchmarkFanOut(b *testing.B) {
	card := richCard(screenpop.CallEvent{CallID: "pbx/1795426551.0", Caller: screenpop.Caller{Number: "+4930123456", Name: "ACME LOGISTICS"}, DID: "100"})
	msg := Message{Type: TypePop, CallID: "pbx/1795426551.0", At: time.Now(), Data: PopData{State: StateRinging, Card: card}}
	for _, shape := range []struct{ agents, tabs int }{{1, 1}, {1, 10}, {1, 100}, {100, 1}} {
		b.Run(fmt.Sprintf("agents=%d/tabs=%d", shape.agents, shape.tabs), func(b *testing.B) {
			e := startHub(b, func(c *HubConfig) { c.ReplaySize = 16 })
			got := make(chan struct{}, shape.agents*shape.tabs)
			agents := make([]string, shape.agents)
			for i := range agents {
				agents[i] = fmt.Sprintf("agent-%03d", i)
				for range shape.tabs {
					c := e.dial(b, agents[i], "")
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
			m := encode(b, msg)
			tabs := shape.agents * shape.tabs
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				for _, a := range agents {
					e.hub.Deliver(a, m)
				}
				for range tabs {
					<-got
				}
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*tabs), "allocs/tab")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tabs), "ns/tab")
		})
	}
}
