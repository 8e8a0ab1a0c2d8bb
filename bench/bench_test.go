package bench

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// raceEnabled is set when the tests run with -race (race_test.go): the
// smoke test then builds the daemon with the race detector too, from the
// packages go test has already compiled that way.
var raceEnabled bool

// smokeHarness builds the binaries and a harness with 20 agents and
// quick systems.
func smokeHarness(t *testing.T) *harness {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs screenpopd: not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	root, err := ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bins, err := Build(ctx, root, dir, raceEnabled)
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions(true)
	opts.Agents = 20
	opts.SourceLatency = 5 * time.Millisecond
	opts.Recording = filepath.Join(root, opts.Recording)
	if _, _, err := RaiseFileLimit(); err != nil {
		t.Logf("open-file limit: %v", err)
	}
	h, err := newHarness(opts, bins, dir, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.close)
	return h
}

// checkAllDelivered: every pop of the run came, once, with its card whole.
// (No timing is checked: a loaded machine only makes it slower.)
func checkAllDelivered(t *testing.T, what string, r Result) {
	t.Helper()
	t.Logf("%s: %s", what, r.brief())
	if r.Calls == 0 || r.Expected == 0 || r.Latency.N == 0 {
		t.Errorf("%s: no call measured: %+v", what, r)
	}
	if r.Lost != 0 || r.Duplicated != 0 || r.Incomplete != 0 || r.PostErrors != 0 || r.Unexpected != 0 {
		t.Errorf("%s: lost %d, duplicated %d, incomplete %d, posts failed %d (%s), unexpected pops %d",
			what, r.Lost, r.Duplicated, r.Incomplete, r.PostErrors, r.FirstError, r.Unexpected)
	}
	if r.CPUPerCall < 0 || r.RSS <= 0 {
		t.Errorf("%s: CPU per call %s, RSS %d: /proc was not read", what, r.CPUPerCall, r.RSS)
	}
}

// The harness end to end, small: 20 agents, two seconds of calls at 10 a
// second through HTTP into screenpopd and into the floor, and a few calls
// through the fake ARI server; nothing may be lost.
func TestSmoke(t *testing.T) {
	h := smokeHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sizes, err := h.calibrate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sizes.pop < 500 || sizes.answered == 0 || sizes.ended == 0 {
		t.Fatalf("message sizes %+v: no card?", sizes)
	}
	spec := func(kind targetKind) loadSpec {
		return loadSpec{setup: daemonSetup{kind: kind, cached: true, agents: h.opts.Agents},
			shape: 1, rate: 10, window: 2 * time.Second, ring: 300 * time.Millisecond, talk: 300 * time.Millisecond,
			drain: time.Minute}
	}
	for _, kind := range []targetKind{oneDaemon, floorOnly} {
		r, err := h.measure(ctx, spec(kind), sizes)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		checkAllDelivered(t, kind.String(), r)
	}
	// Nothing cached, fresh numbers: the floor asks the harness's systems
	// as the daemon does, and each card completes with every section.
	if sizes.missPop == 0 || sizes.section == 0 || sizes.missCard == 0 {
		t.Errorf("message sizes %+v: the calibration card was not sent in parts", sizes)
	}
	for _, kind := range []targetKind{oneDaemon, floorOnly} {
		miss := spec(kind)
		miss.setup.cached = false
		r, err := h.measure(ctx, miss, sizes)
		if err != nil {
			t.Fatalf("cache miss, %s: %v", kind, err)
		}
		checkAllDelivered(t, "cache miss, "+kind.String(), r)
		if r.NotOK != 0 || r.OverPath.N != r.Expected {
			t.Errorf("cache miss, %s: %d cards with a section not answered; time above the path of %d cards of %d", kind, r.NotOK, r.OverPath.N, r.Expected)
		}
		// Sections are asked once the directory answered and the pop went,
		// and each answers after the systems' latency at least: each card
		// completes that much after its pop, so the quantiles do too.
		if r.Complete.P50 < r.Latency.P50+h.opts.SourceLatency {
			t.Errorf("cache miss, %s: ring → complete p50 %s, ring → pop p50 %s: the sections did not come after the pop", kind, r.Complete.P50, r.Latency.P50)
		}
		// Two sections come by themselves, the last in the complete card.
		// (The counts hold the warm-up's cards too.)
		if r.Types["section"] < 2*r.Expected || r.Types["card"] < r.Expected {
			t.Errorf("cache miss, %s: %d section and %d card messages for %d cards, want at least 2 and 1 each", kind, r.Types["section"], r.Types["card"], r.Expected)
		}
	}
	// Through the fake PBX, into the daemon and into the floor reading
	// the same events: each of the three agents of a call gets its pop.
	for _, kind := range []targetKind{oneDaemon, floorOnly} {
		ari := loadSpec{setup: daemonSetup{kind: kind, cached: true, ari: true, agents: h.opts.Agents},
			ari: true, shape: 3, rate: 5, window: time.Second, scale: 0.2, drain: time.Minute}
		r, err := h.measure(ctx, ari, sizes)
		if err != nil {
			t.Fatalf("ARI, %s: %v", kind, err)
		}
		checkAllDelivered(t, "ARI, "+kind.String(), r)
		if r.Expected != 3*r.Calls {
			t.Errorf("ARI, %s: %d pops expected for %d calls, want 3 each", kind, r.Expected, r.Calls)
		}
	}
}

