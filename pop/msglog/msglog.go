// Package msglog keeps the last messages of each agent by seq, so that
// a browser that reconnects gets what it missed rather than a snapshot.
// It is bounded three ways: messages and bytes per agent, and age: an
// agent who got no message for MaxAge is forgotten altogether, seq and
// all, so that the log holds only agents that are around.
//
// A Log is not safe for concurrent use (pop.Hub holds it under its lock)
// and reads no clock: the time comes with each call.
package msglog

import (
	"errors"
	"time"
)

// Sized is a message that knows its size in bytes.
type Sized interface{ Size() int }

// Options configures New. Zero values take the defaults named.
type Options struct {
	// MaxMessages and MaxBytes bound the messages kept per agent; defaults
	// 256 and 4 MiB. The newest message is kept whatever its size.
	MaxMessages int
	MaxBytes    int
	// MaxAge is how long messages are kept: older ones are never replayed,
	// and an agent who got none for MaxAge is forgotten. Default 10m.
	MaxAge time.Duration
	// Base is the seq before the first message of every agent. pop.Hub
	// uses its start time in microseconds, so that a seq a browser kept
	// from another process is never taken for one of this.
	Base uint64
}

// Log is the message log of every agent.
type Log[M Sized] struct {
	opt    Options
	agents map[string]*agent[M]
	// Agents by their last message, oldest first: the next to be
	// forgotten is at the front.
	oldest, newest *agent[M]
	// floor is the seq before the first message of an agent the log does
	// not hold: above every seq of an agent it forgot, so that numbers
	// only grow for an agent that comes back.
	floor uint64
	bytes int
}

type agent[M Sized] struct {
	id         string
	last       uint64    // the agent's last seq
	touched    time.Time // its last message
	entries    []entry[M]
	bytes      int
	prev, next *agent[M]
}

type entry[M Sized] struct {
	seq uint64
	at  time.Time
	msg M
}

// New checks opt and returns an empty Log.
func New[M Sized](opt Options) (*Log[M], error) {
	if opt.MaxMessages < 0 || opt.MaxBytes < 0 || opt.MaxAge < 0 {
		return nil, errors.New("msglog: limits must not be negative")
	}
	if opt.MaxMessages == 0 {
		opt.MaxMessages = 256
	}
	if opt.MaxBytes == 0 {
		opt.MaxBytes = 4 << 20
	}
	if opt.MaxAge == 0 {
		opt.MaxAge = 10 * time.Minute
	}
	return &Log[M]{opt: opt, agents: map[string]*agent[M]{}, floor: opt.Base}, nil
}

// Last is the agent's last seq: a snapshot taken now covers every message
// up to it.
func (l *Log[M]) Last(agentID string) uint64 {
	if a := l.agents[agentID]; a != nil {
		return a.last
	}
	return l.floor
}

// Add keeps m as the agent's message seq: Last+1 when the log numbers
// the agent's messages, or a seq from elsewhere (a shared stream). Seqs
// must grow.
func (l *Log[M]) Add(agentID string, seq uint64, m M, now time.Time) {
	l.add(l.agent(agentID), seq, m, now)
}

// Raise makes sure the agent's next seq is above seq: a browser came with
// messages numbered elsewhere, up to seq.
func (l *Log[M]) Raise(agentID string, seq uint64, now time.Time) {
	a := l.agents[agentID]
	if a == nil {
		if seq <= l.floor {
			return
		}
		a = l.agent(agentID)
		a.touched = now
		l.touch(a)
	}
	a.last = max(a.last, seq)
}

func (l *Log[M]) agent(agentID string) *agent[M] {
	a := l.agents[agentID]
	if a == nil {
		a = &agent[M]{id: agentID, last: l.floor}
		l.agents[agentID] = a
	}
	return a
}

func (l *Log[M]) add(a *agent[M], seq uint64, m M, now time.Time) {
	a.last = max(a.last, seq)
	a.entries = append(a.entries, entry[M]{seq: seq, at: now, msg: m})
	a.bytes += m.Size()
	l.bytes += m.Size()
	a.touched = now
	l.touch(a)
	for len(a.entries) > 1 && (len(a.entries) > l.opt.MaxMessages || a.bytes > l.opt.MaxBytes) {
		l.dropOldest(a)
	}
	l.trimAge(a, now)
}

