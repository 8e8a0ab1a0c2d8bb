// Package msglog keeps the last messages of each agent by seq, so that
// a browser that reconnects gets what it missed rather than a snapshot.
// It is bounded three ways: messages and bytes per agent, and age: an
// agent who got no message for MaxAge is forgotten altogether, seq and
// all, so that the log holds only agents that are around.
//
// It compacts too: a message about one thing of the agent (a call) may
// say that it is a detail, superseded once that thing is over (a card),
// or the end of it (Keyed). EndedAge after an end, the details before it
// go; what says the state of the thing stays. A replay then gives what
// the messages kept give: a browser that saw the call gets how it ended,
// one that did not gets nothing of it, as a snapshot would.
//
// A Log is not safe for concurrent use (pop.Hub holds it under its lock)
// and reads no clock: the time comes with each call.
package msglog

import (
	"cmp"
	"errors"
	"slices"
	"time"
)

// Sized is a message that knows its size in bytes.
type Sized interface{ Size() int }

// Keyed is a message that may be about one thing of its agent, which the
// log compacts: LogKey names the thing ("" none: the message is kept as
// long as the bounds allow) and what the message is to it.
type Keyed interface {
	LogKey() (key string, kind Kind)
}

// Message is what the log keeps.
type Message interface {
	Sized
	Keyed
}

// Kind is what a Keyed message is to its key.
type Kind uint8

const (
	// Lasting: it says the key's state (the call was answered); kept as
	// long as the bounds allow.
	Lasting Kind = iota
	// Detail: superseded once its key ended (the card of a call): dropped
	// EndedAge after the key's next End.
	Detail
	// End: the key is over (the call ended); kept as long as the bounds
	// allow, it drops the key's details before it EndedAge later.
	End
)

// Options configures New. Zero values take the defaults named.
type Options struct {
	// MaxMessages and MaxBytes bound the messages kept per agent; defaults
	// 256 and 1 MiB. The newest message is kept whatever its size.
	MaxMessages int
	MaxBytes    int
	// MaxAge is how long messages are kept: older ones are never replayed,
	// and an agent who got none for MaxAge is forgotten. Default 10m.
	MaxAge time.Duration
	// EndedAge is how long the details of a key that ended are kept,
	// from its End: a browser back within it gets every message. The
	// details go when the agent's log is next used (a message, a replay)
	// after that. Default 0: at once; negative: never.
	EndedAge time.Duration
	// Base is the seq before the first message of every agent. pop.Hub
	// uses its start time in microseconds, so that a seq a browser kept
	// from another process is never taken for one of this.
	Base uint64
}

