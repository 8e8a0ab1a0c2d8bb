package msglog

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// msg is a message of a given size, named for the test's messages.
type msg struct {
	name string
	size int
}

func (m msg) Size() int { return m.size }

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func newLog(t *testing.T, opt Options) *Log[msg] {
	t.Helper()
	l, err := New[msg](opt)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// appendNext adds m as the agent's next message and returns its seq, as
// pop.Hub numbers messages.
func appendNext(l *Log[msg], agentID string, m msg, now time.Time) uint64 {
	seq := l.Last(agentID) + 1
	l.Add(agentID, seq, m, now)
	return seq
}

func names(ms []msg) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.name)
	}
	return out
}

func TestNumbersAndReplays(t *testing.T) {
	l := newLog(t, Options{Base: 1000})
	if got := l.Last("alice"); got != 1000 {
		t.Fatalf("Last of a new agent = %d, want the base", got)
	}
	for i := range 3 {
		if seq := appendNext(l, "alice", msg{fmt.Sprint("m", i), 10}, t0); seq != 1001+uint64(i) {
			t.Fatalf("message %d numbered %d", i, seq)
		}
	}
	appendNext(l, "bob", msg{"b0", 10}, t0)
	for since, want := range map[uint64][]string{1000: {"m0", "m1", "m2"}, 1001: {"m1", "m2"}, 1003: nil} {
		got, ok := l.Replay("alice", since, t0)
		if !ok || !slices.Equal(names(got), want) {
			t.Errorf("Replay(since %d) = %v %v, want %v", since, names(got), ok, want)
		}
	}
	for _, since := range []uint64{1004, 42, 999} {
		if got, ok := l.Replay("alice", since, t0); ok {
			t.Errorf("Replay(since %d) = %v, want a gap", since, names(got))
		}
	}
	if got := names(l.After("alice", 1002, t0)); !slices.Equal(got, []string{"m2"}) {
		t.Errorf("After(1002) = %v", got)
	}
	if l.Agents() != 2 || l.Bytes() != 40 {
		t.Errorf("holds %d agents, %d bytes; want 2, 40", l.Agents(), l.Bytes())
	}
}

func TestBoundedByCountAndBytes(t *testing.T) {
	l := newLog(t, Options{MaxMessages: 3, MaxBytes: 100})
	for i := range 5 {
		appendNext(l, "alice", msg{fmt.Sprint("m", i), 10}, t0)
	}
	got, ok := l.Replay("alice", 2, t0) // m1's seq: m2.. kept
	if !ok || !slices.Equal(names(got), []string{"m2", "m3", "m4"}) {
		t.Errorf("after 5 messages with room for 3: %v %v", names(got), ok)
	}
	if _, ok := l.Replay("alice", 1, t0); ok {
		t.Error("a replay from a message no longer kept succeeded")
	}
	appendNext(l, "alice", msg{"big", 95}, t0)
	got, _ = l.Replay("alice", 5, t0)
	if !slices.Equal(names(got), []string{"big"}) || l.Bytes() != 95 {
		t.Errorf("after a message of 95 of 100 bytes: %v, %d bytes", names(got), l.Bytes())
	}
	// The newest message is kept whatever its size.
	appendNext(l, "alice", msg{"huge", 500}, t0)
	if got, ok := l.Replay("alice", 6, t0); !ok || !slices.Equal(names(got), []string{"huge"}) {
		t.Errorf("a message over the byte limit: %v %v", names(got), ok)
	}
}