// touch moves a to the newest end of the list.
func (l *Log[M]) touch(a *agent[M]) {
	if l.newest == a {
		return
	}
	l.unlink(a)
	a.prev = l.newest
	if l.newest != nil {
		l.newest.next = a
	}
	l.newest = a
	if l.oldest == nil {
		l.oldest = a
	}
}

func (l *Log[M]) unlink(a *agent[M]) {
	if a.prev != nil {
		a.prev.next = a.next
	} else if l.oldest == a {
		l.oldest = a.next
	}
	if a.next != nil {
		a.next.prev = a.prev
	} else if l.newest == a {
		l.newest = a.prev
	}
	a.prev, a.next = nil, nil
}

func (l *Log[M]) dropOldest(a *agent[M]) {
	n := a.entries[0].msg.Size()
	a.bytes -= n
	l.bytes -= n
	var zero entry[M]
	a.entries[0] = zero // let the message go
	a.entries = a.entries[1:]
}

// trimAge drops the agent's messages MaxAge old or older.
func (l *Log[M]) trimAge(a *agent[M], now time.Time) {
	for len(a.entries) > 0 && now.Sub(a.entries[0].at) >= l.opt.MaxAge {
		l.dropOldest(a)
	}
}

// Replay returns the agent's messages after since, or false when the log
// cannot fill the gap: since is older than what is kept (the log
// overflowed, or the messages aged), unknown, or from another process.
// Seqs numbered by a shared stream grow but are not consecutive, so since
// is looked up rather than computed.
func (l *Log[M]) Replay(agentID string, since uint64, now time.Time) ([]M, bool) {
	if since == l.Last(agentID) {
		return nil, true
	}
	a := l.agents[agentID]
	if a == nil || since > a.last {
		return nil, false
	}
	l.trimAge(a, now)
	if len(a.entries) == 0 {
		return nil, false
	}
	from := -1
	if since+1 == a.entries[0].seq {
		from = 0
	} else {
		for i, e := range a.entries {
			if e.seq == since {
				from = i + 1
				break
			}
		}
	}
	if from < 0 {
		return nil, false
	}
	return messages(a.entries[from:]), true
}

// After returns the agent's messages kept with a seq above seq.
func (l *Log[M]) After(agentID string, seq uint64, now time.Time) []M {
	a := l.agents[agentID]
	if a == nil {
		return nil
	}
	l.trimAge(a, now)
	for i, e := range a.entries {
		if e.seq > seq {
			return messages(a.entries[i:])
		}
	}
	return nil
}

func messages[M Sized](entries []entry[M]) []M {
	out := make([]M, len(entries))
	for i, e := range entries {
		out[i] = e.msg
	}
	return out
}

// Expire forgets the agents who got no message for MaxAge, and returns
// them.
func (l *Log[M]) Expire(now time.Time) []string {
	var gone []string
	for a := l.oldest; a != nil && now.Sub(a.touched) >= l.opt.MaxAge; a = l.oldest {
		l.unlink(a)
		delete(l.agents, a.id)
		l.bytes -= a.bytes
		l.floor = max(l.floor, a.last)
		gone = append(gone, a.id)
	}
	return gone
}

// NextExpiry is when Expire will next forget an agent, if the log holds
// any.
func (l *Log[M]) NextExpiry() (time.Time, bool) {
	if l.oldest == nil {
		return time.Time{}, false
	}
	return l.oldest.touched.Add(l.opt.MaxAge), true
}

// Holds reports whether the log remembers the agent.
func (l *Log[M]) Holds(agentID string) bool { return l.agents[agentID] != nil }

// Agents is how many agents the log remembers.
func (l *Log[M]) Agents() int { return len(l.agents) }

// Bytes is the size of every message kept.
func (l *Log[M]) Bytes() int { return l.bytes }
