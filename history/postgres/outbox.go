package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/screenpop/screenpop/history"
)

// outbox is the bounded buffer of writes waiting for PostgreSQL. Unlike
// queue.Bounded, which hands its items out, it keeps a write (counted
// against its bound and in its depth) until the write is committed: the
// writer reads a batch from the head, and drops it only once it is done.
type outbox struct {
	max   int
	ready chan struct{} // one pending wake-up at most

	mu       sync.Mutex
	closed   bool
	items    []*op // oldest first
	pushed   uint64
	done     uint64        // seq of the last write dropped
	progress chan struct{} // closed and replaced at every drop
}

func newOutbox(max int) *outbox {
	return &outbox{max: max, ready: make(chan struct{}, 1), progress: make(chan struct{})}
}

// push queues o, or refuses it when the buffer is full or closed. It never
// blocks.
func (b *outbox) push(o *op) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.closed:
		return history.ErrClosed
	case len(b.items) >= b.max:
		return fmt.Errorf("%w (%d writes waiting for PostgreSQL)", history.ErrBufferFull, len(b.items))
	}
	b.pushed++
	o.seq = b.pushed
	b.items = append(b.items, o)
	select {
	case b.ready <- struct{}{}:
	default:
	}
	return nil
}

// head returns up to n writes from the head, oldest first.
func (b *outbox) head(n int) []*op {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*op(nil), b.items[:min(n, len(b.items))]...)
}

// drop removes the n writes at the head: they are done.
func (b *outbox) drop(n int) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = b.items[n-1].seq
	clear(b.items[:n])
	b.items = b.items[n:]
	if len(b.items) == 0 {
		b.items = nil // let a burst's array go
	}
	close(b.progress)
	b.progress = make(chan struct{})
}

func (b *outbox) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.items)
}

// close refuses later pushes and returns how many writes are left.
func (b *outbox) close() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	return len(b.items)
}

// wait returns once every write pushed before it is done.
func (b *outbox) wait(ctx context.Context) error {
	b.mu.Lock()
	target := b.pushed
	b.mu.Unlock()
	for {
		b.mu.Lock()
		done, progress := b.done >= target || len(b.items) == 0, b.progress
		b.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return fmt.Errorf("history: %d write(s) still waiting for PostgreSQL: %w", b.len(), context.Cause(ctx))
		}
	}
}
