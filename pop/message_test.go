package pop

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// An Encoded message is the Message's JSON, with the seq written in front
// when numbered; what comes back from a stream is checked.
func TestEncodedMessage(t *testing.T) {
	at := time.Date(2026, 3, 4, 10, 15, 2, 0, time.UTC)
	e, err := Encode(Message{Type: TypeWithdrawn, Seq: 99, CallID: "c1", At: at, Data: WithdrawnData{Reason: ReasonRangOut}})
	if err != nil {
		t.Fatal(err)
	}
	const body = `"type":"withdrawn","call_id":"c1","at":"2026-03-04T10:15:02Z","data":{"reason":"rang_out"}}`
	if got := string(e.Unnumbered()); got != "{"+body {
		t.Errorf("unnumbered: %s", got)
	}
	if got := string(e.AppendJSON(nil)); got != "{"+body {
		t.Errorf("without a seq: %s", got)
	}
	e.Seq = 1767225600000001
	got, err := json.Marshal(e)
	if err != nil || string(got) != `{"seq":1767225600000001,`+body {
		t.Errorf("numbered: %s %v", got, err)
	}
	var back Message
	if err := json.Unmarshal(got, &back); err != nil || back.Seq != e.Seq || back.Type != TypeWithdrawn || !back.At.Equal(at) {
		t.Errorf("decoded %+v %v", back, err)
	}

	p, err := ParseEncoded(e.Unnumbered())
	if err != nil || p.Type != e.Type || p.CallID != "c1" || !p.At.Equal(at) || p.Seq != 0 || p.Size() != e.Size() {
		t.Errorf("parsed %+v %v", p, err)
	}
	for _, bad := range []string{"", "[]", `{"type":"pop"`, `{"call_id":"c1"}`, `{"type":"pop","seq":3}`} {
		if _, err := ParseEncoded([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if _, err := Encode(Message{Type: TypePop, Data: map[string]any{"nan": json.Number("x")}}); err == nil || !strings.Contains(err.Error(), "json") {
		t.Errorf("a message JSON cannot hold: %v", err)
	}
}
