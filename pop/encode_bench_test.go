package pop

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop/popstate"
)

// BenchmarkEncodeRing measures encoding the messages of a ring as the
// dispatcher does (Encode: popstate.Encoder) against json.Marshal of the
// same message, which it replaced and whose bytes it gives: the pop of
// the agent page test's card (about 3 KB), the pop of a card answered
// from the cache (its numbers json.Number, as the cache decodes them;
// about 2 KB), a section, an ended. audiences is one pop cut for two
// sets of roles (one sees credit), encoded one after the other for one
// input, as the dispatcher does: the Encoder writes the sections both
// get once.
//
//	go test -run '^$' -bench EncodeRing -benchmem ./pop/
func BenchmarkEncodeRing(b *testing.B) {
	at := time.Date(2026, 3, 4, 10, 15, 2, 123456789, time.UTC)
	rich := richCard(screenpop.CallEvent{CallID: "pbx/1700000000.42", Caller: screenpop.Caller{Number: "030 123456", Name: "ACME LOGISTICS"}, DID: "100"})
	agg, _ := hitAggregator(b, false)
	cached := agg.Build(context.Background(), screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/1700000000.43", Caller: screenpop.Caller{Number: "+4930123456"}, DID: "+493090182000", At: at})
	for i := range cached.Sections {
		cached.Sections[i].Roles = nil
	}
	pop := func(card screenpop.Card) Message {
		return Message{Type: TypePop, CallID: card.CallID, At: at, Data: PopData{State: StateRinging, Card: card}}
	}
	// Two audiences of one pop: everything, and everything but credit.
	all := cached
	noCredit := cached
	noCredit.Sections = cached.Sections[:2]
	audiences := []Message{pop(all), pop(noCredit)}

	for _, c := range []struct {
		name string
		msgs []Message
	}{
		{"pop-rich", []Message{pop(rich)}},
		{"pop-cached", []Message{pop(cached)}},
		{"audiences", audiences},
		{"section", []Message{{Type: TypeSection, CallID: "c1", At: at, Data: SectionData{Section: cached.Sections[1]}}}},
		{"ended", []Message{{Type: TypeEnded, CallID: "c1", At: at, Data: EndedData{Outcome: screenpop.OutcomeAnswered, Agent: &AgentRef{ID: "1001", Name: "Alice"}}}}},
	} {
		var size int
		for _, m := range c.msgs {
			raw, err := json.Marshal(m)
			if err != nil {
				b.Fatal(err)
			}
			size += len(raw)
		}
		b.Run(c.name+"/encoder", func(b *testing.B) {
			var enc popstate.Encoder
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				for _, m := range c.msgs {
					if _, err := encodeWith(&enc, m); err != nil {
						b.Fatal(err)
					}
				}
				enc.Reset()
			}
			reportCPU(b, cpu)
		})
		b.Run(c.name+"/Encode", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				for _, m := range c.msgs {
					if _, err := Encode(m); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportCPU(b, cpu)
		})
		b.Run(c.name+"/json.Marshal", func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				for _, m := range c.msgs {
					if _, err := json.Marshal(m); err != nil {
						b.Fatal(err)
					}
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// reportCPU reports the process's CPU time per op since cpu (processCPU):
// on a machine shared with other work, what an op cost rather than how
// long it waited for a core.
func reportCPU(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64((processCPU(b)-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}
