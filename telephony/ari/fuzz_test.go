package ari

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	arilib "github.com/CyCoreSystems/ari/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	screenpop "github.com/screenpop/screenpop"
)

// errorLog is a slog handler that keeps the messages logged at Error.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) Enabled(_ context.Context, level slog.Level) bool { return level >= slog.LevelError }
func (l *errorLog) WithAttrs([]slog.Attr) slog.Handler               { return l }
func (l *errorLog) WithGroup(string) slog.Handler                    { return l }
func (l *errorLog) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool {
		msg += " " + a.String()
		return true
	})
	l.msgs = append(l.msgs, msg)
	return nil
}

func (l *errorLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.msgs
	l.msgs = nil
	return out
}

// frameSeeds are frames that are not ARI events, or not ones the call
// model can use as they are; testdata/fuzz/FuzzHandleFrame holds more.
var frameSeeds = []string{
	``, `{`, `null`, `[]`, `"ChannelCreated"`, `{}`, `{"type":""}`, `{"type":7}`,
	`{"type":"ChannelTalkingStarted","channel":{"id":"1.1"}}`,
	`{"type":"ChannelCreated"}`,
	`{"type":"ChannelCreated","channel":5}`,
	`{"type":"ChannelCreated","channel":{"id":"","name":"","state":"Ring"}}`,
	`{"type":"ChannelCreated","channel":{"id":"9.1","name":"PJSIP/carrier-1","state":"Ring","caller":{"number":"+4930123456"},"dialplan":{"context":"from-carrier","exten":"100"}}}`,
	`{"type":"ChannelDestroyed","channel":{"id":"9.1"},"cause":16}`,
	`{"type":"Dial","peer":{"id":"9.2","name":"PJSIP/1001-2"},"caller":{"id":"9.1"},"dialstatus":""}`,
	`{"type":"Dial","peer":null,"dialstatus":"ANSWER"}`,
	`{"type":"ChannelStateChange","channel":{"id":"9.2","name":"PJSIP/1001-2","state":"Up"}}`,
	`{"type":"BridgeBlindTransfer","channel":{"id":"9.2"},"bridge":null,"result":"Success"}`,
	`{"type":"BridgeAttendedTransfer","transferer_first_leg":{"id":"9.2"},"result":"Success"}`,
	`{"type":"ChannelVarset","variable":"SCREENPOP_PRES","value":"prohib","channel":{"id":"9.1"}}`,
	`{"type":"ApplicationReplaced","application":"screenpop"}`,
	`{"type":"ChannelCreated","timestamp":"not a time","channel":{"id":"9.3","creationtime":"yesterday"}}`,
}

// FuzzHandleFrame hands arbitrary frames to the ARI source's own path for
// every frame Asterisk sends (Source.handle: decode, classify, count,
// apply to the call model, emit), one after the other on one source, as
// a session does. No frame may make it panic or make the call model fail
// (that is logged at Error, and costs the event); each frame is counted
// exactly once, as an event of its type, unknown or malformed; only an
// ApplicationReplaced ends the session; and every call event emitted is
// one the pipeline can use. Seeds: every frame of the recordings, and
// frameSeeds.
func FuzzHandleFrame(f *testing.F) {
	for _, name := range []string{"answered.jsonl", "abandoned.jsonl"} {
		for _, l := range readRecording(f, name) {
			f.Add(l)
		}
	}
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	errs := &errorLog{}
	src, err := New(Config{
		URL: "http://127.0.0.1:1", User: "screenpop", Password: "secret", App: "screenpop",
		AgentOf: agentOf, InboundContexts: []string{"from-carrier"},
		// The recordings do not report presentation: shown, their callers'
		// numbers go through the call model too.
		OnUnknownPresentation: PresentationShow,
	}, slog.New(errs), prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	counted := func(t *testing.T) float64 {
		n := counterValue(t, src.m.unknown) + counterValue(t, src.m.malformed)
		for _, c := range src.m.eventsByT {
			n += counterValue(t, c)
		}
		return n
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		before := counted(t)
		sink := newCollector()
		err := src.handle(frame, sink)
		typ, _ := eventType(frame)
		switch {
		case errors.Is(err, errReplaced) && typ != arilib.Events.ApplicationReplaced:
			t.Errorf("a %q frame ended the session", typ)
		case err != nil && !errors.Is(err, errReplaced):
			t.Errorf("handle: %v", err)
		}
		for _, msg := range errs.take() {
			if strings.HasPrefix(msg, "ari: the call model failed") {
				t.Fatalf("%s\nframe: %q", msg, frame)
			}
		}
		if n := counted(t) - before; n != 1 {
			t.Errorf("the frame was counted %v times, want once: %q", n, frame)
		}
		for _, ev := range sink.snapshot() {
			checkCallEvent(t, ev)
		}
	})
}

// checkCallEvent is what the pipeline may rely on in every call event the
// ARI source emits.
func checkCallEvent(t *testing.T, ev screenpop.CallEvent) {
	t.Helper()
	switch {
	case ev.CallID == "":
		t.Errorf("call event without call id: %+v", ev)
	case ev.Source != DefaultName:
		t.Errorf("source %q", ev.Source)
	case ev.Caller.Withheld && ev.Caller.Number != "":
		t.Errorf("withheld caller with number %q", ev.Caller.Number)
	case ev.Kind == screenpop.EventEnded && ev.Outcome == "":
		t.Errorf("ended without outcome: %+v", ev)
	case ev.Kind != screenpop.EventEnded && ev.Outcome != "":
		t.Errorf("%s with outcome %q", ev.Kind, ev.Outcome)
	case (ev.Kind == screenpop.EventAnswered || ev.Kind == screenpop.EventTransferred) && ev.Agent == "":
		t.Errorf("%s without agent: %+v", ev.Kind, ev)
	}
	switch ev.Kind {
	case screenpop.EventRinging, screenpop.EventAnswered, screenpop.EventTransferred, screenpop.EventEnded:
	default:
		t.Errorf("kind %q", ev.Kind)
	}
	for _, a := range ev.Agents {
		if a == "" {
			t.Errorf("empty agent in the ringing set: %+v", ev)
		}
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
