package ari

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/telephony/ari/fakeari"
)

// checkCall asserts the life of one recorded call: it rang at 1001, 1002
// and 1003, was answered by answeredBy (none: nobody) and ended with
// outcome; every event belongs to the same call and carries the caller.
func checkCall(t *testing.T, evs []screenpop.CallEvent, number, answeredBy string, outcome screenpop.Outcome) {
	t.Helper()
	if len(evs) == 0 {
		t.Fatalf("no events")
	}
	id := evs[0].CallID
	var kinds []screenpop.CallEventKind
	var lastRinging []string
	for _, ev := range evs {
		if ev.CallID != id {
			t.Fatalf("events of two calls (%s, %s) where one was expected:%s", id, ev.CallID, describe(evs))
		}
		if ev.Caller.Number != number || ev.Caller.Withheld {
			t.Errorf("%s event caller = %+v, want number %s", ev.Kind, ev.Caller, number)
		}
		if ev.Source != DefaultName {
			t.Errorf("%s event source = %q, want %q", ev.Kind, ev.Source, DefaultName)
		}
		if len(kinds) == 0 || kinds[len(kinds)-1] != ev.Kind {
			kinds = append(kinds, ev.Kind)
		}
		if ev.Kind == screenpop.EventRinging {
			lastRinging = ev.Agents
		}
	}
	want := []screenpop.CallEventKind{screenpop.EventRinging, screenpop.EventEnded}
	if answeredBy != "" {
		want = []screenpop.CallEventKind{screenpop.EventRinging, screenpop.EventAnswered, screenpop.EventEnded}
	}
	if !slices.Equal(kinds, want) {
		t.Fatalf("call went through %v, want %v:%s", kinds, want, describe(evs))
	}
	if got := slices.Sorted(slices.Values(lastRinging)); !slices.Equal(got, []string{"1001", "1002", "1003"}) {
		t.Errorf("last ringing set = %v, want [1001 1002 1003]", got)
	}
	for _, ev := range evs {
		if ev.Kind == screenpop.EventAnswered && ev.Agent != answeredBy {
			t.Errorf("answered by %q, want %q", ev.Agent, answeredBy)
		}
	}
	last := evs[len(evs)-1]
	if last.Kind != screenpop.EventEnded || last.Outcome != outcome {
		t.Errorf("last event = %s %s, want ended %s", last.Kind, last.Outcome, outcome)
	}
	if answeredBy != "" && last.Agent != answeredBy {
		t.Errorf("ended with agent %q, want %q", last.Agent, answeredBy)
	}
}

// sameEvents compares call events, ignoring when they were made.
func sameEvents(t *testing.T, got, want []screenpop.CallEvent) {
	t.Helper()
	norm := func(evs []screenpop.CallEvent) []screenpop.CallEvent {
		out := slices.Clone(evs)
		for i := range out {
			out[i].At = time.Time{}
			if len(out[i].Agents) == 0 {
				out[i].Agents = nil
			}
		}
		return out
	}
	g, w := norm(got), norm(want)
	if !slices.EqualFunc(g, w, func(a, b screenpop.CallEvent) bool {
		return a.Kind == b.Kind && a.CallID == b.CallID && a.Caller == b.Caller && a.DID == b.DID &&
			slices.Equal(a.Agents, b.Agents) && a.Agent == b.Agent && a.Outcome == b.Outcome && a.Source == b.Source
	}) {
		t.Fatalf("call events:%s\nwant:%s", describeFull(g), describeFull(w))
	}
}

func describeFull(evs []screenpop.CallEvent) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n  %+v", ev)
	}
	return b.String()
}

