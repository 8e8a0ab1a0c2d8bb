package pop

import (
	"context"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

func transferRinging(callID string, at time.Time, from string, consult, rangOut bool, agents ...string) screenpop.CallEvent {
	ev := ringing(callID, at, agents...)
	ev.Transfer = &screenpop.Transfer{From: from, Consult: consult}
	ev.RangOut = rangOut
	return ev
}

// A blind transfer: the agent who had the call is told at once, the
// target's phone pops while it rings ("transferred by"), the agent who let
// go learns whom it went to, and the target's answer makes the call theirs.
func TestBlindTransferPopsWhileTargetRings(t *testing.T) {
	e := startDispatcher(t, nil)
	t0 := time.Now().Add(-time.Minute)
	e.d.HandleCall(ringing("c1", t0, "alice", "bob"))
	e.del.waitTypes(t, "alice", "c1", TypePop)
	e.d.HandleCall(answered("c1", "bob", t0.Add(2*time.Second)))
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered)
	e.del.waitTypes(t, "alice", "c1", TypePop, TypeWithdrawn)

	// BridgeBlindTransfer: bob lets go before carol's phone rings.
	e.d.HandleCall(transferRinging("c1", t0.Add(30*time.Second), "bob", false, false))
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered, TypeWithdrawn)
	if w := decode[WithdrawnData](t, e.del.of("bob")[2]); w.Reason != ReasonTransferred || w.By != nil {
		t.Errorf("bob at the transfer: %+v, want transferred with no target yet", w)
	}
	// carol's phone rings: a ringing pop saying who transfers it, and bob
	// is told whom it went to.
	e.d.HandleCall(transferRinging("c1", t0.Add(31*time.Second), "bob", false, false, "carol"))
	e.del.waitTypes(t, "carol", "c1", TypePop)
	p := decode[PopData](t, e.del.of("carol")[0])
	if p.State != StateRinging || p.Transfer == nil || p.Transfer.From.ID != "bob" || p.Transfer.From.Name != "Bob Builder" || p.Transfer.Consult {
		t.Errorf("carol's pop: state %s transfer %+v", p.State, p.Transfer)
	}
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered, TypeWithdrawn, TypeWithdrawn)
	if w := decode[WithdrawnData](t, e.del.of("bob")[3]); w.Reason != ReasonTransferred || w.By == nil || w.By.ID != "carol" {
		t.Errorf("bob once carol rings: %+v, want transferred to carol", w)
	}
	// A browser connecting now sees the transfer on the ringing pop.
	var snap []PopView
	e.d.Snapshot("carol", func(p []PopView) { snap = p })
	if len(snap) != 1 || snap[0].State != StateRinging || snap[0].Transfer == nil || snap[0].Transfer.From.ID != "bob" {
		t.Errorf("carol's snapshot: %+v", snap)
	}
	e.d.Snapshot("bob", func(p []PopView) { snap = p })
	if len(snap) != 0 {
		t.Errorf("bob's snapshot: %+v, want nothing: the card never stays with who let go", snap)
	}

	e.d.HandleCall(transferred("c1", "carol", t0.Add(35*time.Second)))
	e.del.waitTypes(t, "carol", "c1", TypePop, TypeAnswered)
	if a := decode[AnsweredData](t, e.del.of("carol")[1]); a.Agent.ID != "carol" || !a.Transferred {
		t.Errorf("carol answered: %+v", a)
	}
	e.d.HandleCall(ended("c1", "carol", screenpop.OutcomeAnswered, t0.Add(90*time.Second)))
	e.del.waitTypes(t, "carol", "c1", TypePop, TypeAnswered, TypeEnded)
	if got := e.del.types("bob", "c1"); len(got) != 4 {
		t.Errorf("bob got %v after letting go, want nothing more", got)
	}
	if past := e.rec.waitRecorded(t, 1)[0]; past.Agent != "carol" {
		t.Errorf("recorded agent %q, want carol", past.Agent)
	}
}

