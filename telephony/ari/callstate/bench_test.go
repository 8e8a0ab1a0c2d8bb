package callstate

import (
	"bufio"
	"bytes"
	"os"
	"testing"

	ari "github.com/CyCoreSystems/ari/v5"

	"github.com/screenpop/screenpop/telephony"
)

// BenchmarkRecordedCall measures the call model on a real recording: decode
// every event with ari.DecodeEvent and apply it (the ARI source decodes
// with its own decoder, which gives the same events faster:
// BenchmarkHandleRecordedCall in telephony/ari). One op is one whole answered call (118 events); ns/event is
// the figure to compare with Asterisk's event rate.
func BenchmarkRecordedCall(b *testing.B) {
	data, err := os.ReadFile("../testdata/answered.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	agents, err := telephony.NewAgentMap(telephony.AgentMapConfig{Patterns: []string{"PJSIP/{agent}"}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	emitted := 0
	for b.Loop() {
		tr := New(Config{AgentOf: agents.AgentOf, InboundContexts: []string{"from-carrier"}})
		for _, l := range lines {
			ev, err := ari.DecodeEvent(l)
			if err != nil {
				continue
			}
			emitted += len(tr.Apply(ev))
		}
	}
	if emitted == 0 {
		b.Fatal("the recording produced no call events")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/event")
}
