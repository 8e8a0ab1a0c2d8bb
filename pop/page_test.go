package pop

// The agent page in a real Chromium (issue 13): ring alerts, a layout that
// keeps the call being worked on in place, values as people read them, an
// honest connection state, two languages and accessibility. Each test
// saves screenshots at the three sizes agents use, into
// $SCREENPOP_SCREENSHOTS when set (for a person to look at), else into the
// test's temporary directory.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/golang-jwt/jwt/v5"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/internal/chromiumtest"
)

type pageSize struct {
	name string
	w, h int64
}

// The screens agents work on: a laptop, a desktop monitor, a phone.
var pageSizes = []pageSize{{"1366x768", 1366, 768}, {"1920x1080", 1920, 1080}, {"390x844", 390, 844}}

// ---- the server ------------------------------------------------------------

// pageServer serves the hub as the daemon does, plus what a test needs to
// play a network failure: cutting every open WebSocket, refusing new ones,
// and dropping ?since= so that the page gets a snapshot.
type pageServer struct {
	*hubEnv
	url        string
	down       atomic.Bool
	stripSince atomic.Bool

	mu    sync.Mutex
	conns []net.Conn
}

// startPageServer starts a hub with the page's test cards. Without
// withSession it plays a daemon from before GET /session, the page's
// sign-in check: that answers 404.
func startPageServer(t *testing.T, withSession bool) *pageServer {
	t.Helper()
	return startPageServerWith(t, withSession, nil)
}

// startPageServerWith is startPageServer with the hub's configuration
// tweaked (a LoginURL: the daemon has a company sign-in).
func startPageServerWith(t *testing.T, withSession bool, tweak func(*HubConfig)) *pageServer {
	t.Helper()
	e := startHub(t, tweak)
	e.b.card = pageCard
	s := &pageServer{hubEnv: e}
	hub := e.hub.Handler()
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			http.Error(w, "the daemon is gone", http.StatusServiceUnavailable)
			return
		}
		if s.stripSince.Load() {
			r = r.Clone(r.Context())
			r.URL.RawQuery = ""
		}
		hub.ServeHTTP(&hijackRecorder{ResponseWriter: w, s: s}, r)
	})
	if !withSession {
		mux.HandleFunc("GET /session", http.NotFound)
	}
	mux.Handle("/", hub)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

// kick cuts every WebSocket open through the server, as a network failure
// or a daemon that dies does: the browser sees close code 1006.
func (s *pageServer) kick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

// hijackRecorder keeps the connections the hub upgrades, for kick.
type hijackRecorder struct {
	http.ResponseWriter
	s *pageServer
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err == nil {
		h.s.mu.Lock()
		h.s.conns = append(h.s.conns, c)
		h.s.mu.Unlock()
	}
	return c, rw, err
}

func (s *pageServer) link(t *testing.T, agent string) string {
	return s.url + "/#token=" + s.token(t, agent)
}

// pageCallers names the customers of the layout test's calls, so that the
// cards on one screen can be told apart.
var pageCallers = map[string]string{
	"b0": "Nordwind Spedition KG", "b1": "Nordwind Spedition KG", "b2": "Nordwind Spedition KG",
	"c0": "Baltic Pallets Sp. z o.o.", "c1": "Baltic Pallets Sp. z o.o.", "c2": "Baltic Pallets Sp. z o.o.",
}

func pageCard(ev screenpop.CallEvent) screenpop.Card {
	if strings.HasPrefix(ev.CallID, "values") {
		return valuesCard(ev)
	}
	c := richCard(ev)
	if name, ok := pageCallers[ev.CallID]; ok && c.Customer != nil {
		cust := *c.Customer
		cust.Name = name
		c.Customer = &cust
	}
	return c
}

// valuesCard is the shipped service-desk example's kind of card: ids that
// are numbers, date-times, money in złoty, and a table wider than a phone.
func valuesCard(ev screenpop.CallEvent) screenpop.Card {
	row := func(ticket float64, opened, subject, due string) map[string]any {
		return map[string]any{"ticket": ticket, "opened_at": opened, "priority": "high", "status": "waiting for customer",
			"subject": subject, "assignee": "Tomasz Nowak", "queue": "Second level", "sla_due": due, "contract": 77001.0}
	}
	return screenpop.Card{
		CallID: ev.CallID, Caller: ev.Caller, Phone: ev.Caller.Number, Resolution: screenpop.ResolvedCustomer,
		Customer: &screenpop.Customer{ID: "50403", Name: "Kowalski Serwis Sp. z o.o.", Kind: "company", Contact: "Anna Kowalska", City: "Kraków", Country: "PL"},
		Sections: []screenpop.CardSection{{Name: "desk", Title: "Service desk", Status: screenpop.SectionOK,
			Fields: []screenpop.Field{
				{Key: "ticket", Label: "Last ticket", Value: 50403.0},
				{Key: "order", Label: "Order", Value: 1002003.0, Format: "text"},
				{Key: "contract", Label: "Contract", Value: 77001.0, Format: "id"},
				{Key: "opened_at", Label: "Opened", Value: "2025-03-04T10:15:00Z", Format: "datetime"},
				{Key: "balance", Label: "Open balance", Value: 1234.5, Format: "money"},
				{Key: "lifetime", Label: "Lifetime value", Value: 2847194.2, Format: "money"},
				{Key: "currency", Label: "Currency", Value: "PLN"},
				{Key: "units", Label: "Units shipped", Value: 50403.0, Format: "number"},
			},
			Lists: []screenpop.List{{Key: "tickets", Label: "Open tickets",
				Columns: []screenpop.Column{{Key: "ticket", Label: "Ticket"}, {Key: "opened_at", Label: "Opened", Format: "datetime"},
					{Key: "priority", Label: "Priority"}, {Key: "status", Label: "Status"}, {Key: "subject", Label: "Subject"},
					{Key: "assignee", Label: "Assignee"}, {Key: "queue", Label: "Queue"}, {Key: "sla_due", Label: "SLA due", Format: "datetime"},
					{Key: "contract", Label: "Contract", Format: "id"}},
				Rows: []map[string]any{
					row(50403, "2025-03-04T10:15:00Z", "Pallet wrapper stops after every cycle", "2025-03-05T16:00:00Z"),
					row(50399, "2025-03-03T08:02:00Z", "Invoice address to change", "2025-03-06T12:00:00Z"),
				}}}},
			// The shipped demo's recent purchases: long product names beside
			// dates, quantities and amounts.
			{Name: "sales", Title: "Sales", Status: screenpop.SectionOK,
				Lists: []screenpop.List{{Key: "purchases", Label: "Recent purchases",
					Columns: []screenpop.Column{{Key: "date", Label: "Date", Format: "date"}, {Key: "product", Label: "Product"},
						{Key: "qty", Label: "Qty", Format: "number"}, {Key: "amount", Label: "Amount", Format: "money"}},
					Rows: []map[string]any{
						{"date": "2026-11-17", "product": "Shelving unit, galvanised, 180x90x45 cm", "qty": 10.0, "amount": 12890.0, "currency": "PLN"},
						{"date": "2026-10-02", "product": "Rotary hammer SDS-max 1500 W with case", "qty": 2.0, "amount": 4862.8, "currency": "PLN"},
					}}}},
		},
		BuiltAt: time.Now(),
	}
}

