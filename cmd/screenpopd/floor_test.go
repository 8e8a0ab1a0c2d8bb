package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/screenpop/screenpop/floor"
	"github.com/screenpop/screenpop/internal/chromiumtest"
	"github.com/screenpop/screenpop/pop"
	"github.com/screenpop/screenpop/promreg/promregtest"
)

// scrape reads the daemon's /metrics as Prometheus does.
func scrape(t *testing.T, m *Main) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + m.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	return fams
}

// sample is the value of one series of a scrape: a counter's or gauge's
// value, a histogram's count; -1 when the series is missing.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	mf := fams[name]
	if mf == nil {
		return -1
	}
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if got[labels[i]] != labels[i+1] {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return -1
}

// waitMetric scrapes until a series has the value.
func waitMetric(t *testing.T, m *Main, want float64, name string, labels ...string) {
	t.Helper()
	waitUntilOK(t, fmt.Sprintf("%s%v = %v", name, labels, want), func() error {
		if got := sample(scrape(t, m), name, labels...); got != want {
			return fmt.Errorf("%v", got)
		}
		return nil
	})
}

// floorDaemon runs the demo configuration with the http telephony entry
// "cti" the test posts to, the wrap-up required (no after-call time: an
// agent stays in wrap-up until a disposition, whatever the test's pace),
// and, with prefix, a shared Redis.
func floorDaemon(t *testing.T, name, prefix string) *Main {
	t.Helper()
	cfg := daemonConfig(t, prefix, `[{name: cti, type: http, tokens_env: CTI}]`)
	cfg.History.WrapUpRequired, cfg.History.WrapUpTime = true, 0
	env := map[string]string{"SECRET": strings.Repeat("s", 40), "CTI": historyCTIToken}
	m := runMain(t, cfg, Options{Env: func(k string) string { return env[k] }, Stderr: io.Discard, Daemon: name})
	waitReady(t, "http://"+m.Addr().String())
	return m
}

