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

func (m msg) LogKey() (string, Kind) { return "", Lasting }

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

// kmsg is a message about a key (a call), for compaction.
type kmsg struct {
	name string
	size int
	key  string
	kind Kind
}

func (m kmsg) Size() int              { return m.size }
func (m kmsg) LogKey() (string, Kind) { return m.key, m.kind }
func knames(ms []kmsg) (out []string) {
	for _, m := range ms {
		out = append(out, m.name)
	}
	return out
}

func newKLog(t testing.TB, opt Options) *Log[kmsg] {
	t.Helper()
	l, err := New[kmsg](opt)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// A call's details go EndedAge after it ended; what says its state stays,
// and a browser that saw a detail that went still resumes after it.
func TestCompactionDropsTheDetailsOfWhatEnded(t *testing.T) {
	l := newKLog(t, Options{Base: 100, EndedAge: time.Minute})
	add := func(name string, size int, key string, kind Kind, at time.Time) uint64 {
		seq := l.Last("alice") + 1
		l.Add("alice", seq, kmsg{name, size, key, kind}, at)
		return seq
	}
	add("pop1", 4000, "c1", Detail, t0)          // 101
	card := add("card1", 3000, "c1", Detail, t0) // 102
	add("answered1", 100, "c1", Lasting, t0)     // 103
	add("pop2", 4000, "c2", Detail, t0)          // 104: rings while c1 goes on
	add("section1", 500, "c1", Detail, t0)       // 105
	add("ended1", 100, "c1", End, t0.Add(time.Second))
	add("note1", 200, "c1", Detail, t0.Add(2*time.Second)) // after the end: stays

	all := []string{"pop1", "card1", "answered1", "pop2", "section1", "ended1", "note1"}
	at := t0.Add(time.Minute) // 59s after the end: everything is still there
	if got, ok := l.Replay("alice", 100, at); !ok || !slices.Equal(knames(got), all) {
		t.Fatalf("within EndedAge: %v %v, want %v", knames(got), ok, all)
	}
	if l.Bytes() != 11900 {
		t.Errorf("holds %d bytes, want 11900", l.Bytes())
	}
	at = t0.Add(time.Second + time.Minute)
	compacted := []string{"answered1", "pop2", "ended1", "note1"}
	if got, ok := l.Replay("alice", 100, at); !ok || !slices.Equal(knames(got), compacted) {
		t.Fatalf("EndedAge after the end: %v %v, want %v", knames(got), ok, compacted)
	}
	if l.Bytes() != 4400 {
		t.Errorf("after compaction holds %d bytes, want 4400", l.Bytes())
	}
	// A browser that saw the card (gone now) gets what came after it.
	if got, ok := l.Replay("alice", card, at); !ok || !slices.Equal(knames(got), compacted) {
		t.Errorf("resuming after a detail that went: %v %v", knames(got), ok)
	}
	if got, ok := l.Replay("alice", 104, at); !ok || !slices.Equal(knames(got), []string{"ended1", "note1"}) {
		t.Errorf("resuming after pop2: %v %v", knames(got), ok)
	}
	// c2 ends: its pop goes at once with EndedAge behind it.
	add("ended2", 100, "c2", End, at)
	at = at.Add(time.Minute)
	if got, ok := l.Replay("alice", 100, at); !ok || !slices.Equal(knames(got), []string{"answered1", "ended1", "note1", "ended2"}) {
		t.Errorf("after c2 ended: %v %v", knames(got), ok)
	}
	// A seq the agent never had is no place to resume from.
	if got, ok := l.Replay("alice", 99, at); ok {
		t.Errorf("resumed from before the base: %v", knames(got))
	}
}

// A call that comes back after its end (a transfer returned) has details
// of its own, kept until the next end.
func TestCompactionKeepsWhatCameAfterTheEnd(t *testing.T) {
	l := newKLog(t, Options{}) // EndedAge 0: at once
	for _, m := range []kmsg{{"pop", 10, "c", Detail}, {"withdrawn", 1, "c", End}, {"pop again", 10, "c", Detail}, {"other", 5, "", Detail}} {
		l.Add("a", l.Last("a")+1, m, t0)
	}
	if got, ok := l.Replay("a", 0, t0); !ok || !slices.Equal(knames(got), []string{"withdrawn", "pop again", "other"}) {
		t.Errorf("got %v %v", knames(got), ok)
	}
	never := newKLog(t, Options{EndedAge: -1})
	for _, m := range []kmsg{{"pop", 10, "c", Detail}, {"ended", 1, "c", End}} {
		never.Add("a", never.Last("a")+1, m, t0)
	}
	if got, _ := never.Replay("a", 0, t0.Add(9*time.Minute)); len(got) != 2 {
		t.Errorf("EndedAge < 0 compacted: %v", knames(got))
	}
}

// The bounds drop from the front as before, compacted seqs with them: a
// browser from before the front gets a snapshot.
func TestCompactionAndTheBounds(t *testing.T) {
	l := newKLog(t, Options{MaxMessages: 2})
	for _, m := range []kmsg{{"pop", 10, "c", Detail}, {"answered", 1, "c", Lasting}, {"ended", 1, "c", End}, {"pop2", 10, "d", Detail}} {
		l.Add("a", l.Last("a")+1, m, t0)
	}
	// pop went by compaction (seq 1), answered by the bound (seq 2).
	if got, ok := l.Replay("a", 2, t0); !ok || !slices.Equal(knames(got), []string{"ended", "pop2"}) {
		t.Errorf("from the front: %v %v", knames(got), ok)
	}
	for _, since := range []uint64{0, 1} {
		if got, ok := l.Replay("a", since, t0); ok {
			t.Errorf("Replay(since %d) across a message the bound dropped: %v", since, knames(got))
		}
	}
}

// Raise: messages numbered elsewhere that the log has not: no replay from
// before them.
func TestRaiseStopsReplaysFromBefore(t *testing.T) {
	l := newKLog(t, Options{Base: 10})
	l.Add("a", 11, kmsg{"m", 1, "", Lasting}, t0)
	l.Raise("a", 20, t0)
	l.Add("a", 21, kmsg{"n", 1, "", Lasting}, t0)
	if got, ok := l.Replay("a", 11, t0); ok {
		t.Errorf("replayed %v across seqs 12..20 the log never had", knames(got))
	}
	if got, ok := l.Replay("a", 20, t0); !ok || !slices.Equal(knames(got), []string{"n"}) {
		t.Errorf("from the raise: %v %v", knames(got), ok)
	}
}

// BenchmarkLogAtTheBenchRate replays what the load harness's cache-hit
// case at 500 calls/s gives the log (bench/: 300 agents, a pop of 3939
// bytes, answered 159, ended 177, for 16,666 calls, each agent's in
// turn) with the hub's bounds, and reports the bytes of messages held at
// the end, with and without compaction.
func BenchmarkLogAtTheBenchRate(b *testing.B) {
	for _, tc := range []struct {
		name string
		opt  Options
	}{
		{"before", Options{MaxMessages: 256, MaxBytes: 4 << 20, EndedAge: -1}},
		{"compacted", Options{MaxMessages: 256, MaxBytes: 1 << 20, EndedAge: 15 * time.Second}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var held int
			for b.Loop() {
				l := newKLog(b, tc.opt)
				for i := range 16666 {
					at := t0.Add(time.Duration(i) * time.Second / 500)
					agent := fmt.Sprintf("agent-%03d", i%300)
					call := fmt.Sprint("call-", i)
					for _, m := range []kmsg{{"pop", 3939, call, Detail}, {"answered", 159, call, Lasting}, {"ended", 177, call, End}} {
						l.Add(agent, l.Last(agent)+1, m, at)
					}
				}
				held = l.Bytes()
			}
			b.ReportMetric(float64(held)/(1<<20), "MiB-held")
		})
	}
}

