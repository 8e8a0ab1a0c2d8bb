package telephony

import (
	"reflect"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// Two PBXs with the same channel ID give two calls; everything but the ID
// and the source name reaches the sink as the source sent it, in order.
func TestNamespacedKeepsTwoPBXsApart(t *testing.T) {
	var got []screenpop.CallEvent
	sink := screenpop.CallSinkFunc(func(ev screenpop.CallEvent) { got = append(got, ev) })
	a, b := Namespaced("pbx-a", sink), Namespaced("pbx-b", sink)

	at := time.Date(2026, 11, 23, 9, 35, 51, 0, time.UTC)
	ringing := screenpop.CallEvent{
		Kind: screenpop.EventRinging, CallID: "1795435000.0", Source: "ari",
		Caller: screenpop.Caller{Number: "+4930123456", Name: "Jane Doe"}, DID: "100",
		Agents: []string{"1001", "1002"}, At: at,
	}
	ended := screenpop.CallEvent{
		Kind: screenpop.EventEnded, CallID: "1795435000.0", Agent: "1002",
		Outcome: screenpop.OutcomeAnswered, At: at.Add(time.Minute),
	}
	a.HandleCall(ringing)
	b.HandleCall(ringing)
	a.HandleCall(ended)
	// An ID that already looks namespaced is still the PBX's own: prefixed.
	b.HandleCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "pbx-b/7", Outcome: screenpop.OutcomeFailed})

	want := []screenpop.CallEvent{ringing, ringing, ended, {Kind: screenpop.EventEnded, Outcome: screenpop.OutcomeFailed}}
	want[0].CallID, want[0].Source = "pbx-a/1795435000.0", "pbx-a"
	want[1].CallID, want[1].Source = "pbx-b/1795435000.0", "pbx-b"
	want[2].CallID, want[2].Source = "pbx-a/1795435000.0", "pbx-a"
	want[3].CallID, want[3].Source = "pbx-b/pbx-b/7", "pbx-b"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("events reaching the sink:\n got  %+v\n want %+v", got, want)
	}
	if ringing.CallID != "1795435000.0" || ringing.Source != "ari" {
		t.Errorf("the source's event was modified: %+v", ringing)
	}
}