func TestReplayRecordings(t *testing.T) {
	jane := screenpop.Caller{Number: "+4930123456", Name: "Jane Doe"}
	ev := func(kind screenpop.CallEventKind, id string, fill func(*screenpop.CallEvent)) screenpop.CallEvent {
		e := screenpop.CallEvent{Kind: kind, CallID: id, Caller: jane, DID: "100", Source: "ari"}
		if fill != nil {
			fill(&e)
		}
		return e
	}
	all := func(e *screenpop.CallEvent) { e.Agents = []string{"1001", "1002", "1003"} }
	for _, tc := range []struct {
		file    string
		outcome screenpop.Outcome
		want    []screenpop.CallEvent
	}{
		{"answered.jsonl", screenpop.OutcomeAnswered, []screenpop.CallEvent{
			ev(screenpop.EventRinging, "1795426551.0", all),
			ev(screenpop.EventAnswered, "1795426551.0", func(e *screenpop.CallEvent) { e.Agent = "1002" }),
			ev(screenpop.EventEnded, "1795426551.0", func(e *screenpop.CallEvent) { e.Agent, e.Outcome = "1002", screenpop.OutcomeAnswered }),
		}},
		{"abandoned.jsonl", screenpop.OutcomeAbandoned, []screenpop.CallEvent{
			ev(screenpop.EventRinging, "1795426565.0", all),
			ev(screenpop.EventEnded, "1795426565.0", func(e *screenpop.CallEvent) { e.Outcome = screenpop.OutcomeAbandoned }),
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			srv := fakeari.New(t)
			h := start(t, srv, nil)
			h.waitReady()
			if !srv.SubscribeAllAsked() {
				t.Errorf("the source did not ask for subscribeAll")
			}
			// Keep the recorded gaps, 200 times faster: realistic order and
			// pacing, without the test taking the call's 9 seconds.
			n, err := srv.ReplayFile(context.Background(), "testdata/"+tc.file, 0.005)
			if err != nil {
				t.Fatal(err)
			}
			h.waitEvents(n)
			sameEvents(t, h.sink.snapshot(), tc.want)

			if got := h.counter("screenpop_telephony_calls_total", "source", "ari", "outcome", string(tc.outcome)); got != 1 {
				t.Errorf("calls_total{outcome=%s} = %v, want 1", tc.outcome, got)
			}
			if got := h.counter("screenpop_telephony_active_calls", "source", "ari"); got != 0 {
				t.Errorf("active_calls = %v, want 0", got)
			}
			if got := h.counter("screenpop_ari_connected"); got != 1 {
				t.Errorf("connected = %v, want 1", got)
			}
			if got := h.counter("screenpop_ari_events_total", "type", "Dial"); got == 0 {
				t.Errorf("no Dial event counted")
			}
			h.lint()
			for _, r := range srv.Requests() {
				if r != "GET /ari/applications/screenpop" && r != "GET /ari/channels" && r != "GET /ari/asterisk/info" {
					t.Errorf("unexpected REST request %s", r)
				}
			}
			logs := h.logs.String()
			if !strings.Contains(logs, "+*******456") {
				t.Errorf("the debug log does not show the masked caller:\n%s", logs)
			}
			if strings.Contains(logs, "+4930123456") {
				t.Errorf("the log holds the caller's full number:\n%s", logs)
			}
			if strings.Contains(logs, fakeari.DefaultPassword) {
				t.Errorf("the log holds the password")
			}
		})
	}
}

// A caller who withheld their number: the dialplan's SCREENPOP_PRES says
// so, and no event and no log line may carry the number.
func TestWithheldCaller(t *testing.T) {
	lines := recording(t, "answered.jsonl")
	did := indexOf(t, lines, `"variable":"__SCREENPOP_DID"`)
	pres := strings.Replace(string(lines[did]), `"variable":"__SCREENPOP_DID","value":"100"`,
		`"variable":"__SCREENPOP_PRES","value":"prohib_passed_screen"`, 1)
	stream := slices.Concat(lines[:did+1], [][]byte{[]byte(pres)}, lines[did+1:])

	srv := fakeari.New(t)
	h := start(t, srv, nil)
	h.waitReady()
	sendAll(t, srv, stream)
	h.waitEvents(len(stream))
	evs := h.sink.snapshot()
	if len(evs) == 0 {
		t.Fatal("no call events")
	}
	for _, ev := range evs {
		if !ev.Caller.Withheld || ev.Caller.Number != "" || ev.Caller.Name != "" {
			t.Errorf("%s event shows the caller %+v, want withheld", ev.Kind, ev.Caller)
		}
	}
	if logs := h.logs.String(); strings.Contains(logs, "30123456") || strings.Contains(logs, "Jane") {
		t.Errorf("the log shows the withheld caller:\n%s", logs)
	}
}

