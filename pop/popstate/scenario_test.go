package popstate

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

	screenpop "github.com/screenpop/screenpop"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from what the machine decides (review the diff!)")

// scenarioStart is the time of every scenario's first line.
var scenarioStart = time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)

// testNames are the display names the machine knows.
var testNames = map[string]string{"bob": "Bob Builder", "carol": "Carol"}

// testRoles are the agents' roles, which decide the card sections they
// see; every other agent has none.
var testRoles = map[string][]string{
	"alice": {"credit"}, "carol": {"supervisor"}, "dave": {"agent", "credit"},
	"a1": {"credit"}, "a2": {"audit", "credit"}, "a3": {"supervisor"},
}

func testMachine() *Machine {
	return New(Config{
		Names:      func(id string) string { return testNames[id] },
		Roles:      func(id string) []string { return testRoles[id] },
		StaleAfter: 4 * time.Hour,
	})
}

// input is one line of a scenario (testdata/*.jsonl): exactly one of its
// fields besides T.
type input struct {
	// T is the line's time in seconds since the scenario began; absent:
	// the previous line's.
	T       *float64 `json:"t"`
	Comment string   `json:"#"`
	// Event is a call event; its At defaults to the line's time and its
	// caller to +4930123456.
	Event *screenpop.CallEvent `json:"event"`
	// NoCaller keeps Event's caller empty: a PBX that did not name one.
	NoCaller bool `json:"no_caller"`
	// Built completes the oldest build still running for that call (of
	// Purpose, when given), with Card, or else the card the test builder
	// makes.
	Built   string          `json:"built"`
	Purpose Purpose         `json:"purpose"`
	Card    *screenpop.Card `json:"card"`
	// Progress is a step of the oldest build still running for that call
	// (of Purpose, when given), which goes on: with Card, the card once the
	// caller is resolved (else the test builder's, every section given in
	// Sections loading); with Section, a section settled; with History,
	// the earlier calls read.
	Progress string                 `json:"progress"`
	Sections []string               `json:"sections"`
	Section  *screenpop.CardSection `json:"section"`
	History  *[]screenpop.PastCall  `json:"history"`
	// Select is an agent's pick among the candidates.
	Select *struct {
		Agent, Call, Customer string
	} `json:"select"`
	// Refresh says the data of a number or customer changed.
	Refresh *struct {
		Phone, Customer string
	} `json:"refresh"`
	Sweep bool `json:"sweep"`
	// Note is an agent writing a note; when the machine allows it, the
	// recorder stores it at once.
	Note *struct {
		Agent, Call, Text, Ref string
	} `json:"note"`
	// WrapUp is an agent choosing the disposition of a call; when the
	// machine allows it, the history keeps it at once.
	WrapUp *struct {
		Agent, Call, Code, Ref string
	} `json:"wrapup"`
	// Snapshot lists what a connecting page of that agent would show.
	Snapshot string `json:"snapshot"`
}