// ---- the browser -----------------------------------------------------------

// startBrowser starts a headless Chromium for one test; newTab opens its
// tabs. The page may play its ring sound without a click first.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	return chromiumtest.Start(t, chromedp.WindowSize(1366, 768), chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
}

// pageTab is one tab of the browser (internal/chromiumtest: exceptions
// fail the test, waits across page loads, screenshots) with the agent
// page's test helpers.
type pageTab struct {
	*chromiumtest.Tab
	t    *testing.T
	ctx  context.Context
	name string
}

func newTab(t *testing.T, browser context.Context, name string) *pageTab {
	t.Helper()
	tab := chromiumtest.NewTab(t, browser, name)
	tab.Patience = patience
	return &pageTab{Tab: tab, t: t, ctx: tab.Ctx, name: name}
}

func (p *pageTab) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	p.Do(actions...)
}

// cdpCall runs one protocol command in the tab (an emulation, a script for
// every new document).
func cdpCall[P, R any](p *pageTab, cmd cdp.Command[P, R], params P) R {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, patience)
	defer cancel()
	r, err := chromedp.Call(ctx, cmd, params)
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, cmd.Method, err)
	}
	return r
}

func evalIn[T any](p *pageTab, expr string, opts ...chromedp.EvaluateOption) T {
	p.t.Helper()
	return chromiumtest.Eval[T](p.Tab, expr, opts...)
}

func (p *pageTab) str(expr string) string  { p.t.Helper(); return evalIn[string](p, expr) }
func (p *pageTab) truth(expr string) bool  { p.t.Helper(); return evalIn[bool](p, expr) }
func (p *pageTab) num(expr string) float64 { p.t.Helper(); return evalIn[float64](p, expr) }
func (p *pageTab) run(expr string)         { p.t.Helper(); evalIn[bool](p, "("+expr+", true)") }
func (p *pageTab) text(selector string) string {
	p.t.Helper()
	return p.str(fmt.Sprintf(`(document.querySelector(%q) || {textContent: ''}).textContent`, selector))
}

// waitFor polls expr until it is true, across page loads.
func (p *pageTab) waitFor(what, expr string) {
	p.t.Helper()
	p.WaitFor(what, expr)
}

func (p *pageTab) open(url string) {
	p.t.Helper()
	// Through about:blank, so that opening a link is a full page load.
	p.do(chromedp.Navigate("about:blank"), chromedp.Navigate(url))
}

// openAs opens agent's sign-in link and waits for the page to be live.
func (p *pageTab) openAs(s *pageServer, agent string) {
	p.t.Helper()
	p.open(s.link(p.t, agent))
	p.waitFor("the connection open", `document.querySelector('#conn').dataset.connection === 'open'`)
}

func (p *pageTab) resize(v pageSize) {
	p.t.Helper()
	p.do(chromedp.EmulateViewport(v.w, v.h))
	p.waitFor("the size "+v.name, fmt.Sprintf(`innerWidth === %d && innerHeight === %d`, v.w, v.h))
}

func (p *pageTab) click(selector string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.CSS(selector)))
}

func (p *pageTab) key(keys string) {
	p.t.Helper()
	p.do(chromedp.KeyEvent(keys))
}

// shot saves what the agent sees (the viewport) as name.png.
func (p *pageTab) shot(name string) {
	p.t.Helper()
	p.Shot(name)
}

// noSideScroll fails when the page is wider than the window, naming what
// sticks out.
func (p *pageTab) noSideScroll(when string) {
	p.t.Helper()
	if p.truth(`document.scrollingElement.scrollWidth <= innerWidth`) {
		return
	}
	wide := p.str(`(() => {
		const out = [];
		for (const el of document.querySelectorAll('body *')) {
			const r = el.getBoundingClientRect();
			if (r.width && r.right > innerWidth + 1) out.push(el.tagName.toLowerCase() + '.' + el.className + ' right=' + Math.round(r.right));
		}
		return document.scrollingElement.scrollWidth + ' > ' + innerWidth + ': ' + out.slice(0, 8).join(', ');
	})()`)
	p.t.Errorf("%s: %s: the page scrolls sideways: %s", p.name, when, wide)
}

// fieldsFit fails when a field's value is wider than its cell, so that it
// runs into the next field (an amount that could not break, on a phone).
func (p *pageTab) fieldsFit(when string) {
	p.t.Helper()
	if wide := p.str(`[...document.querySelectorAll('.field dd')].filter(d => d.scrollWidth > d.clientWidth + 1).map(d => d.textContent).join(' | ')`); wide != "" {
		p.t.Errorf("%s: %s: fields wider than their cell: %s", p.name, when, wide)
	}
}

// atEverySize shows the page at each size, checks that it does not scroll
// sideways and saves a screenshot, then goes back to the first size.
func (p *pageTab) atEverySize(what, name string) {
	p.t.Helper()
	for _, v := range pageSizes {
		p.resize(v)
		p.noSideScroll(v.name + ", " + what)
		p.fieldsFit(v.name + ", " + what)
		p.shot(name + "-" + v.name)
	}
	p.resize(pageSizes[0])
}

