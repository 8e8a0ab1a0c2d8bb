// Package queue is the one bounded FIFO between the stages of screenpop's
// pipeline (the ARI socket reader and the call model, the call sources and
// the dispatcher, the dispatcher and the Redis bus).
//
// Every stage has the same shape: a producer that must never wait (a
// socket reader Asterisk drops when it is slow, a dispatcher that holds its
// state locked) and one consumer that takes whatever is there in a batch.
// Bounded gives that shape a limit, a depth gauge and a count of refused
// items; what happens to a refused item is the stage's own policy, so Push
// only reports it.
//
//	q := queue.New(queue.Options[Frame]{MaxItems: 1000, Depth: depth, Refused: overflows})
//
//	// producer
//	if !q.Push(f) {
//		// the stage's policy: drop the socket, shed, fall back...
//	}
//
//	// consumer (one goroutine)
//	for {
//		for _, f := range q.Take() {
//			handle(f)
//		}
//		select {
//		case <-q.Ready():
//		case <-ctx.Done():
//			return
//		}
//	}
package queue

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configures New.
type Options[T any] struct {
	// MaxItems bounds the items queued. Required: more than 0.
	MaxItems int
	// Reserve is how many items PushReserve may queue beyond MaxItems: room
	// kept for the few items a stage must not lose when it sheds the rest
	// (the dispatcher's ended calls). Push never uses it.
	Reserve int
	// MaxBytes bounds the sum of Size over the items queued; 0 means no
	// byte bound. An item is always accepted into an empty queue, however
	// large, so that a bound below the largest item cannot refuse
	// everything.
	MaxBytes int64
	// Size is the size in bytes of an item; required with MaxBytes. It is
	// called without the queue's lock held.
	Size func(T) int
	// Depth, when not nil, is set to the number of items queued (not yet
	// taken) after every Push and Take. The caller creates it, with the
	// labels it wants, and registers it.
	Depth prometheus.Gauge
	// Refused, when not nil, counts the items Push and PushReserve
	// refused. The caller creates and registers it.
	Refused prometheus.Counter
}

// Bounded is a FIFO with a limit. Push never blocks and may be called from
// any goroutine; Take and Ready belong to one consumer goroutine.
type Bounded[T any] struct {
	opts  Options[T]
	ready chan struct{} // one pending wake-up at most

	mu    sync.Mutex
	items []T
	bytes int64

	// spare is the array of the batch Take handed out last: the consumer
	// is done with it by its next Take, which reuses it, so that a steady
	// flow costs no allocation.
	spare []T
}

// maxSpare bounds the array Take keeps for reuse: after a burst, a large
// batch's array goes to the garbage collector instead of staying forever.
const maxSpare = 1024

// New returns an empty queue. It panics when MaxItems is not positive,
// when Reserve or MaxBytes is negative, or when MaxBytes is set without
// Size: those are programming errors, and callers validate the limits
// they read from configuration before.
func New[T any](opts Options[T]) *Bounded[T] {
	switch {
	case opts.MaxItems <= 0:
		panic("queue: MaxItems must be positive")
	case opts.Reserve < 0:
		panic("queue: Reserve must not be negative")
	case opts.MaxBytes < 0:
		panic("queue: MaxBytes must not be negative")
	case opts.MaxBytes > 0 && opts.Size == nil:
		panic("queue: MaxBytes needs Size")
	}
	if opts.Depth != nil {
		opts.Depth.Set(0)
	}
	return &Bounded[T]{opts: opts, ready: make(chan struct{}, 1)}
}

// Push appends v unless the queue holds MaxItems items, or v would take it
// past MaxBytes; it never blocks. False means v was refused (and counted):
// the caller applies its stage's policy.
func (q *Bounded[T]) Push(v T) bool { return q.push(v, q.opts.MaxItems) }

// PushReserve is Push for the items a stage must keep: it may also fill
// the Reserve beyond MaxItems. MaxBytes applies as to Push.
func (q *Bounded[T]) PushReserve(v T) bool { return q.push(v, q.opts.MaxItems+q.opts.Reserve) }

func (q *Bounded[T]) push(v T, limit int) bool {
	var size int64
	if q.opts.MaxBytes > 0 {
		size = int64(q.opts.Size(v))
	}
	q.mu.Lock()
	n := len(q.items)
	if n >= limit || (n > 0 && q.opts.MaxBytes > 0 && q.bytes+size > q.opts.MaxBytes) {
		q.mu.Unlock()
		if q.opts.Refused != nil {
			q.opts.Refused.Inc()
		}
		return false
	}
	q.items = append(q.items, v)
	q.bytes += size
	if q.opts.Depth != nil {
		// Under the lock, so that concurrent pushes cannot leave an older
		// depth behind.
		q.opts.Depth.Set(float64(n + 1))
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return true
}

// Take removes and returns every item queued, oldest first, or nil. The
// slice is the caller's until its next Take, which reuses its array: handle
// the batch before taking the next one, and keep no reference to it.
func (q *Bounded[T]) Take() []T {
	// Only the consumer touches spare: release the previous batch's items
	// for the garbage collector outside the lock, which the producer needs.
	clear(q.spare)
	next := q.spare[:0]
	if cap(next) > maxSpare {
		next = nil
	}
	q.mu.Lock()
	out := q.items
	if len(out) == 0 {
		q.mu.Unlock()
		q.spare = next
		return nil
	}
	q.items, q.bytes = next, 0
	if q.opts.Depth != nil {
		q.opts.Depth.Set(0)
	}
	q.mu.Unlock()
	q.spare = out
	return out
}

// Ready receives after a Push. One wake-up is kept pending at most, so the
// consumer takes everything when woken, and may now and then find nothing.
func (q *Bounded[T]) Ready() <-chan struct{} { return q.ready }

// Len is the number of items queued, not yet taken.
func (q *Bounded[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Bytes is the sum of Size over the items queued (0 without MaxBytes).
func (q *Bounded[T]) Bytes() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}
