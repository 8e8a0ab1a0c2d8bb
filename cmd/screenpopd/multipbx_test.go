package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/screenpop/screenpop/configs"
	"github.com/screenpop/screenpop/telephony/ari/fakeari"
)

// Issue 8: two Asterisk servers watched by one daemon that shares Redis.
// Both replay the same recording, so both report the same channel IDs, the
// same caller, the same agents. Still they are two calls, everywhere: each
// pops on its own (pbx-a/… and pbx-b/…, not one call, and the second not
// taken for a repeat of the first by the dispatcher or by Redis
// de-duplication), each is answered and ends on its own, both are in the
// caller's history, and /metrics tells the two sockets apart.
func TestTwoPBXsInOneDaemon(t *testing.T) {
	pbxA, pbxB := fakeari.New(t), fakeari.New(t)
	prefix := "screenpop-test-" + randomHex(t) + ":"
	t.Cleanup(func() { cleanRedis(t, prefix) })

	cfg, err := configs.Demo()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.Redis = &configs.Redis{Address: testRedis, KeyPrefix: prefix, CardTTL: time.Minute}
	// The recording's PBX does not report presentation: show the caller,
	// whose number keys the history checked below.
	show := "on_unknown_presentation: show"
	m := runWithARI(t, cfg, ariEntry("pbx-a", pbxA, show), ariEntry("pbx-b", pbxB, show))
	base := "http://" + m.Addr().String()
	waitReady(t, base) // /readyz checks every telephony source: both sockets are up

	alice, bob := dialAgent(t, m, "1001"), dialAgent(t, m, "1002")
	for _, c := range []*websocket.Conn{alice, bob} {
		expect(t, c, "snapshot")
	}

	// The recording of a ring-all call answered by 1002, split at the
	// answer as in TestAsteriskRecordingThroughDaemon: a pop needs its card
	// built before the answer comes.
	lines, answer := answeredRecording(t)
	send := func(pbx *fakeari.Server, part [][]byte) {
		for _, l := range part {
			pbx.Send(l)
		}
	}

	// Both calls ring at the same time: two pops for each agent.
	ids := map[string]string{}
	var phone string
	for _, p := range []struct {
		name string
		pbx  *fakeari.Server
	}{{"pbx-a", pbxA}, {"pbx-b", pbxB}} {
		send(p.pbx, lines[:answer])
		pop := expect(t, bob, "pop")
		if !strings.HasPrefix(pop.CallID, p.name+"/") {
			t.Fatalf("%s's call popped as %q, want an ID starting with %s/", p.name, pop.CallID, p.name)
		}
		ids[p.name] = pop.CallID
		alicePop := expect(t, alice, "pop")
		if got := alicePop.CallID; got != pop.CallID {
			t.Fatalf("%s's call popped for 1001 as %q, for 1002 as %q", p.name, got, pop.CallID)
		}
		// A card sent in steps: read on to the complete card, so that the
		// next messages are the next call's.
		completeCard(t, bob, pop)
		completeCard(t, alice, alicePop)
		var data struct {
			Card struct {
				CallID string `json:"call_id"`
				Phone  string `json:"phone"`
			} `json:"card"`
		}
		if err := json.Unmarshal(pop.Data, &data); err != nil || data.Card.CallID != pop.CallID || data.Card.Phone == "" {
			t.Fatalf("%s's pop: card %+v (%v), want the call %s and the caller's number", p.name, data.Card, err, pop.CallID)
		}
		phone = data.Card.Phone
	}
	pbxCallA, pbxCallB := strings.TrimPrefix(ids["pbx-a"], "pbx-a/"), strings.TrimPrefix(ids["pbx-b"], "pbx-b/")
	if pbxCallA != pbxCallB || pbxCallA == "" {
		t.Fatalf("the two PBXs replayed the same recording but their calls are %q and %q", ids["pbx-a"], ids["pbx-b"])
	}

	// Each is answered and ends on its own.
	for _, p := range []struct {
		name string
		pbx  *fakeari.Server
	}{{"pbx-a", pbxA}, {"pbx-b", pbxB}} {
		send(p.pbx, lines[answer:])
		for _, typ := range []string{"answered", "ended"} {
			if got := expect(t, bob, typ).CallID; got != ids[p.name] {
				t.Errorf("%s for call %q, want %s's call %q", typ, got, p.name, ids[p.name])
			}
		}
		w := expect(t, alice, "withdrawn")
		var data struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(w.Data, &data); err != nil || w.CallID != ids[p.name] || data.Reason != "answered_elsewhere" {
			t.Errorf("1001's pop withdrawn: call %q %s, want %s's call %q, reason answered_elsewhere", w.CallID, w.Data, p.name, ids[p.name])
		}
	}

	// The caller's history holds both calls (recorded once each ends).
	deadline := time.Now().Add(30 * time.Second)
	for {
		past, err := m.history.Recent(context.Background(), phone, 10)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, pc := range past {
			got = append(got, pc.CallID)
		}
		if slices.Contains(got, ids["pbx-a"]) && slices.Contains(got, ids["pbx-b"]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history of %s: %v, want both %s and %s", phone, got, ids["pbx-a"], ids["pbx-b"])
		}
		time.Sleep(20 * time.Millisecond)
	}

	body := get(t, base+"/metrics", 200)
	for _, want := range []string{
		`screenpop_ari_connected{source="pbx-a"} 1`,
		`screenpop_ari_connected{source="pbx-b"} 1`,
		`screenpop_telephony_calls_total{outcome="answered",source="pbx-a"} 1`,
		`screenpop_telephony_calls_total{outcome="answered",source="pbx-b"} 1`,
		`screenpop_telephony_calls_total{outcome="interrupted",source="pbx-a"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, source := range []string{"pbx-a", "pbx-b"} {
		counted := `screenpop_ari_events_total{source="` + source + `",type="Dial"} `
		if !strings.Contains(body, "\n"+counted) || strings.Contains(body, "\n"+counted+"0\n") {
			t.Errorf("/metrics does not count %s's Dial events: want %s<more than 0>", source, counted)
		}
	}
	for name, pbx := range map[string]*fakeari.Server{"pbx-a": pbxA, "pbx-b": pbxB} {
		if v := pbx.Violations(); len(v) > 0 {
			t.Errorf("the daemon made requests to %s that could touch a call: %v", name, v)
		}
	}
}
