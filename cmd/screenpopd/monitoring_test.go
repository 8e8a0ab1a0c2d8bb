package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/history"
	"github.com/screenpop/screenpop/history/historytest"
	"github.com/screenpop/screenpop/internal/grafanatest"
	"github.com/screenpop/screenpop/internal/logbuf"
	"github.com/screenpop/screenpop/internal/promqlnames"
	"github.com/screenpop/screenpop/pop"
	"github.com/screenpop/screenpop/telephony/ari/fakeari"
)

// The daemon as the shipped dashboard and alerts watch it: an Asterisk
// (the recorded-ARI fake) and a PBX posting call events over HTTP, a
// PostgreSQL data source beside the demo's file sources, Redis, the
// PostgreSQL history, logs as JSON. A scripted pair of calls goes through
// the HTTP source: one answered by an agent whose page painted the pop
// before the answer, one abandoned while it rang an agent without a page.
// Then:
//   - every metric the dashboard and the rules read is in the scrape;
//   - every log line is one JSON object without a repeated key, the agent's
//     sign-in and sign-out and the call's outcome are there at info, and
//     the caller's number is not, except masked.
func TestMonitoringThroughScriptedCalls(t *testing.T) {
	m, logs := monitoringDaemon(t)
	base := "http://" + m.Addr().String()

	alice := dialAgent(t, m, "1001")
	nextOfAny(t, alice, "", pop.TypeHello)

	postEvents(t, m, ringEvent("call-1", "+49301234567", "1001"))
	nextOf(t, alice, "cti/call-1", pop.TypePop)
	for _, stage := range []string{pop.StageShown, pop.StageComplete} {
		if err := alice.WriteJSON(pop.Request{Type: pop.RequestShown, CallID: "cti/call-1", Stage: stage}); err != nil {
			t.Fatal(err)
		}
	}
	waitScrapeLine(t, base, `screenpop_pop_complete_seconds_count{source="cti"} 1`)
	postEvents(t, m, map[string]any{"event": "answered", "call_id": "call-1", "agent": "1001"})
	nextOf(t, alice, "cti/call-1", pop.TypeAnswered)
	postEvents(t, m, map[string]any{"event": "ended", "call_id": "call-1", "agent": "1001", "outcome": "answered"})
	nextOf(t, alice, "cti/call-1", pop.TypeEnded)

	// Bob (1002) has no page open: a blind ring; the caller hangs up.
	postEvents(t, m, ringEvent("call-2", "+493012345670", "1002"))
	postEvents(t, m, map[string]any{"event": "ended", "call_id": "call-2", "outcome": "abandoned"})

	waitScrapeLine(t, base, `screenpop_calls_answered_popped_total{source="cti"} 1`)
	waitScrapeLine(t, base, `screenpop_pop_blind_rings_total{source="cti"} 1`)
	waitScrapeLine(t, base, `screenpop_calls_total{line="Customer service",outcome="abandoned",source="cti"} 1`)
	scrape := get(t, base+"/metrics", 200)

	alice.Close()
	waitLogHas(t, logs, `"msg":"agent page disconnected"`)

	t.Run("metrics the dashboard and rules read exist", func(t *testing.T) {
		have := seriesNames(scrape)
		used, err := monitoringMetrics()
		if err != nil {
			t.Fatal(err)
		}
		if len(used) < 20 {
			t.Fatalf("only %d metrics found in the dashboard and rules: %v", len(used), used)
		}
		for name, where := range used {
			if !have[name] {
				t.Errorf("%s (read by %s) is not in the daemon's scrape", name, strings.Join(where, "; "))
			}
		}
	})

	t.Run("JSON log lines", func(t *testing.T) {
		text := logs.String()
		var lines []map[string]any
		sc := bufio.NewScanner(strings.NewReader(text))
		sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			if dups, err := duplicateKeys(line); err != nil {
				t.Errorf("not one JSON object: %v: %s", err, line)
				continue
			} else if len(dups) > 0 {
				t.Errorf("keys %v twice in %s", dups, line)
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			lines = append(lines, m)
		}
		if strings.Contains(text, "49301234567") || strings.Contains(text, "493012345670") {
			t.Errorf("a caller's number is in the log in clear:\n%s", text)
		}
		for _, w := range []struct {
			msg   string
			attrs map[string]any
		}{
			{"agent page connected", map[string]any{"level": "INFO", "component": "hub", "daemon": "monitoring", "agent": "1001", "method": "hs256"}},
			{"agent page disconnected", map[string]any{"level": "INFO", "component": "hub", "daemon": "monitoring", "agent": "1001"}},
			{"call ended", map[string]any{"level": "INFO", "component": "dispatcher", "daemon": "monitoring",
				"call": "cti/call-1", "source": "cti", "outcome": "answered", "caller": "+********567", "did": "+493090182000",
				"line": "Customer service", "rung": 1.0, "answered_by": "1001", "pop_sent_before_answer": true}},
			{"call ended", map[string]any{"level": "INFO", "component": "dispatcher", "call": "cti/call-2", "source": "cti",
				"outcome": "abandoned", "caller": "+*********670", "rung": 1.0}},
			{"postgres pool opened", map[string]any{"level": "INFO", "component": "postgres", "database": "test"}},
		} {
			i := slices.IndexFunc(lines, func(l map[string]any) bool {
				if l["msg"] != w.msg {
					return false
				}
				for k, v := range w.attrs {
					if l[k] != v {
						return false
					}
				}
				return true
			})
			if i < 0 {
				t.Errorf("no line %q with %v in the log:\n%s", w.msg, w.attrs, text)
				continue
			}
			switch w.msg {
			case "agent page connected", "agent page disconnected":
				if r, _ := lines[i]["remote"].(string); !strings.HasPrefix(r, "127.0.0.1:") {
					t.Errorf("%s without the remote address: %v", w.msg, lines[i])
				}
			case "call ended":
				// The abandoned call has no answer; whether its card was
				// ready (ring_to_pop) before its caller hung up is a race
				// this test does not decide.
				want := map[string]bool{"ring_to_end": true, "ring_to_answer": true, "ring_to_pop": true}
				if lines[i]["call"] == "cti/call-2" {
					want["ring_to_answer"] = false
					delete(want, "ring_to_pop")
				}
				for k, present := range want {
					if _, ok := lines[i][k].(float64); ok != present {
						t.Errorf("%s of %v: %s in seconds: %v, want %v", w.msg, lines[i]["call"], k, ok, present)
					}
				}
			}
		}
	})
}