// The target of a blind transfer does not answer: their pop goes as rung
// out, and the call that then ends in voicemail is recorded with the agent
// who last had it.
func TestBlindTransferRingsOut(t *testing.T) {
	e := startDispatcher(t, nil)
	t0 := time.Now().Add(-time.Minute)
	e.d.HandleCall(ringing("c1", t0, "bob"))
	e.d.HandleCall(answered("c1", "bob", t0.Add(2*time.Second)))
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered)
	e.d.HandleCall(transferRinging("c1", t0.Add(30*time.Second), "bob", false, false, "carol"))
	e.del.waitTypes(t, "carol", "c1", TypePop)
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered, TypeWithdrawn)
	if w := decode[WithdrawnData](t, e.del.of("bob")[2]); w.Reason != ReasonTransferred || w.By == nil || w.By.ID != "carol" {
		t.Errorf("bob: %+v, want transferred to carol", w)
	}
	e.d.HandleCall(transferRinging("c1", t0.Add(50*time.Second), "bob", false, true))
	e.del.waitTypes(t, "carol", "c1", TypePop, TypeWithdrawn)
	if w := decode[WithdrawnData](t, e.del.of("carol")[1]); w.Reason != ReasonRangOut {
		t.Errorf("carol: %+v, want rang_out", w)
	}
	e.d.HandleCall(ended("c1", "", screenpop.OutcomeAnswered, t0.Add(80*time.Second)))
	past := e.rec.waitRecorded(t, 1)[0]
	if past.Agent != "bob" || past.Outcome != screenpop.OutcomeAnswered {
		t.Errorf("recorded %+v, want answered by bob", past)
	}
	for _, a := range []string{"bob", "carol"} {
		if got := e.del.types(a, "c1"); len(got) != map[string]int{"bob": 3, "carol": 2}[a] {
			t.Errorf("%s got %v: nobody holds a call that rang out", a, got)
		}
	}
}

// Every phone rang out while the caller stays on the line (voicemail):
// the pops go at that moment, not when the caller hangs up.
func TestRangOutWithdrawsAtOnce(t *testing.T) {
	e := startDispatcher(t, nil)
	t0 := time.Now().Add(-time.Minute)
	e.d.HandleCall(ringing("c1", t0, "alice", "bob"))
	e.del.waitTypes(t, "alice", "c1", TypePop)
	e.del.waitTypes(t, "bob", "c1", TypePop)
	ev := ringing("c1", t0.Add(20*time.Second), "bob")
	ev.RangOut = true
	e.d.HandleCall(ev)
	e.del.waitTypes(t, "alice", "c1", TypePop, TypeWithdrawn)
	ev = ringing("c1", t0.Add(20*time.Second))
	ev.RangOut = true
	e.d.HandleCall(ev)
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeWithdrawn)
	for _, a := range []string{"alice", "bob"} {
		if w := decode[WithdrawnData](t, e.del.of(a)[1]); w.Reason != ReasonRangOut {
			t.Errorf("%s: %+v, want rang_out", a, w)
		}
		var snap []PopView
		e.d.Snapshot(a, func(p []PopView) { snap = p })
		if len(snap) != 0 {
			t.Errorf("%s's snapshot after ringing out: %+v", a, snap)
		}
	}
	e.d.HandleCall(ended("c1", "", screenpop.OutcomeNoAnswer, t0.Add(60*time.Second)))
	if past := e.rec.waitRecorded(t, 1)[0]; past.Outcome != screenpop.OutcomeNoAnswer {
		t.Errorf("recorded %+v", past)
	}
}