// run replays one scenario and returns the rendered story and the outputs.
func run(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := testMachine()
	inv := newInvariants()
	pending := map[string][]Build{} // running builds per call, oldest first
	built := map[string]int{}       // cards built per call, to tell them apart
	now := scenarioStart
	var b strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		where := fmt.Sprintf("%s:%d", path, n)
		var in input
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if in.T != nil {
			now = scenarioStart.Add(time.Duration(*in.T * float64(time.Second)))
		}
		stamp := fmt.Sprintf("%6s ", "+"+now.Sub(scenarioStart).String())
		var out Output
		switch {
		case in.Comment != "":
			fmt.Fprintf(&b, "# %s\n", in.Comment)
			continue
		case in.Event != nil:
			ev := *in.Event
			if ev.At.IsZero() {
				ev.At = now
			}
			if ev.Caller == (screenpop.Caller{}) && !in.NoCaller {
				ev.Caller.Number = "+4930123456"
			}
			b.WriteString(stamp + renderEvent(ev) + "\n")
			out = m.Apply(ev, now)
		case in.Built != "":
			q := pending[in.Built]
			i := slices.IndexFunc(q, func(b Build) bool { return in.Purpose == "" || b.Purpose == in.Purpose })
			if i < 0 {
				t.Fatalf("%s: no build of %s is running", where, in.Built)
			}
			bd := q[i]
			pending[in.Built] = slices.Delete(q, i, i+1)
			built[in.Built]++
			card := testCard(bd)
			if in.Card != nil {
				card = *in.Card
			}
			card.TookMS = int64(built[in.Built]) // tells the cards apart in the story
			for _, s := range card.Sections {
				inv.sectionRoles[bd.CallID+" "+s.Name] = s.Roles
			}
			fmt.Fprintf(&b, "%sbuilt %s %s -> %s\n", stamp, bd.CallID, renderBuild(bd), renderCard(card))
			out = m.CardBuilt(bd, card, now)
		case in.Progress != "":
			q := pending[in.Progress]
			i := slices.IndexFunc(q, func(b Build) bool { return in.Purpose == "" || b.Purpose == in.Purpose })
			if i < 0 {
				t.Fatalf("%s: no build of %s is running", where, in.Progress)
			}
			bd := q[i]
			var u screenpop.CardUpdate
			switch {
			case in.Section != nil:
				u.Section = in.Section
				inv.sectionRoles[bd.CallID+" "+in.Section.Name] = in.Section.Roles
				fmt.Fprintf(&b, "%sprogress %s %s -> section %s %s\n", stamp, bd.CallID, renderBuild(bd), in.Section.Name, in.Section.Status)
			case in.History != nil:
				u.History = &screenpop.EarlierCalls{Calls: *in.History}
				fmt.Fprintf(&b, "%sprogress %s %s -> history of %d calls\n", stamp, bd.CallID, renderBuild(bd), len(*in.History))
			default:
				card := testCard(bd)
				if in.Card != nil {
					card = *in.Card
				}
				for _, name := range in.Sections {
					card.Sections = append(card.Sections, screenpop.CardSection{Name: name, Status: screenpop.SectionLoading})
				}
				card.HistoryLoading = true
				card.TookMS = 0 // sent early: not one of the cards built
				for _, s := range card.Sections {
					inv.sectionRoles[bd.CallID+" "+s.Name] = s.Roles
				}
				u.Card = &card
				fmt.Fprintf(&b, "%sprogress %s %s -> %s\n", stamp, bd.CallID, renderBuild(bd), renderCard(card))
			}
			out = m.CardProgress(bd, u, now)
		case in.Select != nil:
			s := in.Select
			fmt.Fprintf(&b, "%sselect %s %s by %s\n", stamp, s.Call, s.Customer, s.Agent)
			var err error
			out, err = m.Select(AgentRef{ID: s.Agent, Name: testNames[s.Agent]}, s.Call, s.Customer, now)
			if err != nil {
				fmt.Fprintf(&b, "    refused %v\n", err)
			}
		case in.Refresh != nil:
			fmt.Fprintf(&b, "%srefresh phone=%s customer=%s\n", stamp, in.Refresh.Phone, in.Refresh.Customer)
			out = m.Refresh(in.Refresh.Phone, in.Refresh.Customer, now)
		case in.Sweep:
			b.WriteString(stamp + "sweep\n")
			out = m.Sweep(now)
		case in.Note != nil:
			nt := in.Note
			fmt.Fprintf(&b, "%snote %s by %s %q\n", stamp, nt.Call, nt.Agent, nt.Text)
			phone, text, err := m.Note(nt.Agent, nt.Call, nt.Text)
			if err != nil {
				fmt.Fprintf(&b, "    refused %v\n", err)
				break
			}
			if phone == "" {
				phone = "the call only (no number)"
			}
			fmt.Fprintf(&b, "    store under %s\n", phone)
			out = m.NoteSaved(nt.Call, screenpop.Note{Agent: nt.Agent, At: now, Text: text}, nt.Ref, now)
		case in.WrapUp != nil:
			w := in.WrapUp
			fmt.Fprintf(&b, "%swrapup %s by %s code=%s\n", stamp, w.Call, w.Agent, w.Code)
			if err := m.WrapUp(w.Agent, w.Call); err != nil {
				fmt.Fprintf(&b, "    refused %v\n", err)
				break
			}
			out = m.WrappedUp(w.Agent, w.Call, WrappedUpData{Code: w.Code, Label: "label of " + w.Code, Ref: w.Ref}, now)
		case in.Snapshot != "":
			fmt.Fprintf(&b, "%ssnapshot %s\n", stamp, in.Snapshot)
			for _, v := range m.Snapshot(in.Snapshot) {
				fmt.Fprintf(&b, "    %s %s %s%s\n", v.CallID, v.State, renderCard(v.Card), renderPopExtras(v.AnsweredBy, v.Transfer))
			}
			continue
		default:
			t.Fatalf("%s: a line says nothing", where)
		}
		b.WriteString(renderOutput(out))
		for _, e := range out.Effects {
			if bd, ok := e.(Build); ok {
				pending[bd.CallID] = append(pending[bd.CallID], bd)
			}
		}
		inv.check(t, where, m, out)
		checkEncoding(t, where, out)
	}
	return b.String()
}

