package httpin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	screenpop "github.com/screenpop/screenpop"
)

const (
	token      = "t0ken-for-the-test-pbx-0123456789"
	otherToken = "second-token-being-rotated-in-42"
)

var received = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// agentOf maps PJSIP/<n> to agent <n>, like the daemon's agent patterns.
func agentOf(endpoint string) (string, bool) {
	id, ok := strings.CutPrefix(endpoint, "PJSIP/")
	return id, ok && id != ""
}

// recorder is a sink that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []screenpop.CallEvent
}

func (r *recorder) HandleCall(ev screenpop.CallEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) take() []screenpop.CallEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

type fixture struct {
	src  *Source
	srv  *httptest.Server
	sink *recorder
	reg  *prometheus.Registry
	stop func()
}

// start builds a source and runs it; Run is active when start returns
// (checked through the source's state, not by waiting).
func start(t *testing.T, agentOf func(string) (string, bool)) *fixture {
	t.Helper()
	reg := prometheus.NewRegistry()
	src, err := New(Config{Tokens: []string{token, otherToken}, MaxBody: 4096}, agentOf, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	src.now = func() time.Time { return received }
	f := &fixture{src: src, sink: &recorder{}, reg: reg}
	f.srv = httptest.NewServer(src.Handler())
	t.Cleanup(f.srv.Close)
	f.stop = runSource(t, src, f.sink)
	t.Cleanup(f.stop)
	return f
}

// runSource runs src.Run and returns a func that stops it and waits.
func runSource(t *testing.T, src *Source, sink screenpop.CallSink) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, sink) }()
	// Run sets the sink before blocking; wait for it through the lock the
	// handler uses.
	give := time.Now().Add(20 * time.Second) // only bounds a hung test
	for !src.running() {
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		if time.Now().After(give) {
			t.Fatal("Run never set its sink")
		}
		time.Sleep(time.Millisecond)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
}

func (f *fixture) post(t *testing.T, body string) (int, string) {
	t.Helper()
	return do(t, f.srv.URL, http.MethodPost, "Bearer "+token, "application/json", body)
}

func do(t *testing.T, url, method, auth, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("response content type %q", ct)
	}
	return resp.StatusCode, strings.TrimSpace(string(data))
}

func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Fatalf("not an error body: %s", body)
	}
	return e.Error
}

func TestCallLifecycle(t *testing.T) {
	f := start(t, agentOf)
	steps := []string{
		`{"event":"ringing","call_id":"c-1","caller":{"number":"+48 601-234-567","name":"NOWAK"},"did":"+493090182000","agents":["1001"],"endpoints":["PJSIP/1002","PJSIP/1001","Local/voicemail"]}`,
		`{"event":"answered","call_id":"c-1","endpoint":"PJSIP/1002","at":"2026-11-23T10:00:03.5+01:00"}`,
		`{"event":"transferred","call_id":"c-1","agent":"1003"}`,
		`{"event":"ended","call_id":"c-1","agent":"1003","outcome":"answered"}`,
	}
	for _, s := range steps {
		if code, body := f.post(t, s); code != 200 || body != `{"accepted":1}` {
			t.Fatalf("%s: %d %s", s, code, body)
		}
	}
	caller := screenpop.Caller{Number: "+48 601-234-567", Name: "NOWAK"}
	at := time.Date(2026, 11, 23, 10, 0, 3, 500_000_000, time.FixedZone("", 3600))
	want := []screenpop.CallEvent{
		{Kind: screenpop.EventRinging, CallID: "c-1", Caller: caller, DID: "+493090182000", Agents: []string{"1001", "1002"}, Source: "http", At: received},
		{Kind: screenpop.EventAnswered, CallID: "c-1", Caller: caller, DID: "+493090182000", Agent: "1002", Source: "http", At: at},
		{Kind: screenpop.EventTransferred, CallID: "c-1", Caller: caller, DID: "+493090182000", Agent: "1003", Source: "http", At: received},
		{Kind: screenpop.EventEnded, CallID: "c-1", Caller: caller, DID: "+493090182000", Agent: "1003", Outcome: screenpop.OutcomeAnswered, Source: "http", At: received},
	}
	got := f.sink.take()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("events\n got %+v\nwant %+v", got, want)
	}
	if n := len(f.src.open); n != 0 {
		t.Errorf("%d calls still tracked after ended", n)
	}
	if v := value(t, f.src.metrics.accepted); v != 4 {
		t.Errorf("accepted = %v, want 4", v)
	}
}