// An attended transfer: the consulted colleague sees the card while their
// phone rings and while they talk to the agent, who keeps the call; given
// up, the colleague's pop goes; completed, the call is the colleague's.
func TestConsultationShowsCardToColleague(t *testing.T) {
	e := startDispatcher(t, nil)
	t0 := time.Now().Add(-time.Minute)
	e.d.HandleCall(ringing("c1", t0, "bob"))
	e.d.HandleCall(answered("c1", "bob", t0.Add(2*time.Second)))
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered)

	e.d.HandleCall(transferRinging("c1", t0.Add(20*time.Second), "bob", true, false, "carol"))
	e.del.waitTypes(t, "carol", "c1", TypePop)
	p := decode[PopData](t, e.del.of("carol")[0])
	if p.State != StateRinging || p.Transfer == nil || !p.Transfer.Consult || p.Transfer.From.ID != "bob" {
		t.Errorf("carol's consultation pop: %+v", p)
	}
	var snap []PopView
	e.d.Snapshot("bob", func(p []PopView) { snap = p })
	if len(snap) != 1 || snap[0].State != StateAnswered {
		t.Errorf("bob's snapshot during the consultation: %+v, want the call, answered", snap)
	}
	e.d.Snapshot("carol", func(p []PopView) { snap = p })
	if len(snap) != 1 || snap[0].State != StateRinging || snap[0].Transfer == nil || !snap[0].Transfer.Consult {
		t.Errorf("carol's snapshot during the consultation: %+v", snap)
	}
	// Given up: carol's pop goes, bob is not disturbed.
	e.d.HandleCall(transferRinging("c1", t0.Add(25*time.Second), "bob", true, false))
	e.del.waitTypes(t, "carol", "c1", TypePop, TypeWithdrawn)
	if w := decode[WithdrawnData](t, e.del.of("carol")[1]); w.Reason != ReasonTransferCancelled {
		t.Errorf("carol: %+v, want transfer_cancelled", w)
	}
	// A second consultation, with dan, completes.
	e.d.HandleCall(transferRinging("c1", t0.Add(30*time.Second), "bob", true, false, "dan"))
	e.del.waitTypes(t, "dan", "c1", TypePop)
	e.d.HandleCall(transferred("c1", "dan", t0.Add(40*time.Second)))
	e.del.waitTypes(t, "dan", "c1", TypePop, TypeAnswered)
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered, TypeWithdrawn)
	if w := decode[WithdrawnData](t, e.del.of("bob")[2]); w.Reason != ReasonTransferred || w.By == nil || w.By.ID != "dan" {
		t.Errorf("bob: %+v, want transferred to dan", w)
	}
	if err := e.d.Note(context.Background(), Agent{ID: "carol"}, "c1", "consulted", "r1"); err != nil {
		t.Errorf("carol, who saw the card, may write a note: %v", err)
	}
}

// The card is built once, whoever rings first: a consultation that starts
// before the first card is ready pops the colleague when it is.
func TestConsultationBeforeCardReady(t *testing.T) {
	e := startDispatcher(t, nil)
	release := e.b.gate("c1")
	t0 := time.Now().Add(-time.Minute)
	e.d.HandleCall(ringing("c1", t0, "bob"))
	e.d.HandleCall(answered("c1", "bob", t0.Add(time.Second)))
	e.d.HandleCall(transferRinging("c1", t0.Add(2*time.Second), "bob", true, false, "carol"))
	release()
	e.del.waitTypes(t, "bob", "c1", TypePop, TypeAnswered)
	e.del.waitTypes(t, "carol", "c1", TypePop)
	if p := decode[PopData](t, e.del.of("carol")[0]); p.State != StateRinging || p.Transfer == nil {
		t.Errorf("carol: %+v", p)
	}
}

// ctxBuilder blocks every build until its context ends and reports why.
type ctxBuilder struct {
	fakeBuilder
	causes chan error
}

func (b *ctxBuilder) Build(ctx context.Context, ev screenpop.CallEvent) screenpop.Card {
	<-ctx.Done()
	b.causes <- context.Cause(ctx)
	return screenpop.Card{CallID: ev.CallID, Phone: "+4930123456"}
}

// One owner per call: the call's builds run under a context the call owns,
// cancelled with a cause when it ends, and the history still gets the call.
func TestCallEndCancelsItsBuild(t *testing.T) {
	b := &ctxBuilder{fakeBuilder: *newFakeBuilder(), causes: make(chan error, 1)}
	e := startDispatcher(t, func(c *DispatcherConfig) { c.Builder = b })
	t0 := time.Now().Add(-time.Minute)
	e.d.HandleCall(ringing("c1", t0, "alice"))
	e.d.HandleCall(ended("c1", "", screenpop.OutcomeAbandoned, t0.Add(5*time.Second)))
	select {
	case cause := <-b.causes:
		if cause == nil || cause.Error() != "call c1 ended (abandoned)" {
			t.Errorf("the build stopped because %v, want the call's end", cause)
		}
	case <-time.After(patience):
		t.Fatal("the build of a call that ended was never cancelled")
	}
	if past := e.rec.waitRecorded(t, 1)[0]; past.CallID != "c1" || past.Outcome != screenpop.OutcomeAbandoned {
		t.Errorf("recorded %+v", past)
	}
}