func (m *Main) testToken(t *testing.T, agent string) string {
	t.Helper()
	tok, err := m.auth.Issue(agent, m.config().Agents.Names[agent], []string{"agent"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A scripted shift through the http call-event source gives exact counts
// in the scrape and on the supervisor page, in Chromium. Alice (1001) has
// her agent page open, which acknowledges the pops it paints; Carol (1003)
// has none; Bob (1002, a supervisor by agents.roles) watches the floor.
//
//	call 1: rings Alice and Carol; Alice's page paints it; Alice answers; ends answered
//	call 2: rings Carol; Carol answers (no page: no pop before the answer); ends answered
//	call 3: rings Alice; the caller hangs up (abandoned)
//	call 4: rings Carol on a line not configured; rings out (noanswer)
//	call 5: rings Alice, and keeps ringing
func TestFloorScriptedShiftInChromium(t *testing.T) {
	m := floorDaemon(t, "daemon-a", "")
	base := "http://" + m.Addr().String()
	browser := chromiumtest.Start(t, chromedp.WindowSize(1366, 768))
	alice := chromiumtest.NewTab(t, browser, "Alice's agent page")
	alice.Do(chromedp.Navigate(base + "/#token=" + m.testToken(t, "1001")))
	alice.WaitFor("Alice's page live", `document.querySelector('#conn').dataset.connection === 'open'`)
	waitMetric(t, m, 1, "screenpop_agents", "state", floor.StateSignedIn)

	post := func(events ...map[string]any) { t.Helper(); postEvents(t, m, events...) }
	answer := func(call, agent string) map[string]any {
		return map[string]any{"event": "answered", "call_id": call, "agent": agent}
	}
	end := func(call, outcome string) map[string]any {
		return map[string]any{"event": "ended", "call_id": call, "outcome": outcome}
	}
	painted := 0
	waitPainted := func(call string) {
		t.Helper()
		painted++
		alice.WaitFor("the pop of "+call, fmt.Sprintf(`!!document.querySelector('article.pop[data-call-id="cti/%s"]')`, call))
		// Shown and complete acknowledged: counted once each.
		waitMetric(t, m, float64(painted), "screenpop_pop_complete_seconds", "source", "cti")
		waitMetric(t, m, float64(painted), "screenpop_pop_shown_seconds", "source", "cti")
	}

	post(ringEvent("call-1", "+49301234567", "1001", "1003"))
	waitPainted("call-1")
	post(answer("call-1", "1001"), end("call-1", "answered"))

	post(ringEvent("call-2", "+4940555123", "1003"), answer("call-2", "1003"), end("call-2", "answered"))

	post(ringEvent("call-3", "+49301234567", "1001"))
	waitPainted("call-3")
	post(end("call-3", "abandoned"))

	other := ringEvent("call-4", "+48601234567", "1003")
	other["did"] = "+4930999"
	post(other, map[string]any{"event": "ringing", "call_id": "call-4", "agents": []string{}, "rang_out": true}, end("call-4", "noanswer"))

	post(ringEvent("call-5", "+49301234567", "1001"))
	waitPainted("call-5")
	// Every event is applied once the last call's pop is painted; the
	// floor's gauges follow within its refresh.
	waitMetric(t, m, 1, "screenpop_calls_ringing", "source", "cti")

	fams := scrape(t, m)
	for _, c := range []struct {
		want   float64
		name   string
		labels []string
	}{
		{2, "screenpop_calls_total", []string{"source", "cti", "line", "Customer service", "outcome", "answered"}},
		{1, "screenpop_calls_total", []string{"source", "cti", "line", "Customer service", "outcome", "abandoned"}},
		{1, "screenpop_calls_total", []string{"source", "cti", "line", "other", "outcome", "noanswer"}},
		{0, "screenpop_calls_total", []string{"source", "cti", "line", "Sales", "outcome", "answered"}},
		{2, "screenpop_calls_answered_total", []string{"source", "cti"}},
		{1, "screenpop_calls_answered_popped_total", []string{"source", "cti"}},
		{3, "screenpop_pop_blind_rings_total", []string{"source", "cti"}},
		{3, "screenpop_pop_shown_seconds", []string{"source", "cti"}},
		{3, "screenpop_pop_complete_seconds", []string{"source", "cti"}},
		{2, "screenpop_call_answer_wait_seconds", []string{"source", "cti"}},
		{1, "screenpop_call_abandoned_wait_seconds", []string{"source", "cti"}},
		{1, "screenpop_calls_ringing", []string{"source", "cti"}},
		{1, "screenpop_agents", []string{"state", floor.StateSignedIn}},
		{1, "screenpop_agents", []string{"state", floor.StateRinging}},
		{0, "screenpop_agents", []string{"state", floor.StateRingingBlind}},
		{0, "screenpop_agents", []string{"state", floor.StateOnCall}},
		{1, "screenpop_agents", []string{"state", floor.StateWrapUp}}, // Carol; Alice rings
		// Only pops to a page that could show them are delivery latencies.
		{3, "screenpop_pop_latency_seconds", nil},
		{0, "screenpop_source_breaker_state", []string{"source", "credit"}},
	} {
		if got := sample(fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Call-5 rings: the longest wait is its wait, more than nothing.
	if got := sample(fams, "screenpop_calls_longest_wait_seconds", "source", "cti"); got <= 0 {
		t.Errorf("screenpop_calls_longest_wait_seconds{source=cti} = %v while call-5 rings, want > 0", got)
	}
	checkScrape(t, fams)
	for _, name := range []string{"screenpop_pop_shown_seconds", "screenpop_pop_complete_seconds", "screenpop_pop_latency_seconds"} {
		for _, m := range fams[name].GetMetric() {
			if h := m.GetHistogram(); h.GetSampleCount() > 0 {
				t.Logf("%s: %d pops, mean %.1f ms", name, h.GetSampleCount(), 1000*h.GetSampleSum()/float64(h.GetSampleCount()))
			}
		}
	}

	// Bob's floor view says the same.
	bob := chromiumtest.NewTab(t, browser, "Bob's supervisor page")
	bob.Do(chromedp.Navigate(base + "/supervisor/#token=" + m.testToken(t, "1002")))
	kpi := func(name string) string {
		return fmt.Sprintf(`document.querySelector('[data-kpi="%s"]').dataset.value`, name)
	}
	bob.WaitFor("the floor's figures", kpi("waiting")+` === '1' && `+kpi("answered")+` === '2' && `+kpi("abandoned")+` === '1'
		&& `+kpi("on-call")+` === '0' && `+kpi("popped")+` === '0.5' && Math.abs(`+kpi("service-level")+` - 2/3) < 1e-9`)
	states := chromiumtest.Eval[string](bob, `[...document.querySelectorAll('#agents tbody tr')].map(r => r.dataset.agentId + '=' + r.dataset.state + (r.dataset.connected === 'true' ? '+page' : '')).join(' ')`)
	if want := "1001=ringing+page 1002=offline 1003=wrap_up"; states != want {
		t.Errorf("agents on the page: %q, want %q", states, want)
	}
	if got := chromiumtest.Eval[string](bob, `document.querySelector('#waiting tbody tr').dataset.callId + ' ' + document.querySelector('#waiting tbody tr').textContent`); !strings.HasPrefix(got, "cti/call-5 ") || strings.Contains(got, "1234567") || !strings.Contains(got, "Alice Agent (1001)") {
		t.Errorf("the waiting call: %q (the number must be masked)", got)
	}
	bob.Do(chromedp.EmulateViewport(1366, 768))
	bob.WaitFor("a laptop's size", `innerWidth === 1366`)
	bob.Shot("floor-shift-1366x768")
	bob.Do(chromedp.EmulateViewport(390, 844))
	bob.WaitFor("the phone's size", `innerWidth === 390`)
	bob.Shot("floor-shift-390x844")
	alice.Shot("agent-shift-1366x768")

	// Carol is no supervisor: refused, over HTTP and WebSocket.
	carol := m.testToken(t, "1003")
	req, _ := http.NewRequest(http.MethodGet, base+"/supervisor/view", nil)
	req.Header.Set("Authorization", "Bearer "+carol)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("Carol's GET /supervisor/view: %d, want 403", resp.StatusCode)
	}
	d := websocket.Dialer{Subprotocols: []string{floor.Subprotocol, pop.BearerSubprotocolPrefix + carol}, HandshakeTimeout: 5 * time.Second}
	if c, resp, err := d.Dial("ws://"+m.Addr().String()+"/supervisor/ws", nil); err == nil {
		c.Close()
		t.Error("Carol's supervisor socket was opened")
	} else if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("Carol's supervisor socket: %v %v, want 403", resp, err)
	}
}

// checkScrape runs the Prometheus linter over a scrape of the running
// daemon and checks that configs/prometheus/METRICS.md lists every
// screenpop metric of it with its type and labels (and nothing else).
func checkScrape(t *testing.T, fams map[string]*dto.MetricFamily) {
	t.Helper()
	promregtest.Lint(t, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		out := make([]*dto.MetricFamily, 0, len(fams))
		for _, name := range slices.Sorted(maps.Keys(fams)) {
			out = append(out, fams[name])
		}
		return out, nil
	}), nil)

	listed := metricsDoc(t)
	for name, mf := range fams {
		if !strings.HasPrefix(name, "screenpop_") {
			continue
		}
		doc, ok := listed[name]
		if !ok {
			t.Errorf("configs/prometheus/METRICS.md does not list %s", name)
			continue
		}
		if want := strings.ToLower(mf.GetType().String()); doc.kind != want {
			t.Errorf("METRICS.md: %s is a %s, the scrape says %s", name, doc.kind, want)
		}
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		if got := strings.Join(slices.Sorted(maps.Keys(labels)), ","); got != doc.labels {
			t.Errorf("METRICS.md: %s has labels %q, the scrape %q", name, doc.labels, got)
		}
	}
	for name := range listed {
		if fams[name] == nil && !optionalMetric(name) {
			t.Errorf("METRICS.md lists %s, which the demo daemon's scrape lacks", name)
		}
	}
}

// optionalMetric: a metric of a part the demo daemon does not run
// (Redis, PostgreSQL, Asterisk, company sign-in, http sources): listed,
// absent from this scrape.
func optionalMetric(name string) bool {
	for _, p := range []string{"screenpop_ari_", "screenpop_redis", "screenpop_history_", "screenpop_auth_",
		"screenpop_rediscache_", "screenpop_postgres_", "screenpop_http_", "screenpop_directory_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return name == "screenpop_telephony_calls_total" || name == "screenpop_telephony_active_calls"
}

type docMetric struct{ kind, labels string }

// metricsDoc reads the table of configs/prometheus/METRICS.md: | `name` |
// type | `label`, `label` | ... |.
func metricsDoc(t *testing.T) map[string]docMetric {
	t.Helper()
	f, err := os.Open("../../configs/prometheus/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `(screenpop_\\w+)` \\| (\\w+) \\| ([^|]*) \\|")
	label := regexp.MustCompile("`(\\w+)`")
	out := map[string]docMetric{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := row.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		var labels []string
		for _, l := range label.FindAllStringSubmatch(m[3], -1) {
			labels = append(labels, l[1])
		}
		sort.Strings(labels)
		if _, dup := out[m[1]]; dup {
			t.Errorf("METRICS.md lists %s twice", m[1])
		}
		out[m[1]] = docMetric{kind: m[2], labels: strings.Join(labels, ",")}
	}
	if len(out) < 40 {
		t.Fatalf("METRICS.md lists %d metrics: is its table still | `name` | type | labels |?", len(out))
	}
	return out
}

// floorView is the floor as a supervisor's GET /supervisor/view has it.
func floorView(t *testing.T, m *Main) floor.View {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+m.Addr().String()+"/supervisor/view", nil)
	req.Header.Set("Authorization", "Bearer "+m.testToken(t, "1002"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		View floor.View `json:"view"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /supervisor/view as Bob: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.View
}

func agentState(v floor.View, id string) floor.AgentView {
	for _, a := range v.Agents {
		if a.ID == id {
			return a
		}
	}
	return floor.AgentView{}
}

// Two daemons on one Redis: only daemon A sees the call (it watches the
// PBX), Alice's agent page is on daemon B. Both show one floor; A does not
// count Alice's ring as blind, since her page is open on B; her page's
// acknowledgement, heard by B, reaches A, which counts the pop as on
// screen before the answer; the day's counts are the same on both.
func TestFloorTwoDaemonsOneRedis(t *testing.T) {
	prefix := "screenpop-test-" + randomHex(t) + ":"
	t.Cleanup(func() { cleanRedis(t, prefix) })
	a := floorDaemon(t, "daemon-a", prefix)
	b := floorDaemon(t, "daemon-b", prefix)
	alice := dialAgent(t, b, "1001")
	nextOfAny(t, alice, "", pop.TypeHello)
	waitUntilOK(t, "Alice's page on B, seen by A", func() error {
		if v := floorView(t, a); len(v.Daemons) != 2 || !agentState(v, "1001").Connected {
			return fmt.Errorf("daemons %v, 1001 %+v", v.Daemons, agentState(v, "1001"))
		}
		return nil
	})

	postEvents(t, a, ringEvent("call-1", "+49301234567", "1001"))
	nextOf(t, alice, "cti/call-1", pop.TypePop)
	for _, m := range []*Main{a, b} {
		waitUntilOK(t, "the call waiting, on "+m.opts.Daemon, func() error {
			v := floorView(t, m)
			if len(v.Waiting) != 1 || v.Waiting[0].ID != "cti/call-1" || len(v.Waiting[0].Agents) != 1 || !v.Waiting[0].Agents[0].Connected {
				return fmt.Errorf("waiting %+v", v.Waiting)
			}
			return nil
		})
	}
	if err := alice.WriteJSON(pop.Request{Type: pop.RequestShown, CallID: "cti/call-1", Stage: pop.StageComplete}); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, a, 1, "screenpop_pop_complete_seconds", "source", "cti")
	postEvents(t, a, map[string]any{"event": "answered", "call_id": "call-1", "agent": "1001"},
		map[string]any{"event": "ended", "call_id": "call-1", "outcome": "answered"})
	waitMetric(t, a, 1, "screenpop_calls_total", "source", "cti", "line", "Customer service", "outcome", "answered")

	fa, fb := scrape(t, a), scrape(t, b)
	checkScrape(t, fa) // with Redis: the bus's and the cache's metrics too
	for _, c := range []struct {
		fams   map[string]*dto.MetricFamily
		want   float64
		name   string
		labels []string
	}{
		{fa, 1, "screenpop_calls_answered_total", []string{"source", "cti"}},
		{fa, 1, "screenpop_calls_answered_popped_total", []string{"source", "cti"}},
		{fa, 0, "screenpop_pop_blind_rings_total", []string{"source", "cti"}},
		{fa, 1, "screenpop_pop_latency_seconds", nil},
		{fb, 0, "screenpop_calls_answered_total", []string{"source", "cti"}},
		{fa, 2, "screenpop_floor_daemons", nil},
		{fb, 2, "screenpop_floor_daemons", nil},
	} {
		if got := sample(c.fams, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, m := range []*Main{a, b} {
		waitUntilOK(t, "today's counts on "+m.opts.Daemon, func() error {
			v := floorView(t, m)
			if v.Today != (floor.Counts{Answered: 1, InTime: 1, Popped: 1, Ended: 1}) || v.PoppedShare == nil || *v.PoppedShare != 1 || len(v.Waiting) != 0 {
				return fmt.Errorf("today %+v, waiting %d", v.Today, len(v.Waiting))
			}
			return nil
		})
		// The gauges are the floor's: Alice signed in, on both.
		waitMetric(t, m, 1, "screenpop_agents", "state", floor.StateSignedIn)
	}
}