// The few fields the floor reads of an ARI frame, as Asterisk writes them.
func TestFloorJSONField(t *testing.T) {
	frame := []byte(`{"type":"Dial","dialstatus":"ANSWER","dialstring":"20001","caller":{"id":"1000000007.0","name":"PJSIP/carrier-00000000"},"peer":{"id":"1000000007.2"}}`)
	for key, want := range map[string]string{`"dialstatus":"`: "ANSWER", `"dialstring":"`: "20001", `"caller":{"id":"`: "1000000007.0", `"forward":"`: ""} {
		if got := string(jsonField(frame, key)); got != want {
			t.Errorf("jsonField(%s) = %q, want %q", key, got, want)
		}
	}
}

// A copy of the recording is another call: no channel id, channel name,
// bridge id or agent of the original is left, the caller is the copy's,
// and each agent is rung by exactly one Dial.
func TestCopyCall(t *testing.T) {
	rec, err := loadRecording(filepath.Join("..", "telephony", "ari", "testdata", "answered.jsonl"), "+4930123456")
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.lines) != 118 || !slices.Equal(rec.agents, []string{"1001", "1002", "1003"}) {
		t.Fatalf("recording: %d events, agents %v; want 118 and 1001, 1002, 1003", len(rec.lines), rec.agents)
	}
	agents := []string{"20007", "20008", "20009"}
	c, err := rec.copyCall(42, "+493017654321", agents, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	all := string(slices.Concat(c.lines...))
	for _, old := range append(append(slices.Clone(rec.ids), rec.uuids...), "+4930123456", "PJSIP/1001", `"1002"`, "PJSIP/1003") {
		if strings.Contains(all, old) {
			t.Errorf("the copy still holds %q", old)
		}
	}
	for _, a := range agents {
		if !strings.Contains(all, "PJSIP/"+a+"-") {
			t.Errorf("no channel of agent %s in the copy", a)
		}
	}
	if !strings.Contains(all, "+493017654321") || !strings.HasPrefix(c.linked, "1000000042.") {
		t.Errorf("caller or call id not the copy's: linked %q", c.linked)
	}
	slots := map[int]int{}
	for _, slot := range c.rings {
		slots[slot]++
	}
	if len(slots) != 3 || slots[0] != 1 || slots[1] != 1 || slots[2] != 1 {
		t.Errorf("Dial events by agent slot: %v, want one each", slots)
	}
	if d := c.duration(); d <= 0 || d > 2*time.Second {
		t.Errorf("a copy at scale 0.1 lasts %s", d)
	}
	other, _ := rec.copyCall(43, "+493017654321", agents, 0.1)
	if other.linked == c.linked || string(other.lines[0]) == string(c.lines[0]) {
		t.Error("two copies share ids")
	}
}

func TestQuantile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 1000; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	l := summarize(slices.Clone(ds))
	if l.N != 1000 || l.P50 != 500*time.Millisecond || l.P99 != 990*time.Millisecond || l.P999 != 999*time.Millisecond || l.Max != time.Second {
		t.Errorf("summarize 1..1000 ms = %+v", l)
	}
	if got := summarize([]time.Duration{3, 1, 2}); got.P50 != 2 || got.P99 != 3 || got.Max != 3 {
		t.Errorf("summarize 3, 1, 2 = %+v", got)
	}
	if got := medianOf([]float64{3, 1, 2, 10}, func(f float64) float64 { return f }); got != 2.5 {
		t.Errorf("median of 3 1 2 10 = %v", got)
	}
}

// The floor's messages are exactly as large as it is told.
func TestFloorMessageSize(t *testing.T) {
	for _, size := range []int{160, 177, 4285} {
		for _, data := range []string{"", `"section":{"name":"sales","status":"ok"},`} {
			m := floorMessage(123456789, "section", "cti/c1", data, size)
			if len(m) != size {
				t.Errorf("floorMessage(%d) is %d bytes: %s", size, len(m), m)
			}
			if env, parts := readMessage(m); env.Type != "section" || env.CallID != "cti/c1" || data != "" && parts.Section != (sectionPart{"sales", "ok"}) {
				t.Errorf("floorMessage(%d) reads as %+v %+v: %s", size, env, parts, m)
			}
		}
	}
}

