package floor

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
	"github.com/screenpop/screenpop/promreg/promregtest"
)

var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// testLedger is a ledger of source "cti" whose line "+4930100" is
// "Support"; connected agents are those in pages.
func testLedger(t *testing.T, pages map[string]bool) (*Ledger, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	l, err := NewLedger(LedgerConfig{
		ServiceLevel: 20 * time.Second,
		Location:     time.UTC,
		Sources:      []string{"cti"},
		Lines:        []string{"Support"},
		LineName: func(did string) string {
			if did == "+4930100" {
				return "Support"
			}
			return ""
		},
		Connected:  func(a string) bool { return pages[a] },
		StaleAfter: time.Hour,
		Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, reg
}

func ev(kind screenpop.CallEventKind, call string, s float64) screenpop.CallEvent {
	return screenpop.CallEvent{Kind: kind, CallID: call, Source: "cti", At: at(s), Caller: screenpop.Caller{Number: "+4930123456"}, DID: "+4930100"}
}

func ringing(call string, s float64, agents ...string) screenpop.CallEvent {
	e := ev(screenpop.EventRinging, call, s)
	e.Agents = agents
	return e
}

func answered(call string, s float64, agent string) screenpop.CallEvent {
	e := ev(screenpop.EventAnswered, call, s)
	e.Agent = agent
	return e
}

func ended(call string, s float64, o screenpop.Outcome) screenpop.CallEvent {
	e := ev(screenpop.EventEnded, call, s)
	e.Outcome = o
	return e
}

// value reads a counter or a gauge.
func value(m prometheus.Metric) float64 {
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		panic(err)
	}
	if c := d.GetCounter(); c != nil {
		return c.GetValue()
	}
	return d.GetGauge().GetValue()
}

// histogram returns the count and sum of a histogram's series.
func histogram(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0, 0
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, l := range m.GetLabel() {
		if v, ok := labels[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

// Every metric the floor counts, call by call, with the acknowledgements
// that count and those that do not.
func TestLedgerCountsCallsAndAcknowledgements(t *testing.T) {
	l, reg := testLedger(t, map[string]bool{"alice": true})
	m := l.metrics

	// c1: rings alice (page open) and bob (none: a blind ring).
	l.ObserveCall(ringing("c1", 0, "alice", "bob"), at(0))
	if got := value(m.blind.WithLabelValues("cti")); got != 1 {
		t.Errorf("blind rings = %v, want 1 (bob)", got)
	}
	if !l.Shown("alice", "c1", pop.StageShown, at(1.25)) {
		t.Error("alice's acknowledgement of a call ringing at her phone did not count")
	}
	if l.Shown("alice", "c1", pop.StageShown, at(2)) {
		t.Error("a repeated acknowledgement counted")
	}
	if l.Shown("carol", "c1", pop.StageShown, at(1)) {
		t.Error("carol, whose phone does not ring, was counted")
	}
	if l.Shown("alice", "nope", pop.StageShown, at(1)) {
		t.Error("an acknowledgement of an unknown call counted")
	}
	if !l.Shown("alice", "c1", pop.StageComplete, at(1.5)) {
		t.Error("the complete acknowledgement did not count")
	}
	l.ObserveCall(answered("c1", 5, "alice"), at(5))
	// bob lost the pop: his acknowledgement comes too late.
	if l.Shown("bob", "c1", pop.StageShown, at(5.5)) {
		t.Error("bob's acknowledgement after the call went to alice counted")
	}
	l.ObserveCall(ended("c1", 60, screenpop.OutcomeAnswered), at(60))
	if l.Shown("alice", "c1", pop.StageComplete, at(61)) {
		t.Error("an acknowledgement after the end counted")
	}

	// c2: answered by bob after 20.5 s, no pop on screen before.
	l.ObserveCall(ringing("c2", 10, "bob"), at(10))
	l.ObserveCall(answered("c2", 30.5, "bob"), at(30.5))
	l.Shown("bob", "c2", pop.StageShown, at(31)) // after the answer: shown, not "popped"
	l.ObserveCall(ended("c2", 90, screenpop.OutcomeAnswered), at(90))

	// c3: abandoned after 12 s, on a line not configured.
	c3 := ringing("c3", 40, "alice")
	c3.DID = "+49999"
	l.ObserveCall(c3, at(40))
	l.ObserveCall(ended("c3", 52, screenpop.OutcomeAbandoned), at(52))

	// c4: rings, and nothing more comes: swept as expired.
	l.ObserveCall(ringing("c4", 100, "alice"), at(100))
	// An end of a call never rung here: ignored.
	l.ObserveCall(ended("c5", 101, screenpop.OutcomeAbandoned), at(101))
	// A source repairing its state repeats an ended call's ring: ignored.
	l.ObserveCall(ringing("c3", 102, "bob"), at(102))
	if n := len(l.Calls()); n != 1 {
		t.Errorf("live calls = %d, want 1 (c4)", n)
	}
	l.Sweep(at(100).Add(time.Hour))
	if n := len(l.Calls()); n != 0 {
		t.Errorf("live calls after the sweep = %d, want 0", n)
	}

	counter := func(c prometheus.Metric) float64 { return value(c) }
	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"answered", counter(m.answered.WithLabelValues("cti")), 2},
		{"answered popped", counter(m.popped.WithLabelValues("cti")), 1},
		{"blind rings", counter(m.blind.WithLabelValues("cti")), 2}, // bob on c1, bob on c2
		{"calls answered on Support", counter(m.calls.WithLabelValues("cti", "Support", "answered")), 2},
		{"calls abandoned on other", counter(m.calls.WithLabelValues("cti", LineOther, "abandoned")), 1},
		{"calls expired on Support", counter(m.calls.WithLabelValues("cti", "Support", OutcomeExpired)), 1},
		{"calls abandoned on Support", counter(m.calls.WithLabelValues("cti", "Support", "abandoned")), 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if n, sum := histogram(t, reg, "screenpop_pop_shown_seconds", map[string]string{"source": "cti"}); n != 2 || math.Abs(sum-(1.25+21)) > 1e-9 {
		t.Errorf("shown: %d observations, sum %v; want 2 (alice 1.25s, bob 21s)", n, sum)
	}
	if n, sum := histogram(t, reg, "screenpop_pop_complete_seconds", map[string]string{"source": "cti"}); n != 1 || sum != 1.5 {
		t.Errorf("complete: %d observations, sum %v; want 1, 1.5s", n, sum)
	}
	if n, sum := histogram(t, reg, "screenpop_call_answer_wait_seconds", map[string]string{"source": "cti"}); n != 2 || sum != 25.5 {
		t.Errorf("answer wait: %d observations, sum %v; want 2, 5s + 20.5s", n, sum)
	}
	if n, sum := histogram(t, reg, "screenpop_call_abandoned_wait_seconds", map[string]string{"source": "cti"}); n != 1 || sum != 12 {
		t.Errorf("abandoned wait: %d observations, sum %v; want 1, 12s", n, sum)
	}

	// What the day's counts get: each call's flags as they grew.
	final := map[string]Flags{}
	for _, r := range l.TakeRecords() {
		if r.Day != "2026-03-04" {
			t.Errorf("record of %s on day %s", r.CallID, r.Day)
		}
		final[r.CallID] = r.Flags
	}
	want := map[string]Flags{
		"c1": FlagAnswered | FlagInTime | FlagPopped | FlagEnded,
		"c2": FlagAnswered | FlagEnded,
		"c3": FlagAbandoned | FlagEnded,
	}
	for id, f := range want {
		if final[id] != f {
			t.Errorf("%s flags = %05b, want %05b", id, final[id], f)
		}
	}
	if len(final) != len(want) {
		t.Errorf("records of %v, want those of c1, c2, c3", final)
	}
	promregtest.Lint(t, reg, nil)
}

// A call's times are the events' own, unless the PBX's clock runs ahead
// of the daemon's; the acknowledgement is always the daemon's time.
func TestLedgerClockAheadIsClamped(t *testing.T) {
	l, reg := testLedger(t, map[string]bool{"alice": true})
	e := ringing("c1", 30, "alice") // the PBX says +30s, the daemon is at +0
	l.ObserveCall(e, at(0))
	l.Shown("alice", "c1", pop.StageShown, at(2))
	if _, sum := histogram(t, reg, "screenpop_pop_shown_seconds", map[string]string{"source": "cti"}); sum != 2 {
		t.Errorf("shown measured %vs, want 2s from the daemon's ring time", sum)
	}
}

// A queue moving on: the new agent's pop is measured from their own ring,
// and an agent rung again is not blind twice.
func TestLedgerQueueMovesOn(t *testing.T) {
	l, reg := testLedger(t, map[string]bool{"bob": true})
	l.ObserveCall(ringing("c1", 0, "alice"), at(0)) // alice blind
	l.ObserveCall(ringing("c1", 15, "bob"), at(15))
	if l.Shown("alice", "c1", pop.StageShown, at(16)) {
		t.Error("alice, no longer rung, counted")
	}
	l.Shown("bob", "c1", pop.StageShown, at(16))
	if _, sum := histogram(t, reg, "screenpop_pop_shown_seconds", map[string]string{"source": "cti"}); sum != 1 {
		t.Errorf("bob's pop measured %vs, want 1s from his own ring", sum)
	}
	l.ObserveCall(ringing("c1", 16, "bob"), at(16)) // the same set again
	if got := value(l.metrics.blind.WithLabelValues("cti")); got != 1 {
		t.Errorf("blind rings = %v, want 1", got)
	}
	calls := l.Calls()
	if len(calls) != 1 || !slices.Equal(calls[0].Ringing, []string{"bob"}) || !calls[0].RingAt.Equal(t0) || calls[0].Caller != "+*******456" || calls[0].Line != "Support" {
		t.Errorf("calls: %+v", calls)
	}
}

// Transfers: a blind transfer lets go of the call (the transferring
// agent's acknowledgement no longer counts), the target's pop is measured
// from their ring, and the call is answered once.
func TestLedgerTransfers(t *testing.T) {
	l, reg := testLedger(t, map[string]bool{"alice": true, "bob": true})
	l.ObserveCall(ringing("c1", 0, "alice"), at(0))
	l.ObserveCall(answered("c1", 2, "alice"), at(2))
	blind := ringing("c1", 10, "bob")
	blind.Transfer = &screenpop.Transfer{From: "alice"}
	l.ObserveCall(blind, at(10))
	if c := l.Calls()[0]; c.Agent != "" || !slices.Equal(c.Ringing, []string{"bob"}) {
		t.Errorf("during a blind transfer: %+v", c)
	}
	if l.Shown("alice", "c1", pop.StageShown, at(10.5)) {
		t.Error("alice let go of the call, yet her acknowledgement counted")
	}
	l.Shown("bob", "c1", pop.StageShown, at(10.5))
	l.ObserveCall(answered("c1", 12, "bob"), at(12))
	if got := value(l.metrics.answered.WithLabelValues("cti")); got != 1 {
		t.Errorf("answered = %v, want 1 (the first answer only)", got)
	}
	if _, sum := histogram(t, reg, "screenpop_pop_shown_seconds", map[string]string{"source": "cti"}); sum != 0.5 {
		t.Errorf("bob's pop measured %vs, want 0.5s from his ring", sum)
	}
	l.ObserveCall(ended("c1", 30, screenpop.OutcomeAnswered), at(30))
	h := l.Handled()
	if h["alice"].CallID != "c1" || h["bob"].CallID != "c1" {
		t.Errorf("handled: %+v, want alice and bob for c1", h)
	}
}

// An answered end without an answered event (a CTI posting only ring and
// end) still counts as answered; an empty outcome follows the answer.
func TestLedgerOutcomes(t *testing.T) {
	l, _ := testLedger(t, nil)
	l.ObserveCall(ringing("c1", 0, "alice"), at(0))
	l.ObserveCall(ended("c1", 9, screenpop.OutcomeAnswered), at(9))
	l.ObserveCall(ringing("c2", 0, "alice"), at(0))
	l.ObserveCall(ended("c2", 9, ""), at(9))
	l.ObserveCall(ringing("c3", 0, "alice"), at(0))
	l.ObserveCall(ended("c3", 9, "voicemail"), at(9))
	m := l.metrics
	for _, c := range []struct {
		outcome string
		want    float64
	}{{"answered", 1}, {"noanswer", 1}, {OutcomeOther, 1}} {
		if got := value(m.calls.WithLabelValues("cti", "Support", c.outcome)); got != c.want {
			t.Errorf("calls %s = %v, want %v", c.outcome, got, c.want)
		}
	}
	if got := value(m.answered.WithLabelValues("cti")); got != 1 {
		t.Errorf("answered = %v, want 1", got)
	}
}

// Every series a dashboard needs is there before the first call.
func TestLedgerSeriesExistUpFront(t *testing.T) {
	_, reg := testLedger(t, nil)
	promregtest.Lint(t, reg, map[string]int{
		"screenpop_pop_shown_seconds":           1,
		"screenpop_pop_complete_seconds":        1,
		"screenpop_calls_answered_total":        1,
		"screenpop_calls_answered_popped_total": 1,
		"screenpop_pop_blind_rings_total":       1,
		"screenpop_calls_total":                 2 * len(Outcomes), // Support and other
		"screenpop_calls_ringing":               1,
		"screenpop_calls_longest_wait_seconds":  1,
		"screenpop_call_answer_wait_seconds":    1,
		"screenpop_call_abandoned_wait_seconds": 1,
		"screenpop_agents":                      len(agentStates),
		"screenpop_floor_share_errors_total":    len(shareOps),
	})
}