// monitoringDaemon runs the daemon of TestMonitoringThroughScriptedCalls
// and returns it with its log.
func monitoringDaemon(t *testing.T) (*Main, *logbuf.Buffer) {
	t.Helper()
	pbx := fakeari.New(t)
	dsn := historytest.PostgresSchema(t, historytest.TestDSN)
	prefix := "screenpop-test-" + randomHex(t) + ":"
	t.Cleanup(func() { cleanRedis(t, prefix) })

	cfg := daemonConfig(t, prefix, `[{name: cti, type: http, tokens_env: CTI}, `+ariEntry("pbx", pbx, "")+`]`)
	cfg.LogFormat = configs.LogFormatJSON
	cfg.History = history.Config{Type: history.TypePostgres, DSNEnv: "HISTORY_DSN",
		Dispositions: []history.Disposition{{Code: "order", Label: "Order placed"}}}
	cfg.History.ApplyDefaults()
	// A PostgreSQL data source beside the demo's file sources: its pool
	// opens at the first lookup, and logs it.
	extra, err := configs.Parse("orders.yaml", []byte(`telephony: [{name: x, type: demo}]
sections: [{name: sales, title: Sales}]
sources:
  - name: orders
    type: postgres
    section: sales
    needs: phone
    dsn_env: ORDERS_DSN
    query: "SELECT 'open' AS status WHERE :phone <> ''"
    mapping: {mode: fields, fields: [{from: status, label: Orders}]}
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sources = append(cfg.Sources, extra.Sources...)

	env := map[string]string{"SECRET": strings.Repeat("s", 40), "CTI": historyCTIToken, "HISTORY_DSN": dsn,
		"ORDERS_DSN": historytest.TestDSN, "ARI_PASSWORD": fakeari.DefaultPassword}
	logs := &logbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("daemon log:\n%s", logs.String())
		}
	})
	m := runMain(t, cfg, Options{Env: func(k string) string { return env[k] }, Stderr: logs, Daemon: "monitoring"})
	waitReady(t, "http://"+m.Addr().String())
	waitUntilOK(t, "the history migrated and up", func() error {
		if _, body := readyz(t, m); !strings.Contains(body, "history (postgres): ok") {
			return errors.New(body)
		}
		return nil
	})
	return m, logs
}

// monitoringMetrics lists the metrics the shipped dashboard and rules
// read, each with where. Series recorded by the rules are the rules'
// own, not the daemon's; up is Prometheus' own.
func monitoringMetrics() (map[string][]string, error) {
	used := map[string][]string{}
	recorded := map[string]bool{}
	var errs []error
	add := func(where, expr string) {
		names, err := promqlnames.Names(expr)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		for _, n := range names {
			used[n] = append(used[n], where)
		}
	}

	files, err := filepath.Glob("../../configs/prometheus/*.rules.yml")
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("rule files: %v %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var rf struct {
			Groups []struct {
				Rules []struct{ Record, Alert, Expr string }
			}
		}
		if err := yaml.Unmarshal(data, &rf); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					recorded[r.Record] = true
				}
				add(filepath.Base(f)+" "+r.Record+r.Alert, r.Expr)
			}
		}
	}

	d, err := grafanatest.Load("../../configs/grafana/screenpop.json")
	if err != nil {
		return nil, err
	}
	queries, err := d.Queries()
	if err != nil {
		errs = append(errs, err)
	}
	for _, q := range queries {
		add("dashboard panel "+q.Panel, q.Expr)
	}
	vars, err := d.VariableMetrics()
	if err != nil {
		errs = append(errs, err)
	}
	for name, metric := range vars {
		used[metric] = append(used[metric], "dashboard variable "+name)
	}

	for n, where := range used {
		switch {
		case recorded[n]:
			delete(used, n)
		case strings.Contains(n, ":"):
			errs = append(errs, fmt.Errorf("%s (read by %s) looks recorded, but no rule records it", n, strings.Join(where, "; ")))
		case n == "up":
			// Prometheus' own: 1 while the target answers the scrape.
			delete(used, n)
		}
	}
	return used, errors.Join(errs...)
}

// seriesNames are the names of the series of a scrape in the text format,
// where a histogram is written as its _bucket, _sum and _count series.
func seriesNames(scrape string) map[string]bool {
	names := map[string]bool{}
	for _, l := range strings.Split(scrape, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		if i := strings.IndexAny(l, "{ "); i > 0 {
			names[l[:i]] = true
		}
	}
	return names
}

// duplicateKeys reads line as one JSON object and returns the keys that an
// object in it has more than once (encoding/json would keep the last and
// say nothing). Anything else on the line is an error.
func duplicateKeys(line []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	type frame struct {
		object  bool
		seen    map[string]bool
		wantKey bool // an object's next token is a key, or its end
	}
	var stack []*frame
	var dups []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		} else if tok != json.Delim('{') {
			return nil, fmt.Errorf("%v where an object should start", tok)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, seen: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if top != nil && top.wantKey {
				key := tok.(string)
				if top.seen[key] {
					dups = append(dups, key)
				}
				top.seen[key] = true
				top.wantKey = false
				continue
			}
		}
		// A value ended: the enclosing object's next token is a key; at
		// the top, the line must end.
		if len(stack) > 0 {
			stack[len(stack)-1].wantKey = stack[len(stack)-1].object
		} else if dec.More() {
			return nil, errors.New("more than one JSON value on the line")
		}
	}
	if len(stack) != 0 {
		return nil, errors.New("unterminated JSON value")
	}
	return dups, nil
}

func TestDuplicateKeys(t *testing.T) {
	for _, tc := range []struct {
		line string
		dups []string
		err  bool
	}{
		{`{"a":1,"b":{"a":2,"c":[{"a":1},{"a":2}]}}`, nil, false},
		{`{"component":"postgres","component":"postgres"}`, []string{"component"}, false},
		{`{"a":{"x":1,"x":[1,{"y":1,"y":2}]},"a":2}`, []string{"x", "y", "a"}, false},
		{`{"a":1}{"b":2}`, nil, true},
		{`{"a":1`, nil, true},
		{`time=x level=INFO`, nil, true},
		{`"a"`, nil, true},
	} {
		dups, err := duplicateKeys([]byte(tc.line))
		if (err != nil) != tc.err || !slices.Equal(dups, tc.dups) {
			t.Errorf("%s: %v, %v; want %v (error: %v)", tc.line, dups, err, tc.dups, tc.err)
		}
	}
}

// waitScrapeLine polls the scrape until it has the line want.
func waitScrapeLine(t *testing.T, base, want string) {
	t.Helper()
	waitUntilOK(t, "metric "+want, func() error {
		for _, l := range strings.Split(get(t, base+"/metrics", 200), "\n") {
			if l == want {
				return nil
			}
		}
		return errors.New("not in the scrape")
	})
}

// waitLogHas polls the daemon's log until it has s.
func waitLogHas(t *testing.T, logs *logbuf.Buffer, s string) {
	t.Helper()
	waitUntilOK(t, "log "+s, func() error {
		if strings.Contains(logs.String(), s) {
			return nil
		}
		return errors.New("not in the log")
	})
}
