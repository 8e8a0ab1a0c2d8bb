package ari

import (
	"bufio"
	"bytes"
	"os"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/telephony"
)

// countingSink counts the call events it gets.
type countingSink struct{ n int }

func (c *countingSink) HandleCall(screenpop.CallEvent) { c.n++ }

// readRecording reads a recording of testdata (copies of
// ../shared/asterisk-events), one frame a line: recording for benchmarks
// and fuzz targets.
func readRecording(tb testing.TB, name string) [][]byte {
	tb.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
			out = append(out, slices.Clone(line))
		}
	}
	return out
}

// BenchmarkHandleRecordedCall measures the ARI source's own path for each
// frame of a real answered call (118 events, ../shared/asterisk-events):
// decode, count, apply to the call model, emit, as the session loop does
// for every frame Asterisk sends. Calls are copies of the recording with
// their own channel IDs, so that each is a new call to the model. One op
// is one whole call; ns/event is per frame. The endpoints map to agents
// as in the daemon: through a telephony.AgentMap, whose agent pattern is
// a regular expression.
//
//	go test -run '^$' -bench HandleRecordedCall -benchmem ./telephony/ari/
func BenchmarkHandleRecordedCall(b *testing.B) {
	lines := readRecording(b, "answered.jsonl")
	copier := newCallCopier(lines)
	calls := make([][][]byte, 256)
	for i := range calls {
		calls[i] = copier.copy(i, "+4930123456")
	}
	agents, err := telephony.NewAgentMap(telephony.AgentMapConfig{Patterns: []string{"PJSIP/{agent}"}})
	if err != nil {
		b.Fatal(err)
	}
	src, err := New(Config{
		URL: "http://127.0.0.1:1", User: "screenpop", Password: "secret", App: "screenpop",
		AgentOf: agents.AgentOf, InboundContexts: []string{"from-carrier"}, OnUnknownPresentation: PresentationShow,
	}, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	sink := &countingSink{}
	// The first call says how many call events one call gives; every
	// later one must give as many, or the copies are not new calls.
	for _, f := range calls[0] {
		if err := src.handle(f, sink); err != nil {
			b.Fatal(err)
		}
	}
	perCall := sink.n
	if perCall == 0 {
		b.Fatal("the recording gave no call event")
	}
	sink.n = 0
	b.ReportAllocs()
	i := 1
	for b.Loop() {
		for _, f := range calls[i%len(calls)] {
			if err := src.handle(f, sink); err != nil {
				b.Fatal(err)
			}
		}
		i++
	}
	if sink.n != perCall*b.N {
		b.Fatalf("%d call events from %d calls, want %d each", sink.n, b.N, perCall)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/event")
}
