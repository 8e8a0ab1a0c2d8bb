package ari

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/telephony/ari/fakeari"
)

// stallSink holds the first event of one caller until released: a
// pipeline that stalls while Asterisk goes on sending.
type stallSink struct {
	*collector
	number  string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	freed   sync.Once
}

func (s *stallSink) free() { s.freed.Do(func() { close(s.release) }) }

func (s *stallSink) HandleCall(ev screenpop.CallEvent) {
	if ev.Caller.Number == s.number {
		s.once.Do(func() {
			close(s.entered)
			<-s.release
		})
	}
	s.collector.HandleCall(ev)
}

func (s *stallSink) released() bool {
	select {
	case <-s.release:
		return true
	default:
		return false
	}
}

func (s *stallSink) stalled() bool {
	select {
	case <-s.entered:
		return true
	default:
		return false
	}
}

// TestQueueOverflowDropsTheSocketAndResyncs fills the frame queue while
// the pipeline stalls: the source must drop the socket rather than grow,
// count the overflow, and once the pipeline moves again reconnect, resync
// from the live channels and end every call correctly.
//
// Call B rings before the stall and is abandoned while the source is
// behind; call A stalls the pipeline with its first pop, rings on and is
// answered by 1002 after the reconnect.
func TestQueueOverflowDropsTheSocketAndResyncs(t *testing.T) {
	const capacity = 8
	a := callCopy(recording(t, "answered.jsonl"), 1, "+4930000001")
	b := callCopy(recording(t, "abandoned.jsonl"), 2, "+4930000002")
	aRinging := indexOf(t, a, `"dialstatus":"RINGING"`, `PJSIP/1003-`) + 1
	bRinging := indexOf(t, b, `"dialstatus":"RINGING"`, `PJSIP/1003-`) + 1

	srv := fakeari.New(t)
	var sink *stallSink
	h := startWith(t, srv, func(c *Config) { c.MaxQueuedEvents = capacity },
		func(c *collector) screenpop.CallSink {
			sink = &stallSink{collector: c, number: "+4930000001", entered: make(chan struct{}), release: make(chan struct{})}
			t.Cleanup(sink.free)
			return sink
		})
	h.waitReady()

	// One frame at a time, each handled before the next is sent: a queue
	// of 8 holds no burst. Until the sink is released, it stops early when
	// the sink stalls; it returns how many frames it sent.
	sendPaced := func(name string, lines [][]byte) int {
		t.Helper()
		mayStall := !sink.released()
		handled := h.eventsTotal()
		for i, l := range lines {
			if n := srv.Send(l); n != 1 {
				t.Fatalf("%s's event %d went to %d sockets, want 1", name, i, n)
			}
			handled++
			deadline := time.Now().Add(patience)
			for h.eventsTotal() < handled && !(mayStall && sink.stalled()) {
				if time.Now().After(deadline) {
					t.Fatalf("%s's event %d was never handled", name, i)
				}
				time.Sleep(time.Millisecond)
			}
			if mayStall && sink.stalled() {
				return i + 1
			}
		}
		return len(lines)
	}

	sendPaced("B", b[:bRinging])
	h.sink.waitFor(t, "B to ring at three agents", func(evs []screenpop.CallEvent) bool {
		return slices.ContainsFunc(evs, func(ev screenpop.CallEvent) bool {
			return ev.Caller.Number == "+4930000002" && ev.Kind == screenpop.EventRinging && len(ev.Agents) == 3
		})
	})
	// A's first pop stalls the pipeline with the queue empty: exactly
	// capacity more frames fit.
	sent := sendPaced("A", a[:aRinging])
	if !sink.stalled() {
		t.Fatal("A never reached the sink")
	}
	// Asterisk goes on: the rest of A's ringing, then B is abandoned. More
	// than capacity frames: the reader must give up the socket, not grow.
	flood := slices.Concat(a[sent:aRinging], b[bRinging:])
	if len(flood) <= capacity {
		t.Fatalf("only %d frames to flood a queue of %d", len(flood), capacity)
	}
	for _, l := range flood {
		srv.Send(l) // 1 until the source drops the socket, 0 after
	}
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := srv.WaitClosed(ctx); err != nil {
		t.Fatalf("the source kept its socket with a full queue: %v", err)
	}
	if got := h.counter("screenpop_ari_queue_overflows_total", "source", "ari"); got != 1 {
		t.Errorf("queue_overflows_total = %v, want 1", got)
	}
	if got := h.counter("screenpop_ari_queued_events", "source", "ari"); got != capacity {
		t.Errorf("queued_events = %v with the pipeline stalled, want the capacity %d", got, capacity)
	}
	// The pipeline moves again: the source applies what it queued,
	// reconnects and resyncs.
	sink.free()
	deadline := time.Now().Add(patience)
	for h.counter("screenpop_ari_reconnects_total", "source", "ari") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the source never reconnected after the overflow; Ready() = %v", h.src.Ready())
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.waitReady()
	h.waitSocket(2) // the application existed: Ready does not imply the new socket is filed
	if logs := h.logs.String(); !strings.Contains(logs, "the pipeline fell behind by 8 events") {
		t.Errorf("the log does not say why the socket was dropped:\n%s", logs)
	}
	var idB string
	for _, ev := range h.sink.snapshot() {
		if ev.Caller.Number == "+4930000002" {
			idB = ev.CallID
		}
	}
	h.sink.waitFor(t, "B to be ended (abandoned while the source was behind)", hasEnded(idB))

	// A goes on after the reconnect and is answered by 1002.
	sendPaced("A", a[aRinging:])
	evs := h.sink.waitEnded(t, "A and B to end", 2)

	var evA, evB []screenpop.CallEvent
	for _, ev := range evs {
		switch ev.Caller.Number {
		case "+4930000001":
			evA = append(evA, ev)
		case "+4930000002":
			evB = append(evB, ev)
		}
	}
	wantKinds := func(name string, got []screenpop.CallEvent, agent string, outcome screenpop.Outcome, want ...screenpop.CallEventKind) {
		t.Helper()
		var kinds []screenpop.CallEventKind
		for _, ev := range got {
			if len(kinds) == 0 || kinds[len(kinds)-1] != ev.Kind {
				kinds = append(kinds, ev.Kind)
			}
		}
		if !slices.Equal(kinds, want) {
			t.Fatalf("%s went through %v, want %v:%s", name, kinds, want, describe(got))
		}
		last := got[len(got)-1]
		if last.Outcome != outcome || last.Agent != agent {
			t.Errorf("%s ended %s by %q, want %s by %q", name, last.Outcome, last.Agent, outcome, agent)
		}
		if n := endedCount(got); n != 1 {
			t.Errorf("%s ended %d times, want once", name, n)
		}
	}
	wantKinds("A", evA, "1002", screenpop.OutcomeAnswered, screenpop.EventRinging, screenpop.EventAnswered, screenpop.EventEnded)
	wantKinds("B", evB, "", screenpop.OutcomeAbandoned, screenpop.EventRinging, screenpop.EventEnded)

	if got := h.counter("screenpop_ari_queued_events", "source", "ari"); got != 0 {
		t.Errorf("queued_events = %v once caught up, want 0", got)
	}
	if got := h.counter("screenpop_ari_queue_overflows_total", "source", "ari"); got != 1 {
		t.Errorf("queue_overflows_total = %v, want 1", got)
	}
	if got := h.counter("screenpop_ari_resyncs_total", "source", "ari"); got != 2 {
		t.Errorf("resyncs = %v, want 2", got)
	}
	if got := h.counter("screenpop_telephony_active_calls", "source", "ari"); got != 0 {
		t.Errorf("active_calls = %v, want 0", got)
	}
	h.lint()
}

func TestQueueLimitsValidated(t *testing.T) {
	base := Config{URL: "http://pbx:8088", User: "u", Password: "p", App: "screenpop", AgentOf: agentOf}
	for _, tc := range []struct {
		tweak func(*Config)
		want  string
	}{
		{func(c *Config) { c.MaxQueuedEvents = -1 }, "ari: max_queued_events must not be negative, got -1"},
		{func(c *Config) { c.MaxQueuedBytes = 1 << 20 }, "ari: max_queued_bytes must be at least 8388608 (8 MiB, the largest event frame), got 1048576"},
	} {
		cfg := base
		tc.tweak(&cfg)
		if _, err := New(cfg, nil, nil); err == nil || err.Error() != tc.want {
			t.Errorf("New: %v, want %q", err, tc.want)
		}
	}
	s, err := New(base, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.MaxQueuedEvents != DefaultMaxQueuedEvents || s.cfg.MaxQueuedBytes != DefaultMaxQueuedBytes {
		t.Errorf("defaults: %d events, %d bytes", s.cfg.MaxQueuedEvents, s.cfg.MaxQueuedBytes)
	}
}