func TestBatchInOrder(t *testing.T) {
	f := start(t, agentOf)
	code, body := f.post(t, `[
		{"event":"ringing","call_id":"c-2","caller":{"withheld":true,"number":"+4930123456"},"agents":["1001","1002"]},
		{"event":"ringing","call_id":"c-2","agents":["1003"]},
		{"event":"ended","call_id":"c-2","outcome":"abandoned"}
	]`)
	if code != 200 || body != `{"accepted":3}` {
		t.Fatalf("%d %s", code, body)
	}
	got := f.sink.take()
	if len(got) != 3 {
		t.Fatalf("%d events", len(got))
	}
	kinds := []screenpop.CallEventKind{got[0].Kind, got[1].Kind, got[2].Kind}
	if !reflect.DeepEqual(kinds, []screenpop.CallEventKind{"ringing", "ringing", "ended"}) {
		t.Errorf("order %v", kinds)
	}
	if !reflect.DeepEqual(got[1].Agents, []string{"1003"}) {
		t.Errorf("second ringing set %v", got[1].Agents)
	}
	for _, ev := range got {
		// The number a withheld caller sent is dropped at the edge.
		if ev.Caller.Number != "" || !ev.Caller.Withheld {
			t.Errorf("%s: caller %+v, want withheld without number", ev.Kind, ev.Caller)
		}
	}
}

func TestWithheldForms(t *testing.T) {
	f := start(t, agentOf)
	for i, caller := range []string{`{"number":"anonymous","name":"Anonymous"}`, `{"number":""}`, `{"number":"Restricted"}`, `{"withheld":true}`} {
		body := `{"event":"ringing","call_id":"w-` + string(rune('a'+i)) + `","caller":` + caller + `,"agents":["1001"]}`
		if code, resp := f.post(t, body); code != 200 {
			t.Fatalf("%s: %d %s", body, code, resp)
		}
	}
	for _, ev := range f.sink.take() {
		if ev.Caller.Number != "" || !ev.Caller.Withheld {
			t.Errorf("%s: caller %+v, want withheld", ev.CallID, ev.Caller)
		}
	}
	// No caller at all, on the first event and after (a call first heard
	// of mid-call, as after a restart): nothing to show, and nobody said
	// the caller withheld their number: a caller with no number, as ARI
	// reports one whose network delivered none.
	for _, body := range []string{
		`{"event":"answered","call_id":"w-z","agent":"1001"}`,
		`{"event":"ended","call_id":"w-z","outcome":"answered"}`,
	} {
		if code, resp := f.post(t, body); code != 200 {
			t.Fatalf("%d %s", code, resp)
		}
	}
	for _, ev := range f.sink.take() {
		if ev.Caller != (screenpop.Caller{}) {
			t.Errorf("%s %s: caller %+v, want none", ev.CallID, ev.Kind, ev.Caller)
		}
	}
}

