package popstate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

// randomSections are what a random card may hold: some of them, for
// agents of different roles (testRoles).
var randomSections = []screenpop.CardSection{
	{Name: "open"},
	{Name: "credit", Roles: []string{"credit"}},
	{Name: "audit", Roles: []string{"audit", "supervisor"}},
}

// TestRandomInputs throws long random sequences of inputs at the machine
// (calls rung, answered, transferred, ended, cards built in any order,
// with sections restricted to roles, picks, refreshes, sweeps) and checks
// the invariants after each one.
func TestRandomInputs(t *testing.T) {
	agents := []string{"a1", "a2", "a3", "a4", "a5"}
	for seed := range uint64(20) {
		r := rand.New(rand.NewPCG(seed, 42))
		m := testMachine()
		inv := newInvariants()
		var pending []Build
		now := scenarioStart
		some := func() []string {
			var out []string
			for _, a := range agents {
				if r.IntN(3) == 0 {
					out = append(out, a)
				}
			}
			return out
		}
		for step := range 3000 {
			where := fmt.Sprintf("seed %d step %d", seed, step)
			now = now.Add(time.Duration(r.IntN(5000)) * time.Millisecond)
			id := fmt.Sprintf("c%d", r.IntN(6))
			ev := screenpop.CallEvent{CallID: id, At: now, Caller: screenpop.Caller{Number: "+4930123456"}}
			var out Output
			switch k := r.IntN(20); {
			case k < 6:
				ev.Kind, ev.Agents, ev.RangOut = screenpop.EventRinging, some(), r.IntN(4) == 0
				if r.IntN(4) == 0 {
					ev.Transfer = &screenpop.Transfer{From: agents[r.IntN(len(agents))], Consult: r.IntN(2) == 0}
				}
				out = m.Apply(ev, now)
			case k < 8:
				ev.Kind, ev.Agent = screenpop.EventAnswered, agents[r.IntN(len(agents))]
				out = m.Apply(ev, now)
			case k < 9:
				ev.Kind, ev.Agent = screenpop.EventTransferred, agents[r.IntN(len(agents))]
				out = m.Apply(ev, now)
			case k < 11:
				ev.Kind, ev.Outcome = screenpop.EventEnded, screenpop.Outcomes[r.IntN(len(screenpop.Outcomes))]
				out = m.Apply(ev, now)
			case k < 16 && len(pending) > 0:
				i := r.IntN(len(pending))
				b := pending[i]
				card := testCard(b)
				for _, s := range randomSections {
					if r.IntN(2) == 0 {
						if r.IntN(2) == 0 {
							s.Status = screenpop.SectionLoading
						}
						card.Sections = append(card.Sections, s)
						inv.sectionRoles[b.CallID+" "+s.Name] = s.Roles
					}
				}
				if r.IntN(3) == 0 {
					card.Resolution, card.Customer = screenpop.ResolvedAmbiguous, nil
					card.Candidates = []screenpop.Customer{{ID: "k1"}, {ID: "k2"}}
				}
				// A step of the build (which goes on), in any order, or its
				// card.
				switch r.IntN(6) {
				case 0:
					card.HistoryLoading = true
					out = m.CardProgress(b, screenpop.CardUpdate{Card: &card}, now)
				case 1:
					s := randomSections[r.IntN(len(randomSections))]
					inv.sectionRoles[b.CallID+" "+s.Name] = s.Roles
					s.Status = screenpop.SectionOK
					out = m.CardProgress(b, screenpop.CardUpdate{Section: &s}, now)
				case 2:
					out = m.CardProgress(b, screenpop.CardUpdate{History: &screenpop.EarlierCalls{Calls: []screenpop.PastCall{{CallID: "old"}}}}, now)
				default:
					pending = slices.Delete(pending, i, i+1)
					for j := range card.Sections {
						card.Sections[j].Status = screenpop.SectionOK
					}
					out = m.CardBuilt(b, card, now)
				}
			case k < 17:
				out, _ = m.Select(AgentRef{ID: agents[r.IntN(len(agents))]}, id, []string{"k1", "k2", "k3"}[r.IntN(3)], now)
			case k < 18:
				out = m.Refresh("+4930123456", "", now)
			default:
				now = now.Add(time.Duration(r.IntN(6)) * time.Hour)
				out = m.Sweep(now)
			}
			for _, e := range out.Effects {
				if b, ok := e.(Build); ok {
					pending = append(pending, b)
				}
			}
			inv.check(t, where, m, out)
			if t.Failed() {
				t.FailNow()
			}
		}
	}
}
