package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nyaruka/phonenumbers"

	screenpop "github.com/screenpop/screenpop"
)

// fakeClock jumps to whatever time the generator waits for, so a test runs
// hours of demo traffic in milliseconds and with no timing in it.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Wait(ctx context.Context, t time.Time) bool {
	if ctx.Err() != nil {
		return false
	}
	if t.After(c.now) {
		c.now = t
	}
	return true
}

var agents = []string{"1001", "1002", "1003"}

func newFake(t *testing.T, cfg Config) *Generator {
	t.Helper()
	g, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.clock = &fakeClock{now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	return g
}

// runCalls runs g until calls calls have started, and returns every event.
// The sink runs on Run's goroutine, so cancelling from it is deterministic.
func runCalls(t *testing.T, g *Generator, calls int) []screenpop.CallEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var events []screenpop.CallEvent
	started := map[string]bool{}
	err := g.Run(ctx, screenpop.CallSinkFunc(func(ev screenpop.CallEvent) {
		events = append(events, ev)
		if !started[ev.CallID] {
			started[ev.CallID] = true
			if len(started) == calls {
				cancel()
			}
		}
	}))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return events
}

// stats counts what happened across a run.
type stats struct {
	outcomes      map[screenpop.Outcome]int
	transfers     int
	transferRings int
	rangOut       int
	movedOn       int
	withheld      int
	calls         int
}