// inView: the element's top and bottom are on screen, below the top bar
// and above the sheet of waiting calls.
func (p *pageTab) inView(selector string) bool {
	p.t.Helper()
	return p.truth(fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		if (!el) return false;
		const r = el.getBoundingClientRect();
		const top = document.querySelector('.topbar').getBoundingClientRect().bottom;
		const q = document.querySelector('#queue');
		const sheet = getComputedStyle(q).position === 'fixed' && q.dataset.count !== '0' && !q.contains(el);
		const bottom = sheet ? q.getBoundingClientRect().top : innerHeight;
		return r.height > 0 && r.top >= top - 1 && r.bottom <= bottom + 1;
	})()`, selector))
}

func popCard(id string) string { return fmt.Sprintf(`article.pop[data-call-id=%q]`, id) }

func (p *pageTab) placeOf(id string) string {
	p.t.Helper()
	return p.str(fmt.Sprintf(`(document.querySelector('%s') || {dataset: {}}).dataset.place || ''`, popCard(id)))
}

func (p *pageTab) top(selector string) float64 {
	p.t.Helper()
	return p.num(fmt.Sprintf(`document.querySelector(%q).getBoundingClientRect().top`, selector))
}

// ---- layout ----------------------------------------------------------------

// The call the agent is on stays where it is while other calls ring, at
// every size; ended calls go to a bounded strip of recent calls.
func TestPageLayoutInChromium(t *testing.T) {
	s := startPageServer(t, true)
	p := newTab(t, startBrowser(t), "agent page")
	p.openAs(s, "alice")
	p.waitFor("the offer of ring alerts", `!document.querySelector('#alert-offer').hidden && !document.querySelector('#empty').hidden`)
	p.shot("layout-1366x768-empty")
	p.click("#offer-no")
	p.waitFor("the offer gone", `document.querySelector('#alert-offer').hidden`)

	for i, v := range pageSizes {
		p.resize(v)
		a, b, c := fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i), fmt.Sprintf("c%d", i)
		now := time.Now()
		s.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: a, Caller: screenpop.Caller{Number: "030 123456"},
			DID: "100", Agents: []string{"alice"}, At: now, Source: "test"})
		p.waitFor("the first call in full", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
			return !!el && el.dataset.state === 'ringing' && el.dataset.place === 'focus' && el.dataset.layout === 'full'; })()`, popCard(a)))
		p.noSideScroll(v.name + ", one call ringing")
		p.shot("layout-" + v.name + "-ringing")
		s.d.HandleCall(answered(a, "alice", now.Add(time.Second)))
		p.waitFor("the call answered", fmt.Sprintf(`document.querySelector('%s').dataset.state === 'answered'`, popCard(a)))
		name := popCard(a) + ` [data-field="customer-name"]`
		before := p.top(name)

		// A second call rings while the agent talks: it waits beside the
		// call, which does not move.
		s.d.HandleCall(ringing(b, now.Add(2*time.Second), "alice"))
		p.waitFor("the second call waiting", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
			return !!el && el.dataset.state === 'ringing' && el.dataset.layout === 'compact'; })()`, popCard(b)))
		if got := p.placeOf(a); got != "focus" {
			t.Errorf("%s: the answered call went to %q when another rang", v.name, got)
		}
		if after := p.top(name); after != before {
			t.Errorf("%s: the answered call moved from %v to %v px when another rang", v.name, before, after)
		}
		if !p.inView(name) {
			t.Errorf("%s: the answered caller's name is out of view", v.name)
		}
		if !p.inView(popCard(b)) {
			t.Errorf("%s: the ringing call is out of view", v.name)
		}
		p.noSideScroll(v.name + ", a call answered and one ringing")
		p.shot("layout-" + v.name + "-answered-and-ringing")

		// Scrolled down to write a note; a third call rings: nothing moves.
		p.run(`scrollTo(0, 400)`)
		y := p.num(`scrollY`)
		top := p.top(name)
		s.d.HandleCall(ringing(c, now.Add(3*time.Second), "alice"))
		p.waitFor("the third call waiting", fmt.Sprintf(`document.querySelector('%s') !== null`, popCard(c)))
		if got := p.num(`scrollY`); got != y {
			t.Errorf("%s: the page scrolled from %v to %v when a call rang", v.name, y, got)
		}
		if got := p.top(name); got != top {
			t.Errorf("%s: the answered call moved from %v to %v px (scrolled page) when a call rang", v.name, top, got)
		}
		p.noSideScroll(v.name + ", three calls")
		p.shot("layout-" + v.name + "-scrolled-three-calls")
		p.run(`scrollTo(0, 0)`)

		// Bob takes the second, the third rings out, the agent's call
		// ends: it stays for its notes until closed, then joins the strip.
		s.d.HandleCall(answered(b, "bob", now.Add(4*time.Second)))
		s.d.HandleCall(ended(c, "", screenpop.OutcomeAbandoned, now.Add(5*time.Second)))
		s.d.HandleCall(ended(a, "alice", screenpop.OutcomeAnswered, now.Add(6*time.Second)))
		p.waitFor("the ended call kept for its notes", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
			return el.dataset.state === 'ended' && el.dataset.place === 'focus' && !el.querySelector('[data-action="dismiss"]').hidden; })()`, popCard(a)))
		p.waitFor("the missed call in the strip", fmt.Sprintf(`!!document.querySelector('#recent-list [data-recent-call=%q]')`, c))
		p.click(popCard(a) + ` [data-action="dismiss"]`)
		p.waitFor("the closed call in the strip", fmt.Sprintf(`!!document.querySelector('#recent-list [data-recent-call=%q]')
			&& document.querySelector('%s').dataset.place === 'recent'`, a, popCard(a)))

		// Missed calls do not pile up: the strip keeps the last six.
		for j := range 8 {
			s.d.HandleCall(ringing(fmt.Sprintf("m%d-%d", i, j), now.Add(time.Duration(10+j)*time.Second), "alice"))
		}
		p.waitFor("the missed calls ringing", fmt.Sprintf(`!!document.querySelector('%s')`, popCard(fmt.Sprintf("m%d-7", i))))
		for j := range 8 {
			s.d.HandleCall(ended(fmt.Sprintf("m%d-%d", i, j), "", screenpop.OutcomeAbandoned, now.Add(time.Duration(20+j)*time.Second)))
		}
		p.waitFor("a bounded strip of recent calls", fmt.Sprintf(`document.querySelectorAll('#recent-list li').length === 6
			&& !!document.querySelector('#recent-list [data-recent-call="m%d-6"]')
			&& document.querySelector('%s').dataset.state === 'ended'`, i, popCard(fmt.Sprintf("m%d-7", i))))
		p.noSideScroll(v.name + ", recent calls")
		p.shot("layout-" + v.name + "-recent-calls")

		// A recent call opens again (to write its note), and the strip can be
		// cleared.
		p.click(fmt.Sprintf(`#recent-list [data-recent-call="m%d-6"] [data-action="reopen"]`, i))
		p.waitFor("the reopened call", fmt.Sprintf(`document.querySelector('%s').dataset.place === 'focus'`, popCard(fmt.Sprintf("m%d-6", i))))
		p.click("#recent-clear")
		p.waitFor("the strip cleared", `document.querySelector('#recent').hidden`)
		// The withdrawn card leaves by itself; the next size starts clean.
		p.waitFor("no call waiting", `document.querySelector('#queue').dataset.count === '0'`)
	}
}