func TestUnknownCalls(t *testing.T) {
	f := start(t, agentOf)
	// An answered for a call never seen creates it: its caller is kept for
	// later events.
	f.post(t, `{"event":"answered","call_id":"mid","caller":{"number":"030 1234567"},"did":"100","agent":"1002"}`)
	f.post(t, `{"event":"ended","call_id":"mid","outcome":"answered"}`)
	// An ended for a call never seen is passed on.
	code, body := f.post(t, `{"event":"ended","call_id":"ghost","outcome":"noanswer"}`)
	if code != 200 {
		t.Fatalf("ended for an unknown call: %d %s", code, body)
	}
	got := f.sink.take()
	if len(got) != 3 {
		t.Fatalf("%d events: %+v", len(got), got)
	}
	if got[1].Caller.Number != "030 1234567" || got[1].DID != "100" {
		t.Errorf("ended did not get the caller and DID of the answered call: %+v", got[1])
	}
	if got[2].CallID != "ghost" || got[2].Outcome != screenpop.OutcomeNoAnswer {
		t.Errorf("ghost: %+v", got[2])
	}
	if len(f.src.open) != 0 {
		t.Errorf("open calls left: %v", f.src.open)
	}
}

func TestValidation(t *testing.T) {
	f := start(t, agentOf)
	cases := []struct{ body, want string }{
		{`[{"event":"ringing","call_id":"a","agents":["1"]},{"event":"ended","outcome":"answered"}]`, "event 2: call_id is required"},
		{`{"call_id":"a"}`, "event 1: event is required: ringing, answered, transferred or ended"},
		{`{"event":"hangup","call_id":"a"}`, `event 1: event "hangup" is unknown`},
		{`{"event":"ringing","call_id":"a"}`, "event 1: ringing needs agents (agent IDs) or endpoints"},
		{`{"event":"ringing","call_id":"a","agents":[""]}`, "event 1: agents[0] is empty"},
		{`{"event":"answered","call_id":"a"}`, "event 1: answered needs agent (an agent ID) or endpoint"},
		{`{"event":"answered","call_id":"a","endpoint":"SIP/trunk"}`, `event 1: endpoint "SIP/trunk" is no agent's`},
		{`{"event":"answered","call_id":"a","agent":"1","endpoint":"PJSIP/1"}`, "event 1: send agent or endpoint, not both"},
		{`{"event":"answered","call_id":"a","agent":"1","agents":["1"]}`, "event 1: agents and endpoints are for ringing events"},
		{`{"event":"ringing","call_id":"a","agents":["1"],"agent":"1"}`, "event 1: agent and endpoint are for answered"},
		{`{"event":"ended","call_id":"a"}`, "event 1: outcome is required for ended"},
		{`{"event":"ended","call_id":"a","outcome":"hungup"}`, `event 1: outcome "hungup" is unknown`},
		{`{"event":"answered","call_id":"a","agent":"1","outcome":"answered"}`, "event 1: outcome is for ended events only"},
		{`{"event":"ended","call_id":"a","outcome":"busy","at":"yesterday"}`, `event 1: at "yesterday" is not an RFC 3339 time`},
		{`{"event":"answered","call_id":"a","agent":"1","rang_out":true}`, "event 1: rang_out and transfer are for ringing events only"},
		{`{"event":"ringing","call_id":"a","agents":["1"],"transfer":{"consult":true}}`, "event 1: transfer.from is required"},
		{`{"event":"ringing","call_id":"a","agents":["1"],"transfer":{"from_endpoint":"SIP/trunk"}}`, `event 1: transfer: endpoint "SIP/trunk" is no agent's`},
		{`{"event":"ringing","call_id":"a","agents":["1"],"calller":{}}`, `event 1: unknown field "calller"`},
		{`{"event":"ringing","call_id":"a","agents":["1"],"caller":{"withheld":"yes"}}`, "event 1: caller.withheld: want true or false, got string"},
		{`{"event":"ringing","call_id":"a","agents":"1001"}`, "event 1: agents: want an array of strings, got string"},
		{`{"event":"ringing","call_id":"a\u0007","agents":["1"]}`, "event 1: call_id contains control characters"},
		{`{"event":"ringing","call_id":"` + strings.Repeat("x", 201) + `","agents":["1"]}`, "event 1: call_id is longer than 200 bytes"},
		{`{"event":"ringing","call_id":"a","agents":["1"]} {}`, "event 1: unexpected data after the event object"},
		{`{"event":"ringing",`, "event 1: unexpected end of JSON"},
		{`[{"event":"ringing"},`, "invalid JSON"},
		{`[]`, "empty array: no events"},
		{`"ringing"`, "event 1: want a JSON object, got string"},
		{` `, "empty body"},
	}
	for _, c := range cases {
		code, body := f.post(t, c.body)
		if code != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400 (%s)", c.body, code, body)
			continue
		}
		if msg := errorOf(t, body); !strings.HasPrefix(msg, c.want) {
			t.Errorf("%s:\n got %q\nwant prefix %q", c.body, msg, c.want)
		}
	}
	// A batch with one bad event delivers none of them.
	if got := f.sink.take(); len(got) != 0 {
		t.Errorf("invalid requests delivered %d events: %+v", len(got), got)
	}
	if v := value(t, f.src.metrics.rejected); v < float64(len(cases)) {
		t.Errorf("rejected = %v, want at least %d", v, len(cases))
	}
	if v := value(t, f.src.metrics.requests[400]); v != float64(len(cases)) {
		t.Errorf("requests{code=400} = %v, want %d", v, len(cases))
	}
}