// checkLifecycles checks every call of events is a valid call lifecycle and
// that no agent ever has two calls at once.
func checkLifecycles(t *testing.T, events []screenpop.CallEvent, agents []string) stats {
	t.Helper()
	st := stats{outcomes: map[screenpop.Outcome]int{}}
	type state struct {
		ringing  []string
		answered bool
		holder   string // "" after a blind transfer, until taken
		target   string // whose phone rings for a transfer
		ended    bool
	}
	calls := map[string]*state{}
	talking := map[string]string{} // agent -> call
	for i, ev := range events {
		fail := func(format string, args ...any) {
			t.Helper()
			t.Errorf("event %d (%s %s): %s", i, ev.CallID, ev.Kind, fmt.Sprintf(format, args...))
		}
		if ev.Source != "demo" || !strings.HasPrefix(ev.CallID, "demo-") || ev.At.IsZero() {
			fail("source %q, call ID %q, at %v", ev.Source, ev.CallID, ev.At)
		}
		if ev.Caller.Withheld && ev.Caller.Number != "" {
			fail("withheld caller with a number")
		}
		if !ev.Caller.Withheld && ev.Caller.Number == "" {
			fail("caller without number is not marked withheld")
		}
		s := calls[ev.CallID]
		if s == nil {
			s = &state{}
			calls[ev.CallID] = s
			st.calls++
			if ev.Caller.Withheld {
				st.withheld++
			}
			if ev.Kind != screenpop.EventRinging && !(ev.Kind == screenpop.EventEnded && ev.Outcome == screenpop.OutcomeBusy) {
				fail("a call must start ringing (or end busy at once)")
			}
		}
		if s.ended {
			fail("event after the call ended")
		}
		switch ev.Kind {
		case screenpop.EventRinging:
			if s.answered && ev.Transfer == nil {
				fail("ringing after answer, not for a transfer")
			}
			if !s.answered && ev.Transfer != nil {
				fail("transfer of a call nobody answered")
			}
			if len(ev.Agents) == 0 && !ev.RangOut {
				fail("rings nobody, and not because it rang out")
			}
			if tr := ev.Transfer; tr != nil {
				switch {
				case len(ev.Agents) == 0: // the target did not answer
					if s.target == "" || s.holder != "" {
						fail("a transfer rang out that was not ringing")
					}
					delete(talking, s.target)
					s.target = ""
				case tr.From != s.holder || len(ev.Agents) != 1:
					fail("transfer from %q to %v; the holder is %q", tr.From, ev.Agents, s.holder)
				default:
					if other, busy := talking[ev.Agents[0]]; busy {
						fail("transfer rings %s, who is talking on %s", ev.Agents[0], other)
					}
					s.target = ev.Agents[0]
					talking[s.target] = ev.CallID
					if !tr.Consult {
						delete(talking, s.holder)
						s.holder = ""
					}
					st.transferRings++
				}
				continue
			}
			for j, a := range ev.Agents {
				if !slices.Contains(agents, a) || slices.Contains(ev.Agents[:j], a) {
					fail("rings %v: not the configured agents %v", ev.Agents, agents)
				}
				if _, busy := talking[a]; busy {
					fail("rings agent %s who is talking on %s", a, talking[a])
				}
			}
			switch {
			case len(ev.Agents) == 0:
				st.rangOut++
			case s.ringing != nil:
				st.movedOn++
			}
			s.ringing = ev.Agents
		case screenpop.EventAnswered:
			if s.answered || s.ringing == nil {
				fail("answered twice or without ringing")
			}
			if !slices.Contains(s.ringing, ev.Agent) {
				fail("answered by %s, who was not ringing (%v)", ev.Agent, s.ringing)
			}
			if other, busy := talking[ev.Agent]; busy {
				fail("agent %s answers while talking on %s", ev.Agent, other)
			}
			s.answered, s.holder = true, ev.Agent
			talking[ev.Agent] = ev.CallID
		case screenpop.EventTransferred:
			if !s.answered {
				fail("transferred before it was answered")
			}
			if !slices.Contains(agents, ev.Agent) || ev.Agent == s.holder || ev.Agent != s.target {
				fail("transferred to %q (holder %s, ringing %s)", ev.Agent, s.holder, s.target)
			}
			delete(talking, s.holder)
			s.holder, s.target = ev.Agent, ""
			talking[ev.Agent] = ev.CallID
			st.transfers++
		case screenpop.EventEnded:
			s.ended = true
			st.outcomes[ev.Outcome]++
			switch ev.Outcome {
			case screenpop.OutcomeAnswered:
				if !s.answered || ev.Agent != s.holder {
					fail("ended answered, but answered=%v agent %q holder %q", s.answered, ev.Agent, s.holder)
				}
				delete(talking, s.holder)
				delete(talking, s.target)
			case screenpop.OutcomeAbandoned, screenpop.OutcomeNoAnswer, screenpop.OutcomeBusy:
				if s.answered || ev.Agent != "" {
					fail("ended %s after an answer (agent %q)", ev.Outcome, ev.Agent)
				}
			default:
				fail("outcome %q", ev.Outcome)
			}
		default:
			fail("unknown kind")
		}
	}
	for id, s := range calls {
		if !s.ended {
			t.Errorf("call %s never ended", id)
		}
	}
	if len(talking) != 0 {
		t.Errorf("agents still talking after Run returned: %v", talking)
	}
	return st
}

func TestLifecyclesAreValid(t *testing.T) {
	// A busy call center: a call every 10 s, 25 s of talk on average, three
	// agents. Every path is taken many times in 600 calls.
	g := newFake(t, Config{Interval: 10 * time.Second, Agents: agents, Ring: 6 * time.Second, Talk: 25 * time.Second, Seed: 42})
	events := runCalls(t, g, 600)
	st := checkLifecycles(t, events, agents)
	if st.calls != 600 {
		t.Errorf("%d calls, want 600", st.calls)
	}
	for _, o := range []screenpop.Outcome{screenpop.OutcomeAnswered, screenpop.OutcomeAbandoned, screenpop.OutcomeNoAnswer, screenpop.OutcomeBusy} {
		if st.outcomes[o] == 0 {
			t.Errorf("no call ended %s in 600 calls: %v", o, st.outcomes)
		}
	}
	if st.outcomes[screenpop.OutcomeAnswered] < st.calls/3 {
		t.Errorf("only %d of %d calls answered", st.outcomes[screenpop.OutcomeAnswered], st.calls)
	}
	if st.transfers == 0 || st.transferRings <= st.transfers || st.movedOn == 0 || st.withheld == 0 || st.rangOut == 0 {
		t.Errorf("transfers %d (rung %d), queue moves %d, withheld callers %d, rang out %d: each should happen (some transfers untaken)",
			st.transfers, st.transferRings, st.movedOn, st.withheld, st.rangOut)
	}
	// Call IDs count up.
	if events[0].CallID != "demo-1" {
		t.Errorf("first call %q, want demo-1", events[0].CallID)
	}
}

