package popstate

import (
	"fmt"
	"slices"
	"testing"

	screenpop "github.com/screenpop/screenpop"
)

// A call event applied twice changes nothing the second time: the same
// messages to the same agents and the same work (one card built, one
// call recorded) as when each came once. The HTTP intake's README tells a
// PBX to resend events after a network error on this promise.
func TestRepeatedEventsChangeNothing(t *testing.T) {
	ring := screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "c1", At: scenarioStart,
		Caller: screenpop.Caller{Number: "+4930123456"}, Agents: []string{"a1", "a2"}}
	answer := screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: "c1", At: scenarioStart, Agent: "a2"}
	transfer := screenpop.CallEvent{Kind: screenpop.EventTransferred, CallID: "c1", At: scenarioStart, Agent: "a3"}
	end := screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "c1", At: scenarioStart, Outcome: screenpop.OutcomeAnswered, Agent: "a3"}
	run := func(times int) []string {
		m := testMachine()
		var trace []string
		var take func(out Output)
		take = func(out Output) {
			for _, d := range out.Deliveries {
				trace = append(trace, fmt.Sprintf("%s to %v", d.Msg.Type, d.To))
			}
			for _, e := range out.Effects {
				trace = append(trace, fmt.Sprintf("%T", e))
				if b, ok := e.(Build); ok {
					take(m.CardBuilt(b, testCard(b), scenarioStart))
				}
			}
		}
		for _, ev := range []screenpop.CallEvent{ring, answer, transfer, end} {
			for range times {
				take(m.Apply(ev, scenarioStart))
			}
		}
		return trace
	}
	once, twice := run(1), run(2)
	if len(once) < 6 {
		t.Fatalf("the call did too little to compare: %q", once)
	}
	if !slices.Equal(once, twice) {
		t.Errorf("each event twice:\n%q\nonce:\n%q", twice, once)
	}
}