// TestBurst sends the events of 1,000 simultaneous calls (over 90,000
// events, interleaved at random) as fast as the socket takes them, and
// checks that every call ends as its recording says and no event is lost.
func TestBurst(t *testing.T) {
	answered := newCallCopier(recording(t, "answered.jsonl"))
	abandoned := newCallCopier(recording(t, "abandoned.jsonl"))
	const calls = 1000
	var perCall [][][]byte
	numbers := make([]string, calls)
	for i := range calls {
		numbers[i] = fmt.Sprintf("+4930%07d", i)
		tmpl := answered
		if i%2 == 1 {
			tmpl = abandoned
		}
		perCall = append(perCall, tmpl.copy(i, numbers[i]))
	}
	stream := interleave(42, perCall)
	if len(stream) < 20000 {
		t.Fatalf("only %d events", len(stream))
	}

	// Taking every event without loss is the point here, not how fast: the
	// fake waits for the socket as long as patience (instead of Asterisk's
	// write timeout, which a loaded machine's scheduler can exceed), and
	// no heartbeat runs during the burst (the fake answers a ping within
	// 1 s or drops the socket, and its pong queues behind the burst).
	srv := fakeari.New(t, fakeari.WithWriteTimeout(patience))
	srv.SetChannels() // no call before the burst; and Send need not follow the channels
	h := start(t, srv, func(c *Config) { c.Heartbeat = time.Hour })
	h.waitReady()
	h.waitSocket(1)
	sendAll(t, srv, stream)
	evs := h.waitAllEnded(calls, len(stream))

	byNumber := map[string][]screenpop.CallEvent{}
	for _, ev := range evs {
		byNumber[ev.Caller.Number] = append(byNumber[ev.Caller.Number], ev)
	}
	if len(byNumber) != calls {
		t.Fatalf("events for %d callers, want %d", len(byNumber), calls)
	}
	for i, number := range numbers {
		t.Run(number, func(t *testing.T) {
			if i%2 == 0 {
				checkCall(t, byNumber[number], number, "1002", screenpop.OutcomeAnswered)
			} else {
				checkCall(t, byNumber[number], number, "", screenpop.OutcomeAbandoned)
			}
		})
	}
	h.waitEvents(len(stream))
	if got := h.counter("screenpop_ari_malformed_events_total"); got != 0 {
		t.Errorf("malformed = %v, want 0", got)
	}
	// The default bounds hold the burst, counted as the memory its frames
	// hold (pooled buffers): no socket dropped for a full queue.
	if got := h.counter("screenpop_ari_queue_overflows_total", "source", "ari"); got != 0 {
		t.Errorf("queue overflows = %v, want 0", got)
	}
	if got := h.counter("screenpop_telephony_active_calls", "source", "ari"); got != 0 {
		t.Errorf("active_calls = %v, want 0", got)
	}
	if got := h.counter("screenpop_telephony_calls_total", "source", "ari", "outcome", "answered"); got != calls/2 {
		t.Errorf("answered calls = %v, want %d", got, calls/2)
	}
}

// blockingSink holds the first event until released, like a pipeline that
// stalls (which HandleCall must not do, but the socket must not care).
type blockingSink struct {
	*collector
	entered chan struct{}
	release chan struct{}
	once    bool
	freed   sync.Once
}

func (b *blockingSink) free() { b.freed.Do(func() { close(b.release) }) }

func (b *blockingSink) HandleCall(ev screenpop.CallEvent) {
	if !b.once {
		b.once = true
		close(b.entered)
		<-b.release
	}
	b.collector.HandleCall(ev)
}

// TestSlowPipelineDoesNotStallTheSocket proves the reader never waits on
// the pipeline: while the sink is stuck, Asterisk can still write more
// than any socket buffer holds (24 MB of large ChannelVarset events, the
// size of RTP statistics), each within its write timeout.
func TestSlowPipelineDoesNotStallTheSocket(t *testing.T) {
	answered := recording(t, "answered.jsonl")
	// A reader that waited for the blocked sink would never take the big
	// events below, whatever the fake's write timeout: patience, so that a
	// slow scheduler is not taken for a stall.
	srv := fakeari.New(t, fakeari.WithWriteTimeout(patience))
	var sink *blockingSink
	h := startWith(t, srv, nil, func(c *collector) screenpop.CallSink {
		sink = &blockingSink{collector: c, entered: make(chan struct{}), release: make(chan struct{})}
		t.Cleanup(sink.free)
		return sink
	})
	h.waitReady()

	first := indexOf(t, answered, `"dialstatus":"RINGING"`)
	sendAll(t, srv, answered[:first+1])
	select {
	case <-sink.entered:
	case <-time.After(patience):
		t.Fatal("the sink was never called")
	}
	// The sink is blocked: every one of these must still be taken.
	big := strings.Repeat("x", 64<<10)
	const bigEvents = 384
	for i := range bigEvents {
		ev := fmt.Sprintf(`{"variable":"RTPAUDIOQOS","value":"%d%s","type":"ChannelVarset","timestamp":"2026-11-23T09:35:52.000+0000",`+
			`"channel":{"id":"1795426551.0","name":"PJSIP/carrier-00000000","state":"Ring","caller":{"name":"Jane Doe","number":"+4930123456"},`+
			`"connected":{"name":"","number":""},"accountcode":"","dialplan":{"context":"from-carrier","exten":"100","priority":3,"app_name":"Dial","app_data":""},`+
			`"creationtime":"2026-11-23T09:35:51.732+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"screenpop"}`, i, big)
		if n := srv.Send([]byte(ev)); n != 1 {
			t.Fatalf("big event %d went to %d sockets: the reader stalled and Asterisk dropped it", i, n)
		}
	}
	sendAll(t, srv, answered[first+1:])
	sink.free()
	evs := h.sink.waitEnded(t, "the call to end", 1)
	checkCall(t, evs, "+4930123456", "1002", screenpop.OutcomeAnswered)
	h.waitEvents(len(answered) + bigEvents)
}

