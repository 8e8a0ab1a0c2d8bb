package floor

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// Two daemons watch the same PBX and serve different agents' pages: the
// floor view is one floor.
func TestMergeTwoDaemons(t *testing.T) {
	now := at(100)
	a := DaemonView{ID: "a#1", Daemon: "a", Pages: []string{"alice"},
		Calls: []CallView{
			{ID: "pbx/1", Source: "pbx", Line: "Support", Caller: "+*******456", RingAt: at(90), Ringing: []string{"alice", "bob"}},
			{ID: "pbx/2", Source: "pbx", Line: "Sales", RingAt: at(40), Agent: "carol", AnsweredAt: at(45)},
		},
		Health: []Health{{Kind: KindPBX, Name: "pbx", Status: HealthOK}, {Kind: KindSource, Name: "crm", Status: HealthOK}},
	}
	b := DaemonView{ID: "b#2", Daemon: "b", Pages: []string{"carol", "dave"},
		Calls: []CallView{
			// The same call, seen a moment later by b, and already answered.
			{ID: "pbx/2", Source: "pbx", Line: "Sales", RingAt: at(41), Agent: "carol", AnsweredAt: at(45)},
			// Still ringing here: b's PBX event came first.
			{ID: "pbx/1", Source: "pbx", Line: "Support", Caller: "+*******456", RingAt: at(89), Ringing: []string{"alice"}},
			// A queued call nobody's phone rings for.
			{ID: "cti/9", Source: "cti", Line: LineOther, RingAt: at(70)},
		},
		WrapUps: []WrapUpView{{Agent: "dave", CallID: "pbx/0", Until: at(120)}},
		Health:  []Health{{Kind: KindPBX, Name: "pbx", Status: HealthDown}, {Kind: KindSource, Name: "crm", Status: HealthDegraded}},
	}
	v, g := merge(mergeInput{now: now, day: "2026-03-04", serviceLevel: 20, views: []DaemonView{a, b},
		counts: Counts{Answered: 8, InTime: 6, Popped: 5, Abandoned: 2, Ended: 9},
		names:  map[string]string{"alice": "Alice", "bob": "Bob", "carol": "Carol", "dave": "Dave", "erin": "Erin"}})

	if len(v.Waiting) != 2 || v.Waiting[0].ID != "cti/9" || v.Waiting[1].ID != "pbx/1" {
		t.Fatalf("waiting: %+v, want cti/9 (30s) then pbx/1", v.Waiting)
	}
	if v.LongestWait != 30 || v.Waiting[1].Wait != 11 {
		t.Errorf("waits: longest %v, pbx/1 %v; want 30 and 11 (the earlier ring of the two)", v.LongestWait, v.Waiting[1].Wait)
	}
	if r := v.Waiting[1].Agents; len(r) != 2 || r[0] != (AgentRef{ID: "alice", Name: "Alice", Connected: true}) || r[1].Connected {
		t.Errorf("pbx/1 rings at %+v, want alice (page open) and bob (none)", r)
	}
	if v.OnCall != 1 {
		t.Errorf("on call: %d", v.OnCall)
	}
	states := map[string]AgentView{}
	for _, ag := range v.Agents {
		states[ag.ID] = ag
	}
	for id, want := range map[string]struct {
		state     string
		connected bool
	}{
		"alice": {ShowRinging, true}, "bob": {ShowRinging, false}, "carol": {ShowOnCall, true},
		"dave": {ShowWrapUp, true}, "erin": {ShowOffline, false},
	} {
		if got := states[id]; got.State != want.state || got.Connected != want.connected {
			t.Errorf("%s: %+v, want %s connected=%v", id, got, want.state, want.connected)
		}
	}
	if v.Agents[0].ID != "alice" || v.Agents[4].ID != "erin" {
		t.Errorf("agents not by name: %+v", v.Agents)
	}
	if *v.ServiceLevel != 0.6 || *v.PoppedShare != 5.0/8 {
		t.Errorf("service level %v, popped share %v; want 6/10 and 5/8", *v.ServiceLevel, *v.PoppedShare)
	}
	if len(v.Health) != 2 || !reflect.DeepEqual(v.Health[0], Health{Kind: KindPBX, Name: "pbx", Status: HealthDown, Daemons: []string{"b"}}) ||
		v.Health[1].Status != HealthDegraded {
		t.Errorf("health: %+v", v.Health)
	}
	if len(v.Daemons) != 2 {
		t.Errorf("daemons: %v", v.Daemons)
	}
	wantAgents := map[string]int{StateSignedIn: 3, StateOnCall: 1, StateRinging: 2, StateWrapUp: 1, StateRingingBlind: 1}
	for s, n := range wantAgents {
		if g.agents[s] != n {
			t.Errorf("agents %s = %d, want %d", s, g.agents[s], n)
		}
	}
	if g.waiting["pbx"] != 1 || g.waiting["cti"] != 1 {
		t.Errorf("waiting by source: %v", g.waiting)
	}
	// No call: no share, not a zero (nothing to divide).
	empty, _ := merge(mergeInput{now: now, views: []DaemonView{{ID: "a#1", Daemon: "a"}}})
	raw, _ := json.Marshal(empty)
	var back map[string]any
	json.Unmarshal(raw, &back)
	if back["service_level"] != nil || back["popped_share"] != nil || back["waiting"] == nil {
		t.Errorf("empty view: %s", raw)
	}
}

// The day's counts take each call once, whatever adds it again and
// whatever each adder knew of it; days before yesterday are forgotten.
func TestMemoryTally(t *testing.T) {
	tl := newMemoryTally()
	today := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	tl.add(today, []Record{
		{Day: "2026-03-04", CallID: "c1", Flags: FlagAnswered | FlagInTime},
		{Day: "2026-03-04", CallID: "c1", Flags: FlagAnswered | FlagInTime | FlagEnded},
		{Day: "2026-03-04", CallID: "c1", Flags: FlagAnswered | FlagPopped}, // another daemon saw the pop
		{Day: "2026-03-04", CallID: "c2", Flags: FlagAbandoned | FlagEnded},
		{Day: "2026-03-03", CallID: "c0", Flags: FlagAnswered},
		{Day: "2026-03-01", CallID: "old", Flags: FlagAnswered},
	})
	if got, want := tl.counts("2026-03-04"), (Counts{Answered: 1, InTime: 1, Popped: 1, Abandoned: 1, Ended: 2}); got != want {
		t.Errorf("today: %+v, want %+v", got, want)
	}
	if got := tl.counts("2026-03-03"); got.Answered != 1 {
		t.Errorf("yesterday: %+v", got)
	}
	tl.add(today.AddDate(0, 0, 2), nil)
	if got := tl.counts("2026-03-04"); got != (Counts{}) {
		t.Errorf("a day two days ago is still kept: %+v", got)
	}
}
