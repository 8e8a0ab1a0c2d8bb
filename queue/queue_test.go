package queue

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// patience bounds every wait of these tests; it is no claim about speed.
const patience = 20 * time.Second

// value reads a gauge or a counter.
func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	if g := out.GetGauge(); g != nil {
		return g.GetValue()
	}
	return out.GetCounter().GetValue()
}

func TestFIFOAndBatches(t *testing.T) {
	q := New(Options[int]{MaxItems: 10})
	if got := q.Take(); got != nil {
		t.Fatalf("Take of an empty queue = %v, want nil", got)
	}
	for i := range 5 {
		if !q.Push(i) {
			t.Fatalf("Push(%d) refused below the limit", i)
		}
	}
	if q.Len() != 5 {
		t.Fatalf("Len = %d, want 5", q.Len())
	}
	if got := q.Take(); !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("Take = %v", got)
	}
	if q.Len() != 0 {
		t.Fatalf("Len after Take = %d", q.Len())
	}
	// The second batch reuses the first one's array: it must hold only the
	// new items, in order.
	q.Push(5)
	q.Push(6)
	if got := q.Take(); !slices.Equal(got, []int{5, 6}) {
		t.Fatalf("second Take = %v", got)
	}
	q.Push(7)
	if got := q.Take(); !slices.Equal(got, []int{7}) {
		t.Fatalf("third Take = %v", got)
	}
}

func TestItemLimitAndReserve(t *testing.T) {
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "refused_total", Help: "h"})
	depth := prometheus.NewGauge(prometheus.GaugeOpts{Name: "depth", Help: "h"})
	q := New(Options[string]{MaxItems: 2, Reserve: 1, Depth: depth, Refused: refused})
	q.Push("a")
	q.Push("b")
	if q.Push("c") {
		t.Fatal("Push beyond MaxItems accepted")
	}
	if !q.PushReserve("end") {
		t.Fatal("PushReserve refused although the reserve is free")
	}
	if q.Push("d") {
		t.Fatal("Push took the reserve")
	}
	if q.PushReserve("end2") {
		t.Fatal("PushReserve beyond the reserve accepted")
	}
	if got := value(t, refused); got != 3 {
		t.Errorf("refused = %v, want 3", got)
	}
	if got := value(t, depth); got != 3 {
		t.Errorf("depth = %v, want 3", got)
	}
	if got := q.Take(); !slices.Equal(got, []string{"a", "b", "end"}) {
		t.Fatalf("Take = %v", got)
	}
	if got := value(t, depth); got != 0 {
		t.Errorf("depth after Take = %v, want 0", got)
	}
	if !q.Push("e") {
		t.Fatal("Push refused after Take made room")
	}
}

func TestByteLimit(t *testing.T) {
	q := New(Options[[]byte]{MaxItems: 100, MaxBytes: 10, Size: func(b []byte) int { return len(b) }})
	if !q.Push(make([]byte, 6)) || !q.Push(make([]byte, 4)) {
		t.Fatal("items within MaxBytes refused")
	}
	if q.Bytes() != 10 {
		t.Fatalf("Bytes = %d, want 10", q.Bytes())
	}
	if q.Push(make([]byte, 1)) {
		t.Fatal("an item beyond MaxBytes accepted")
	}
	q.Take()
	if q.Bytes() != 0 {
		t.Fatalf("Bytes after Take = %d", q.Bytes())
	}
	// Larger than the whole bound: accepted alone, so that nothing can
	// wedge a stage, and nothing joins it.
	if !q.Push(make([]byte, 50)) {
		t.Fatal("an oversized item refused by an empty queue")
	}
	if q.Push(make([]byte, 1)) {
		t.Fatal("an item accepted after an oversized one")
	}
}

func TestReadyKeepsOneWakeUp(t *testing.T) {
	q := New(Options[int]{MaxItems: 10})
	select {
	case <-q.Ready():
		t.Fatal("woken without a Push")
	default:
	}
	q.Push(1)
	q.Push(2)
	select {
	case <-q.Ready():
	default:
		t.Fatal("no wake-up after Push")
	}
	select {
	case <-q.Ready():
		t.Fatal("two wake-ups pending")
	default:
	}
	if got := q.Take(); len(got) != 2 {
		t.Fatalf("Take = %v", got)
	}
}

func TestInvalidOptionsPanic(t *testing.T) {
	for name, opts := range map[string]Options[int]{
		"no MaxItems":      {},
		"negative reserve": {MaxItems: 1, Reserve: -1},
		"negative bytes":   {MaxItems: 1, MaxBytes: -1},
		"bytes, no Size":   {MaxItems: 1, MaxBytes: 10},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("New did not panic")
				}
			}()
			New(opts)
		})
	}
}

// TestConcurrentProducers: whatever is accepted is taken exactly once, in
// each producer's order; whatever is refused is counted.
func TestConcurrentProducers(t *testing.T) {
	const producers, each = 4, 5000
	refused := prometheus.NewCounter(prometheus.CounterOpts{Name: "refused_total", Help: "h"})
	q := New(Options[[2]int]{MaxItems: 64, Refused: refused})
	accepted := make([]int, producers)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if q.Push([2]int{p, i}) {
					accepted[p]++
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	last := make([]int, producers)
	for p := range last {
		last[p] = -1
	}
	taken := 0
	deadline := time.After(patience)
	consume := func() {
		for _, v := range q.Take() {
			if v[1] <= last[v[0]] {
				t.Fatalf("producer %d: item %d after %d", v[0], v[1], last[v[0]])
			}
			last[v[0]] = v[1]
			taken++
		}
	}
	for running := true; running; {
		consume()
		select {
		case <-q.Ready():
		case <-done:
			running = false
		case <-deadline:
			t.Fatal("producers never finished")
		}
	}
	consume()
	sum := 0
	for _, n := range accepted {
		sum += n
	}
	if taken != sum {
		t.Errorf("taken %d, accepted %d", taken, sum)
	}
	if got := value(t, refused); int(got) != producers*each-sum {
		t.Errorf("refused = %v, want %d", got, producers*each-sum)
	}
}

// BenchmarkPushTake measures the producer's and the consumer's cost per
// item: batches of 64, as a consumer that keeps up sees them.
func BenchmarkPushTake(b *testing.B) {
	frame := make([]byte, 512)
	run := func(b *testing.B, q *Bounded[[]byte]) {
		b.ReportAllocs()
		for i := range b.N {
			q.Push(frame)
			if i%64 == 63 {
				q.Take()
			}
		}
	}
	b.Run("items", func(b *testing.B) {
		run(b, New(Options[[]byte]{MaxItems: 1024}))
	})
	b.Run("bytes+metrics", func(b *testing.B) {
		run(b, New(Options[[]byte]{
			MaxItems: 1024, MaxBytes: 1 << 20, Size: func(f []byte) int { return len(f) },
			Depth:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "d", Help: "h"}),
			Refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "r", Help: "h"}),
		}))
	})
	// One producer goroutine against one consumer, as in the daemon.
	b.Run("concurrent", func(b *testing.B) {
		b.ReportAllocs()
		q := New(Options[[]byte]{MaxItems: 1 << 16})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for range b.N {
				for !q.Push(frame) {
				}
			}
		}()
		for n := 0; n < b.N; {
			n += len(q.Take())
			if n < b.N {
				<-q.Ready()
			}
		}
		<-done
	})
}
