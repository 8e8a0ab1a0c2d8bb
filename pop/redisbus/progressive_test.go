package redisbus

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/pop"
)

// stepBuilder builds a card in steps, as the aggregator does: the card
// with two sections loading, then each section, then the earlier calls.
type stepBuilder struct{ cardBuilder }

func (stepBuilder) BuildProgressive(_ context.Context, ev screenpop.CallEvent, _ string, update func(screenpop.CardUpdate)) screenpop.Card {
	loading := screenpop.Card{CallID: ev.CallID, Caller: ev.Caller, HistoryLoading: true, Sections: []screenpop.CardSection{
		{Name: "accounting", Status: screenpop.SectionLoading}, {Name: "sales", Status: screenpop.SectionLoading}}}
	update(screenpop.CardUpdate{Card: &loading})
	done := screenpop.Card{CallID: ev.CallID, Caller: ev.Caller}
	for _, name := range []string{"accounting", "sales"} {
		s := screenpop.CardSection{Name: name, Status: screenpop.SectionOK}
		update(screenpop.CardUpdate{Section: &s})
		done.Sections = append(done.Sections, s)
	}
	update(screenpop.CardUpdate{History: &screenpop.EarlierCalls{}})
	return done
}

// TestProgressiveStepsOnceFromTwoDaemons: two daemons watch the same PBX
// and build the same card in steps; the agent gets each step once — the
// pop, each section, the earlier calls —, whichever daemon sent it first.
func TestProgressiveStepsOnceFromTwoDaemons(t *testing.T) {
	client := sharedRedis(t)
	prefix := testPrefix(t, client)
	steps := func(c *pop.DispatcherConfig) { c.Builder = stepBuilder{} }
	a, b := startDaemonConfig(t, "127.0.0.1:6379", prefix, steps), startDaemonConfig(t, "127.0.0.1:6379", prefix, steps)
	for _, d := range []*daemon{a, b} {
		waitFor(t, "bus up", func() bool { return d.bus.Ready() == nil })
	}
	ws := browser(t, a, "2101", "")
	expect(t, ws, pop.TypeSnapshot, "")
	ev := ring("call-p", "2101")
	a.disp.HandleCall(ev)
	b.disp.HandleCall(ev)
	// A marker seen by daemon a only, once both daemons are done with the
	// call: any copy of a step of call-p would be read before it.
	waitFor(t, "both daemons' builds appended", func() bool {
		return counter(a.bus.metrics.delivered.WithLabelValues(pathRedis))+counter(b.bus.metrics.delivered.WithLabelValues(pathRedis))+
			counter(a.bus.metrics.deduplicated)+counter(b.bus.metrics.deduplicated) >= 10
	})
	a.disp.HandleCall(ring("marker", "2101"))
	got := map[string]int{}
	for {
		m := next(t, ws)
		if m.CallID == "marker" {
			break
		}
		key := m.Type
		if m.Type == pop.TypeSection {
			var d pop.SectionData
			if err := json.Unmarshal(m.Data, &d); err != nil {
				t.Fatal(err)
			}
			key += ":" + d.Section.Name
		}
		got[key]++
	}
	for _, k := range []string{pop.TypePop, pop.TypeSection + ":accounting", pop.TypeSection + ":sales", pop.TypeHistory} {
		if got[k] != 1 {
			t.Errorf("%s came %d times, want once (all: %v)", k, got[k], got)
		}
	}
	// The complete card is not named by its ordinal (a refresh on one
	// daemon would share it): each daemon's copy may come.
	if got[pop.TypeCard] < 1 || got[pop.TypeCard] > 2 {
		t.Errorf("complete card came %d times (all: %v)", got[pop.TypeCard], got)
	}
}