// testCard is what the test builder returns: the caller's customer
// k-<call>, or the customer asked for.
func testCard(b Build) screenpop.Card {
	ev := b.Event
	c := screenpop.Card{CallID: ev.CallID, Caller: ev.Caller, Resolution: screenpop.ResolvedCustomer,
		Customer: &screenpop.Customer{ID: "k-" + ev.CallID}}
	switch {
	case b.CustomerID != "":
		c.Customer.ID = b.CustomerID
	case ev.Caller.Withheld:
		c.Resolution, c.Customer = screenpop.ResolvedWithheld, nil
	case ev.Caller.Number == "":
		c.Resolution, c.Customer = screenpop.ResolvedUnknown, nil
	}
	if !ev.Caller.Withheld {
		c.Phone = ev.Caller.Number
	}
	return c
}

func renderEvent(ev screenpop.CallEvent) string {
	s := fmt.Sprintf("%s %s", ev.Kind, ev.CallID)
	switch {
	case ev.Caller.Withheld:
		s += " caller=withheld"
	case ev.Caller.Number == "":
		s += " caller=none"
	case ev.Caller.Number != "+4930123456":
		s += " caller=" + ev.Caller.Number
	}
	if ev.Kind == screenpop.EventRinging {
		s += " agents=" + strings.Join(ev.Agents, ",")
		if ev.RangOut {
			s += " rang_out"
		}
		if tr := ev.Transfer; tr != nil {
			kind := "blind"
			if tr.Consult {
				kind = "consult"
			}
			s += fmt.Sprintf(" transfer=%s:%s", kind, tr.From)
		}
	}
	if ev.Agent != "" {
		s += " agent=" + ev.Agent
	}
	if ev.Outcome != "" {
		s += " outcome=" + string(ev.Outcome)
	}
	return s
}

func renderBuild(b Build) string {
	if b.CustomerID != "" {
		return fmt.Sprintf("(%s for %s)", b.Purpose, b.CustomerID)
	}
	return fmt.Sprintf("(%s)", b.Purpose)
}