// ---- values ----------------------------------------------------------------

// Date-times in the agent's time zone, ids as written, money with its
// currency, phone numbers grouped, wide tables scrolling inside their
// section.
func TestPageValuesInChromium(t *testing.T) {
	s := startPageServer(t, true)
	p := newTab(t, startBrowser(t), "agent page")
	cdpCall(p, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Europe/Warsaw"})
	p.openAs(s, "alice")
	s.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "values-1", Caller: screenpop.Caller{Number: "+48601234567"},
		Agents: []string{"alice"}, At: time.Now(), Source: "test"})
	p.waitFor("the card", `!!document.querySelector('[data-call-id="values-1"] [data-section="desk"]')`)

	field := func(key string) string {
		return p.text(fmt.Sprintf(`[data-call-id="values-1"] [data-section="desk"] [data-key=%q] dd`, key))
	}
	for key, want := range map[string]string{
		"ticket":   "50403",   // no format: as the source wrote it
		"order":    "1002003", // format text
		"contract": "77001",   // format id
		"units":    "50,403",  // format number: grouped
	} {
		if got := field(key); got != want {
			t.Errorf("%s shown as %q, want %q", key, got, want)
		}
	}
	if got := field("balance"); !strings.Contains(got, "PLN") || !strings.Contains(got, "1,234.50") {
		t.Errorf("money shown as %q, want 1,234.50 in PLN", got)
	}
	// 10:15 UTC is 11:15 in Warsaw (CET).
	if got := field("opened_at"); !strings.Contains(got, "11:15") || !strings.Contains(got, "2025") || strings.Contains(got, "T10") {
		t.Errorf("date-time shown as %q, want Mar 4, 2025 at 11:15 Warsaw time", got)
	}
	if got := p.text(`[data-call-id="values-1"] [data-list="tickets"] tbody tr td[data-key="opened_at"]`); !strings.Contains(got, "11:15") {
		t.Errorf("date-time in a table shown as %q", got)
	}
	if got := p.text(`[data-call-id="values-1"] [data-list="tickets"] tbody tr td[data-key="ticket"]`); got != "50403" {
		t.Errorf("ticket number in a table shown as %q", got)
	}
	if got := p.text(`[data-call-id="values-1"] [data-field="number"]`); got != "+48 601 234 567" {
		t.Errorf("phone number shown as %q, want +48 601 234 567", got)
	}

	// A table that fits its section once its text wraps does not scroll
	// on the call centre's usual screens: every column of the recent
	// purchases is in view, amounts and dates on one line. (On a phone it
	// may still scroll; see below.) A table that cannot fit half the card
	// (nine columns) takes the whole width.
	purchases := `[data-call-id="values-1"] [data-list="purchases"] .table-wrap`
	for _, v := range []pageSize{pageSizes[0], pageSizes[1]} {
		p.resize(v)
		p.run(fmt.Sprintf(`document.querySelector(%q).scrollIntoView({block: 'center'})`, purchases))
		p.shot("values-" + v.name + "-purchases")
		p.waitFor(v.name+": the purchases fitting their section", fmt.Sprintf(`(() => {
			const w = document.querySelector(%q), r = w.getBoundingClientRect();
			const cells = [...w.querySelectorAll('th, td')];
			return w.scrollWidth <= w.clientWidth + 1 && w.dataset.scrolls === undefined
				&& cells.every(c => { const b = c.getBoundingClientRect(); return b.left >= r.left - 1 && b.right <= r.right + 1; }); })()`, purchases))
		for _, key := range []string{"amount", "date"} {
			// One line box per cell: a range over its text has one rectangle.
			if !p.truth(fmt.Sprintf(`[...document.querySelectorAll('%s td[data-key=%q]')].every(c => {
				const r = document.createRange(); r.selectNodeContents(c); return r.getClientRects().length === 1; })`, purchases, key)) {
				t.Errorf("%s: the %s cells take more than one line", v.name, key)
			}
		}
	}
	p.resize(pageSizes[0])
	p.waitFor("the nine-column table's section across the card", `(() => {
		const desk = document.querySelector('[data-call-id="values-1"] [data-section="desk"]');
		const card = document.querySelector('[data-call-id="values-1"] .sections');
		return desk.dataset.wide === 'true' && desk.getBoundingClientRect().width > card.getBoundingClientRect().width * 0.9; })()`)

	wrap := `[data-call-id="values-1"] [data-list="tickets"] .table-wrap`
	p.atEverySize("a wide table", "values")
	p.resize(pageSizes[2])
	// On a phone the table is wider than its section: it scrolls inside it,
	// with every column there, and the keyboard can reach it.
	p.waitFor("the table scrolling inside its section", fmt.Sprintf(`(() => { const w = document.querySelector(%q);
		return w.scrollWidth > w.clientWidth && w.dataset.scrolls === 'true' && w.tabIndex === 0 && w.getAttribute('role') === 'region'; })()`, wrap))
	if n := p.num(fmt.Sprintf(`document.querySelectorAll('%s th').length`, wrap)); n != 9 {
		t.Errorf("the table has %v columns, want 9", n)
	}
	p.run(fmt.Sprintf(`(() => { const w = document.querySelector(%q); w.scrollIntoView({block: 'center'}); w.scrollLeft = 1e6; })()`, wrap))
	if !p.truth(fmt.Sprintf(`(() => { const w = document.querySelector(%q).getBoundingClientRect();
		const last = document.querySelector('%s th:last-child').getBoundingClientRect();
		return last.right <= w.right + 1 && last.left >= w.left - 1; })()`, wrap, wrap)) {
		t.Error("the last column cannot be scrolled into view")
	}
	p.shot("values-390x844-table-scrolled")
}

// ---- ring alert ------------------------------------------------------------

