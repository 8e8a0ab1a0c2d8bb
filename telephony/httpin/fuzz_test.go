package httpin

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
)

// bodySeeds are call-event bodies worth starting from: what PBXs post,
// and what the decoder must not mistake for it. testdata/fuzz holds more.
var bodySeeds = []string{
	oneCall[0], oneCall[1], oneCall[2],
	`[` + oneCall[0] + `,` + oneCall[1] + `,` + oneCall[2] + `]`,
	`{"event":"ringing","call_id":"a","agents":[]}`,
	`{"event":"ringing","call_id":"a","agents":null,"rang_out":true}`,
	`{"event":"ringing","call_id":"a","agents":["1"],"transfer":{"from":"2","consult":true}}`,
	`{"event":"ringing","call_id":"a","agents":["1"],"caller":{"number":"anonymous","name":"Zo\u00eb \ud83d\udcde \"Z\" O\/Brien"}}`,
	`{"Event":"ringing","CALL_ID":"a","agents":["1"]}`,
	`{"event":"ringing","event":"ended","call_id":"a","agents":["1"]}`,
	`{"event":"ringing","call_id":"a","caller":{"number":"1"},"caller":{"name":"x"},"agents":["1"]}`,
	`{"event":"ended","call_id":"a","outcome":"busy","at":"2026-11-23T11:15:00.250+01:00"}`,
	`{"event":"ringing","call_id":"\ud800","agents":["1"]}`,
	"{\"event\":\"ringing\",\"call_id\":\"\xff\",\"agents\":[\"1\"]}",
	`{"event":"ringing","call_id":"a","agents":["1",null]}`,
	`[null]`, `null`, `[]`, `[{}]`, `{}`, `{"event":1}`, `[{"event":"ringing"},]`, `{"event":"ringing"} {}`,
}

// FuzzDecodeFast checks decodeFast against encoding/json (decodeEach):
// whatever body it accepts, it decodes exactly as encoding/json does with
// unknown fields disallowed, nil and empty slices told apart. It may leave
// bodies to encoding/json, never decode one differently.
func FuzzDecodeFast(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		body = bytes.TrimSpace(body)
		if len(body) == 0 {
			return // decode answers "empty body" before either
		}
		fast, ok := decodeFast(body)
		ref, herr := decodeEach(body)
		if !ok {
			return
		}
		if herr != nil {
			t.Fatalf("decodeFast took %q, which encoding/json refuses: %s", body, herr.msg)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("decodeFast(%q)\n = %s\nencoding/json\n = %s", body, dump(fast), dump(ref))
		}
	})
}

// dump shows events with their pointers followed and nil told from empty.
func dump(evs []wireEvent) string {
	var b bytes.Buffer
	for _, ev := range evs {
		b.WriteString("\n  ")
		v := reflect.ValueOf(ev)
		for i := range v.NumField() {
			f := v.Field(i)
			b.WriteString(v.Type().Field(i).Name + "=")
			switch {
			case f.Kind() == reflect.Pointer && f.IsNil(), f.Kind() == reflect.Slice && f.IsNil():
				b.WriteString("nil")
			default:
				data, _ := json.Marshal(f.Interface())
				b.Write(data)
			}
			b.WriteByte(' ')
		}
	}
	return b.String()
}

// deliveries is a sink for FuzzCallEventBody: the events of the request
// being served.
type deliveries struct {
	mu     sync.Mutex
	events []screenpop.CallEvent
}

func (d *deliveries) HandleCall(ev screenpop.CallEvent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, ev)
}

func (d *deliveries) take() []screenpop.CallEvent {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.events
	d.events = nil
	return out
}

// FuzzCallEventBody posts arbitrary bodies to the running endpoint: it
// must answer every one with a status it documents and a JSON body that
// says how many events it took or why it took none, deliver exactly that
// many, all or none, and only events the pipeline can use.
func FuzzCallEventBody(f *testing.F) {
	for _, s := range bodySeeds {
		f.Add([]byte(s))
	}
	src, err := New(Config{Name: "pbx", Tokens: []string{token}, MaxBody: 4096}, agentOf, nil, prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	sink := &deliveries{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	f.Cleanup(func() {
		cancel()
		<-done
	})
	for !src.running() {
		select {
		case err := <-done:
			f.Fatalf("Run returned early: %v", err)
		default:
		}
	}
	h := src.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/call-events/pbx", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := sink.take()
		if !slices.Contains(statusCodes, rec.Code) {
			t.Fatalf("status %d is not among the documented %v", rec.Code, statusCodes)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("content type %q", ct)
		}
		var answer struct {
			Accepted *int    `json:"accepted"`
			Error    *string `json:"error"`
		}
		dec := json.NewDecoder(rec.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&answer); err != nil {
			t.Fatalf("answer %q is not the documented JSON: %v", rec.Body.String(), err)
		}
		if rec.Code != http.StatusOK {
			if answer.Error == nil || *answer.Error == "" || answer.Accepted != nil {
				t.Errorf("status %d answered %+v, want an error message", rec.Code, answer)
			}
			if len(got) != 0 {
				t.Errorf("refused (%d %s), yet %d events delivered", rec.Code, *answer.Error, len(got))
			}
			return
		}
		if answer.Accepted == nil || answer.Error != nil || *answer.Accepted != len(got) || len(got) == 0 {
			t.Fatalf("200 answered %q, %d events delivered", rec.Body.String(), len(got))
		}
		for _, ev := range got {
			checkDelivered(t, ev)
		}
	})
}

