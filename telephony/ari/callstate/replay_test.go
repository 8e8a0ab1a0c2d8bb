package callstate

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ari "github.com/CyCoreSystems/ari/v5"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/telephony"
)

var update = flag.Bool("update", false, "rewrite the .golden files from what the tracker emits (review the diff!)")

// resyncMarker is the type of the scenario lines that are no ARI event but
// stand for a reconnect: the tracker gets Resync with the line's channels,
// exactly what GET /ari/channels would have returned (after Restarted when
// the line says the PBX restarted meanwhile).
const resyncMarker = "ScreenpopTestResync"

var testNow = time.Date(2026, 11, 23, 9, 35, 0, 0, time.UTC)

func testAgentMap(t *testing.T, patterns ...string) func(string) (string, bool) {
	t.Helper()
	if len(patterns) == 0 {
		patterns = []string{"PJSIP/{agent}"}
	}
	m, err := telephony.NewAgentMap(telephony.AgentMapConfig{Patterns: patterns})
	if err != nil {
		t.Fatal(err)
	}
	return m.AgentOf
}

func testConfig(t *testing.T) Config {
	return Config{
		AgentOf:         testAgentMap(t),
		InboundContexts: []string{"from-carrier"},
		Now:             func() time.Time { return testNow },
	}
}

// showConfig is testConfig for the recordings, whose PBX reported no
// presentation: it shows such callers, so that the tests can check numbers.
func showConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.ShowUnknownPresentation = true
	return cfg
}

// replayResult is what a scenario produced.
type replayResult struct {
	events    []screenpop.CallEvent
	maxActive int      // most calls in progress at once
	unknown   []string // event types ari.DecodeEvent rejected (skipped, as the source does)
	tracker   *Tracker
}

// replay feeds a scenario file through ari.DecodeEvent and the tracker, the
// way the ARI source does.
func replay(t *testing.T, path string, cfg Config) replayResult {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res := replayResult{tracker: New(cfg)}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var head struct {
			Type      string            `json:"type"`
			Channels  []ari.ChannelData `json:"channels"`
			Restarted bool              `json:"restarted"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		if head.Type == resyncMarker {
			if head.Restarted {
				res.events = append(res.events, res.tracker.Restarted()...)
			}
			res.events = append(res.events, res.tracker.Resync(head.Channels)...)
			res.maxActive = max(res.maxActive, res.tracker.Active())
			continue
		}
		ev, err := ari.DecodeEvent(line)
		if err != nil {
			res.unknown = append(res.unknown, head.Type)
			continue
		}
		res.events = append(res.events, res.tracker.Apply(ev)...)
		res.maxActive = max(res.maxActive, res.tracker.Active())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return res
}

// render writes events one per line, in a form a person can check against
// the scenario.
func render(events []screenpop.CallEvent) string {
	var b strings.Builder
	for _, ev := range events {
		fmt.Fprintf(&b, "%-11s %s", ev.Kind, ev.CallID)
		switch {
		case ev.Caller.Withheld:
			b.WriteString(" caller=withheld")
		default:
			fmt.Fprintf(&b, " caller=%q<%s>", ev.Caller.Name, ev.Caller.Number)
		}
		if ev.DID != "" {
			fmt.Fprintf(&b, " did=%s", ev.DID)
		}
		if ev.Kind == screenpop.EventRinging {
			fmt.Fprintf(&b, " agents=%s", strings.Join(ev.Agents, ","))
			if ev.RangOut {
				b.WriteString(" rang_out")
			}
			if tr := ev.Transfer; tr != nil {
				kind := "blind"
				if tr.Consult {
					kind = "consult"
				}
				fmt.Fprintf(&b, " transfer=%s:%s", kind, tr.From)
			}
		}
		if ev.Agent != "" {
			fmt.Fprintf(&b, " agent=%s", ev.Agent)
		}
		if ev.Outcome != "" {
			fmt.Fprintf(&b, " outcome=%s", ev.Outcome)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// checkGolden compares the rendered events with testdata/<name>.golden.
func checkGolden(t *testing.T, name string, events []screenpop.CallEvent) {
	t.Helper()
	got := render(events)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s: events differ\n--- got\n%s--- want (%s)\n%s", name, got, path, want)
	}
}

// checkInvariants holds for every stream, whatever happened on the PBX.
func checkInvariants(t *testing.T, events []screenpop.CallEvent, source string) {
	t.Helper()
	type state struct {
		lastRinging []string
		answered    bool
		released    bool // let go of by a blind transfer, not taken yet
		ended       bool
	}
	calls := map[string]*state{}
	for i, ev := range events {
		where := fmt.Sprintf("event %d (%s %s)", i, ev.Kind, ev.CallID)
		if ev.CallID == "" {
			t.Errorf("%s: no call ID", where)
		}
		if ev.Source != source {
			t.Errorf("%s: source %q, want %q", where, ev.Source, source)
		}
		if !ev.At.Equal(testNow) {
			t.Errorf("%s: At %v, want the injected clock's %v", where, ev.At, testNow)
		}
		if ev.Caller.Withheld && (ev.Caller.Number != "" || ev.Caller.Name != "") {
			t.Errorf("%s: withheld caller carries %+v", where, ev.Caller)
		}
		s := calls[ev.CallID]
		if s == nil {
			s = &state{}
			calls[ev.CallID] = s
		}
		if s.ended {
			t.Errorf("%s: event after the call ended", where)
		}
		switch ev.Kind {
		case screenpop.EventRinging:
			if len(ev.Agents) == 0 && len(s.lastRinging) == 0 && ev.Transfer == nil {
				t.Errorf("%s: an empty ringing set that withdraws nothing", where)
			}
			if !slices.IsSorted(ev.Agents) || len(slices.Compact(slices.Clone(ev.Agents))) != len(ev.Agents) {
				t.Errorf("%s: agents %v not sorted and unique", where, ev.Agents)
			}
			if s.answered && ev.Transfer == nil {
				t.Errorf("%s: ringing after the answer, not for a transfer", where)
			}
			if !s.answered && ev.Transfer != nil {
				t.Errorf("%s: transfer of a call nobody answered", where)
			}
			if ev.Transfer != nil && !ev.Transfer.Consult {
				s.released = true
			}
			if ev.Transfer != nil && slices.Contains(ev.Agents, ev.Transfer.From) && ev.Transfer.Consult {
				t.Errorf("%s: %s consults themself", where, ev.Transfer.From)
			}
			s.lastRinging = ev.Agents
		case screenpop.EventAnswered:
			s.answered = true
		case screenpop.EventTransferred:
			s.released = false
			if !s.answered {
				t.Errorf("%s: transferred before answered", where)
			}
			if ev.Agent == "" {
				t.Errorf("%s: transferred to nobody", where)
			}
		case screenpop.EventEnded:
			first := !s.answered && s.lastRinging == nil
			s.ended = true
			if ev.Outcome == "" {
				t.Errorf("%s: ended without outcome", where)
			}
			// A call nobody saw may end answered without an answered event
			// (someone who is no agent took it).
			if (ev.Outcome == screenpop.OutcomeAnswered) != s.answered && !first && ev.Outcome != screenpop.OutcomeInterrupted {
				t.Errorf("%s: outcome %s but answered=%v", where, ev.Outcome, s.answered)
			}
		default:
			t.Errorf("%s: unknown kind", where)
		}
	}
}
