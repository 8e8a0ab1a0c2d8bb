package pop

// The agent page in a real Chromium (issue 13, items 6 and 7): an unknown
// caller is searched for by keyboard and linked, the card completes, the
// next call of the number is known; the card's links open the caller's
// record elsewhere, one of them by itself when the agent answers, once.
// The card comes from the real aggregator over a small directory, the
// links are kept by the memory history.

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/history"
)

// pageDirectory is a customer directory of a few records, looked up by
// phone and searched by name or exact customer id, as a kind does.
type pageDirectory struct {
	mu       sync.Mutex
	records  []aggregator.Record
	searched int
}

func (d *pageDirectory) Fetch(_ context.Context, key aggregator.Key) ([]aggregator.Record, error) {
	var out []aggregator.Record
	for _, r := range d.records {
		if r["phone"] == key.Phone {
			out = append(out, r)
		}
	}
	return out, nil
}

func (d *pageDirectory) Search(_ context.Context, q aggregator.SearchQuery) ([]aggregator.Record, error) {
	d.mu.Lock()
	d.searched++
	d.mu.Unlock()
	var out []aggregator.Record
	for _, r := range d.records {
		if r["id"] == q.Text || strings.Contains(strings.ToLower(r["name"].(string)), strings.ToLower(q.Text)) {
			out = append(out, r)
		}
	}
	return out[:min(len(out), q.Limit)], nil
}

// fetchFunc adapts a function to aggregator.Source.
type fetchFunc func(ctx context.Context, key aggregator.Key) ([]aggregator.Record, error)

func (f fetchFunc) Fetch(ctx context.Context, key aggregator.Key) ([]aggregator.Record, error) {
	return f(ctx, key)
}

// openStub replaces window.open before the page's script runs: what the
// page opens is recorded instead of loaded.
const openStub = `window.__opened = [];
window.open = function (url, name) {
	const w = { opener: window, location: { href: url || '' } };
	window.__opened.push(w);
	return w;
};`

