package pop

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
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

// parseHead, ParseEncoded's way for a message as Encode writes it, must
// say what json.Unmarshal would, or leave the message to it.
func TestParseEncodedFastPath(t *testing.T) {
	at := time.Date(2026, 3, 4, 10, 15, 2, 123456789, time.UTC)
	card := richCard(screenpop.CallEvent{CallID: "pbx/1700000000.42", Caller: screenpop.Caller{Number: "030 123456", Name: "ACME"}, DID: "100"})
	for _, m := range []Message{
		{Type: TypePop, CallID: card.CallID, At: at, Data: PopData{State: StateRinging, Card: card}},
		{Type: TypeEnded, CallID: "c1", At: at, Data: EndedData{Outcome: screenpop.OutcomeAnswered, Agent: &AgentRef{ID: "1001"}}},
		{Type: TypeWithdrawn, At: at},
	} {
		e, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := parseHead(e.Unnumbered()); !ok {
			t.Errorf("%s: left to json.Unmarshal: %s", m.Type, e.Unnumbered())
		}
		checkParseEncoded(t, e.Unnumbered())
	}
	for _, s := range []string{
		`{"type":"pop","call_id":"c1","at":"2026-03-04T10:15:02Z","data":{},"seq":3}`,   // a seq after the data
		`{"type":"pop","call_id":"c1","at":"2026-03-04T10:15:02Z","data":{}, "SEQ":3}`,  // in another case
		`{"type":"pop","call_id":"c1","at":"2026-03-04T10:15:02Z","data":{},"type":""}`, // a second type
		`{"type":"pop","call_id":"c\u00e9","at":"2026-03-04T10:15:02Z"}`,                // an escape
		`{"type":"pop","at":"2026-03-04T25:15:02Z"}`,                                    // no such hour
		`{"type":"pop","at":"2026-03-04T10:15:02Z","data":{"a":}}`,                      // broken data
		`{"type":"pop","at":"2026-03-04T10:15:02Z","data":1}`,
		`{"type":"pop","at":"2026-03-04T10:15:02Z"}`,
		`{"type":"","at":"2026-03-04T10:15:02Z"}`,
	} {
		checkParseEncoded(t, []byte(s))
	}
}

// checkParseEncoded compares parseHead with json.Unmarshal on raw.
func checkParseEncoded(t *testing.T, raw []byte) {
	t.Helper()
	fast, ok := parseHead(raw)
	var head struct {
		Type   string    `json:"type"`
		Seq    uint64    `json:"seq"`
		CallID string    `json:"call_id"`
		At     time.Time `json:"at"`
	}
	err := json.Unmarshal(raw, &head)
	if !ok {
		return
	}
	if err != nil || head.Seq != 0 || head.Type == "" {
		t.Errorf("%s: parseHead took what json.Unmarshal refuses (%v, seq %d, type %q)", raw, err, head.Seq, head.Type)
		return
	}
	if fast.Type != head.Type || fast.CallID != head.CallID || !fast.At.Equal(head.At) || fast.At.Location().String() != head.At.Location().String() || string(fast.Unnumbered()) != string(raw) {
		t.Errorf("%s: parseHead %+v, json.Unmarshal %+v", raw, fast, head)
	}
}

func FuzzParseEncoded(f *testing.F) {
	for _, s := range []string{
		`{"type":"ended","call_id":"c1","at":"2026-03-04T10:15:02.123456789Z","data":{"outcome":"answered"}}`,
		`{"type":"pop","call_id":"c1","at":"2026-03-04T10:15:02+01:00","data":{"card":{"sections":[{"type":"x"}]}}}`,
		`{"type":"withdrawn","at":"2026-03-04T10:15:02Z"}`,
		`{"type":"pop","call_id":"c1","at":"2026-03-04T10:15:02Z","data":{},"seq":3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkParseEncoded(t, raw) })
}

// BenchmarkParseEncoded is reading back a pop from a Redis stream: the
// hand-read head with json.Valid against json.Unmarshal.
//
//	go test -run '^$' -bench ParseEncoded -benchmem ./pop/
func BenchmarkParseEncoded(b *testing.B) {
	at := time.Date(2026, 3, 4, 10, 15, 2, 123456789, time.UTC)
	card := richCard(screenpop.CallEvent{CallID: "pbx/1700000000.42", Caller: screenpop.Caller{Number: "030 123456", Name: "ACME"}, DID: "100"})
	e, err := Encode(Message{Type: TypePop, CallID: card.CallID, At: at, Data: PopData{State: StateRinging, Card: card}})
	if err != nil {
		b.Fatal(err)
	}
	raw := e.Unnumbered()
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ParseEncoded(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			var head struct {
				Type   string    `json:"type"`
				Seq    uint64    `json:"seq"`
				CallID string    `json:"call_id"`
				At     time.Time `json:"at"`
			}
			if err := json.Unmarshal(raw, &head); err != nil {
				b.Fatal(err)
			}
		}
	})
}