// alertRecorder stands in for the desktop notification (granted, as after
// the agent allowed it) and counts the ring sound's oscillators, in every
// document of the tab.
const alertRecorder = `
window.__alerts = { rings: 0, notes: [] };
(() => {
  const AC = window.AudioContext;
  if (AC) {
    const make = AC.prototype.createOscillator;
    AC.prototype.createOscillator = function () { window.__alerts.rings++; return make.call(this); };
  }
  class RecordedNotification {
    constructor(title, opts) { Object.assign(this, { title: title, body: (opts || {}).body, tag: (opts || {}).tag, closed: false }); window.__alerts.notes.push(this); }
    close() { this.closed = true; }
  }
  RecordedNotification.permission = 'granted';
  RecordedNotification.requestPermission = () => Promise.resolve('granted');
  window.Notification = RecordedNotification;
})();`

type alertCount struct {
	Rings int `json:"rings"`
	Notes []struct {
		Title  string `json:"title"`
		Body   string `json:"body"`
		Closed bool   `json:"closed"`
	} `json:"notes"`
}

func (p *pageTab) alerts() alertCount {
	p.t.Helper()
	var a alertCount
	if err := json.Unmarshal([]byte(p.str(`JSON.stringify(window.__alerts)`)), &a); err != nil {
		p.t.Fatal(err)
	}
	return a
}

// With two tabs open, a ringing call makes one sound and one desktop
// notification; both tabs show it, in their title and to a screen reader.
func TestPageRingAlertInChromium(t *testing.T) {
	s := startPageServer(t, true)
	browser := startBrowser(t)
	tabs := []*pageTab{newTab(t, browser, "first tab"), newTab(t, browser, "second tab")}
	for _, p := range tabs {
		cdpCall(p, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: alertRecorder})
	}
	first, second := tabs[0], tabs[1]
	first.openAs(s, "alice")
	// The page asks once; the answer is kept for every tab of the browser.
	first.waitFor("the offer of ring alerts", `!document.querySelector('#alert-offer').hidden`)
	first.click("#offer-yes")
	first.waitFor("alerts on", `(() => { const p = JSON.parse(localStorage.getItem('screenpop.prefs') || '{}');
		return p.asked && p.sound && p.notify && document.querySelector('#alert-offer').hidden; })()`)
	second.openAs(s, "alice")
	if !second.truth(`document.querySelector('#alert-offer').hidden`) {
		t.Error("the second pageTab asks again")
	}

	for n, id := range []string{"r1", "r2"} {
		s.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: id, Caller: screenpop.Caller{Number: "030 123456"},
			DID: "100", Agents: []string{"alice"}, At: time.Now(), Source: "test"})
		for _, p := range tabs {
			p.waitFor("the ringing card", fmt.Sprintf(`!!document.querySelector('%s[data-state="ringing"]')`, popCard(id)))
			p.waitFor("the title and the announcement", `document.title.includes('Ringing') && document.title.includes('ACME Logistics GmbH')
				&& document.querySelector('#announcer').textContent.includes('ACME Logistics GmbH')
				&& document.querySelector('#announcer').textContent.includes('Support DE')`)
		}
		deadline := time.Now().Add(patience)
		for {
			a, b := first.alerts(), second.alerts()
			if len(a.Notes)+len(b.Notes) > n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("call %s: no pageTab alerted (first %+v, second %+v)", id, a, b)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The other tab was refused at once; give a second tab's late claim
		// time to show, should there be one.
		time.Sleep(time.Second)
		a, b := first.alerts(), second.alerts()
		if got := len(a.Notes) + len(b.Notes); got != n+1 {
			t.Errorf("call %s: %d desktop notifications in all, want %d (one per call)", id, got, n+1)
		}
		for _, c := range []alertCount{a, b} {
			if len(c.Notes) > 0 && c.Rings == 0 {
				t.Errorf("call %s: the pageTab that notified did not ring", id)
			}
		}
		if a.Rings > 0 && b.Rings > 0 && n == 0 {
			t.Errorf("call %s: both tabs rang (%d and %d oscillators)", id, a.Rings, b.Rings)
		}
		if n == 0 {
			first.atEverySize("ringing", "ringing")
		}
		notes := append(a.Notes, b.Notes...)
		if last := notes[len(notes)-1]; !strings.Contains(last.Title, "ACME Logistics GmbH") || !strings.Contains(last.Body, "030 123456") {
			t.Errorf("call %s: notification %+v", id, last)
		}
		// Bob answers: the notification goes, the titles calm down.
		s.d.HandleCall(answered(id, "bob", time.Now()))
		for _, p := range tabs {
			p.waitFor("the notification closed and the title back", `window.__alerts.notes.every(n => n.closed) && !document.title.includes('Ringing')`)
		}
	}

	// The choice is remembered across a reload.
	first.open(s.url + "/")
	first.waitFor("the reloaded page live", `document.querySelector('#conn').dataset.connection === 'open'`)
	if !first.truth(`document.querySelector('#alert-offer').hidden && document.querySelector('#pref-sound').checked && document.querySelector('#pref-notify').checked`) {
		t.Error("the alert settings were not remembered across a reload")
	}
}

// ---- connection ------------------------------------------------------------

