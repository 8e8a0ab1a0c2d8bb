package pop

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop/popstate"
)

// discardDeliverer takes messages and drops them: what is measured is the
// dispatcher, not a transport.
type discardDeliverer struct{ n int }

func (d *discardDeliverer) Deliver(string, Encoded) { d.n++ }

// BenchmarkDispatcherEvent measures the work done under the dispatcher's
// lock for one call event, as Run does it for a batch of one (the common
// case below saturation): apply it to the state machine, deliver what it
// decided (the pop encoded once), update the live-calls gauge, and the
// same when the card it asked for is built. live is how many other calls
// are ringing meanwhile, which must not make an event dearer. One op is
// one call rung to two agents, its card built, and ended (two events).
// There is no Run: the card is built at once under the lock, so no
// goroutine competes for it.
//
//	go test -run '^$' -bench DispatcherEvent -benchmem ./pop/
func BenchmarkDispatcherEvent(b *testing.B) {
	for _, live := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("live=%d", live), func(b *testing.B) {
			del := &discardDeliverer{}
			d, err := NewDispatcher(DispatcherConfig{
				Builder: newFakeBuilder(), Deliverer: del,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
			})
			if err != nil {
				b.Fatal(err)
			}
			// step is Run's work for a batch of one event, and then, for
			// each card the event asked for, the build goroutine's once the
			// card is there (built here at once, under the same lock).
			step := func(ev screenpop.CallEvent) {
				d.mu.Lock()
				defer d.mu.Unlock()
				out := d.state.Apply(ev, d.now())
				d.execute(out)
				d.setActive()
				for _, e := range out.Effects {
					if bd, ok := e.(popstate.Build); ok {
						d.execute(d.state.CardBuilt(bd, testCard(bd.Event), d.now()))
						d.setActive()
					}
				}
			}
			at := time.Now()
			for i := range live {
				step(ringing(fmt.Sprintf("live-%d", i), at, fmt.Sprintf("agent-%d", i%300)))
			}
			if got := d.state.Active(); got != live {
				b.Fatalf("%d live calls, want %d", got, live)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// A new ID every time: an ended call's ID is remembered, and
				// its events are ignored from then on. (One allocation.)
				id := "bench-" + strconv.Itoa(i)
				i++
				step(ringing(id, at, "agent-1", "agent-2"))
				step(ended(id, "", screenpop.OutcomeAbandoned, at))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/event")
			if got := d.state.Active(); got != live {
				b.Fatalf("%d live calls after the run, want %d", got, live)
			}
		})
	}
}
