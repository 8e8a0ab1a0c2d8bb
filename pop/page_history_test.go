package pop

// The agent page with a history store (issue 10), in a real Chromium: the
// card's earlier calls with who took them, the wrap-up chosen and the
// notes, the count of the last 30 days; the wrap-up of a call by keyboard,
// shown again on the caller's next card; a note refused keeps its text;
// a note changed; a wrap-up left pending when the page is reloaded.

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
)

// flakyNotes is a history store whose notes can be refused, as PostgreSQL
// gone past the request's deadline refuses them.
type flakyNotes struct {
	*history.Memory
	fail atomic.Bool
}

func (f *flakyNotes) SaveNote(ctx context.Context, n history.NewNote) (screenpop.Note, error) {
	if f.fail.Load() {
		return screenpop.Note{}, history.ErrNotSaved
	}
	return f.Memory.SaveNote(ctx, n)
}

func TestPageWrapUpAndHistoryInChromium(t *testing.T) {
	mem, err := history.NewMemory(history.Config{Dispositions: testDispositions, WrapUpRequired: true, WrapUpTime: 2 * time.Minute}, history.Options{Daemon: "test"})
	if err != nil {
		t.Fatal(err)
	}
	store := &flakyNotes{Memory: mem}
	ctx := context.Background()
	// An earlier call of the number, taken by Bob, wrapped up, with a note.
	if err := store.RecordCall(ctx, history.Call{ID: "earlier", Phone: "+4930123456", CustomerID: "k-earlier", Agent: "bob", AgentName: "Bob Builder",
		Outcome: screenpop.OutcomeAnswered, RingAt: time.Now().Add(-26 * time.Hour), EndAt: time.Now().Add(-26*time.Hour + 3*time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.SaveNote(ctx, history.NewNote{CallID: "earlier", Phone: "+4930123456", Agent: "bob", AgentName: "Bob Builder", Text: "Asked for the price list"}); err != nil {
		t.Fatal(err)
	}
	if err := store.WrapUp(ctx, history.WrapUp{CallID: "earlier", Agent: "bob", Code: "order"}); err != nil {
		t.Fatal(err)
	}
	e := startHubWith(t, nil, func(c *DispatcherConfig) {
		c.Recorder = store
		c.WrapUp = WrapUpSettings{Dispositions: testDispositions, Required: true, Time: 2 * time.Minute}
	})
	// The card's history comes from the store, as the aggregator's does.
	e.b.card = func(ev screenpop.CallEvent) screenpop.Card {
		c := testCard(ev)
		r, err := store.Lookup(context.Background(), history.Query{Phone: c.Phone, Limit: 10})
		if err == nil {
			c.History, c.CallsLast30Days = r.Calls, &r.Last30Days
		}
		return c
	}
	p := newTab(t, startBrowser(t), "agent page")
	p.open(e.srv.URL + "/#token=" + e.token(t, "alice"))
	p.waitFor("the connection open", `document.querySelector('#conn').dataset.connection === 'open'`)

	// The card shows the earlier call: when, who, how it ended and was
	// wrapped up, its note, and the count of the last 30 days.
	// The events' times are the PBX's, a while ago; the page counts the
	// after-call time from when it learns the call ended.
	now := time.Now().Add(-10 * time.Minute)
	e.d.HandleCall(ringing("w1", now, "alice"))
	card := popCard("w1")
	p.waitFor("the earlier call on the card", fmt.Sprintf(`(() => { const el = document.querySelector('%s [data-history-call="earlier"]');
		return !!el && el.querySelector('.history-agent').textContent === 'Bob Builder'
			&& el.querySelector('.history-disposition').textContent === 'Wrap-up: Order placed'
			&& el.querySelector('.history-notes .note-text').textContent === 'Asked for the price list'
			&& el.querySelector('.history-notes .note-meta').textContent.startsWith('Bob Builder · ')
			&& document.querySelector('%s [data-role="last30"]').textContent === '1 call in the last 30 days'; })()`, card, card))
	e.d.HandleCall(answered("w1", "alice", now.Add(time.Second)))
	p.waitFor("the call answered", fmt.Sprintf(`document.querySelector('%s').dataset.state === 'answered'`, card))
	if !p.truth(fmt.Sprintf(`document.querySelector('%s [data-role="wrapup"]').hidden && document.querySelector('#agent-state').hidden`, card)) {
		t.Error("the wrap-up shows during the call")
	}

	// The call ends: its wrap-up is asked, the agent is in wrap-up, and a
	// call ringing meanwhile still pops, marked.
	e.d.HandleCall(ended("w1", "alice", screenpop.OutcomeAnswered, now.Add(30*time.Second)))
	p.waitFor("the wrap-up asked", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
		return el.dataset.state === 'ended' && !el.querySelector('[data-role="wrapup"]').hidden
			&& el.querySelectorAll('[data-role="wrapup"] input[type="radio"]').length === 2
			&& el.querySelector('[data-role="wrapup-due"]').textContent.startsWith('Wrap-up time left: ')
			&& !document.querySelector('#agent-state').hidden
			&& document.querySelector('#agent-state').textContent.startsWith('In wrap-up'); })()`, card))
	e.d.HandleCall(ringing("w2", now.Add(40*time.Second), "alice"))
	p.waitFor("the call ringing during the wrap-up, marked", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
		return !!el && el.dataset.state === 'ringing' && el.dataset.place === 'queue'
			&& !el.querySelector('[data-role="wrapup-pending"]').hidden; })()`, popCard("w2")))
	if got := p.placeOf("w1"); got != "focus" {
		t.Errorf("the call in wrap-up went to %q when another rang", got)
	}
	p.atEverySize("in wrap-up, a call ringing", "wrapup")
	axe := ""
	if _, err := exec.LookPath("npm"); err == nil {
		axe = axeSource(t)
		p.axe(axe, "in wrap-up, a call ringing")
	}
	e.d.HandleCall(ended("w2", "", screenpop.OutcomeAbandoned, now.Add(45*time.Second)))

	// By keyboard: a disposition (arrows move the choice), a note, Finish.
	p.tabTo(card + ` [data-role="wrapup"] input[value="order"]`)
	p.key(kb.ArrowDown)
	p.waitFor("the second disposition chosen", fmt.Sprintf(`document.querySelector('%s [data-role="wrapup"] input[value="info"]').checked`, card))
	p.tabTo(card + ` .note-form textarea`)
	p.key("Only wanted the opening hours.")
	p.tabTo(card + ` [data-action="wrapup"]`)
	p.key(kb.Enter)
	p.waitFor("the wrap-up saved and the agent ready", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
		return el.querySelector('[data-role="wrapup-status"]').textContent === 'Wrap-up saved: Information only'
			&& el.querySelector('[data-role="wrapup-status"]').dataset.kind === 'ok'
			&& document.querySelector('#agent-state').hidden
			&& (el.querySelector('[data-note] .note-text') || {}).textContent === 'Only wanted the opening hours.'; })()`, card))
	// Every call is stored: the one rung out during the wrap-up too.
	r, err := store.Lookup(ctx, history.Query{Phone: "+4930123456", Limit: 10})
	if err != nil || len(r.Calls) != 3 || r.Calls[0].CallID != "w2" || r.Calls[1].CallID != "w1" || r.Calls[1].Disposition != "info" || len(r.Calls[1].Notes) != 1 {
		t.Fatalf("stored: %+v, %v", r.Calls, err)
	}

	// The caller's next card shows it.
	e.d.HandleCall(ringing("w3", time.Now(), "alice"))
	p.waitFor("the wrap-up on the next card", fmt.Sprintf(`(() => { const el = document.querySelector('%s [data-history-call="w1"]');
		return !!el && el.querySelector('.history-disposition').textContent === 'Wrap-up: Information only'
			&& el.querySelector('.history-agent').textContent === 'you'
			&& el.querySelector('.history-notes .note-text').textContent === 'Only wanted the opening hours.'
			&& document.querySelector('%s [data-role="last30"]').textContent === '3 calls in the last 30 days'; })()`, popCard("w3"), popCard("w3")))
	p.shot("wrapup-history-next-card")

	// A note that is not saved: the page says so and keeps the text; sent
	// again, it is saved and the box empties.
	e.d.HandleCall(answered("w3", "alice", time.Now()))
	card = popCard("w3")
	p.waitFor("the call answered", fmt.Sprintf(`document.querySelector('%s').dataset.state === 'answered'`, card))
	store.fail.Store(true)
	p.do(chromedp.SendKeys(card+` .note-form textarea`, "Call back on Monday about invoice 4711."))
	p.click(card + ` .note-form button[type="submit"]`)
	p.waitFor("the note refused, its text kept", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
		const st = el.querySelector('[data-role="note-status"]');
		return st.dataset.kind === 'error' && st.textContent === 'Not available right now. Try again in a moment.'
			&& el.querySelector('.note-form textarea').value === 'Call back on Monday about invoice 4711.'
			&& !el.querySelector('[data-note]'); })()`, card))
	p.shot("note-not-saved")
	if axe != "" {
		p.axe(axe, "a note not saved")
	}
	store.fail.Store(false)
	p.click(card + ` .note-form button[type="submit"]`)
	p.waitFor("the note saved", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
		return el.querySelector('[data-role="note-status"]').textContent === 'Saved' && el.querySelector('.note-form textarea').value === ''
			&& (el.querySelector('[data-note] .note-text') || {}).textContent === 'Call back on Monday about invoice 4711.'; })()`, card))

	// The agent changes the note; the history keeps both versions.
	p.click(card + ` [data-action="note-edit"]`)
	p.waitFor("the note in its edit box", fmt.Sprintf(`document.activeElement === document.querySelector('%s [data-role="note-edit-text"]')`, card))
	p.key(" Done.")
	p.click(card + ` [data-action="note-edit-save"]`)
	p.waitFor("the note changed", fmt.Sprintf(`(() => { const n = document.querySelector('%s [data-note]');
		return !n.querySelector('textarea') && n.querySelector('.note-text').textContent === 'Call back on Monday about invoice 4711. Done.'
			&& n.querySelector('.note-meta').textContent.endsWith('changed'); })()`, card))
	notes, err := store.Notes(ctx, "w3")
	if err != nil || len(notes) != 1 {
		t.Fatalf("notes of w3: %+v, %v", notes, err)
	}
	if versions, err := store.NoteVersions(ctx, notes[0].ID); err != nil || len(versions) != 2 || versions[0].Text != "Call back on Monday about invoice 4711." {
		t.Errorf("versions: %+v, %v", versions, err)
	}

	// The call ends and the page is reloaded before the wrap-up: the
	// server's hello says it is pending, and the page asks for it without
	// the card.
	e.d.HandleCall(ended("w3", "alice", screenpop.OutcomeAnswered, time.Now()))
	p.waitFor("the wrap-up asked", fmt.Sprintf(`!document.querySelector('%s [data-role="wrapup"]').hidden`, card))
	p.open(e.srv.URL + "/")
	p.waitFor("the pending wrap-up on its own", `(() => { const el = document.querySelector('#wrapup-alone');
		return !el.hidden && el.querySelectorAll('input[type="radio"]').length === 2
			&& !document.querySelector('#agent-state').hidden; })()`)
	p.atEverySize("a wrap-up pending after a reload", "wrapup-alone")
	if axe != "" {
		p.axe(axe, "a wrap-up pending after a reload")
	}
	p.click(`#wrapup-alone [data-action="wrapup"]`)
	p.waitFor("a choice asked for", `document.querySelector('#wrapup-alone [data-role="wrapup-status"]').textContent === 'Choose how the call ended first.'
		&& document.activeElement === document.querySelector('#wrapup-alone input[value="order"]')`)
	p.key(kb.ArrowDown)
	p.click(`#wrapup-alone [data-action="wrapup"]`)
	p.waitFor("the pending wrap-up done", `document.querySelector('#wrapup-alone').hidden && document.querySelector('#agent-state').hidden`)
	if st, _ := store.AgentState(ctx, "alice", time.Now()); !st.Ready {
		t.Errorf("alice after the wrap-up: %+v", st)
	}
	if w := strings.TrimSpace(p.text("#agent-state")); w != "" {
		t.Errorf("the top bar still says %q", w)
	}
}