func TestEndpointsNeedAMapping(t *testing.T) {
	f := start(t, nil)
	code, body := f.post(t, `{"event":"ringing","call_id":"a","endpoints":["PJSIP/1001"]}`)
	if code != 400 || errorOf(t, body) != "event 1: endpoints are not accepted by this source: send agents (agent IDs)" {
		t.Fatalf("%d %s", code, body)
	}
	if code, body := f.post(t, `{"event":"ringing","call_id":"a","agents":["1001"]}`); code != 200 {
		t.Fatalf("agents without a mapping: %d %s", code, body)
	}
}

// Endpoints that are nobody's leave an empty ringing set, which is passed
// on: the agents rung before must lose the pop.
func TestRingingNobodyKnown(t *testing.T) {
	f := start(t, agentOf)
	if code, body := f.post(t, `{"event":"ringing","call_id":"q","caller":{"number":"+4930123456"},"endpoints":["Local/voicemail@vm"]}`); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	got := f.sink.take()
	if len(got) != 1 || len(got[0].Agents) != 0 {
		t.Fatalf("%+v", got)
	}
}

func TestAuthentication(t *testing.T) {
	f := start(t, agentOf)
	ok := `{"event":"ended","call_id":"a","outcome":"failed"}`
	for _, auth := range []string{"", "Bearer", "Bearer wrong-token-wrong-token-00", "Basic " + token, "Bearer " + token + "x", token} {
		code, body := do(t, f.srv.URL, http.MethodPost, auth, "application/json", ok)
		if code != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d %s", auth, code, body)
		}
	}
	// Every configured token works, and the scheme is case-insensitive.
	for _, auth := range []string{"Bearer " + token, "bearer " + otherToken} {
		if code, body := do(t, f.srv.URL, http.MethodPost, auth, "", ok); code != 200 {
			t.Errorf("Authorization %q: %d %s", auth, code, body)
		}
	}
	if n := len(f.sink.take()); n != 2 {
		t.Errorf("%d events delivered, want 2", n)
	}
	if v := value(t, f.src.metrics.requests[401]); v != 6 {
		t.Errorf("requests{code=401} = %v, want 6", v)
	}
}

func TestMethodSizeAndContentType(t *testing.T) {
	f := start(t, agentOf)
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	big := `{"event":"ringing","call_id":"a","agents":["1"],"caller":{"name":"` + strings.Repeat("x", 5000) + `"}}`
	code, body := f.post(t, big)
	if code != 413 || errorOf(t, body) != "body larger than 4096 bytes: send fewer events per request" {
		t.Errorf("big body: %d %s", code, body)
	}

	code, body = do(t, f.srv.URL, http.MethodPost, "Bearer "+token, "text/plain", `{}`)
	if code != 415 || !strings.Contains(errorOf(t, body), "send application/json") {
		t.Errorf("text/plain: %d %s", code, body)
	}
	if got := f.sink.take(); len(got) != 0 {
		t.Errorf("refused requests delivered %+v", got)
	}
}