// Log is the message log of every agent.
type Log[M Message] struct {
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

type agent[M Message] struct {
	id   string
	last uint64 // the agent's last seq
	// from is the seq before the oldest message a replay may start after:
	// the last message dropped from the front (bounds, age), or the seq
	// the agent started after, or one Raise said the log has not all
	// the messages up to.
	from    uint64
	touched time.Time // its last message
	entries []entry[M]
	bytes   int
	// gone are the seqs above from of the details compaction dropped,
	// ascending: a browser that saw one resumes after it.
	gone []uint64
	// ends are the Ends whose details are still kept, oldest first.
	ends       []end
	prev, next *agent[M]
}

type end struct {
	key string
	seq uint64
	at  time.Time
}

type entry[M Message] struct {
	seq  uint64
	at   time.Time
	msg  M
	kind Kind // msg's, from LogKey when added: compaction reads it for every entry
}

// never is EndedAge when details are kept as long as the bounds allow.
const never = time.Duration(1<<63 - 1)

// New checks opt and returns an empty Log.
func New[M Message](opt Options) (*Log[M], error) {
	if opt.MaxMessages < 0 || opt.MaxBytes < 0 || opt.MaxAge < 0 {
		return nil, errors.New("msglog: limits must not be negative")
	}
	if opt.MaxMessages == 0 {
		opt.MaxMessages = 256
	}
	if opt.MaxBytes == 0 {
		opt.MaxBytes = 1 << 20
	}
	if opt.MaxAge == 0 {
		opt.MaxAge = 10 * time.Minute
	}
	if opt.EndedAge < 0 {
		opt.EndedAge = never
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
	if seq > a.last {
		// The messages up to seq are not all here: no replay from before.
		a.last, a.from = seq, seq
		a.gone = a.gone[:0]
	}
}

func (l *Log[M]) agent(agentID string) *agent[M] {
	a := l.agents[agentID]
	if a == nil {
		a = &agent[M]{id: agentID, last: l.floor, from: l.floor}
		l.agents[agentID] = a
	}
	return a
}

func (l *Log[M]) add(a *agent[M], seq uint64, m M, now time.Time) {
	key, kind := m.LogKey()
	a.last = max(a.last, seq)
	a.entries = append(a.entries, entry[M]{seq: seq, at: now, msg: m, kind: kind})
	a.bytes += m.Size()
	l.bytes += m.Size()
	a.touched = now
	l.touch(a)
	if kind == End && key != "" && l.opt.EndedAge != never {
		a.ends = append(a.ends, end{key: key, seq: seq, at: now})
	}
	l.compact(a, now)
	for len(a.entries) > 1 && (len(a.entries) > l.opt.MaxMessages || a.bytes > l.opt.MaxBytes) {
		l.dropOldest(a)
	}
	l.trimAge(a, now)
}

// compact drops the details of the keys that ended EndedAge ago or
// longer, and keeps their seqs in gone.
//
// It runs about once per call per agent once calls end steadily, over a
// log that is full by then (MaxMessages of answers and ends): so it asks
// LogKey only of the details, reads every other entry's kind from the
// entry, and moves entries only from the first one dropped.
func (l *Log[M]) compact(a *agent[M], now time.Time) {
	n := 0
	for n < len(a.ends) && now.Sub(a.ends[n].at) >= l.opt.EndedAge {
		n++
	}
	if n == 0 {
		return
	}
	done := a.ends[:n]
	dropped := len(a.gone)
	kept := 0
	for i := range a.entries {
		e := &a.entries[i]
		if e.kind == Detail {
			key, _ := e.msg.LogKey()
			if slices.ContainsFunc(done, func(x end) bool { return x.key == key && e.seq < x.seq }) {
				size := e.msg.Size()
				a.bytes -= size
				l.bytes -= size
				a.gone = append(a.gone, e.seq)
				continue
			}
		}
		if kept != i {
			a.entries[kept] = *e
		}
		kept++
	}
	clear(a.entries[kept:]) // let the messages go
	a.entries = a.entries[:kept]
	if len(a.gone) > dropped {
		slices.Sort(a.gone)
	}
	a.ends = slices.Delete(a.ends, 0, n)
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
	a.from = max(a.from, a.entries[0].seq)
	var zero entry[M]
	a.entries[0] = zero // let the message go
	a.entries = a.entries[1:]
	if i, _ := slices.BinarySearch(a.gone, a.from+1); i > 0 {
		a.gone = slices.Delete(a.gone, 0, i)
	}
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
// is looked up rather than computed: it must be the seq a replay may
// start after (from), or of a message the log kept or compacted away.
// What compaction dropped after since is not replayed.
func (l *Log[M]) Replay(agentID string, since uint64, now time.Time) ([]M, bool) {
	if since == l.Last(agentID) {
		return nil, true
	}
	a := l.agents[agentID]
	if a == nil || since > a.last {
		return nil, false
	}
	l.trimAge(a, now)
	l.compact(a, now)
	if since < a.from {
		return nil, false
	}
	i, found := slices.BinarySearchFunc(a.entries, since, func(e entry[M], seq uint64) int { return cmp.Compare(e.seq, seq) })
	if found {
		i++
	} else if _, gone := slices.BinarySearch(a.gone, since); !gone && since != a.from {
		return nil, false
	}
	return messages(a.entries[i:]), true
}

// After returns the agent's messages kept with a seq above seq.
func (l *Log[M]) After(agentID string, seq uint64, now time.Time) []M {
	a := l.agents[agentID]
	if a == nil {
		return nil
	}
	l.trimAge(a, now)
	l.compact(a, now)
	for i, e := range a.entries {
		if e.seq > seq {
			return messages(a.entries[i:])
		}
	}
	return nil
}

func messages[M Message](entries []entry[M]) []M {
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
