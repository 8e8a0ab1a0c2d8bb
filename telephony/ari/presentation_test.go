package ari

import (
	"context"
	"strings"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/telephony/ari/fakeari"
)

// A stock PBX (no CALLERID(pres) in channelvars, no dialplan line) cannot
// say whether a caller withheld the number: by default such callers are
// withheld, and IT is told by a metric, an error log naming the fix and a
// warning for /readyz. Once calls come with their presentation, the
// warning goes.
func TestUnknownPresentation(t *testing.T) {
	srv := fakeari.New(t)
	h := start(t, srv, func(c *Config) { c.OnUnknownPresentation = "" }) // the default
	h.waitReady()
	if w := h.src.Warnings(); len(w) != 0 {
		t.Errorf("warnings before any call: %v", w)
	}
	n, err := srv.ReplayFile(context.Background(), "testdata/answered.jsonl", 0)
	if err != nil {
		t.Fatal(err)
	}
	h.waitEvents(n)
	evs := h.sink.snapshot()
	if len(evs) != 3 {
		t.Fatalf("got %s, want ringing, answered, ended", describe(evs))
	}
	for _, ev := range evs {
		if !ev.Caller.Withheld || ev.Caller.Number != "" || ev.Caller.Name != "" {
			t.Errorf("%s: caller %+v, want withheld: the PBX never said it may be shown", ev.Kind, ev.Caller)
		}
	}
	w := h.src.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], "caller presentation unknown (1 calls so far)") ||
		!strings.Contains(w[0], "add CALLERID(pres) to channelvars in ari.conf") || !strings.Contains(w[0], "treated as withheld") {
		t.Errorf("warnings = %q", w)
	}
	if got := h.counter("screenpop_ari_presentation_unknown_calls_total", "source", "ari"); got != 1 {
		t.Errorf("presentation_unknown_calls_total = %v, want 1", got)
	}
	if got := h.counter("screenpop_ari_presentation_known", "source", "ari"); got != 0 {
		t.Errorf("presentation_known = %v, want 0", got)
	}
	logs := h.logs.String()
	if strings.Count(logs, "does not report whether callers withheld") != 1 || !strings.Contains(logs, "level=ERROR") {
		t.Errorf("want one error log naming the fix:\n%s", logs)
	}

	// The same PBX with CALLERID(pres) in channelvars: a withheld caller
	// is known to be withheld, and the warning goes.
	m, err := srv.ReplayFile(context.Background(), "callstate/testdata/synth-withheld-channelvars.jsonl", 0)
	if err != nil {
		t.Fatal(err)
	}
	h.waitEvents(n + m)
	if w := h.src.Warnings(); len(w) != 0 {
		t.Errorf("warnings once presentation is reported: %v", w)
	}
	if got := h.counter("screenpop_ari_presentation_known", "source", "ari"); got != 1 {
		t.Errorf("presentation_known = %v, want 1", got)
	}
	for _, ev := range h.sink.snapshot()[3:] {
		if !ev.Caller.Withheld {
			t.Errorf("%s: caller %+v, want withheld", ev.Kind, ev.Caller)
		}
	}
	h.lint()
}

// on_unknown_presentation: show shows such callers, and says loudly that a
// withheld number would be shown too.
func TestUnknownPresentationShown(t *testing.T) {
	srv := fakeari.New(t)
	h := start(t, srv, func(c *Config) { c.OnUnknownPresentation = PresentationShow })
	h.waitReady()
	n, err := srv.ReplayFile(context.Background(), "testdata/abandoned.jsonl", 0)
	if err != nil {
		t.Fatal(err)
	}
	h.waitEvents(n)
	for _, ev := range h.sink.snapshot() {
		if ev.Caller.Withheld || ev.Caller.Number != "+4930123456" {
			t.Errorf("%s: caller %+v, want shown", ev.Kind, ev.Caller)
		}
	}
	if w := h.src.Warnings(); len(w) != 1 || !strings.Contains(w[0], "is SHOWN to agents") {
		t.Errorf("warnings = %q", w)
	}
}

func TestOnUnknownPresentationValidated(t *testing.T) {
	_, err := New(Config{URL: "http://pbx:8088", User: "u", Password: "p", App: "a", AgentOf: agentOf, OnUnknownPresentation: "hide"}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), `on_unknown_presentation "hide": use withhold or show`) {
		t.Errorf("err = %v", err)
	}
}

// Asterisk restarts while screenpop is connected: the socket drops, and
// the reconnect finds a PBX that started anew. The calls it had were cut:
// interrupted, not abandoned, and counted apart. A plain network cut is no
// restart.
func TestPBXRestartInterruptsCalls(t *testing.T) {
	answered := recording(t, "answered.jsonl")
	abandoned := recording(t, "abandoned.jsonl")
	a := callCopy(answered, 1, "+4930000001")
	b := callCopy(abandoned, 2, "+4930000002")
	aAnswered := indexOf(t, a, `"dialstatus":"ANSWER"`) + 1
	bRinging := indexOf(t, b, `"dialstatus":"RINGING"`, `PJSIP/1003-`) + 1

	srv := fakeari.New(t)
	h := start(t, srv, nil)
	h.waitReady()
	h.waitSocket(1)
	sendAll(t, srv, a[:aAnswered])
	sendAll(t, srv, b[:bRinging])
	h.sink.waitFor(t, "A answered and B ringing", func(evs []screenpop.CallEvent) bool {
		return len(evs) == 3
	})
	// A network cut first: both calls are still there, nothing ends. (The
	// reconnect may be quicker than a poll of Ready: wait for the second
	// socket and its resync instead.)
	srv.Cut()
	h.waitSocket(2)
	deadline := time.Now().Add(patience)
	for h.counter("screenpop_ari_resyncs_total", "source", "ari") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no resync after the cut (%v)", h.src.Ready())
		}
		time.Sleep(2 * time.Millisecond)
	}
	if n := endedCount(h.sink.snapshot()); n != 0 {
		t.Fatalf("a network cut ended %d calls: %s", n, describe(h.sink.snapshot()))
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	evs := h.sink.waitEnded(t, "both calls ended", 2)
	for _, number := range []string{"+4930000001", "+4930000002"} {
		var got []string
		for _, ev := range evs {
			if ev.Caller.Number == number && ev.Kind == screenpop.EventEnded {
				got = append(got, string(ev.Outcome))
			}
		}
		if len(got) != 1 || got[0] != string(screenpop.OutcomeInterrupted) {
			t.Errorf("%s ended %v, want [interrupted]", number, got)
		}
	}
	if got := h.counter("screenpop_telephony_calls_total", "source", "ari", "outcome", "interrupted"); got != 2 {
		t.Errorf("calls_total{outcome=interrupted} = %v, want 2", got)
	}
	if got := h.counter("screenpop_telephony_calls_total", "source", "ari", "outcome", "abandoned"); got != 0 {
		t.Errorf("calls_total{outcome=abandoned} = %v, want 0", got)
	}
	if !strings.Contains(h.logs.String(), "Asterisk restarted while disconnected") {
		t.Errorf("no log line says the PBX restarted")
	}
}