// Before Run and after it returns the endpoint answers 503, and nothing
// reaches the sink.
func TestNotRunning(t *testing.T) {
	reg := prometheus.NewRegistry()
	src, err := New(Config{Tokens: []string{token}}, agentOf, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(src.Handler())
	defer srv.Close()
	body := `{"event":"ringing","call_id":"a","agents":["1001"]}`
	if code, resp := do(t, srv.URL, http.MethodPost, "Bearer "+token, "", body); code != 503 {
		t.Fatalf("before Run: %d %s", code, resp)
	}

	sink := &recorder{}
	stop := runSource(t, src, sink)
	if code, resp := do(t, srv.URL, http.MethodPost, "Bearer "+token, "", body); code != 200 {
		t.Fatalf("while running: %d %s", code, resp)
	}
	stop()
	if code, resp := do(t, srv.URL, http.MethodPost, "Bearer "+token, "", body); code != 503 {
		t.Fatalf("after Run: %d %s", code, resp)
	}
	if n := len(sink.take()); n != 1 {
		t.Fatalf("%d events delivered, want the one posted while running", n)
	}
	if v := value(t, src.metrics.requests[503]); v != 2 {
		t.Errorf("requests{code=503} = %v, want 2", v)
	}
}

func TestOneRunAtATime(t *testing.T) {
	src, err := New(Config{Tokens: []string{token}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := runSource(t, src, &recorder{})
	defer stop()
	if err := src.Run(context.Background(), &recorder{}); err == nil {
		t.Fatal("a second Run while the first is active succeeded")
	}
}

// Requests about one call from several connections reach the sink one at a
// time: the sink is never called concurrently.
func TestConcurrentPosts(t *testing.T) {
	var inSink, overlaps int
	var mu sync.Mutex
	sink := screenpop.CallSinkFunc(func(ev screenpop.CallEvent) {
		mu.Lock()
		inSink++
		if inSink > 1 {
			overlaps++
		}
		mu.Unlock()
		mu.Lock()
		inSink--
		mu.Unlock()
	})
	src, err := New(Config{Tokens: []string{token}}, agentOf, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(src.Handler())
	defer srv.Close()
	stop := runSource(t, src, sink)
	defer stop()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				id := string(rune('a'+w)) + "-" + string(rune('a'+i))
				if code, body := do(t, srv.URL, http.MethodPost, "Bearer "+token, "", `[{"event":"ringing","call_id":"`+id+`","agents":["1"]},{"event":"ended","call_id":"`+id+`","outcome":"abandoned"}]`); code != 200 {
					t.Errorf("%d %s", code, body)
				}
			}
		}()
	}
	wg.Wait()
	if overlaps != 0 {
		t.Errorf("sink called concurrently %d times", overlaps)
	}
	if v := value(t, src.metrics.accepted); v != 200 {
		t.Errorf("accepted = %v, want 200", v)
	}
}

func TestNewValidates(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "at least one bearer token is required"},
		{Config{Tokens: []string{"short"}}, "token 1 is 5 characters long; use at least 16"},
		{Config{Tokens: []string{token, "with space in the middle!"}}, "token 2 contains white space"},
		{Config{Tokens: []string{token}, MaxBody: 10}, "max_body 10 is outside"},
	}
	for _, c := range cases {
		_, err := New(c.cfg, nil, nil, nil)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c.cfg, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "short") {
			t.Errorf("the error repeats the token: %v", err)
		}
	}
}

// Two sources on one registry (two PBXs) share the counters instead of
// failing to register, and the metrics exist before the first request.
func TestMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := New(Config{Tokens: []string{token}}, nil, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Tokens: []string{token}}, nil, nil, reg)
	if err != nil {
		t.Fatalf("second source on the same registry: %v", err)
	}
	a.metrics.accepted.Inc()
	if v := value(t, b.metrics.accepted); v != 1 {
		t.Errorf("shared counter = %v", v)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, mf := range families {
		series[mf.GetName()] = len(mf.GetMetric())
	}
	want := map[string]int{"screenpop_httpin_events_total": 2, "screenpop_httpin_requests_total": len(statusCodes)}
	if !reflect.DeepEqual(series, want) {
		t.Errorf("series %v, want %v pre-created", series, want)
	}
}