func TestUnknownAndMalformedEventsAreSkipped(t *testing.T) {
	srv := fakeari.New(t)
	h := start(t, srv, nil)
	h.waitReady()
	lines := recording(t, "answered.jsonl")
	junk := [][]byte{
		[]byte(`{"type":"ChannelToneDetected","timestamp":"2026-11-23T09:35:51.733+0000","channel":{"id":"x"},"application":"screenpop"}`),
		[]byte(`{"type":"ChannelToneDetected","timestamp":"2026-11-23T09:35:51.734+0000","channel":{"id":"y"},"application":"screenpop"}`),
		[]byte(`{"type":"FutureEvent2030","application":"screenpop"}`),
		[]byte(`this is not json`),
		[]byte(`{"no":"type"}`),
		[]byte(`{"type":"Dial","peer":"not an object","dialstatus":7}`),
		[]byte(`[1,2,3]`),
	}
	// The junk arrives in the middle of the call.
	mid := indexOf(t, lines, `"dialstatus":"RINGING"`)
	sendAll(t, srv, lines[:mid])
	sendAll(t, srv, junk)
	sendAll(t, srv, lines[mid:])
	evs := h.sink.waitFor(t, "the call to end", func(evs []screenpop.CallEvent) bool { return endedCount(evs) == 1 })
	checkCall(t, evs, "+4930123456", "1002", screenpop.OutcomeAnswered)

	if got := h.counter("screenpop_ari_events_total", "type", "unknown"); got != 3 {
		t.Errorf("unknown events = %v, want 3", got)
	}
	if got := h.counter("screenpop_ari_malformed_events_total"); got != 4 {
		t.Errorf("malformed events = %v, want 4", got)
	}
	logs := h.logs.String()
	if n := strings.Count(logs, "type=ChannelToneDetected"); n != 1 {
		t.Errorf("ChannelToneDetected logged %d times, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, "type=FutureEvent2030") {
		t.Errorf("FutureEvent2030 not logged:\n%s", logs)
	}

	// A later call is still tracked.
	sendAll(t, srv, callCopy(recording(t, "abandoned.jsonl"), 1, "+4930999999"))
	evs = h.sink.waitFor(t, "the second call to end", func(evs []screenpop.CallEvent) bool { return endedCount(evs) == 2 })
	var second []screenpop.CallEvent
	for _, ev := range evs {
		if ev.Caller.Number == "+4930999999" {
			second = append(second, ev)
		}
	}
	checkCall(t, second, "+4930999999", "", screenpop.OutcomeAbandoned)
}

func TestAsteriskDownAtStart(t *testing.T) {
	srv := fakeari.New(t)
	srv.Down()
	h := start(t, srv, nil)
	err := h.waitReadiness("failing to connect", func(err error) bool {
		return err != nil && strings.Contains(err.Error(), "connection refused")
	})
	if !strings.Contains(err.Error(), srv.URL()) || !strings.Contains(err.Error(), "retry in") && !strings.Contains(err.Error(), "reconnecting now") {
		t.Errorf("Ready() = %q: want the URL, the cause and when it retries", err)
	}
	if got := h.counter("screenpop_ari_connected"); got != 0 {
		t.Errorf("connected = %v while down", got)
	}
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	h.waitReady()
	if got := h.counter("screenpop_ari_connected"); got != 1 {
		t.Errorf("connected = %v once up", got)
	}
	if got := h.counter("screenpop_ari_reconnects_total"); got != 0 {
		t.Errorf("reconnects = %v: the first connection is not a reconnect", got)
	}
	// And it works.
	if _, err := srv.ReplayFile(context.Background(), "testdata/abandoned.jsonl", 0); err != nil {
		t.Fatal(err)
	}
	evs := h.sink.waitFor(t, "the call to end", func(evs []screenpop.CallEvent) bool { return endedCount(evs) == 1 })
	checkCall(t, evs, "+4930123456", "", screenpop.OutcomeAbandoned)
}

func TestWrongPassword(t *testing.T) {
	srv := fakeari.New(t)
	h := start(t, srv, func(c *Config) { c.Password = "wrong-secret" })
	// "HTTP 401", not "401": the fake's port may contain those digits
	// (it did: 127.0.0.1:24012 matched before the source had even started).
	err := h.waitReadiness("refused", func(err error) bool { return err != nil && strings.Contains(err.Error(), "HTTP 401") })
	if !strings.Contains(err.Error(), "password") {
		t.Errorf("Ready() = %q: want a hint at the credentials", err)
	}
	if strings.Contains(err.Error(), "wrong-secret") || strings.Contains(h.logs.String(), "wrong-secret") {
		t.Errorf("the password leaked into Ready() or the log")
	}
}

// TestReconnectRepairsCalls cuts Asterisk off while call A rings and call
// C rings; while the daemon is away C is abandoned, a whole call B comes
// and goes, and call D starts ringing. After the reconnect A must still be
// ringing at the same agents (no new pop), C must be ended, B never shown,
// D popped; then A and D go on normally.
func TestReconnectRepairsCalls(t *testing.T) {
	answered := recording(t, "answered.jsonl")
	abandoned := recording(t, "abandoned.jsonl")
	a := callCopy(answered, 1, "+4930000001")
	c := callCopy(abandoned, 3, "+4930000003")
	b := callCopy(answered, 2, "+4930000002")
	d := callCopy(abandoned, 4, "+4930000004")
	aRinging := indexOf(t, a, `"dialstatus":"RINGING"`, `PJSIP/1003-`) + 1
	cRinging := indexOf(t, c, `"dialstatus":"RINGING"`, `PJSIP/1003-`) + 1
	dRinging := indexOf(t, d, `"dialstatus":"RINGING"`, `PJSIP/1003-`) + 1

	srv := fakeari.New(t)
	h := start(t, srv, nil)
	h.waitReady()
	h.waitSocket(1)
	sendAll(t, srv, interleave(1, [][][]byte{a[:aRinging], c[:cRinging]}))
	ringingAll := func(number string) func([]screenpop.CallEvent) bool {
		return func(evs []screenpop.CallEvent) bool {
			return slices.ContainsFunc(evs, func(ev screenpop.CallEvent) bool {
				return ev.Caller.Number == number && ev.Kind == screenpop.EventRinging && len(ev.Agents) == 3
			})
		}
	}
	h.sink.waitFor(t, "A and C to ring at three agents", func(evs []screenpop.CallEvent) bool {
		return ringingAll("+4930000001")(evs) && ringingAll("+4930000003")(evs)
	})
	before := len(h.sink.snapshot())

	srv.Down()
	h.waitReadiness("disconnected", func(err error) bool { return err != nil })
	// While away: C is abandoned, B comes and goes. Nobody hears it, but
	// Asterisk's channel list follows.
	for _, l := range c[cRinging:] {
		srv.Send(l)
	}
	for _, l := range b {
		srv.Send(l)
	}
	for _, l := range d[:dRinging] {
		srv.Send(l)
	}
	if err := srv.Up(); err != nil {
		t.Fatal(err)
	}
	h.waitReady()
	// The application outlived the cut: the source may be ready before the
	// fake filed its new socket, and A's and D's events below need it.
	h.waitSocket(2)
	// C ended by the resync.
	var idC string
	for _, ev := range h.sink.snapshot() {
		if ev.Caller.Number == "+4930000003" {
			idC = ev.CallID
		}
	}
	h.sink.waitFor(t, "C to be ended by the resync", hasEnded(idC))
	h.sink.waitFor(t, "D, which began while away, to ring", ringingAll("+4930000004"))

	sendAll(t, srv, interleave(2, [][][]byte{a[aRinging:], d[dRinging:]}))
	evs := h.sink.waitEnded(t, "A and D to end", 3)

	var evA, evC, evD []screenpop.CallEvent
	for _, ev := range evs {
		switch ev.Caller.Number {
		case "+4930000001":
			evA = append(evA, ev)
		case "+4930000003":
			evC = append(evC, ev)
		case "+4930000004":
			evD = append(evD, ev)
		case "+4930000002":
			t.Errorf("call B, which came and went while disconnected, was shown: %s %v", ev.Kind, ev.Agents)
		}
	}
	checkCall(t, evA, "+4930000001", "1002", screenpop.OutcomeAnswered)
	checkCall(t, evD, "+4930000004", "", screenpop.OutcomeAbandoned)
	// After the reconnect, A rings at the same three agents: the same set
	// again (harmless downstream), never another one.
	for _, ev := range evs[before:] {
		if ev.Caller.Number == "+4930000001" && ev.Kind == screenpop.EventRinging {
			if got := slices.Sorted(slices.Values(ev.Agents)); !slices.Equal(got, []string{"1001", "1002", "1003"}) {
				t.Errorf("after the reconnect A rings at %v, want the same [1001 1002 1003]", got)
			}
		}
	}
	if n := endedCount(evC); n != 1 || evC[len(evC)-1].Kind != screenpop.EventEnded {
		t.Errorf("C: %d ended events, want exactly one, last:%s", n, describe(evC))
	}
	if got := h.counter("screenpop_telephony_active_calls", "source", "ari"); got != 0 {
		t.Errorf("active_calls = %v, want 0", got)
	}
	if got := h.counter("screenpop_ari_reconnects_total"); got != 1 {
		t.Errorf("reconnects = %v, want 1", got)
	}
	if got := h.counter("screenpop_ari_resyncs_total"); got != 2 {
		t.Errorf("resyncs = %v, want 2", got)
	}
}

func TestHalfOpenSocketIsNoticed(t *testing.T) {
	srv := fakeari.New(t)
	h := start(t, srv, func(c *Config) { c.Heartbeat = 100 * time.Millisecond })
	h.waitReady()
	srv.HalfOpen()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := srv.WaitAccepted(ctx, 2); err != nil {
		t.Fatalf("the source never reconnected after the socket went half-open: %v", err)
	}
	h.waitReady()
	if !strings.Contains(h.logs.String(), "half-open") {
		t.Errorf("the log does not say the socket was half-open:\n%s", h.logs.String())
	}
	if _, err := srv.ReplayFile(context.Background(), "testdata/abandoned.jsonl", 0); err != nil {
		t.Fatal(err)
	}
	evs := h.sink.waitFor(t, "the call to end", func(evs []screenpop.CallEvent) bool { return endedCount(evs) == 1 })
	checkCall(t, evs, "+4930123456", "", screenpop.OutcomeAbandoned)
}

// A healthy but quiet socket must stay up: pongs keep it alive although
// no event comes for many read timeouts.
//
// With a heartbeat of 100 ms the read timeout is 250 ms, and a socket whose
// pongs did not count would be dropped 250 ms after it opened, after two or
// three pings at most, every time. The test waits for one socket to carry
// ten pings (four read timeouts) while the source is ready. A machine so
// loaded that one pong comes later than 250 ms makes the source reconnect,
// rightly; that socket's count then starts again, instead of failing a test
// that is not about the machine's speed.
func TestQuietSocketStaysUp(t *testing.T) {
	const pings = 10
	srv := fakeari.New(t)
	h := start(t, srv, func(c *Config) { c.Heartbeat = 100 * time.Millisecond })
	h.waitReady()
	deadline := time.Now().Add(patience)
	socket, since := srv.Accepted(), srv.Pings() // pings before this socket's count
	for {
		accepted, got := srv.Accepted(), srv.Pings()
		if accepted != socket {
			socket, since = accepted, got
		}
		if got-since >= pings && srv.Accepted() == socket && srv.Sockets() == 1 && h.src.Ready() == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket stayed up for %d pings in %s: the last of %d sockets had %d, Ready() = %v\n%s",
				pings, patience, accepted, got-since, h.src.Ready(), h.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.Accepted() - 1; n > 0 {
		t.Logf("the source reconnected %d times: a pong came late on this loaded machine", n)
	}
}

func TestSubscribeAllNotHeld(t *testing.T) {
	t.Run("subscribes explicitly", func(t *testing.T) {
		srv := fakeari.New(t, fakeari.WithExistingApp("screenpop"))
		h := start(t, srv, nil)
		h.waitReady()
		h.waitSocket(1) // the application existed: Ready does not imply the socket is filed
		if got := srv.Subscriptions("screenpop"); got != 1 {
			t.Errorf("subscription requests = %d, want 1", got)
		}
		if !strings.Contains(h.logs.String(), "subscribeAll did not hold") {
			t.Errorf("the log does not say subscribeAll did not hold")
		}
		if _, err := srv.ReplayFile(context.Background(), "testdata/abandoned.jsonl", 0); err != nil {
			t.Fatal(err)
		}
		evs := h.sink.waitFor(t, "the call to end", func(evs []screenpop.CallEvent) bool { return endedCount(evs) == 1 })
		checkCall(t, evs, "+4930123456", "", screenpop.OutcomeAbandoned)
	})
	t.Run("read-only user", func(t *testing.T) {
		srv := fakeari.New(t, fakeari.WithExistingApp("screenpop"), fakeari.WithReadOnlyUser())
		h := start(t, srv, nil)
		err := h.waitReadiness("refused", func(err error) bool { return err != nil && strings.Contains(err.Error(), "read_only") })
		if !strings.Contains(err.Error(), "subscribeAll") {
			t.Errorf("Ready() = %q: want the reason (subscribeAll did not hold)", err)
		}
		// It keeps trying, and never claims to be ready.
		ctx, cancel := context.WithTimeout(context.Background(), patience)
		defer cancel()
		if err := srv.WaitAccepted(ctx, 3); err != nil {
			t.Fatal(err)
		}
		if err := h.src.Ready(); err == nil {
			t.Errorf("ready although the application gets no events")
		}
	})
}

// Asterisk registers the application only after the handshake: a 404
// right after connecting is waited out, not a reason to reconnect.
func TestApplicationRegisteredLate(t *testing.T) {
	srv := fakeari.New(t, fakeari.WithLateApplication(3))
	h := start(t, srv, nil)
	h.waitReady()
	if got := srv.Accepted(); got != 1 {
		t.Errorf("%d sockets: the source reconnected instead of waiting for the application", got)
	}
	if got := strings.Count(strings.Join(srv.Requests(), "\n"), "GET /ari/applications/screenpop"); got != 4 {
		t.Errorf("%d application requests, want 4 (3 answered 404)", got)
	}
}

func TestApplicationReplaced(t *testing.T) {
	srv := fakeari.New(t)
	h := start(t, srv, nil)
	h.waitReady()
	// Another client takes the application over.
	u := strings.Replace(srv.URL(), "http://", "ws://", 1) + "/ari/events?app=screenpop&api_key=" + fakeari.DefaultUser + ":" + fakeari.DefaultPassword
	other, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx, cancel := context.WithTimeout(context.Background(), patience)
	defer cancel()
	if err := srv.WaitAccepted(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(h.logs.String(), "ApplicationReplaced") {
		if ctx.Err() != nil {
			t.Fatalf("the source did not report the takeover:\n%s", h.logs.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.waitReady()
}

func TestNewValidates(t *testing.T) {
	ok := Config{URL: "http://pbx:8088", User: "u", Password: "p", App: "screenpop", AgentOf: agentOf}
	for _, tc := range []struct {
		name  string
		tweak func(*Config)
		want  string
	}{
		{"no url", func(c *Config) { c.URL = "" }, "url is required"},
		{"bad scheme", func(c *Config) { c.URL = "ws://pbx:8088" }, "must start with http:// or https://"},
		{"credentials in url", func(c *Config) { c.URL = "http://u:p@pbx:8088" }, "must not contain credentials"},
		{"no host", func(c *Config) { c.URL = "http://" }, "has no host"},
		{"no user", func(c *Config) { c.User = "" }, "user is required"},
		{"no password", func(c *Config) { c.Password = "" }, "password is required"},
		{"no app", func(c *Config) { c.App = "" }, "app is required"},
		{"bad app", func(c *Config) { c.App = "a/b" }, "may not contain"},
		{"no agent map", func(c *Config) { c.AgentOf = nil }, "AgentOf is required"},
		{"negative heartbeat", func(c *Config) { c.Heartbeat = -time.Second }, "heartbeat must not be negative"},
		{"backoff order", func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Minute, time.Second }, "larger than max_backoff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.tweak(&cfg)
			_, err := New(cfg, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New() error = %v, want %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "ari: ") {
				t.Errorf("error %q does not name the source kind", err)
			}
		})
	}
	s, err := New(ok, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(); err == nil || !strings.Contains(err.Error(), "not started") {
		t.Errorf("Ready() before Run = %v", err)
	}
	if s.cfg.Heartbeat != DefaultHeartbeat || s.readTimeout != 11*time.Second {
		t.Errorf("heartbeat %s, read timeout %s; want 5s and 11s", s.cfg.Heartbeat, s.readTimeout)
	}
}

func TestBackoffIsBoundedWithFullJitter(t *testing.T) {
	s, err := New(Config{URL: "http://pbx:8088", User: "u", Password: "p", App: "a", AgentOf: agentOf}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.MaxBackoff = time.Duration(1<<62) + 12345 // no overflow near the top
	for attempt := range 100 {
		ceiling := s.cfg.MaxBackoff
		if attempt < 30 {
			ceiling = DefaultMinBackoff << attempt
		}
		if d := s.backoff(attempt); d < 0 || d > ceiling {
			t.Fatalf("huge max: attempt %d: backoff %s outside [0, %s]", attempt, d, ceiling)
		}
	}
	s.cfg.MaxBackoff = DefaultMaxBackoff
	for attempt := range 100 {
		ceiling := min(DefaultMinBackoff<<min(attempt, 20), DefaultMaxBackoff)
		seenLow, seenHigh := false, false
		for range 200 {
			d := s.backoff(attempt)
			if d < 0 || d > ceiling {
				t.Fatalf("attempt %d: backoff %s outside [0, %s]", attempt, d, ceiling)
			}
			seenLow = seenLow || d < ceiling/2
			seenHigh = seenHigh || d >= ceiling/2
		}
		if !seenLow || !seenHigh {
			t.Fatalf("attempt %d: backoff not spread over [0, %s]", attempt, ceiling)
		}
	}
}

// Two PBXs in one daemon: the second source registers on the same registry
// and every metric keeps the two apart by its source label.
func TestTwoSourcesShareOneRegistry(t *testing.T) {
	srv := fakeari.New(t)
	h := start(t, srv, nil)
	_, err := New(Config{URL: srv.URL(), User: "u", Password: "p", App: "other", Name: "pbx2", AgentOf: agentOf}, nil, h.reg)
	if err != nil {
		t.Fatalf("a second ARI source on the same registry: %v", err)
	}
	h.waitReady()
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"screenpop_ari_connected", []string{"source", DefaultName}, 1},
		{"screenpop_ari_connected", []string{"source", "pbx2"}, 0},
		{"screenpop_ari_resyncs_total", []string{"source", DefaultName}, 1},
		{"screenpop_ari_resyncs_total", []string{"source", "pbx2"}, 0},
		{"screenpop_ari_reconnects_total", []string{"source", "pbx2"}, 0},
		{"screenpop_ari_malformed_events_total", []string{"source", "pbx2"}, 0},
		{"screenpop_ari_events_total", []string{"source", "pbx2", "type", "Dial"}, 0},
		{"screenpop_ari_events_total", []string{"source", "pbx2", "type", unknownType}, 0},
		{"screenpop_telephony_active_calls", []string{"source", "pbx2"}, 0},
		{"screenpop_telephony_calls_total", []string{"source", "pbx2", "outcome", string(screenpop.OutcomeInterrupted)}, 0},
	} {
		if got := h.counter(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Every outcome of the call model is pre-created for every source.
	for _, source := range []string{DefaultName, "pbx2"} {
		for _, o := range screenpop.Outcomes {
			h.counter("screenpop_telephony_calls_total", "source", source, "outcome", string(o))
		}
	}
	h.lint()
}

func TestReadyAfterStop(t *testing.T) {
	srv := fakeari.New(t)
	src, err := New(Config{URL: srv.URL(), User: fakeari.DefaultUser, Password: fakeari.DefaultPassword, App: "screenpop", AgentOf: agentOf}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	sink := newCollector()
	go func() { done <- src.Run(ctx, sink) }()
	deadline := time.Now().Add(patience)
	for src.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %v", src.Ready())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := src.Run(ctx, sink); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("a second Run = %v, want an error", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v after cancel, want nil", err)
	}
	if err := src.Ready(); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Errorf("Ready() after stop = %v", err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), patience)
	defer cancel2()
	if err := srv.WaitClosed(ctx2); err != nil {
		t.Errorf("the socket stayed open after Run returned: %v", err)
	}
}