// BenchmarkLogFull is the log once every agent's is full, as after the
// first minute or two of the harness's soak (bench/: 300 agents, 500
// calls/s): each call leaves its answer and end behind, so after 128
// calls an agent's log holds 256 messages, and every call's end that
// ages past EndedAge compacts that log. One op is one call's three
// messages to the next agent in turn.
func BenchmarkLogFull(b *testing.B) {
	l := newKLog(b, Options{MaxMessages: 256, MaxBytes: 1 << 20, EndedAge: 15 * time.Second})
	agents := make([]string, 300)
	for i := range agents {
		agents[i] = fmt.Sprintf("agent-%03d", i)
	}
	i := 0
	call := func() {
		at := t0.Add(time.Duration(i) * time.Second / 500)
		agent, id := agents[i%len(agents)], fmt.Sprint("call-", i)
		for _, m := range []kmsg{{"pop", 3939, id, Detail}, {"answered", 159, id, Lasting}, {"ended", 177, id, End}} {
			l.Add(agent, l.Last(agent)+1, m, at)
		}
		i++
	}
	for range 2 * 60 * 500 { // two minutes of calls: every log full
		call()
	}
	if got := len(l.After(agents[0], 0, t0.Add(time.Duration(i)*time.Second/500))); got < 250 {
		b.Fatalf("an agent's log holds %d messages after two minutes, want it full", got)
	}
	for b.Loop() {
		call()
	}
}
