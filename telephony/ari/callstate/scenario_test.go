package callstate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	screenpop "github.com/screenpop/screenpop"
)

// scenarioFiles are the recorded streams and every synthesized one, each
// with its golden file testdata/<name>.golden.
func scenarioFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{
		"recorded-answered":  "../testdata/answered.jsonl",
		"recorded-abandoned": "../testdata/abandoned.jsonl",
	}
	synth, err := filepath.Glob("testdata/synth-*.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(synth) < 15 {
		t.Fatalf("found %d synthesized scenarios, want them all (run testdata/synthesize.py?)", len(synth))
	}
	for _, f := range synth {
		files[strings.TrimSuffix(filepath.Base(f), ".jsonl")] = f
	}
	return files
}

// peakCalls is how many calls some scenarios hold at once.
var peakCalls = map[string]int{
	"recorded-answered":     1,
	"synth-two-callers":     2,
	"synth-resync-answered": 4,
	"synth-agents-call-out": 0, // no customer call at all
}

// TestScenarios replays every stream under three configurations that must
// not change the outcome: the inbound context named or not, and Local
// queue members mapped to agents by a pattern or only through the phones
// they dial.
func TestScenarios(t *testing.T) {
	variants := map[string]func(*Config){
		"context":       func(*Config) {},
		"any-context":   func(c *Config) { c.InboundContexts = nil },
		"local-pattern": func(c *Config) { c.AgentOf = testAgentMap(t, "PJSIP/{agent}", "Local/{agent}@agents") },
	}
	for name, file := range scenarioFiles(t) {
		for vname, vary := range variants {
			t.Run(name+"/"+vname, func(t *testing.T) {
				cfg := testConfig(t)
				vary(&cfg)
				res := replay(t, file, cfg)
				checkGolden(t, name, res.events)
				checkInvariants(t, res.events, DefaultSource)
				if got := res.tracker.Active(); got != 0 {
					t.Errorf("Active() = %d after every call ended, want 0", got)
				}
				if n, l := len(res.tracker.chans), len(res.tracker.locals); n != 0 || l != 0 {
					t.Errorf("%d channels (%d Local halves) still tracked after all were destroyed", n, l)
				}
				if want, ok := peakCalls[name]; ok && res.maxActive != want {
					t.Errorf("at most %d calls in progress at once, want %d", res.maxActive, want)
				}
				wantUnknown := []string(nil)
				if name == "synth-unknown-events" {
					wantUnknown = []string{"ChannelToneDetected", "ChannelTransfer"}
				}
				if !slices.Equal(res.unknown, wantUnknown) {
					t.Errorf("undecodable event types %v, want %v", res.unknown, wantUnknown)
				}
			})
		}
	}
}

// The two recorded calls, spelled out field by field.
func TestRecordedCalls(t *testing.T) {
	jane := screenpop.Caller{Number: "+4930123456", Name: "Jane Doe"}
	base := screenpop.CallEvent{Caller: jane, DID: "100", Source: "ari", At: testNow}
	with := func(f func(*screenpop.CallEvent)) screenpop.CallEvent {
		ev := base
		f(&ev)
		return ev
	}
	cases := map[string][]screenpop.CallEvent{
		"../testdata/answered.jsonl": {
			with(func(e *screenpop.CallEvent) {
				e.Kind, e.CallID, e.Agents = screenpop.EventRinging, "1795426551.0", []string{"1001", "1002", "1003"}
			}),
			with(func(e *screenpop.CallEvent) {
				e.Kind, e.CallID, e.Agent = screenpop.EventAnswered, "1795426551.0", "1002"
			}),
			with(func(e *screenpop.CallEvent) {
				e.Kind, e.CallID, e.Agent, e.Outcome = screenpop.EventEnded, "1795426551.0", "1002", screenpop.OutcomeAnswered
			}),
		},
		"../testdata/abandoned.jsonl": {
			with(func(e *screenpop.CallEvent) {
				e.Kind, e.CallID, e.Agents = screenpop.EventRinging, "1795426565.0", []string{"1001", "1002", "1003"}
			}),
			with(func(e *screenpop.CallEvent) {
				e.Kind, e.CallID, e.Outcome = screenpop.EventEnded, "1795426565.0", screenpop.OutcomeAbandoned
			}),
		},
	}
	for file, want := range cases {
		got := replay(t, file, showConfig(t)).events
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\ngot  %+v\nwant %+v", file, got, want)
		}
	}
}

// A withheld caller's number (and name) must not reach any event, in any
// field, although the PBX reports it in every snapshot and the dialplan's
// NoOp even prints it.
func TestWithheldNumberNeverEmitted(t *testing.T) {
	maxSecrets := []string{"4940111222", "111222", "Mustermann"}
	cases := map[string][]string{
		"testdata/synth-withheld-var.jsonl":            maxSecrets,
		"testdata/synth-withheld-callerid-event.jsonl": maxSecrets,
		"testdata/synth-withheld-anonymous.jsonl":      {"anonymous", "Anonymous"},
		// CALLERID(pres) in ari.conf channelvars and nothing else.
		"testdata/synth-withheld-channelvars.jsonl": maxSecrets,
		// A stock PBX: presentation unknown, withheld by default only.
		"testdata/synth-withheld-stock-pbx.jsonl": maxSecrets,
	}
	for file, secrets := range cases {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(raw), secrets[0]) {
			t.Fatalf("%s does not even contain %q: the test would prove nothing", file, secrets[0])
		}
		cfg := testConfig(t)
		if !strings.Contains(file, "stock-pbx") {
			// What the PBX said is withheld stays so when IT chose to
			// show callers of unknown presentation.
			cfg.ShowUnknownPresentation = true
		}
		res := replay(t, file, cfg)
		if len(res.events) == 0 {
			t.Fatalf("%s: no events", file)
		}
		for _, ev := range res.events {
			if !ev.Caller.Withheld || ev.Caller.Number != "" || ev.Caller.Name != "" {
				t.Errorf("%s: %s event caller %+v, want withheld and empty", file, ev.Kind, ev.Caller)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				if strings.Contains(string(b), s) {
					t.Errorf("%s: event %s contains %q", file, b, s)
				}
			}
		}
	}
}