// readMessage reads with gjson what encoding/json read before it: the
// same type, call and card parts for every kind of message, and
// "undecodable" for what is not JSON.
func TestReadMessage(t *testing.T) {
	msgs := []string{
		`{"type":"pop","call_id":"http/c1","seq":7,"data":{"call":{"id":"http/c1"},"card":{"resolution":"one","history_loading":true,"sections":[{"name":"accounting","status":"ok","fields":{"balance":"1,20 zł"}},{"name":"sales","status":"loading"},{"name":"credit","status":"timeout"}]}}}`,
		`{"type":"card","call_id":"http/c1","data":{"card":{"sections":[{"name":"sales","status":"loading","note":"{\"status\":\"ok\"}"}]}}}`,
		`{"type":"section","call_id":"http/c1","data":{"section":{"name":"sales","status":"ok","rows":[[1,2]]}}}`,
		`{"type":"section","call_id":"http/c1","data":{"section":{"name":"credit","status":"error"}}}`,
		`{"type":"history","call_id":"http/c1","data":{"calls":[]}}`,
		`{"type":"answered","call_id":"http/c2","data":{"by":"20001","card":{"sections":[{"name":"x","status":"loading"}]}}}`,
		`{"type":"pop","call_id":"http/c3","data":null}`,
		`{"type":"pop","call_id":"http/c4"}`,
		`{"type":"ended","call_id":"http/c1"`,
		`not json`,
	}
	// What the recorder read before, with encoding/json.
	reference := func(data []byte) (envelope, cardParts) {
		var env envelope
		var parts struct {
			Card struct {
				Sections []struct {
					Name   string `json:"name"`
					Status string `json:"status"`
				} `json:"sections"`
				HistoryLoading bool `json:"history_loading"`
			} `json:"card"`
			Section struct {
				Name   string `json:"name"`
				Status string `json:"status"`
			} `json:"section"`
		}
		if err := json.Unmarshal(data, &env); err != nil {
			return envelope{Type: "undecodable"}, cardParts{}
		}
		var out cardParts
		switch env.Type {
		case "pop", "card", "section":
			_ = json.Unmarshal(env.Data, &parts)
			for _, s := range parts.Card.Sections {
				out.Card.Sections = append(out.Card.Sections, sectionPart{s.Name, s.Status})
			}
			out.Card.HistoryLoading = parts.Card.HistoryLoading
			out.Section = sectionPart{parts.Section.Name, parts.Section.Status}
		}
		return envelope{Type: env.Type, CallID: env.CallID}, out
	}
	for _, m := range msgs {
		env, parts := readMessage([]byte(m))
		env.Data = nil
		wantEnv, wantParts := reference([]byte(m))
		if env.Type != wantEnv.Type || env.CallID != wantEnv.CallID || !reflect.DeepEqual(parts, wantParts) {
			t.Errorf("%s:\n got %q %q %+v\nwant %q %q %+v", m, env.Type, env.CallID, parts, wantEnv.Type, wantEnv.CallID, wantParts)
		}
	}
	// The first message: what is still to come, and what did not answer.
	_, parts := readMessage([]byte(msgs[0]))
	if got := parts.pending(); !slices.Equal(got, []string{"sales", historyPart}) {
		t.Errorf("pending %v", got)
	}
	if !parts.settledNotOK("pop") {
		t.Error("a pop with a section timed out is not whole")
	}
}

// A post that gets no answer is sent once more, as the intake's README asks
// of a PBX; one answered with an error status is not; each is counted.
func TestPosterResend(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch r.URL.Path {
		case "/flaky": // the first try: the connection closed with no answer
			if n == 1 {
				c, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					c.Close()
				}
				return
			}
		case "/down": // never answers
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
			return
		case "/refused":
			http.Error(w, "no", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"accepted":1}`)
	}))
	defer srv.Close()
	for _, c := range []struct {
		path                         string
		tries, resent, failed, noted int64
	}{
		{"/flaky", 2, 1, 0, 1},
		{"/down", 2, 0, 1, 2},
		{"/refused", 1, 0, 1, 1},
		{"/ok", 1, 0, 0, 0},
	} {
		calls.Store(0)
		p := newPoster(context.Background(), "t")
		p.post(srv.URL+c.path, []byte(`{}`))
		if calls.Load() != c.tries || p.resent.Load() != c.resent || p.errors.Load() != c.failed || int64(len(p.seenErrors())) != c.noted {
			t.Errorf("%s: %d tries, %d sent again, %d failed, errors noted %q; want %d, %d, %d, %d noted",
				c.path, calls.Load(), p.resent.Load(), p.errors.Load(), p.seenErrors(), c.tries, c.resent, c.failed, c.noted)
		}
	}
}