// Cut off, every live card says it may be out of date; back, the snapshot
// puts the page right.
func TestPageConnectionInChromium(t *testing.T) {
	s := startPageServer(t, true)
	p := newTab(t, startBrowser(t), "agent page")
	p.openAs(s, "alice")
	now := time.Now()
	s.d.HandleCall(ringing("on-call", now, "alice"))
	s.d.HandleCall(answered("on-call", "alice", now.Add(time.Second)))
	s.d.HandleCall(ringing("rings", now.Add(2*time.Second), "alice"))
	p.waitFor("a call answered and one ringing", fmt.Sprintf(`document.querySelector('%s[data-state="answered"]') !== null
		&& document.querySelector('%s[data-state="ringing"]') !== null`, popCard("on-call"), popCard("rings")))

	s.down.Store(true)
	s.kick()
	p.waitFor("the cards marked out of date", fmt.Sprintf(`(() => {
		const live = [...document.querySelectorAll('%s, %s')];
		return document.querySelector('#conn').dataset.connection === 'offline'
			&& live.length === 2 && live.every(el => el.dataset.stale === 'true' && !el.querySelector('[data-role="stale"]').hidden)
			&& !document.querySelector('#stale-banner').hidden && !document.title.includes('Ringing');
	})()`, popCard("on-call"), popCard("rings")))
	if got := p.text(popCard("rings") + ` [data-role="stale"]`); !strings.Contains(got, "may have been answered or hung up") {
		t.Errorf("the ringing card says %q while cut off", got)
	}
	p.atEverySize("offline", "offline")

	// Meanwhile bob takes the ringing call, the agent's call ends, and a
	// new one rings. The page comes back without ?since=: a snapshot.
	snapshots := metricValue(t, s.reg, "screenpop_pop_messages_total", map[string]string{"type": TypeSnapshot})
	s.d.HandleCall(answered("rings", "bob", now.Add(3*time.Second)))
	s.d.HandleCall(ended("on-call", "alice", screenpop.OutcomeAnswered, now.Add(4*time.Second)))
	s.d.HandleCall(ringing("new", now.Add(5*time.Second), "alice"))
	s.stripSince.Store(true)
	s.down.Store(false)
	p.waitFor("the page put right", fmt.Sprintf(`(() => {
		const ended = document.querySelector('%s');
		return document.querySelector('#conn').dataset.connection === 'open'
			&& !document.querySelector('[data-stale]') && document.querySelector('#stale-banner').hidden
			&& !document.querySelector('%s')
			&& !!ended && ended.dataset.state === 'ended'
			&& !!document.querySelector('%s[data-state="ringing"]');
	})()`, popCard("on-call"), popCard("rings"), popCard("new")))
	if got := metricValue(t, s.reg, "screenpop_pop_messages_total", map[string]string{"type": TypeSnapshot}); got <= snapshots {
		t.Errorf("no snapshot sent on reconnect (%v -> %v)", snapshots, got)
	}
	if got := p.str(`document.querySelector('#recent-list').textContent`); !strings.Contains(got, "Ended while you were offline") {
		t.Errorf("the call that ended while away is listed as %q", got)
	}
	p.shot("reconnected-1366x768")
}

// ---- sign-in ---------------------------------------------------------------

