package popstate

import (
	"testing"

	screenpop "github.com/screenpop/screenpop"
)

// checkActive compares the count of live calls the machine keeps as calls
// come and go (Active, which the dispatcher reads after every event) with
// a count of its calls that have not ended. The invariants check it after
// every step of every scenario and of TestRandomInputs.
func checkActive(t *testing.T, where string, m *Machine) {
	t.Helper()
	scanned := 0
	for _, c := range m.calls {
		if !c.ended {
			scanned++
		}
	}
	if got := m.Active(); got != scanned {
		t.Errorf("%s: Active() = %d, but %d of the %d calls followed have not ended", where, got, scanned, len(m.calls))
	}
}

// TestActiveCountsLiveCalls is checkActive on its own, so that the counter
// is tested to move, not only to agree with a machine that never had a
// live call: rung calls count, an ended call does not (also while its card
// is still being built), a swept call no longer does.
func TestActiveCountsLiveCalls(t *testing.T) {
	m := testMachine()
	step := func(want int, out Output) Output {
		t.Helper()
		checkActive(t, "step", m)
		if got := m.Active(); got != want {
			t.Fatalf("Active() = %d, want %d", got, want)
		}
		return out
	}
	ring := func(id string) Output {
		ev := screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: id, At: scenarioStart,
			Caller: screenpop.Caller{Number: "+4930123456"}, Agents: []string{"a1"}}
		return m.Apply(ev, scenarioStart)
	}
	end := func(id string) Output {
		ev := screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: id, At: scenarioStart, Outcome: screenpop.OutcomeAbandoned}
		return m.Apply(ev, scenarioStart)
	}
	step(0, Output{})
	outA := step(1, ring("a"))
	step(2, ring("b"))
	step(2, ring("b")) // the same call again
	step(3, ring("c"))
	// a ends before its card is built: no longer live, though still followed.
	step(2, end("a"))
	if !m.Follows("a") {
		t.Fatal("a is no longer followed while its card builds")
	}
	for _, e := range outA.Effects {
		if b, ok := e.(Build); ok {
			step(2, m.CardBuilt(b, testCard(b), scenarioStart))
		}
	}
	if m.Follows("a") {
		t.Fatal("a is still followed after its card came")
	}
	step(2, end("a")) // a repeat
	step(0, m.Sweep(scenarioStart.Add(m.cfg.StaleAfter)))
}