// renderCard names a card by its number among the call's builds ("early"
// for a card sent before it was complete) and what it says of the caller.
func renderCard(c screenpop.Card) string {
	parts := []string{fmt.Sprintf("#%d", c.TookMS), string(c.Resolution)}
	if c.TookMS == 0 {
		parts[0] = "early"
	}
	if c.Customer != nil {
		parts = append(parts, c.Customer.ID)
	}
	if len(c.Candidates) > 0 {
		var ids []string
		for _, k := range c.Candidates {
			ids = append(ids, k.ID)
		}
		parts = append(parts, "candidates="+strings.Join(ids, ","))
	}
	if len(c.Sections) > 0 {
		var names []string
		for _, s := range c.Sections {
			name := s.Name
			if len(s.Roles) > 0 {
				name += "[" + strings.Join(s.Roles, "|") + "]"
			}
			if s.Status == screenpop.SectionLoading {
				name += "~loading"
			}
			names = append(names, name)
		}
		parts = append(parts, "sections="+strings.Join(names, ","))
	}
	if c.HistoryLoading {
		parts = append(parts, "history~loading")
	} else if len(c.History) > 0 {
		parts = append(parts, fmt.Sprintf("history=%d", len(c.History)))
	}
	return "card(" + strings.Join(parts, " ") + ")"
}

func renderRef(r *AgentRef) string {
	if r.Name != "" {
		return fmt.Sprintf("%s(%s)", r.ID, r.Name)
	}
	return r.ID
}

func renderPopExtras(by *AgentRef, tr *TransferInfo) string {
	s := ""
	if by != nil {
		s += " answered_by=" + renderRef(by)
	}
	if tr != nil {
		s += " transfer_from=" + renderRef(&tr.From)
		if tr.Consult {
			s += " consult"
		}
	}
	return s
}

func renderMessage(m Message) string {
	s := m.Type + " " + m.CallID
	switch d := m.Data.(type) {
	case PopData:
		s += fmt.Sprintf(" %s %s%s", d.State, renderCard(d.Card), renderPopExtras(d.AnsweredBy, d.Transfer))
	case AnsweredData:
		s += " agent=" + renderRef(&d.Agent)
		if d.Transferred {
			s += " transferred"
		}
	case WithdrawnData:
		s += " reason=" + d.Reason
		if d.By != nil {
			s += " by=" + renderRef(d.By)
		}
	case EndedData:
		s += " outcome=" + string(d.Outcome)
		if d.Agent != nil {
			s += " agent=" + renderRef(d.Agent)
		}
	case CardData:
		s += " " + renderCard(d.Card)
		if d.SelectedBy.ID != "" {
			s += " selected_by=" + renderRef(&d.SelectedBy)
		}
	case SectionData:
		s += fmt.Sprintf(" %s %s", d.Section.Name, d.Section.Status)
	case HistoryData:
		s += fmt.Sprintf(" %d calls", len(d.History))
	case NoteSavedData:
		s += fmt.Sprintf(" ref=%s %q", d.Ref, d.Note.Text)
	case WrappedUpData:
		s += fmt.Sprintf(" code=%s ref=%s", d.Code, d.Ref)
	default:
		s += fmt.Sprintf(" %#v", d)
	}
	return s
}

// renderRecord says what the history keeps of a call: what its card's
// history shows, then the rest, each only when set.
func renderRecord(r Record) string {
	p := r.Call
	s := fmt.Sprintf("%s phone=%s agent=%s outcome=%s duration=%s", p.CallID, p.Phone, p.Agent, p.Outcome, p.Duration)
	for _, kv := range [][2]string{
		{"name", p.AgentName}, {"customer", p.CustomerID}, {"did", p.DID},
		{"rung", strings.Join(r.Rung, ",")}, {"answered_by", r.AnsweredBy},
	} {
		if kv[1] != "" {
			s += " " + kv[0] + "=" + kv[1]
		}
	}
	if r.Withheld {
		s += " withheld"
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return "+" + t.Sub(scenarioStart).String()
	}
	s += fmt.Sprintf(" times(ring=%s pop=%s answer=%s end=%s)", at(p.At), at(r.PoppedAt), at(r.AnsweredAt), at(r.EndedAt))
	for _, h := range r.Transfers {
		kind := "blind"
		if h.Attended {
			kind = "attended"
		}
		s += fmt.Sprintf(" transfer(%s->%s %s at %s)", h.From, h.To, kind, at(h.At))
	}
	return s
}