// value reads a counter.
func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// The source writes its configured name in CallEvent.Source, the same one
// the daemon mounts it under, so that two CTI endpoints are told apart.
func TestSourceIsTheConfiguredName(t *testing.T) {
	src, err := New(Config{Name: "cti-berlin", Tokens: []string{token}}, nil, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(src.Handler())
	t.Cleanup(srv.Close)
	sink := &recorder{}
	t.Cleanup(runSource(t, src, sink))
	body := `{"event":"ringing","call_id":"c-1","caller":{"number":"+4930123456"},"agents":["1001"]}`
	if code, resp := do(t, srv.URL, http.MethodPost, "Bearer "+token, "application/json", body); code != 200 {
		t.Fatalf("%d %s", code, resp)
	}
	if evs := sink.take(); len(evs) != 1 || evs[0].Source != "cti-berlin" || evs[0].CallID != "c-1" {
		t.Errorf("events: %+v, want one of source cti-berlin with the PBX's call_id c-1", evs)
	}
}

// A PBX reports a transfer while the target's phone rings, phones that rang
// out (an empty set), and a call cut by the PBX restarting.
func TestTransferRangOutInterrupted(t *testing.T) {
	f := start(t, agentOf)
	steps := []string{
		`{"event":"ringing","call_id":"t-1","caller":{"number":"+4930123456"},"agents":["1001","1002"]}`,
		`{"event":"ringing","call_id":"t-1","agents":["1002"],"rang_out":true}`,
		`{"event":"answered","call_id":"t-1","agent":"1002"}`,
		`{"event":"ringing","call_id":"t-1","agents":["1003"],"transfer":{"from_endpoint":"PJSIP/1002","consult":true}}`,
		`{"event":"ringing","call_id":"t-1","agents":[],"transfer":{"from":"1002","consult":true}}`,
		`{"event":"ringing","call_id":"t-1","endpoints":["PJSIP/1001"],"transfer":{"from":"1002"}}`,
		`{"event":"ringing","call_id":"t-1","rang_out":true,"transfer":{"from":"1002"}}`,
		`{"event":"ended","call_id":"t-1","outcome":"interrupted"}`,
	}
	for _, s := range steps {
		if code, body := f.post(t, s); code != 200 {
			t.Fatalf("%s: %d %s", s, code, body)
		}
	}
	got := f.sink.take()
	if len(got) != len(steps) {
		t.Fatalf("got %d events, want %d", len(got), len(steps))
	}
	if ev := got[1]; !ev.RangOut || !reflect.DeepEqual(ev.Agents, []string{"1002"}) || ev.Transfer != nil {
		t.Errorf("rang out: %+v", ev)
	}
	if ev := got[3]; ev.Transfer == nil || *ev.Transfer != (screenpop.Transfer{From: "1002", Consult: true}) || !reflect.DeepEqual(ev.Agents, []string{"1003"}) {
		t.Errorf("consultation: %+v", ev)
	}
	if ev := got[4]; len(ev.Agents) != 0 || ev.Transfer == nil || !ev.Transfer.Consult {
		t.Errorf("consultation given up: %+v", ev)
	}
	if ev := got[5]; ev.Transfer == nil || ev.Transfer.Consult || !reflect.DeepEqual(ev.Agents, []string{"1001"}) {
		t.Errorf("blind transfer: %+v", ev)
	}
	if ev := got[6]; len(ev.Agents) != 0 || !ev.RangOut || ev.Transfer == nil {
		t.Errorf("blind transfer rang out: %+v", ev)
	}
	if ev := got[7]; ev.Outcome != screenpop.OutcomeInterrupted {
		t.Errorf("ended: %+v", ev)
	}
}
