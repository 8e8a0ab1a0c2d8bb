package callstate

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"

	ari "github.com/CyCoreSystems/ari/v5"

	screenpop "github.com/screenpop/screenpop"
)

// TestBurst interleaves many copies of the recorded calls, as a busy call
// center's PBX does, and checks each call still tells its own story. The
// tracker must stay linear in the events: a quadratic one makes this test
// crawl.
func TestBurst(t *testing.T) {
	const calls = 400
	templates := map[bool][]string{}
	for _, answered := range []bool{true, false} {
		name := "../testdata/abandoned.jsonl"
		if answered {
			name = "../testdata/answered.jsonl"
		}
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(raw))
		sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
		for sc.Scan() {
			templates[answered] = append(templates[answered], sc.Text())
		}
	}
	// Copy i: its own channel IDs, channel names and caller number.
	copyCall := func(i int) []string {
		var out []string
		for _, l := range templates[i%2 == 0] {
			l = strings.ReplaceAll(l, `"17954265`, fmt.Sprintf(`"%d`, 20000000+i))
			l = strings.ReplaceAll(l, "-0000000", fmt.Sprintf("-%05x0", i))
			l = strings.ReplaceAll(l, "+4930123456", fmt.Sprintf("+4930%06d", i))
			out = append(out, l)
		}
		return out
	}
	perCall := make([][]string, calls)
	for i := range perCall {
		perCall[i] = copyCall(i)
	}
	// Round robin over the calls still going: hundreds in progress at once.
	var stream []string
	for pos := 0; ; pos++ {
		added := false
		for i := range perCall {
			if pos < len(perCall[i]) {
				stream = append(stream, perCall[i][pos])
				added = true
			}
		}
		if !added {
			break
		}
	}

	cfg := testConfig(t)
	// The recording comes from a PBX that reports no presentation; the
	// burst tells calls apart by their numbers, so show them.
	cfg.ShowUnknownPresentation = true
	tr := New(cfg)
	var events []screenpop.CallEvent
	peak := 0
	for _, l := range stream {
		ev, err := ari.DecodeEvent([]byte(l))
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, tr.Apply(ev)...)
		peak = max(peak, tr.Active())
	}
	if peak != calls {
		t.Errorf("at most %d calls at once, want all %d", peak, calls)
	}
	checkInvariants(t, events, DefaultSource)
	byCaller := map[string][]screenpop.CallEvent{}
	for _, ev := range events {
		byCaller[ev.Caller.Number] = append(byCaller[ev.Caller.Number], ev)
	}
	for i := range calls {
		evs := byCaller[fmt.Sprintf("+4930%06d", i)]
		want := "ringing[1001 1002 1003] ended:abandoned"
		if i%2 == 0 {
			want = "ringing[1001 1002 1003] answered:1002 ended:answered"
		}
		var got []string
		for _, ev := range evs {
			switch ev.Kind {
			case screenpop.EventRinging:
				got = append(got, fmt.Sprintf("ringing%v", ev.Agents))
			case screenpop.EventAnswered:
				got = append(got, "answered:"+ev.Agent)
			case screenpop.EventEnded:
				got = append(got, "ended:"+string(ev.Outcome))
			default:
				got = append(got, string(ev.Kind))
			}
		}
		if strings.Join(got, " ") != want {
			t.Errorf("call %d: %s, want %s", i, strings.Join(got, " "), want)
		}
	}
	if tr.Active() != 0 || len(tr.chans) != 0 {
		t.Errorf("after the burst: %d calls, %d channels tracked; want 0, 0", tr.Active(), len(tr.chans))
	}
}