func renderOutput(out Output) string {
	var b strings.Builder
	for _, d := range out.Deliveries {
		fmt.Fprintf(&b, "    %s <- %s\n", strings.Join(d.To, ","), renderMessage(d.Msg))
	}
	if len(out.Latencies) > 0 {
		var ls []string
		for _, l := range out.Latencies {
			ls = append(ls, l.Took.String())
		}
		fmt.Fprintf(&b, "    latency %s\n", strings.Join(ls, " "))
	}
	if out.Refreshed > 0 {
		fmt.Fprintf(&b, "    refreshed %d\n", out.Refreshed)
	}
	for _, e := range out.Effects {
		switch e := e.(type) {
		case Build:
			fmt.Fprintf(&b, "    build %s %s\n", e.CallID, renderBuild(e))
		case Cancel:
			verb := "cancel"
			if e.Dropped {
				verb = "drop"
			}
			fmt.Fprintf(&b, "    %s %s: %v\n", verb, e.CallID, e.Cause)
		case Record:
			fmt.Fprintf(&b, "    record %s\n", renderRecord(e))
		}
	}
	if out.Warning != "" {
		fmt.Fprintf(&b, "    warning: %s\n", out.Warning)
	}
	return b.String()
}

// TestScenarios replays every testdata/*.jsonl and compares the story
// with its .golden file; -update rewrites them.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 12 {
		t.Fatalf("found %d scenarios, want them all", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		t.Run(name, func(t *testing.T) {
			got := run(t, f)
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("the story differs from %s (go test -run TestScenarios -update, then review the diff)\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// invariants are what every sequence of inputs must keep: an agent hears
// of a call only between its pop and its withdrawal or end (but for the
// second "transferred" naming the target of a blind transfer), is never
// popped twice, and a snapshot lists exactly the calls the agent's page
// shows from the messages it got, each card as those messages left it
// (a card filled in by section and history messages included).
type invariants struct {
	holding map[string]map[string]bool // agent -> calls it shows
	// cards are the cards as an agent's page shows them, by agent and call.
	cards map[string]map[string]screenpop.Card
	let   map[string]bool // agent+call told "transferred" without a target
	// sectionRoles are the roles of the sections of the cards built, by
	// call and section name.
	sectionRoles map[string][]string
}

func newInvariants() *invariants {
	return &invariants{holding: map[string]map[string]bool{}, cards: map[string]map[string]screenpop.Card{},
		let: map[string]bool{}, sectionRoles: map[string][]string{}}
}

func (v *invariants) check(t *testing.T, where string, m *Machine, out Output) {
	t.Helper()
	for _, d := range out.Deliveries {
		if !slices.IsSorted(d.To) || len(d.To) == 0 {
			t.Errorf("%s: recipients %v, want sorted and some", where, d.To)
		}
		if card, ok := d.Card(); ok {
			v.checkSections(t, where, d, card)
		} else if d.Sections != nil {
			t.Errorf("%s: %s without card names sections %v", where, d.Msg.Type, d.Sections)
		}
		for _, a := range d.To {
			held := v.holding[a]
			if held == nil {
				held = map[string]bool{}
				v.holding[a] = held
				v.cards[a] = map[string]screenpop.Card{}
			}
			id := d.Msg.CallID
			v.page(a, d.Msg)
			switch d.Msg.Type {
			case TypePop:
				if held[id] {
					t.Errorf("%s: %s popped twice for %s", where, a, id)
				}
				held[id] = true
			case TypeAnswered, TypeCard, TypeSection, TypeHistory:
				if !held[id] {
					t.Errorf("%s: %s got %s for %s, which it does not show", where, a, d.Msg.Type, id)
				}
			case TypeWithdrawn, TypeEnded:
				w, _ := d.Msg.Data.(WithdrawnData)
				if w.Reason == ReasonTransferred && !held[id] && v.let[a+" "+id] && w.By != nil {
					delete(v.let, a+" "+id)
					continue
				}
				if w.Reason == ReasonTransferred && w.By == nil {
					v.let[a+" "+id] = true
				}
				if !held[id] {
					t.Errorf("%s: %s got %s for %s, which it does not show", where, a, d.Msg.Type, id)
				}
				delete(held, id)
			}
		}
	}
	for a, held := range v.holding {
		var snap []string
		for _, p := range m.Snapshot(a) {
			snap = append(snap, p.CallID)
			for _, s := range p.Card.Sections {
				built := screenpop.CardSection{Roles: v.sectionRoles[p.CallID+" "+s.Name]}
				if !built.VisibleTo(testRoles[a]) || len(s.Roles) > 0 {
					t.Errorf("%s: %s's snapshot shows section %s (roles %v)", where, a, s.Name, s.Roles)
				}
			}
		}
		slices.Sort(snap)
		want := sortedKeys(held)
		if !slices.Equal(snap, want) {
			t.Errorf("%s: %s's snapshot lists %v, its messages leave it showing %v", where, a, snap, want)
		}
		for _, p := range m.Snapshot(a) {
			if got, want := describeShown(p.Card), describeShown(v.cards[a][p.CallID]); got != want {
				t.Errorf("%s: %s's snapshot shows %s of %s, its messages leave it showing %s", where, a, got, p.CallID, want)
			}
		}
	}
	checkActive(t, where, m)
}

// page applies a message to what an agent's page shows of the call's card,
// as the page does.
func (v *invariants) page(agent string, msg Message) {
	cards := v.cards[agent]
	id := msg.CallID
	switch d := msg.Data.(type) {
	case PopData:
		cards[id] = d.Card
	case CardData:
		cards[id] = d.Card
	case SectionData:
		c := cards[id]
		c.Sections = slices.Clone(c.Sections)
		if i := slices.IndexFunc(c.Sections, func(s screenpop.CardSection) bool { return s.Name == d.Section.Name }); i >= 0 {
			c.Sections[i] = d.Section
		}
		cards[id] = c
	case HistoryData:
		c := cards[id]
		c.History, c.CallsLast30Days, c.HistoryLoading = d.History, d.CallsLast30Days, false
		cards[id] = c
	case WithdrawnData, EndedData:
		delete(cards, id)
	}
}

// describeShown says what a page shows of a card: whose, its sections
// with their status, its earlier calls.
func describeShown(c screenpop.Card) string {
	s := renderCard(c)
	for _, sec := range c.Sections {
		s += " " + sec.Name + ":" + string(sec.Status)
	}
	return fmt.Sprintf("%s history=%d loading=%v", s, len(c.History), c.HistoryLoading)
}

// checkSections checks that a card goes out without the roles of its
// sections, that Sections names what it holds, and that every recipient
// may see each of them: a hidden section must not reach the agent.
func (v *invariants) checkSections(t *testing.T, where string, d Delivery, card screenpop.Card) {
	t.Helper()
	names := []string{}
	for _, s := range card.Sections {
		if s.Status != screenpop.SectionLoading {
			names = append(names, s.Name) // only what shows content is logged as shown
		}
		if len(s.Roles) > 0 {
			t.Errorf("%s: section %s goes out with its roles %v", where, s.Name, s.Roles)
		}
		built := screenpop.CardSection{Roles: v.sectionRoles[d.Msg.CallID+" "+s.Name]}
		for _, a := range d.To {
			if !built.VisibleTo(testRoles[a]) {
				t.Errorf("%s: %s gets section %s, which it may not see", where, a, s.Name)
			}
		}
	}
	if !slices.Equal(names, d.Sections) {
		t.Errorf("%s: delivery names sections %v, its card holds %v", where, d.Sections, names)
	}
}