// checkDelivered is what the pipeline may rely on in every event the
// source hands on.
func checkDelivered(t *testing.T, ev screenpop.CallEvent) {
	t.Helper()
	switch {
	case ev.CallID == "" || len(ev.CallID) > maxIDLength:
		t.Errorf("call id %q", ev.CallID)
	case ev.Source != "pbx":
		t.Errorf("source %q", ev.Source)
	case ev.At.IsZero():
		t.Errorf("no time: %+v", ev)
	case ev.Caller.Withheld && ev.Caller.Number != "":
		t.Errorf("withheld caller with number %q", ev.Caller.Number)
	case !ev.Caller.Withheld && ev.Caller.Number == "" && ev.Caller != (screenpop.Caller{}):
		// Only a caller never sent is neither (an unknown caller).
		t.Errorf("caller sent, yet neither withheld nor with a number: %+v", ev.Caller)
	case ev.Kind == screenpop.EventRinging && ev.Agent != "":
		t.Errorf("ringing with agent %q", ev.Agent)
	case ev.Kind != screenpop.EventRinging && (ev.Agents != nil || ev.RangOut || ev.Transfer != nil):
		t.Errorf("%s with a ringing set: %+v", ev.Kind, ev)
	case (ev.Kind == screenpop.EventAnswered || ev.Kind == screenpop.EventTransferred) && ev.Agent == "":
		t.Errorf("%s without agent", ev.Kind)
	case ev.Kind == screenpop.EventEnded && ev.Outcome == "":
		t.Errorf("ended without outcome")
	case ev.Kind != screenpop.EventEnded && ev.Outcome != "":
		t.Errorf("%s with outcome %q", ev.Kind, ev.Outcome)
	}
	if ev.Kind != screenpop.EventRinging && ev.Kind != screenpop.EventAnswered &&
		ev.Kind != screenpop.EventTransferred && ev.Kind != screenpop.EventEnded {
		t.Errorf("kind %q", ev.Kind)
	}
	for _, a := range ev.Agents {
		if a == "" || len(a) > maxIDLength {
			t.Errorf("agent %q in the ringing set", a)
		}
	}
	for _, s := range []string{ev.CallID, ev.DID, ev.Agent, ev.Caller.Number, ev.Caller.Name} {
		if strings.IndexFunc(s, unicode.IsControl) >= 0 {
			t.Errorf("control characters in %q", s)
		}
	}
}

// TestDecodeFastTakesWhatPBXsPost keeps the fast path useful, and
// FuzzDecodeFast's comparison from holding vacuously: the bodies PBXs
// post, escapes and all, are decoded without encoding/json, and what only
// encoding/json may decide is left to it.
func TestDecodeFastTakesWhatPBXsPost(t *testing.T) {
	for _, body := range []string{
		oneCall[0], oneCall[1], oneCall[2],
		"[" + oneCall[0] + ",\n " + oneCall[1] + " ,\t" + oneCall[2] + "]",
		`{"event":"ringing","call_id":"a","agents":[],"did":null,"caller":null}`,
		`{"event":"ringing","call_id":"a","agents":["1"],"rang_out":false,"transfer":{"from":"2","from_endpoint":"","consult":true}}`,
		`{"event":"ringing","call_id":"a","agents":["1"],"caller":{"number":"+48 601","name":"Zo\u00eb \ud83d\udcde \"Z\" O\/Brien\\\n","withheld":false}}`,
		`{"event":"ringing","call_id":"a","agents":["1"],"caller":{"name":"Łukasz Żółć"}}`,
		`{}`,
	} {
		if _, ok := decodeFast([]byte(body)); !ok {
			t.Errorf("decodeFast left %s to encoding/json", body)
		}
	}
	for _, body := range []string{
		`{"Event":"ringing","call_id":"a","agents":["1"]}`,
		`{"event":"ringing","event":"ended","call_id":"a"}`,
		`{"event":"ringing","call_id":"\ud800"}`,
		"{\"event\":\"ringing\",\"call_id\":\"\xff\"}",
		`{"event":"ringing","agents":["1",null]}`,
		`{"event":"ringing","calller":{}}`,
		`[null]`, `[]`, `{"event":"ringing"} {}`, `{"event":1}`,
	} {
		if evs, ok := decodeFast([]byte(body)); ok {
			t.Errorf("decodeFast took %s (%s): encoding/json decides", body, dump(evs))
		}
	}
}

// TestAcceptedAnswer: the answer to a request taken whole is written
// without encoding/json, and must be what it would write.
func TestAcceptedAnswer(t *testing.T) {
	for _, n := range []int{0, 1, 3, 99, 100, 101, 1000} {
		want := httptest.NewRecorder()
		writeJSON(want, http.StatusOK, map[string]int{"accepted": n})
		got := httptest.NewRecorder()
		writeAccepted(got, n)
		if got.Code != want.Code || got.Body.String() != want.Body.String() || !reflect.DeepEqual(got.Header(), want.Header()) {
			t.Errorf("n=%d: %d %v %q, want %d %v %q", n, got.Code, got.Header(), got.Body, want.Code, want.Header(), want.Body)
		}
	}
}
