package redisbus

import (
	"container/list"
	"time"
)

// recency keeps names for ttl after their last use, the least recently
// used first in line to be forgotten: using a name and forgetting the old
// ones cost O(1) each, however many names there are (no scan of a map).
// It is not safe for concurrent use.
type recency[V any] struct {
	ttl   time.Duration
	items map[string]*list.Element
	order list.List // of *recent[V], least recently used at the front
}

type recent[V any] struct {
	name string
	used time.Time
	val  V
}

func newRecency[V any](ttl time.Duration) *recency[V] {
	return &recency[V]{ttl: ttl, items: map[string]*list.Element{}}
}

// use returns name's value, zero when new, and marks it used at now. now
// must not go back between calls (take it under the caller's lock).
func (r *recency[V]) use(name string, now time.Time) *V {
	r.expire(now)
	if e, ok := r.items[name]; ok {
		it := e.Value.(*recent[V])
		it.used = now
		r.order.MoveToBack(e)
		return &it.val
	}
	it := &recent[V]{name: name, used: now}
	r.items[name] = r.order.PushBack(it)
	return &it.val
}

// has reports whether name was used within ttl.
func (r *recency[V]) has(name string, now time.Time) bool {
	r.expire(now)
	_, ok := r.items[name]
	return ok
}

// expire forgets the names unused for ttl, oldest first.
func (r *recency[V]) expire(now time.Time) {
	for e := r.order.Front(); e != nil; e = r.order.Front() {
		it := e.Value.(*recent[V])
		if now.Sub(it.used) < r.ttl {
			return
		}
		r.order.Remove(e)
		delete(r.items, it.name)
	}
}

// forget forgets name now.
func (r *recency[V]) forget(name string) {
	if e, ok := r.items[name]; ok {
		r.order.Remove(e)
		delete(r.items, name)
	}
}

func (r *recency[V]) len() int { return len(r.items) }