func TestSingleAgent(t *testing.T) {
	g := newFake(t, Config{Interval: 30 * time.Second, Agents: []string{"2001"}, Seed: 3})
	st := checkLifecycles(t, runCalls(t, g, 200), []string{"2001"})
	if st.transfers != 0 || st.movedOn != 0 {
		t.Errorf("with one agent: %d transfers, %d queue moves", st.transfers, st.movedOn)
	}
}

func TestSameSeedSameCalls(t *testing.T) {
	cfg := Config{Interval: 5 * time.Second, Agents: agents, Seed: 7}
	a := runCalls(t, newFake(t, cfg), 100)
	b := runCalls(t, newFake(t, cfg), 100)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two generators with the same seed made different calls")
	}
	cfg.Seed = 8
	c := runCalls(t, newFake(t, cfg), 100)
	if reflect.DeepEqual(a, c) {
		t.Fatal("seeds 7 and 8 made the same calls")
	}
}

// Cancelling ends every call in flight before Run returns: talking calls as
// answered, ringing ones as abandoned.
func TestCancelEndsCallsInFlight(t *testing.T) {
	// Calls that ring for a minute and talk for an hour are all still in
	// flight when the fifth call starts.
	g := newFake(t, Config{Interval: 10 * time.Second, Agents: []string{"1", "2", "3", "4", "5", "6"}, Ring: time.Minute, Talk: time.Hour, Seed: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var events []screenpop.CallEvent
	endedAfterCancel := 0
	err := g.Run(ctx, screenpop.CallSinkFunc(func(ev screenpop.CallEvent) {
		events = append(events, ev)
		if ctx.Err() != nil {
			if ev.Kind != screenpop.EventEnded {
				t.Errorf("%s after cancel: %v", ev.Kind, ev)
			}
			endedAfterCancel++
		}
		if ev.CallID == "demo-12" {
			cancel()
		}
	}))
	if err != nil {
		t.Fatalf("Run returned %v, want nil", err)
	}
	checkLifecycles(t, events, []string{"1", "2", "3", "4", "5", "6"})
	if endedAfterCancel == 0 {
		t.Fatal("no call was in flight at cancel: the test proves nothing")
	}
}

// The real clock: short durations, stop from another goroutine.
func TestRunOnRealClock(t *testing.T) {
	g, err := New(Config{Interval: time.Millisecond, Agents: agents, Ring: time.Millisecond, Talk: 2 * time.Millisecond, Seed: 5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		events []screenpop.CallEvent
		ended  int
	)
	enough := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- g.Run(ctx, screenpop.CallSinkFunc(func(ev screenpop.CallEvent) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, ev)
			if ev.Kind == screenpop.EventEnded {
				if ended++; ended == 20 {
					close(enough)
				}
			}
		}))
	}()
	<-enough
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	checkLifecycles(t, events, agents)
}

// blockingClock waits for real, and says when the generator is waiting.
type blockingClock struct{ waiting chan struct{} }

