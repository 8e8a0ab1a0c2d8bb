package callstate

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ari "github.com/CyCoreSystems/ari/v5"

	screenpop "github.com/screenpop/screenpop"
)

// editedRecording writes a copy of a recorded stream with edit applied to
// its lines, for variations the PBX produces but the recording does not
// show.
func editedRecording(t *testing.T, name string, edit func(lines []string) []string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	out := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(out, []byte(strings.Join(edit(lines), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// withoutLine drops the lines containing all of the given substrings and
// fails the test unless exactly one matched.
func withoutLine(t *testing.T, parts ...string) func([]string) []string {
	return func(lines []string) []string {
		var out []string
		dropped := 0
		for _, l := range lines {
			match := true
			for _, p := range parts {
				match = match && strings.Contains(l, p)
			}
			if match {
				dropped++
				continue
			}
			out = append(out, l)
		}
		if dropped != 1 {
			t.Fatalf("%d lines match %q, want 1", dropped, parts)
		}
		return out
	}
}

// A Dial target that Asterisk could not call reports no begin. The ringing
// set must not wait for it past the next sign of life of the dialling
// channel, and the target joins when it rings after all.
func TestDialBatchWithMissingBegin(t *testing.T) {
	file := editedRecording(t, "answered.jsonl",
		withoutLine(t, `"type":"Dial"`, `"dialstatus":""`, `"dialstring":"1003"`))
	got := render(replay(t, file, showConfig(t)).events)
	want := `ringing     1795426551.0 caller="Jane Doe"<+4930123456> did=100 agents=1001,1002
ringing     1795426551.0 caller="Jane Doe"<+4930123456> did=100 agents=1001,1002,1003
answered    1795426551.0 caller="Jane Doe"<+4930123456> did=100 agent=1002
ended       1795426551.0 caller="Jane Doe"<+4930123456> did=100 agent=1002 outcome=answered
`
	if got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}

// The phone that answers belongs to nobody in the agent map (a mobile the
// call was forked to): the pops shown are withdrawn by an answer without
// agent, and the call still ends answered.
func TestAnsweredByNoAgent(t *testing.T) {
	cfg := showConfig(t)
	agents := cfg.AgentOf
	cfg.AgentOf = func(ep string) (string, bool) {
		if ep == "PJSIP/1002" {
			return "", false
		}
		return agents(ep)
	}
	res := replay(t, "../testdata/answered.jsonl", cfg)
	got := render(res.events)
	want := `ringing     1795426551.0 caller="Jane Doe"<+4930123456> did=100 agents=1001,1003
answered    1795426551.0 caller="Jane Doe"<+4930123456> did=100
ended       1795426551.0 caller="Jane Doe"<+4930123456> did=100 outcome=answered
`
	if got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
	checkInvariants(t, res.events, DefaultSource)
}

// With no agent at all nothing rings, so nothing is reported but the end.
func TestNoAgentMap(t *testing.T) {
	cfg := showConfig(t)
	cfg.AgentOf = nil
	got := render(replay(t, "../testdata/answered.jsonl", cfg).events)
	want := `ended       1795426551.0 caller="Jane Doe"<+4930123456> did=100 outcome=answered
`
	if got != want {
		t.Errorf("got\n%swant\n%s", got, want)
	}
}

// A caller whose presentation the PBX did not report is withheld by
// default, and shown once the dialplan reports it.
func TestUnknownPresentationWithheld(t *testing.T) {
	cfg := testConfig(t)
	var known []bool
	cfg.Presentation = func(k bool) { known = append(known, k) }
	for _, ev := range replay(t, "../testdata/answered.jsonl", cfg).events {
		if !ev.Caller.Withheld || ev.Caller.Number != "" {
			t.Errorf("%s: caller %+v, want withheld: the recording never reports presentation", ev.Kind, ev.Caller)
		}
	}

	// The same call with the dialplan's Set(__SCREENPOP_PRES=...) added
	// right after the channel appears.
	file := editedRecording(t, "answered.jsonl", func(lines []string) []string {
		varset := strings.Replace(lines[4], `"variable":"__SCREENPOP_DID","value":"100"`,
			`"variable":"__SCREENPOP_PRES","value":"allowed_not_screened"`, 1)
		if varset == lines[4] {
			t.Fatalf("line 5 is not the DID varset: %s", lines[4])
		}
		return append(lines[:5:5], append([]string{varset}, lines[5:]...)...)
	})
	events := replay(t, file, cfg).events
	if len(events) != 3 {
		t.Fatalf("got %d events, want 3", len(events))
	}
	for _, ev := range events {
		if ev.Caller != (screenpop.Caller{Number: "+4930123456", Name: "Jane Doe"}) {
			t.Errorf("%s: caller %+v, want Jane Doe shown", ev.Kind, ev.Caller)
		}
	}
	// Told once per call, when it is first reported.
	if !slices.Equal(known, []bool{false, true}) {
		t.Errorf("presentation known per call = %v, want [false true]", known)
	}

	// IT chose to show callers of unknown presentation (on_unknown_presentation: show).
	cfg.ShowUnknownPresentation = true
	for _, ev := range replay(t, "../testdata/answered.jsonl", cfg).events {
		if ev.Caller != (screenpop.Caller{Number: "+4930123456", Name: "Jane Doe"}) {
			t.Errorf("show: %s: caller %+v, want Jane Doe shown", ev.Kind, ev.Caller)
		}
	}
	// Even then a withheld number stays withheld once the PBX says so, and
	// "anonymous" with nothing reported is never shown as a caller.
	for _, name := range []string{"synth-withheld-var", "synth-withheld-anonymous"} {
		for _, ev := range replay(t, "testdata/"+name+".jsonl", cfg).events {
			if !ev.Caller.Withheld {
				t.Errorf("show: %s: %s: caller %+v, want withheld", name, ev.Kind, ev.Caller)
			}
		}
	}
}

func TestPresentationValues(t *testing.T) {
	restricted := map[string]bool{
		"allowed_not_screened":  false,
		"allowed_passed_screen": false,
		"allowed_failed_screen": false,
		"allowed":               false,
		"Allowed":               false,
		"0":                     false,
		"3":                     false,
		"prohib_not_screened":   true,
		"prohib_passed_screen":  true,
		"prohib_failed_screen":  true,
		"prohib":                true,
		"unavailable":           true,
		"32":                    true, // 0x20
		"35":                    true, // 0x23 prohib network number
		"67":                    true, // 0x43 unavailable
		"something-new":         true, // unknown: hide rather than show
	}
	for v, want := range restricted {
		if got := presentationRestricted(v); got != want {
			t.Errorf("presentationRestricted(%q) = %v, want %v", v, got, want)
		}
	}
}

// A caller once restricted stays withheld even if a later variable claims
// otherwise: a number must never appear halfway through a call.
func TestWithheldIsSticky(t *testing.T) {
	tr := New(testConfig(t))
	ch := ari.ChannelData{ID: "1.0", Name: "PJSIP/carrier-00000000", State: "Ring",
		Caller: &ari.CallerID{Name: "Max", Number: "+4940111222"}, Dialplan: &ari.DialplanCEP{Context: "from-carrier", Exten: "100"}}
	tr.Apply(&ari.ChannelCreated{Channel: ch})
	tr.Apply(&ari.ChannelVarset{Channel: ch, Variable: "__SCREENPOP_PRES", Value: "prohib"})
	tr.Apply(&ari.ChannelVarset{Channel: ch, Variable: "__SCREENPOP_PRES", Value: "allowed"})
	if got := tr.callerOf(tr.calls["1.0"]); got != (screenpop.Caller{Withheld: true}) {
		t.Errorf("caller %+v, want withheld", got)
	}
}

func TestDialTargets(t *testing.T) {
	cases := map[string]int{
		"PJSIP/1001&PJSIP/1002&PJSIP/1003,30": 3,
		"PJSIP/1001":                          1,
		"PJSIP/1001,,tT":                      1,
		"Local/1001@agents&PJSIP/1002/sip:1002@10.0.0.5:5060,20": 2,
		"":    0,
		",30": 0,
	}
	for data, want := range cases {
		if got := dialTargets(data); got != want {
			t.Errorf("dialTargets(%q) = %d, want %d", data, got, want)
		}
	}
}

func TestCauseStatus(t *testing.T) {
	cases := map[int]string{17: "BUSY", 21: "BUSY", 19: "NOANSWER", 18: "NOANSWER", 26: "CANCEL", 16: "CANCEL", 34: "CONGESTION", 3: "CHANUNAVAIL", 20: "CHANUNAVAIL"}
	for cause, want := range cases {
		if got := causeStatus(cause); got != want {
			t.Errorf("causeStatus(%d) = %s, want %s", cause, got, want)
		}
	}
}

// Events without a bearing on calls change nothing and return nothing.
func TestIrrelevantEvents(t *testing.T) {
	tr := New(testConfig(t))
	for _, ev := range []ari.Event{
		&ari.DeviceStateChanged{},
		&ari.BridgeCreated{},
		&ari.ChannelTalkingStarted{Channel: ari.ChannelData{ID: "9.9", Name: "PJSIP/1001-00000009"}},
		&ari.StasisStart{},
		&ari.Dial{Peer: ari.ChannelData{ID: "9.8", Name: "PJSIP/1001-00000008"}, Dialstatus: ""}, // an originate: no caller
		&ari.ChannelDestroyed{Channel: ari.ChannelData{ID: "never-seen"}},
	} {
		if out := tr.Apply(ev); out != nil {
			t.Errorf("%T: got %v, want nothing", ev, out)
		}
	}
	if tr.Active() != 0 {
		t.Errorf("Active() = %d, want 0", tr.Active())
	}
}

// Resync before any event, with nothing live, is harmless; with a live
// call whose channels carry no link at all to agents, it reports nothing
// until the call rings, and that call is not reported ended if nothing of
// it was ever reported.
func TestResyncEmpty(t *testing.T) {
	tr := New(testConfig(t))
	if out := tr.Resync(nil); len(out) != 0 {
		t.Errorf("Resync(nil) = %v", out)
	}
	live := []ari.ChannelData{{ID: "5.0", Name: "PJSIP/carrier-00000000", State: "Up",
		Caller:   &ari.CallerID{Number: "+4930100"},
		Dialplan: &ari.DialplanCEP{Context: "from-carrier", Exten: "s"}}}
	if out := tr.Resync(live); len(out) != 0 {
		t.Errorf("Resync(trunk channel) = %v, want nothing", out)
	}
	if tr.Active() != 1 {
		t.Fatalf("Active() = %d, want 1 (it may be a caller in an IVR)", tr.Active())
	}
	if out := tr.Resync(nil); len(out) != 0 {
		t.Errorf("Resync after it went: %v, want no ended for a call never reported", out)
	}
	if tr.Active() != 0 {
		t.Errorf("Active() = %d, want 0", tr.Active())
	}
}

// A call first seen ringing in one resync and gone by the next ended while
// it rang: abandoned, even though no dialplan event of it was ever seen.
func TestResyncDiscoveredThenGone(t *testing.T) {
	tr := New(showConfig(t))
	jane := &ari.CallerID{Name: "Jane Doe", Number: "+4930123456"}
	live := []ari.ChannelData{
		{ID: "7.0", Name: "PJSIP/carrier-00000000", State: "Ring", Caller: jane,
			Dialplan: &ari.DialplanCEP{Context: "from-carrier", Exten: "100"}},
		{ID: "7.1", Name: "PJSIP/1001-00000001", State: "Ringing", Connected: jane,
			Caller: &ari.CallerID{Name: "Alice Agent", Number: "1001"}, Dialplan: &ari.DialplanCEP{Context: "agents"}},
	}
	got := render(tr.Resync(live))
	want := `ringing     7.0 caller="Jane Doe"<+4930123456> did=100 agents=1001
`
	if got != want {
		t.Fatalf("first resync:\n%swant\n%s", got, want)
	}
	got = render(tr.Resync(nil))
	want = `ended       7.0 caller="Jane Doe"<+4930123456> did=100 outcome=abandoned
`
	if got != want {
		t.Errorf("second resync:\n%swant\n%s", got, want)
	}
	if tr.Active() != 0 || len(tr.chans) != 0 {
		t.Errorf("Active() = %d, %d channels; want 0, 0", tr.Active(), len(tr.chans))
	}
}