func TestPageSearchAndLinkInChromium(t *testing.T) {
	store, err := history.NewMemory(history.Config{}, history.Options{Daemon: "test"})
	if err != nil {
		t.Fatal(err)
	}
	dir := &pageDirectory{records: []aggregator.Record{
		{"id": "C-20002", "name": "Anna Kowalska", "kind": "person", "email": "anna.kowalska@poczta.example", "city": "Kraków", "country": "PL", "phone": "+48123456789"},
		{"id": "C-20005", "name": "Kowalski Serwis Sp. z o.o.", "kind": "company", "contact": "Piotr Kowalski", "city": "Łódź", "country": "PL", "phone": "+48420000005"},
		{"id": "C-10002", "name": "Hoffmann Logistik AG", "kind": "company", "city": "Hamburg", "country": "DE", "phone": "+49403456789"},
	}}
	balances := map[string][]aggregator.Record{"C-20002": {{"balance": 1250.5, "currency": "PLN"}}}
	agg, err := aggregator.New(aggregator.Config{
		Region:   "DE",
		Deadline: 5 * time.Second,
		Directory: &aggregator.SourceSpec{Name: "directory", Needs: "phone", Source: dir,
			Search: &aggregator.SearchSpec{MinLength: 3, MaxResults: 5}},
		Sources: []aggregator.SourceSpec{{Name: "accounting", Section: "accounting", Source: fetchFunc(func(_ context.Context, k aggregator.Key) ([]aggregator.Record, error) {
			return balances[k.CustomerID], nil
		}), Mapping: aggregator.Mapping{Fields: []aggregator.FieldMap{{From: "balance", Label: "Balance", Format: "money"}, {From: "currency", Label: "Currency"}}}}},
		Sections: []aggregator.SectionSpec{{Name: "accounting", Title: "Accounting"}},
		Links: []aggregator.LinkSpec{
			{Label: "Open in CRM", Labels: map[string]string{"pl": "Otwórz w CRM"}, URL: "https://crm.example.com/customers/{customer_id}?agent={agent}", OpenOnAnswer: true},
			{Label: "New ticket", Labels: map[string]string{"pl": "Nowe zgłoszenie"}, URL: "https://helpdesk.example.com/tickets/new?phone={number}&call={call_id}"},
		},
	}, aggregator.Options{History: store})
	if err != nil {
		t.Fatal(err)
	}
	e := startHubWith(t, nil, func(c *DispatcherConfig) { c.Builder, c.Recorder, c.Directory = agg, store, agg })
	srv := httptest.NewServer(e.hub.Handler())
	t.Cleanup(srv.Close)
	s := &pageServer{hubEnv: e, url: srv.URL}

	p := newTab(t, startBrowser(t), "agent page")
	cdpCall(p, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: openStub})
	p.openAs(s, "alice")
	p.waitFor("the hello's search limits", `document.querySelector('#conn').dataset.connection === 'open'`)

	// An unknown caller rings: the card offers the search, and the links
	// it can fill without a customer.
	const unknown = "+49 30 9999999"
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/u1", Caller: screenpop.Caller{Number: unknown},
		Agents: []string{"alice"}, At: time.Now(), Source: "test"})
	card := popCard("pbx/u1")
	p.waitFor("the search box on the unknown caller's card", fmt.Sprintf(`(() => { const f = document.querySelector('%s [data-role="find"]');
		return !!f && !f.hidden && !!f.querySelector('input[type=search]'); })()`, card))
	if got := p.str(fmt.Sprintf(`[...document.querySelectorAll('%s [data-role="links"] a')].map(a => a.textContent + ' ' + a.href + ' ' + a.target + ' ' + a.rel).join('|')`, card)); got !=
		"New ticket https://helpdesk.example.com/tickets/new?phone=%2B49309999999&call=pbx%2Fu1 _blank noopener noreferrer" {
		t.Errorf("links of the unknown caller's card: %q", got)
	}
	// The search field has a label a screen reader says.
	if label := p.str(fmt.Sprintf(`(() => { const i = document.querySelector('%s [data-role="find-text"]'); return i.labels[0].textContent; })()`, card)); label != "Name, customer number or e-mail" {
		t.Errorf("the search field's label: %q", label)
	}

	// By keyboard: too short, then a name.
	p.tabTo(card + ` [data-role="find-text"]`)
	p.do(chromedp.SendKeys(card+` [data-role="find-text"]`, "ko"+kb.Enter))
	p.waitFor("too short", fmt.Sprintf(`document.querySelector('%s [data-role="find-status"]').textContent === 'Type at least 3 characters.'`, card))
	p.do(chromedp.SendKeys(card+` [data-role="find-text"]`, "walsk"+kb.Enter))
	p.waitFor("two customers found", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
		return el.querySelector('[data-role="find-status"]').textContent === '2 customers found.'
			&& el.querySelectorAll('.find-result').length === 2; })()`, card))
	dir.mu.Lock()
	searched := dir.searched
	dir.mu.Unlock()
	if searched != 1 {
		t.Errorf("searches asked of the directory: %d, want 1 (too short is refused by the page)", searched)
	}
	if got := p.text(card + ` .find-result[data-customer-id="C-20002"] .find-sub`); got != "Kraków · anna.kowalska@poczta.example · Customer C-20002" {
		t.Errorf("the result's details read %q", got)
	}
	p.atEverySize("an unknown caller's search results", "search-results")
	p.axe(axeSource(t), "the search results")

	// Link by keyboard: the card completes at once, the search goes.
	p.tabTo(card + ` [data-action="link"][data-customer-id="C-20002"]`)
	if got := p.str(`document.activeElement.getAttribute('aria-label')`); got != "Link to this caller: Anna Kowalska" {
		t.Errorf("the link button's name: %q", got)
	}
	p.key(kb.Enter)
	p.waitFor("the card of Anna Kowalska", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
		return el.querySelector('[data-field="customer-name"]')?.textContent === 'Anna Kowalska'
			&& el.querySelector('[data-role="find"]').hidden
			&& el.querySelector('[data-section="accounting"]')?.textContent.includes('1,250.50'); })()`, card))
	p.waitFor("the linked notice", `[...document.querySelectorAll('.notice')].some(n => n.textContent.includes('linked to Anna Kowalska'))`)
	if got := p.str(fmt.Sprintf(`[...document.querySelectorAll('%s [data-role="links"] a')].map(a => a.textContent + ' ' + a.href).join('|')`, card)); got !=
		"Open in CRM https://crm.example.com/customers/C-20002?agent=alice|New ticket https://helpdesk.example.com/tickets/new?phone=%2B49309999999&call=pbx%2Fu1" {
		t.Errorf("links of the linked card: %q", got)
	}
	p.atEverySize("a linked caller's card", "search-linked")
	entries, err := store.AccessLog(context.Background(), history.AccessQuery{Phone: "+49309999999"})
	if err != nil || len(entries) == 0 || entries[len(entries)-1].Action != history.ActionLink || entries[len(entries)-1].Agent != "alice" || entries[len(entries)-1].CustomerID != "C-20002" {
		t.Errorf("access log of the number: %+v, %v", entries, err)
	}

	// alice answers: "Open in CRM" opens by itself, cut off from the page.
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: "pbx/u1", Agent: "alice", At: time.Now(), Source: "test"})
	p.waitFor("the CRM opened on answer", `window.__opened.length === 1 && window.__opened[0].location.href === 'https://crm.example.com/customers/C-20002?agent=alice'`)
	if !p.truth(`window.__opened[0].opener === null`) {
		t.Error("the opened tab keeps a handle on the agent page")
	}
	// Once: a reload (the snapshot shows the call answered) opens nothing.
	p.open(s.url + "/")
	p.waitFor("the call after a reload", fmt.Sprintf(`!!document.querySelector('%s') && document.querySelector('%s').dataset.state === 'answered'`, card, card))
	time.Sleep(openDeferForTest)
	if n := p.num(`window.__opened.length`); n != 0 {
		t.Errorf("opened again after a reload: %v", n)
	}
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "pbx/u1", Agent: "alice", Outcome: screenpop.OutcomeAnswered, At: time.Now(), Source: "test"})

	// The next call of the number is known at once: no search.
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/u2", Caller: screenpop.Caller{Number: "030 9999999"},
		Agents: []string{"alice"}, At: time.Now(), Source: "test"})
	p.waitFor("the next call, known", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
		return !!el && el.querySelector('[data-field="customer-name"]')?.textContent === 'Anna Kowalska' && el.querySelector('[data-role="find"]').hidden; })()`, popCard("pbx/u2")))

	// A withheld caller: nothing to link, no search.
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/w1", Caller: screenpop.Caller{Withheld: true},
		Agents: []string{"alice"}, At: time.Now(), Source: "test"})
	p.waitFor("the withheld caller's card", fmt.Sprintf(`!!document.querySelector('%s')`, popCard("pbx/w1")))
	if !p.truth(fmt.Sprintf(`document.querySelector('%s [data-role="find"]').hidden && document.querySelector('%s [data-role="links"]').hidden`, popCard("pbx/w1"), popCard("pbx/w1"))) {
		t.Error("a withheld caller's card offers a search or links")
	}

	// In Polish: the box and the links read in Polish.
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pbx/u3", Caller: screenpop.Caller{Number: "+49 30 7777777"},
		Agents: []string{"alice"}, At: time.Now(), Source: "test"})
	p.click("#settings summary")
	p.do(chromedp.SetValue(chromedp.CSS("#pref-lang"), "pl"))
	p.run(`document.querySelector('#pref-lang').dispatchEvent(new Event('change'))`)
	p.click("#settings summary")
	p.waitFor("the search in Polish", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
		return !!el && el.querySelector('.find h3')?.textContent === 'Znajdź dzwoniącego'
			&& el.querySelector('.find-label').textContent === 'Nazwa, numer klienta lub e-mail'
			&& el.querySelector('[data-role="links"] a')?.textContent === 'Nowe zgłoszenie'; })()`, popCard("pbx/u3")))
	// It waits beside the call ringing before it; shown in full, it offers
	// the search (a waiting card does not).
	if p.truth(fmt.Sprintf(`getComputedStyle(document.querySelector('%s [data-role="find"]')).display !== 'none'`, popCard("pbx/u3"))) {
		t.Error("a waiting card shows the search")
	}
	p.click(popCard("pbx/u3") + ` [data-action="focus"]`)
	p.waitFor("the Polish card in full", fmt.Sprintf(`getComputedStyle(document.querySelector('%s [data-role="find"]')).display !== 'none'`, popCard("pbx/u3")))
	for _, v := range []pageSize{pageSizes[0], pageSizes[2]} {
		p.resize(v)
		p.noSideScroll(v.name + ", the search in Polish")
		p.run(fmt.Sprintf(`document.querySelector('%s [data-role="find"]').scrollIntoView({block: 'center'})`, popCard("pbx/u3")))
		p.shot("search-polish-" + v.name)
	}
	p.resize(pageSizes[0])
}