func forgedToken(t *testing.T, agent string) string {
	t.Helper()
	other, err := NewTokenAuth([]byte("another-secret-another-secret-xx"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := other.Issue(agent, "Alice", []string{"agent"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// expiredToken is rightly signed and expired an hour ago.
func expiredToken(t *testing.T, agent string) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": TokenIssuer, "aud": TokenAudience, "sub": agent, "name": "Alice", "roles": []string{"agent"},
		"iat": time.Now().Add(-13 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix(),
	}).SignedString(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const invalidShown = `!document.querySelector('#invalid').hidden && document.querySelector('#empty').hidden
	&& document.querySelector('#connecting').hidden && document.querySelector('#conn').dataset.connection === 'signed-out'`

// A link the server refuses says so and how to get a new one; it never
// shows "No calls right now", which would make the agent wait for calls
// that cannot come.
func TestPageInvalidLinkInChromium(t *testing.T) {
	s := startPageServerWith(t, true, func(c *HubConfig) { c.LoginURL = func(string) string { return "/auth/login" } })
	p := newTab(t, startBrowser(t), "agent page")

	// Refused by the server, told by its sign-in check.
	refused := metricValue(t, s.reg, "screenpop_pop_dropped_connections_total", map[string]string{"reason": "auth"})
	p.open(s.url + "/#token=" + forgedToken(t, "alice"))
	p.waitFor("the invalid link", invalidShown+` && !document.querySelector('#invalid-login').hidden`)
	if got := p.str(`document.querySelector('#invalid-login').getAttribute('href')`); got != "/auth/login" {
		t.Errorf("sign-in link %q, want the server's /auth/login", got)
	}
	if got := p.text("#invalid"); !strings.Contains(got, "Your sign-in link is invalid or expired") {
		t.Errorf("invalid-link text: %q", got)
	}
	p.atEverySize("invalid link", "invalid-link")
	// It does not go on knocking: one refusal, and the state stays.
	time.Sleep(1500 * time.Millisecond)
	if !p.truth(invalidShown) {
		t.Error("the invalid-link state did not stay")
	}
	if got := metricValue(t, s.reg, "screenpop_pop_dropped_connections_total", map[string]string{"reason": "auth"}); got != refused+1 {
		t.Errorf("%v refused connections, want 1: the page retried a refused link", got-refused)
	}

	// Expired: known from the token itself, without a connection.
	refused = metricValue(t, s.reg, "screenpop_pop_dropped_connections_total", map[string]string{"reason": "auth"})
	p.open(s.url + "/#token=" + expiredToken(t, "alice"))
	p.waitFor("the expired link", invalidShown+` && document.querySelector('#invalid').textContent.includes('expired')`)
	if got := metricValue(t, s.reg, "screenpop_pop_dropped_connections_total", map[string]string{"reason": "auth"}); got != refused {
		t.Errorf("the page tried an expired token (%v refused)", got-refused)
	}

	// Not a token at all (a link cut short when copied).
	p.open(s.url + "/#token=not-a-token")
	p.waitFor("the broken link", invalidShown)

	// A daemon without the sign-in check: the page cannot tell a refused
	// link from a dead server, so it keeps trying and says both.
	old := startPageServer(t, false)
	p.open(old.url + "/#token=" + forgedToken(t, "alice"))
	p.waitFor("the link questioned", `document.querySelector('#connecting').textContent.includes('Cannot reach screenpop')
		&& document.querySelector('#connecting').textContent.includes('sign-in link may no longer be valid')`)
	if !p.truth(`document.querySelector('#empty').hidden`) {
		t.Error("'No calls right now' shown without a connection")
	}
	p.shot("unreachable-1366x768")
}

// ---- languages -------------------------------------------------------------

// The keys the page asks for by a name made at run time: one per value of
// the protocol (pop/README.md).
var dynamicKeys = []string{
	"outcome.answered", "outcome.abandoned", "outcome.busy", "outcome.noanswer", "outcome.failed", "outcome.interrupted",
	"history.outcome.answered", "history.outcome.abandoned", "history.outcome.busy", "history.outcome.noanswer",
	"history.outcome.failed", "history.outcome.interrupted",
	"status.ok", "status.empty", "status.timeout", "status.error", "status.unavailable", "status.skipped",
	"withdrawn.not_ringing", "withdrawn.answered_elsewhere", "withdrawn.transferred", "withdrawn.rang_out",
	"withdrawn.transfer_cancelled", "withdrawn.expired",
	"error.forbidden", "error.unknown_call", "error.not_ready", "error.bad_request", "error.unavailable",
	"error.rate_limited",
	"resolution.unknown.title", "resolution.unknown.hint", "resolution.withheld.title", "resolution.withheld.hint",
	"resolution.ambiguous.title", "resolution.ambiguous.hint", "resolution.failed.title", "resolution.failed.hint",
}

// usedKeys lists the message keys that app.js and index.html name.
func usedKeys(t *testing.T) []string {
	t.Helper()
	js, err := os.ReadFile("web/app.js")
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile("web/index.html")
	if err != nil {
		t.Fatal(err)
	}
	keys := slices.Clone(dynamicKeys)
	// t('outcome.' + outcome) names a family, listed in dynamicKeys.
	for _, m := range regexp.MustCompile(`\bt\('([\w.]*\w)'`).FindAllSubmatch(js, -1) {
		keys = append(keys, string(m[1]))
	}
	for _, m := range regexp.MustCompile(`\bt\(\w+ \? '([\w.]+)' : '([\w.]+)'`).FindAllSubmatch(js, -1) {
		keys = append(keys, string(m[1]), string(m[2]))
	}
	for _, m := range regexp.MustCompile(`data-i18n="([\w.]+)"`).FindAllSubmatch(html, -1) {
		keys = append(keys, string(m[1]))
	}
	for _, m := range regexp.MustCompile(`data-i18n-attr="([^"]+)"`).FindAllSubmatch(html, -1) {
		for _, pair := range strings.Split(string(m[1]), ",") {
			_, key, _ := strings.Cut(pair, ":")
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// proseLiterals finds string literals in app.js that read like words for
// a person: those belong in the catalogs. Several lower-case names in a row
// are class lists and selectors ("btn-small btn-outline", "#settings
// summary"), not words for people; a sentence has a capital or punctuation.
func proseLiterals(t *testing.T) []string {
	t.Helper()
	js, err := os.ReadFile("web/app.js")
	if err != nil {
		t.Fatal(err)
	}
	words := regexp.MustCompile(`[A-Za-z]{2,} [A-Za-z]{2,}`)
	code := regexp.MustCompile(`^[#.]?[a-z][a-z0-9-]*$`)
	var found []string
	for n, line := range strings.Split(string(js), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "//") {
			continue
		}
		for _, m := range regexp.MustCompile(`'((?:[^'\\]|\\.)*)'`).FindAllStringSubmatch(line, -1) {
			if !words.MatchString(m[1]) {
				continue
			}
			names := strings.Fields(m[1])
			if !slices.ContainsFunc(names, func(w string) bool { return !code.MatchString(w) }) {
				continue
			}
			found = append(found, fmt.Sprintf("app.js:%d: %q", n+1, m[1]))
		}
	}
	return found
}

// English and Polish, from the browser's languages or the agent's choice,
// every text from the catalogs; and ready for a right-to-left language.
func TestPageLanguagesInChromium(t *testing.T) {
	for _, lit := range proseLiterals(t) {
		t.Errorf("a text for people written in the page logic, not in the catalogs: %s", lit)
	}
	s := startPageServer(t, true)
	p := newTab(t, startBrowser(t), "agent page")
	ua := p.str(`navigator.userAgent`)
	cdpCall(p, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: "pl-PL,pl"})
	p.openAs(s, "alice")

	var catalogs map[string][]string
	if err := json.Unmarshal([]byte(p.str(`JSON.stringify(Object.fromEntries(Object.entries(window.screenpopCatalogs).map(([k, v]) => [k, Object.keys(v)])))`)), &catalogs); err != nil {
		t.Fatal(err)
	}
	if len(catalogs) < 2 {
		t.Fatalf("catalogs loaded: %v", slices.Collect(maps.Keys(catalogs)))
	}
	for _, key := range usedKeys(t) {
		for lang, keys := range catalogs {
			if !slices.Contains(keys, key) {
				t.Errorf("catalog %s lacks %q", lang, key)
			}
		}
	}
	for lang, keys := range catalogs {
		for _, key := range keys {
			if !slices.Contains(catalogs["en"], key) {
				t.Errorf("catalog %s has %q, which English lacks", lang, key)
			}
		}
	}

	// The browser says Polish.
	p.waitFor("the page in Polish", `document.documentElement.lang === 'pl' && document.documentElement.dir === 'ltr'
		&& document.querySelector('#conn').textContent === 'Połączono'
		&& document.querySelector('#empty h2').textContent === 'Brak połączeń w tej chwili'`)
	s.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "pl-1", Caller: screenpop.Caller{Number: "030 123456"},
		DID: "100", Agents: []string{"alice"}, At: time.Now(), Source: "test"})
	p.waitFor("a Polish card", fmt.Sprintf(`(() => { const el = document.querySelector('%s');
		return !!el && el.querySelector('[data-role="state"]').textContent === 'Dzwoni'
			&& el.querySelector('[data-section="credit"]').textContent.includes('Credit: brak odpowiedzi na czas')
			&& el.querySelector('[data-role="line"]').textContent === 'Linia: Support DE (100)'
			&& document.title.startsWith('(1) Dzwoni: ACME Logistics GmbH'); })()`, popCard("pl-1")))
	// Polish number formats: a comma for decimals, the złoty sign after.
	if got := p.text(popCard("pl-1") + ` [data-key="balance"] dd`); !strings.Contains(got, "1234,50") || !strings.Contains(got, "€") {
		t.Errorf("balance in Polish: %q", got)
	}
	p.atEverySize("Polish", "polish")

	// The agent picks English; it sticks across a reload, until "browser
	// language" again.
	p.click("#settings summary")
	p.do(chromedp.SetValue(chromedp.CSS("#pref-lang"), "en"))
	p.run(`document.querySelector('#pref-lang').dispatchEvent(new Event('change'))`)
	p.waitFor("the page in English", fmt.Sprintf(`document.documentElement.lang === 'en'
		&& document.querySelector('%s [data-role="state"]').textContent === 'Ringing'
		&& document.querySelector('#conn').textContent === 'Live'`, popCard("pl-1")))
	p.open(s.url + "/")
	p.waitFor("English after a reload", `document.documentElement.lang === 'en' && document.querySelector('#conn').textContent === 'Live'`)
	p.click("#settings summary")
	p.do(chromedp.SetValue(chromedp.CSS("#pref-lang"), ""))
	p.run(`document.querySelector('#pref-lang').dispatchEvent(new Event('change'))`)
	p.waitFor("Polish again", `document.documentElement.lang === 'pl'`)
	p.click("#settings summary")

	// Right to left: the card's coloured edge moves to the right, nothing
	// sticks out.
	p.run(`document.documentElement.dir = 'rtl'`)
	if !p.truth(fmt.Sprintf(`(() => { const cs = getComputedStyle(document.querySelector('%s'));
		return cs.borderRightWidth === '6px' && cs.borderLeftWidth === '0px'; })()`, popCard("pl-1"))) {
		t.Error("right to left: the card's edge is not on the right")
	}
	for _, v := range []pageSize{pageSizes[0], pageSizes[2]} {
		p.resize(v)
		p.noSideScroll(v.name + ", right to left")
		p.shot("rtl-" + v.name)
	}
}

// ---- accessibility ---------------------------------------------------------

// axeSource is chromiumtest.AxeSource: axe-core, installed once.
func axeSource(t *testing.T) string { t.Helper(); return chromiumtest.AxeSource(t) }

// axe runs axe-core in the page and fails on every serious or critical
// violation (chromiumtest.Tab.Axe).
func (p *pageTab) axe(src, when string) { p.t.Helper(); p.Axe(src, when) }

// focusVisible: the focused element shows a focus ring.
const focusVisible = `(() => { const el = document.activeElement; if (!el || el === document.body) return false;
	const cs = getComputedStyle(el); return cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2; })()`

// tabTo presses Tab until selector has the focus, checking at every stop
// that the focus can be seen.
func (p *pageTab) tabTo(selector string) {
	p.t.Helper()
	for range 80 {
		p.key(kb.Tab)
		if p.truth(fmt.Sprintf(`document.activeElement && document.activeElement.matches(%q)`, selector)) {
			return
		}
		// Past the last element the focus leaves the page for the browser's
		// own controls: the body is active then.
		if !p.truth(`document.activeElement === document.body`) && !p.truth(focusVisible) {
			p.t.Errorf("no visible focus on %s", p.str(`document.activeElement.outerHTML.slice(0, 160)`))
		}
	}
	p.t.Fatalf("%s never got the keyboard focus", selector)
}

// axe-core finds no serious or critical problem in any state of the page,
// at every size; an agent can work by keyboard alone, always seeing where
// the focus is.
func TestPageAccessibilityInChromium(t *testing.T) {
	src := axeSource(t)
	s := startPageServer(t, true)
	p := newTab(t, startBrowser(t), "agent page")

	p.open(s.url + "/")
	p.waitFor("the sign-in hint", `!document.querySelector('#signin').hidden`)
	p.axe(src, "signed out")
	p.openAs(s, "alice")
	p.waitFor("the empty page", `!document.querySelector('#empty').hidden`)
	p.axe(src, "no calls, alerts offered")

	// Keyboard alone: skip to the calls, pick the caller, save a note,
	// bring a waiting call forward, open and close the settings.
	s.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "ambiguous", Caller: screenpop.Caller{Number: "+4930999"},
		Agents: []string{"alice"}, At: time.Now(), Source: "test"})
	p.waitFor("the candidates", `!!document.querySelector('[data-call-id="ambiguous"] button[data-customer-id="k2"]')`)
	p.axe(src, "an ambiguous caller")
	p.open(s.url + "/")
	p.waitFor("the page again", `!!document.querySelector('[data-call-id="ambiguous"] button[data-customer-id="k2"]')`)
	p.key(kb.Tab)
	if !p.truth(`document.activeElement.classList.contains('skip-link')`) || !p.truth(focusVisible) {
		t.Error("the first Tab does not land, visibly, on the skip link")
	}
	p.key(kb.Enter)
	p.tabTo(`[data-call-id="ambiguous"] button[data-customer-id="k2"]`)
	p.key(kb.Enter)
	p.waitFor("the picked customer", `(document.querySelector('[data-call-id="ambiguous"] [data-field="customer-name"]') || {}).textContent === 'Picked k2'`)
	s.d.HandleCall(answered("ambiguous", "alice", time.Now()))
	s.d.HandleCall(ringing("waiting", time.Now(), "alice"))
	p.waitFor("a call waiting", fmt.Sprintf(`!!document.querySelector('%s[data-place="queue"]')`, popCard("waiting")))
	p.tabTo(`[data-call-id="ambiguous"] textarea`)
	p.key("Wants a call-back on Friday.")
	p.tabTo(`[data-call-id="ambiguous"] .note-form button[type="submit"]`)
	p.key(kb.Enter)
	p.waitFor("the saved note", `(document.querySelector('[data-call-id="ambiguous"] [data-note] .note-text') || {}).textContent === 'Wants a call-back on Friday.'`)
	p.tabTo(popCard("waiting") + ` [data-action="focus"]`)
	p.key(kb.Enter)
	p.waitFor("the waiting call brought forward", fmt.Sprintf(`document.querySelector('%s').dataset.place === 'focus'
		&& document.activeElement === document.querySelector('%s')`, popCard("waiting"), popCard("waiting")))
	p.run(`document.querySelector('#main').focus()`)
	p.run(`document.activeElement.blur()`)
	p.tabTo(`#settings summary`)
	p.key(kb.Enter)
	p.waitFor("the settings open", `document.querySelector('#settings').open`)
	p.axe(src, "settings open")
	p.key(kb.Escape)
	p.waitFor("the settings closed, focus back on their button", `!document.querySelector('#settings').open
		&& document.activeElement === document.querySelector('#settings summary')`)

	// The busiest screen at every size: a call worked on, one waiting,
	// recent calls, a wide table.
	s.d.HandleCall(ringing("missed", time.Now(), "alice"))
	p.waitFor("another call ringing", fmt.Sprintf(`!!document.querySelector('%s')`, popCard("missed")))
	s.d.HandleCall(ended("missed", "", screenpop.OutcomeAbandoned, time.Now()))
	p.waitFor("a recent call", `!document.querySelector('#recent').hidden`)
	for _, v := range pageSizes {
		p.resize(v)
		p.axe(src, "calls at "+v.name)
		p.shot("a11y-" + v.name)
	}
	p.resize(pageSizes[0])

	// Cut off, and in Polish.
	s.down.Store(true)
	s.kick()
	p.waitFor("offline", `!document.querySelector('#stale-banner').hidden`)
	p.axe(src, "offline")
	p.run(`(document.querySelector('#pref-lang').value = 'pl', document.querySelector('#pref-lang').dispatchEvent(new Event('change')))`)
	p.waitFor("Polish", `document.documentElement.lang === 'pl'`)
	p.axe(src, "Polish")
	s.down.Store(false)

	// A refused link.
	p.open(s.url + "/#token=" + forgedToken(t, "alice"))
	p.waitFor("the invalid link", invalidShown)
	p.axe(src, "invalid link")
}