// Messages older than MaxAge are never replayed, and an agent who got none
// for MaxAge is forgotten; their numbers still only grow.
func TestBoundedByAge(t *testing.T) {
	l := newLog(t, Options{MaxAge: 10 * time.Minute, Base: 100})
	appendNext(l, "alice", msg{"old", 10}, t0)                    // 101
	appendNext(l, "bob", msg{"b", 10}, t0.Add(5*time.Minute))     // 101
	appendNext(l, "alice", msg{"new", 10}, t0.Add(8*time.Minute)) // 102
	at := t0.Add(11 * time.Minute)
	if got, ok := l.Replay("alice", 100, at); ok {
		t.Errorf("replayed %v across a message that aged out", names(got))
	}
	if got, ok := l.Replay("alice", 101, at); !ok || !slices.Equal(names(got), []string{"new"}) {
		t.Errorf("replay after the aged message: %v %v", names(got), ok)
	}
	if next, ok := l.NextExpiry(); !ok || !next.Equal(t0.Add(15*time.Minute)) {
		t.Errorf("next expiry %v %v, want bob's at +15m", next, ok)
	}
	if gone := l.Expire(t0.Add(14 * time.Minute)); len(gone) != 0 {
		t.Errorf("forgot %v too early", gone)
	}
	if gone := l.Expire(t0.Add(15 * time.Minute)); !slices.Equal(gone, []string{"bob"}) {
		t.Errorf("forgot %v at +15m, want bob", gone)
	}
	if l.Holds("bob") || !l.Holds("alice") || l.Agents() != 1 || l.Bytes() != 10 {
		t.Errorf("after bob went: holds bob %v, alice %v, %d agents, %d bytes", l.Holds("bob"), l.Holds("alice"), l.Agents(), l.Bytes())
	}
	if gone := l.Expire(t0.Add(18 * time.Minute)); !slices.Equal(gone, []string{"alice"}) {
		t.Errorf("forgot %v at +18m, want alice", gone)
	}
	if _, ok := l.NextExpiry(); ok || l.Agents() != 0 || l.Bytes() != 0 {
		t.Errorf("an empty log still has %d agents, %d bytes", l.Agents(), l.Bytes())
	}
	// They come back. Numbers go on from the highest seq the log forgot
	// (alice's 102), so a browser's since from before is never taken for
	// a later message: alice's page, which saw 102, misses only what came
	// since; bob's, which saw 101, cannot tell what 102 was and gets a
	// snapshot.
	at = t0.Add(20 * time.Minute)
	if seq := appendNext(l, "alice", msg{"again", 10}, at); seq != 103 {
		t.Errorf("alice's first message after she was forgotten: seq %d, want 103", seq)
	}
	if got, ok := l.Replay("alice", 102, at); !ok || !slices.Equal(names(got), []string{"again"}) {
		t.Errorf("alice resuming from 102: %v %v", names(got), ok)
	}
	if seq := appendNext(l, "bob", msg{"b2", 10}, at); seq != 103 {
		t.Errorf("bob's first message after he was forgotten: seq %d, want 103", seq)
	}
	if got, ok := l.Replay("bob", 101, at); ok {
		t.Errorf("bob resumed from 101 with %v, across numbers he never saw", names(got))
	}
}

// An agent's next message goes to the back of the queue to forget.
func TestExpiryFollowsTheLastMessage(t *testing.T) {
	l := newLog(t, Options{MaxAge: time.Minute})
	appendNext(l, "a", msg{"1", 1}, t0)
	appendNext(l, "b", msg{"1", 1}, t0.Add(10*time.Second))
	appendNext(l, "a", msg{"2", 1}, t0.Add(20*time.Second))
	if gone := l.Expire(t0.Add(70 * time.Second)); !slices.Equal(gone, []string{"b"}) {
		t.Errorf("forgot %v, want b only", gone)
	}
	if next, _ := l.NextExpiry(); !next.Equal(t0.Add(80 * time.Second)) {
		t.Errorf("next expiry %v", next)
	}
}

// Raise: a browser arrived with messages numbered elsewhere up to seq.
func TestRaise(t *testing.T) {
	l := newLog(t, Options{Base: 10, MaxAge: time.Minute})
	l.Raise("alice", 5, t0) // below the base: nothing to remember
	if l.Holds("alice") {
		t.Error("a raise below the base made the log hold alice")
	}
	l.Raise("alice", 500, t0)
	if seq := appendNext(l, "alice", msg{"m", 1}, t0); seq != 501 {
		t.Errorf("after Raise(500): seq %d", seq)
	}
	l.Add("alice", 900, msg{"n", 1}, t0)
	if got := l.Last("alice"); got != 900 {
		t.Errorf("Last after Add(900) = %d", got)
	}
	if got, ok := l.Replay("alice", 501, t0); !ok || !slices.Equal(names(got), []string{"n"}) {
		t.Errorf("replay across numbers from elsewhere: %v %v", names(got), ok)
	}
	l.Raise("bob", 700, t0)
	if gone := l.Expire(t0.Add(time.Minute)); len(gone) != 2 {
		t.Errorf("forgot %v, want both", gone)
	}
	if got := l.Last("carol"); got != 900 {
		t.Errorf("a new agent starts after %d, want after every forgotten seq (900)", got)
	}
}

func TestNegativeLimitsRefused(t *testing.T) {
	if _, err := New[msg](Options{MaxAge: -1}); err == nil {
		t.Error("negative MaxAge accepted")
	}
}