// openDeferForTest is how long the test waits for an open-on-answer that
// must not happen: longer than the page's defer for a tab that did not
// ring (600 ms), whatever the machine's load.
const openDeferForTest = 2 * time.Second

// The same link in two tabs of one browser opens once, in the tab that
// rang.
func TestPageOpenOnAnswerOnceAcrossTabsInChromium(t *testing.T) {
	s := startPageServer(t, true)
	link := screenpop.CardLink{Label: "Open in CRM", URL: "https://crm.example.com/c/{customer_id}", OpenOnAnswer: true}
	s.b.card = func(ev screenpop.CallEvent) screenpop.Card {
		c := pageCard(ev)
		c.Links = []screenpop.CardLink{link}
		return c
	}
	browser := startBrowser(t)
	var tabs []*pageTab
	for _, name := range []string{"first tab", "second tab"} {
		p := newTab(t, browser, name)
		cdpCall(p, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: openStub})
		p.openAs(s, "alice")
		tabs = append(tabs, p)
	}
	s.d.HandleCall(ringing("two-tabs", time.Now(), "alice"))
	for _, p := range tabs {
		p.waitFor("the pop", fmt.Sprintf(`!!document.querySelector('%s')`, popCard("two-tabs")))
	}
	// The tab that rang has claimed the ring.
	for _, p := range tabs {
		p.waitFor("a ring claimed", `Object.keys(JSON.parse(localStorage.getItem('screenpop.alerted') || '{}')).length > 0`)
	}
	s.d.HandleCall(answered("two-tabs", "alice", time.Now()))
	tabs[0].waitFor("the link opened in one tab", `JSON.parse(localStorage.getItem('screenpop.opened') || '{}') && Object.keys(JSON.parse(localStorage.getItem('screenpop.opened') || '{}')).length === 1`)
	// Long enough for the tab that did not ring to have opened it too,
	// had it not seen it opened.
	time.Sleep(openDeferForTest)
	var opened []string
	for _, p := range tabs {
		if n := p.num(`window.__opened.length`); n > 0 {
			opened = append(opened, fmt.Sprintf("%s opened %v: %s", p.name, n, p.str(`window.__opened.map(w => w.location.href).join(' ')`)))
		}
	}
	if len(opened) != 1 || !strings.Contains(opened[0], "opened 1: https://crm.example.com/c/C-1042") {
		t.Errorf("opened: %v; want one tab to open the link once", opened)
	}
	if !tabs[0].truth(`(() => { const a = JSON.parse(localStorage.getItem('screenpop.alerted') || '{}');
		const o = JSON.parse(localStorage.getItem('screenpop.opened') || '{}'); const k = Object.keys(o)[0];
		return !!k && !!a[k] && a[k].tab === o[k].tab; })()`) {
		t.Errorf("the link was not opened by the tab that rang: alerted %s opened %s", tabs[0].str(`localStorage.getItem('screenpop.alerted')`), tabs[0].str(`localStorage.getItem('screenpop.opened')`))
	}
}
