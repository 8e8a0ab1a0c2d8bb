package floor

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
)

// benchFloor is a Floor alone (no Redis) with calls live calls, 200
// configured agents (half of them with a page connected), each call
// ringing two agents and every other one answered, as a busy floor is.
type benchFloor struct {
	*Floor
	reg   *prometheus.Registry
	next  int // the next call to ring
	first int // the oldest live call
	calls int
}

func newBenchFloor(b *testing.B, calls int) *benchFloor {
	b.Helper()
	pages := &fakePages{}
	names := map[string]string{}
	for i := range 200 {
		id := strconv.Itoa(1000 + i)
		names[id] = fmt.Sprintf("Agent %03d", i)
		if i%2 == 0 {
			pages.set(id, true)
		}
	}
	reg := prometheus.NewRegistry()
	f, err := New(Options{
		Config:     Config{ServiceLevelSeconds: 20, TimeZone: "UTC"},
		Daemon:     "a",
		Sources:    []string{"cti"},
		Pages:      pages,
		Agents:     func() map[string]string { return names },
		Registerer: reg,
	})
	if err != nil {
		b.Fatal(err)
	}
	bf := &benchFloor{Floor: f, reg: reg, calls: calls}
	for range calls {
		bf.ring()
	}
	return bf
}

// ring rings a new call; every other call is answered at once.
func (f *benchFloor) ring() {
	i := f.next
	f.next++
	id := "cti/" + strconv.Itoa(i)
	now := time.Now()
	a1, a2 := strconv.Itoa(1000+i%200), strconv.Itoa(1000+(i+7)%200)
	f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: id, Source: "cti", At: now,
		Caller: screenpop.Caller{Number: "+4930123" + strconv.Itoa(i)}, Agents: []string{a1, a2}}, now)
	if i%2 == 1 {
		f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: id, Source: "cti", At: now, Agent: a1}, now)
	}
}

// churn ends the oldest call and rings a new one: the floor keeps its
// size and changes, as it does at hundreds of calls a second.
func (f *benchFloor) churn() {
	now := time.Now()
	f.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "cti/" + strconv.Itoa(f.first), Source: "cti", At: now,
		Outcome: screenpop.OutcomeAnswered}, now)
	f.first++
	f.ring()
}

// BenchmarkFloorRefresh is one refresh of the floor after a change (a
// call ended, another rang), with and without a supervisor page
// connected.
func BenchmarkFloorRefresh(b *testing.B) {
	for _, calls := range []int{100, 1000} {
		for _, watched := range []bool{false, true} {
			name := fmt.Sprintf("calls=%d/unwatched", calls)
			if watched {
				name = fmt.Sprintf("calls=%d/watched", calls)
			}
			b.Run(name, func(b *testing.B) {
				f := newBenchFloor(b, calls)
				if watched {
					s, _ := f.subscribe()
					defer f.unsubscribe(s)
				}
				ctx := context.Background()
				f.refresh(ctx)
				b.ReportAllocs()
				for b.Loop() {
					f.churn()
					f.refresh(ctx)
				}
			})
		}
	}
}

// BenchmarkFloorRefreshIdle is a refresh with nothing changed since the
// last (the tick of a quiet floor), a supervisor page connected.
func BenchmarkFloorRefreshIdle(b *testing.B) {
	for _, calls := range []int{100, 1000} {
		b.Run(fmt.Sprintf("calls=%d/watched", calls), func(b *testing.B) {
			f := newBenchFloor(b, calls)
			s, _ := f.subscribe()
			defer f.unsubscribe(s)
			ctx := context.Background()
			f.refresh(ctx)
			b.ReportAllocs()
			for b.Loop() {
				f.refresh(ctx)
			}
		})
	}
}

// BenchmarkFloorScrape is a scrape of the floor's metrics (every one the
// floor registers) after a change, no supervisor page connected.
func BenchmarkFloorScrape(b *testing.B) {
	for _, calls := range []int{100, 1000} {
		b.Run(fmt.Sprintf("calls=%d", calls), func(b *testing.B) {
			f := newBenchFloor(b, calls)
			b.ReportAllocs()
			for b.Loop() {
				f.churn()
				if _, err := f.reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