func (c *blockingClock) Now() time.Time { return time.Now() }
func (c *blockingClock) Wait(ctx context.Context, t time.Time) bool {
	select {
	case c.waiting <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return false
}

func TestOneRunAtATime(t *testing.T) {
	g, err := New(Config{Agents: agents, Seed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := &blockingClock{waiting: make(chan struct{}, 1)}
	g.clock = clock
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	sink := screenpop.CallSinkFunc(func(screenpop.CallEvent) {})
	go func() { done <- g.Run(ctx, sink) }()
	<-clock.waiting
	if err := g.Run(context.Background(), sink); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run: %v, want already running", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("first Run: %v", err)
	}
	// Once stopped it can run again, and call numbers carry on.
	g.clock = &fakeClock{now: time.Now()}
	events := runCalls(t, g, 1)
	if events[0].CallID != "demo-1" {
		t.Errorf("first call of the second run: %s", events[0].CallID)
	}
	events = runCalls(t, g, 1)
	if events[0].CallID != "demo-2" {
		t.Errorf("a restarted generator reuses call IDs: %s, want demo-2", events[0].CallID)
	}
}

func TestNewValidates(t *testing.T) {
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{}, "agents is required"},
		{Config{Agents: []string{"1", "1"}}, `agent "1" is listed twice`},
		{Config{Agents: []string{""}}, "agents[0] is empty"},
		{Config{Agents: agents, Interval: -time.Second}, "must not be negative"},
		{Config{Agents: agents, Callers: []Caller{}}, "callers is empty"},
		{Config{Agents: agents, Callers: []Caller{{Name: "No Number"}}}, "callers[0]: number is required"},
	}
	for _, c := range cases {
		if _, err := New(c.cfg, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.cfg, err, c.want)
		}
	}
	g, err := New(Config{Agents: agents}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.cfg.Interval != DefaultInterval || g.cfg.Ring != DefaultRing || g.cfg.Talk != DefaultTalk || len(g.cfg.Callers) == 0 {
		t.Errorf("defaults not applied: %+v", g.cfg)
	}
}

// A configured withheld caller's number never leaves the generator.
func TestWithheldNumberDropped(t *testing.T) {
	g := newFake(t, Config{Interval: time.Minute, Agents: agents, Seed: 9,
		Callers: []Caller{{Number: "+4930123456", Name: "Hidden", Withheld: true}}})
	for _, ev := range runCalls(t, g, 20) {
		if ev.Caller.Number != "" || !ev.Caller.Withheld {
			t.Fatalf("withheld caller sent as %+v", ev.Caller)
		}
	}
}

// DefaultCallers must fit configs/demo/directory.json: normalised with the
// demo's default region DE, known numbers resolve to one customer, the
// shared switchboard to two, and there are unknown and withheld callers.
func TestDefaultCallersMatchDemoDirectory(t *testing.T) {
	data, err := os.ReadFile("../../configs/demo/directory.json")
	if err != nil {
		t.Fatal(err)
	}
	var entries []struct {
		ID    string `json:"id"`
		Phone string `json:"phone"`
	}
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatal(err)
	}
	byPhone := map[string]map[string]bool{}
	for _, e := range entries {
		if byPhone[e.Phone] == nil {
			byPhone[e.Phone] = map[string]bool{}
		}
		byPhone[e.Phone][e.ID] = true
	}
	var known, ambiguous, unknown, withheld int
	formats := map[string]bool{}
	for _, c := range DefaultCallers() {
		if c.Withheld {
			withheld++
			if c.Number != "" {
				t.Errorf("withheld default caller has a number")
			}
			continue
		}
		n, err := phonenumbers.Parse(c.Number, "DE")
		if err != nil || !phonenumbers.IsValidNumber(n) {
			t.Errorf("%q is not a valid number (err %v)", c.Number, err)
			continue
		}
		e164 := phonenumbers.Format(n, phonenumbers.E164)
		switch len(byPhone[e164]) {
		case 0:
			unknown++
		case 1:
			known++
		default:
			ambiguous++
		}
		switch {
		case strings.HasPrefix(c.Number, "+"):
			formats["e164-ish"] = true
		case strings.HasPrefix(c.Number, "00"):
			formats["00 prefix"] = true
		default:
			formats["national"] = true
		}
	}
	if known < 10 || ambiguous < 1 || unknown < 1 || withheld < 1 {
		t.Errorf("known %d, ambiguous %d, unknown %d, withheld %d", known, ambiguous, unknown, withheld)
	}
	if len(formats) != 3 {
		t.Errorf("formats %v: want +, 00 and national numbers", formats)
	}
}
