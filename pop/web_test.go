package pop

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/gorilla/websocket"

	screenpop "github.com/screenpop/screenpop"
)

const chromiumPath = "/usr/bin/chromium"

// richCard is what a well-connected call center shows: a company contact
// with tags, money with a currency, tables, a timed-out and an unavailable
// system, and earlier calls with notes.
func richCard(ev screenpop.CallEvent) screenpop.Card {
	day := func(s string) time.Time { d, _ := time.Parse("2006-01-02", s); return d }
	c := screenpop.Card{
		CallID:     ev.CallID,
		Caller:     ev.Caller,
		Phone:      "+4930123456",
		Resolution: screenpop.ResolvedCustomer,
		Customer: &screenpop.Customer{ID: "C-1042", Name: "ACME Logistics GmbH", Kind: "company", Contact: "Jane Doe", Role: "Head of purchasing",
			Email: "jane.doe@acme.example", City: "Berlin", Country: "DE", Tags: []string{"supplier", "vip"}},
		Sections: []screenpop.CardSection{
			{Name: "accounting", Title: "Accounting", Status: screenpop.SectionOK, TookMS: 42, Fields: []screenpop.Field{
				{Key: "balance", Label: "Open balance", Value: 1234.5, Format: "money"},
				{Key: "overdue_total", Label: "Overdue", Value: 980, Format: "money"},
				{Key: "currency", Label: "Currency", Value: "EUR"},
				{Key: "payment_terms", Label: "Payment terms", Value: "30 days net"},
			}, Lists: []screenpop.List{{Key: "overdue_invoices", Label: "Overdue invoices",
				Columns: []screenpop.Column{{Key: "number", Label: "Invoice"}, {Key: "due", Label: "Due", Format: "date"}, {Key: "amount", Label: "Amount", Format: "money"}},
				Rows: []map[string]any{
					{"number": "INV-2291", "due": "2025-03-01", "amount": 640.0, "currency": "EUR"},
					{"number": "INV-2310", "due": "2025-03-15", "amount": 340.0, "currency": "EUR"},
				}}}},
			{Name: "sales", Title: "Sales", Status: screenpop.SectionOK, TookMS: 65, Fields: []screenpop.Field{
				{Key: "account_manager", Label: "Account manager", Value: "Tom Seller"},
				{Key: "revenue_12m", Label: "Revenue (12 months)", Value: 48210.0, Format: "money"},
				{Key: "currency", Label: "Currency", Value: "EUR"},
				{Key: "last_order", Label: "Last order", Value: day("2025-02-11"), Format: "date"},
			}, Lists: []screenpop.List{
				{Key: "recent_purchases", Label: "Recent purchases",
					Columns: []screenpop.Column{{Key: "date", Label: "Date", Format: "date"}, {Key: "product", Label: "Product"}, {Key: "qty", Label: "Qty", Format: "number"}},
					Rows: []map[string]any{
						{"date": "2025-02-11", "product": "Euro pallet 1200×800", "qty": 400},
						{"date": "2025-01-20", "product": "Stretch film 23µ", "qty": 60},
					}},
				{Key: "likely_next", Label: "Likely next purchases",
					Columns: []screenpop.Column{{Key: "product", Label: "Product"}, {Key: "probability", Label: "Likelihood", Format: "percent"}},
					Rows: []map[string]any{
						{"product": "Edge protectors", "probability": 0.72},
						{"product": "Pallet collars", "probability": 0.41},
					}},
			}},
			{Name: "credit", Title: "Credit", Status: screenpop.SectionTimeout, Error: "no answer within 800ms", TookMS: 800},
			{Name: "support", Title: "Support tickets", Status: screenpop.SectionUnavailable, Error: "circuit open"},
		},
		History: []screenpop.PastCall{{
			CallID: "old-1", Phone: "+4930123456", At: time.Date(2025, 2, 10, 9, 12, 0, 0, time.UTC), Agent: "1002",
			Outcome: screenpop.OutcomeAnswered, Duration: 4*time.Minute + 12*time.Second,
			Notes: []screenpop.Note{{Agent: "1002", At: time.Date(2025, 2, 10, 9, 17, 0, 0, time.UTC), Text: "Asked for a quote on 400 pallets; sent on Feb 11."}},
		}},
		Incomplete: []string{"credit"},
		BuiltAt:    time.Now(),
		TookMS:     812,
	}
	if ev.DID != "" {
		c.Line = &screenpop.Line{Number: ev.DID, Label: map[string]string{"100": "Support DE"}[ev.DID]}
	}
	if ev.Caller.Withheld {
		c.Resolution, c.Customer, c.History, c.Phone = screenpop.ResolvedWithheld, nil, nil, ""
		c.Sections = []screenpop.CardSection{{Name: "accounting", Title: "Accounting", Status: screenpop.SectionSkipped}}
	}
	if !ev.Caller.Withheld && ev.Caller.Number == "" {
		// As the aggregator builds it: nothing to look up.
		c.Resolution, c.Customer, c.History, c.Phone = screenpop.ResolvedUnknown, nil, nil, ""
		c.Sections = []screenpop.CardSection{{Name: "accounting", Title: "Accounting", Status: screenpop.SectionSkipped}}
	}
	if ev.CallID == "ambiguous" {
		c.Resolution, c.Customer, c.History = screenpop.ResolvedAmbiguous, nil, nil
		c.Sections = []screenpop.CardSection{{Name: "accounting", Title: "Accounting", Status: screenpop.SectionSkipped}}
		c.Candidates = []screenpop.Customer{
			{ID: "k1", Name: "Jane Doe", City: "Berlin"},
			{ID: "k2", Name: "John Doe", City: "Hamburg", Tags: []string{"vip"}},
		}
	}
	return c
}

func TestAgentPageInChromium(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		if testing.Short() {
			t.Skipf("no %s: %v", chromiumPath, err)
		}
		t.Fatalf("install chromium (make test does): %v", err)
	}
	e := startHub(t, nil)
	e.b.card = richCard
	// Bob's page is open elsewhere: the hub learns his name from his token.
	bob := e.dial(t, "bob", "")
	readType(t, bob, TypeSnapshot)

	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	var mu sync.Mutex
	var exceptions []string
	if err := chromedp.Listen(ctx, func(ev any) {
		if ex, ok := ev.(*runtime.EventExceptionThrown); ok && ex.ExceptionDetails != nil {
			msg := ex.ExceptionDetails.Text
			if ex.ExceptionDetails.Exception != nil {
				msg += " " + ex.ExceptionDetails.Exception.Description
			}
			mu.Lock()
			exceptions = append(exceptions, msg)
			mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, ex := range exceptions {
			t.Errorf("JavaScript exception on the page: %s", ex)
		}
	}()

	waitFor := func(what, expr string) {
		t.Helper()
		// A navigation replaces the page's JavaScript context; a poll that
		// started in the old one fails with "Cannot find context", which
		// says nothing about the page, so poll again in the new one.
		deadline := time.Now().Add(patience)
		for {
			_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(time.Until(deadline))))
			if err == nil {
				return
			}
			if strings.Contains(err.Error(), "Cannot find context") && time.Now().Before(deadline) {
				continue
			}
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('main').innerText`))
			t.Fatalf("page never showed %s: %v\npage text:\n%s", what, err, html)
		}
	}
	eval := func(expr string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return s
	}

	// Without a token the page says how to sign in and does not connect.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	waitFor("the sign-in hint", `!document.querySelector('#signin').hidden && document.querySelector('#conn').dataset.connection === 'signed-out'`)
	if v := metricValue(t, e.reg, "screenpop_pop_dropped_connections_total", map[string]string{"reason": "auth"}); v != 0 {
		t.Errorf("the page without a token tried to connect (%v refused)", v)
	}

	tok := e.token(t, "alice")
	// Through about:blank, so that opening the link is a full page load.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank"), chromedp.Navigate(e.srv.URL+"/#token="+tok)); err != nil {
		t.Fatal(err)
	}
	waitFor("the connection open", `document.querySelector('#conn').dataset.connection === 'open'`)
	waitFor("the empty state", `!document.querySelector('#empty').hidden`)
	if href := eval(`location.href`); strings.Contains(href, "token") {
		t.Errorf("token left in the address bar: %s", href)
	}
	if got := eval(`sessionStorage.getItem('screenpop.token') || ''`); got != tok {
		t.Errorf("token not kept in sessionStorage")
	}
	if got := eval(`document.querySelector('#agent').textContent`); !strings.Contains(got, "Alice") {
		t.Errorf("agent shown as %q", got)
	}

	now := time.Now()
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "c1", Caller: screenpop.Caller{Number: "030 123456", Name: "ACME LOGISTICS"},
		DID: "100", Agents: []string{"alice", "bob"}, At: now, Source: "test"})
	waitFor("the ringing card", `(() => {
		const el = document.querySelector('[data-call-id="c1"][data-state="ringing"]');
		return !!el && el.querySelector('[data-field="customer-name"]').textContent === 'ACME Logistics GmbH'
			&& !!el.querySelector('[data-section="accounting"][data-status="ok"]');
	})()`)
	card := `document.querySelector('[data-call-id="c1"]')`
	for what, expr := range map[string]string{
		"the balance in euros":    card + `.querySelector('[data-section="accounting"] [data-key="balance"] dd').textContent`,
		"the credit timeout":      card + `.querySelector('[data-section="credit"][data-status="timeout"]').textContent`,
		"the unavailable section": card + `.querySelector('[data-section="support"][data-status="unavailable"]').textContent`,
		"the overdue invoices":    card + `.querySelector('[data-list="overdue_invoices"]').textContent`,
		"the likely purchases":    card + `.querySelector('[data-list="likely_next"]').textContent`,
		"the tags":                card + `.querySelector('.tags').textContent`,
		"the history":             card + `.querySelector('[data-role="history"]').textContent`,
		"the number":              card + `.querySelector('[data-field="number"]').textContent`,
		"the incomplete warning":  card + `.querySelector('[data-role="incomplete"]:not([hidden])').textContent`,
		"the line dialled":        card + `.querySelector('[data-role="line"]:not([hidden])').textContent`,
	} {
		got := eval(expr)
		want := map[string][]string{
			"the balance in euros":    {"€1,234.50"},
			"the credit timeout":      {"Credit: no answer in time"},
			"the unavailable section": {"Support tickets: system unavailable right now"},
			"the overdue invoices":    {"INV-2291", "€640.00", "Mar 1, 2025"},
			"the likely purchases":    {"Edge protectors", "72 %"},
			"the tags":                {"supplier", "vip"},
			"the history":             {"Asked for a quote on 400 pallets", "4 min 12 s"},
			"the number":              {"030 123456"},
			"the incomplete warning":  {"Incomplete card: no answer from credit"},
			"the line dialled":        {"Line: Support DE (100)"},
		}[what]
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", what, got, w)
			}
		}
	}
	if got := eval(`document.title`); !strings.Contains(got, "Ringing") || !strings.Contains(got, "ACME Logistics GmbH") {
		t.Errorf("title while ringing: %q", got)
	}

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	// Outside the repository, for a person to look at; not a test artefact.
	shotPath := filepath.Join(os.TempDir(), "screenpop-agent-page.png")
	if err := os.WriteFile(shotPath, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the ringing card: %s", shotPath)

	// Bob answers: alice's card goes, with a word about who took it.
	e.d.HandleCall(answered("c1", "bob", now.Add(2*time.Second)))
	waitFor("the withdrawal notice", `(() => {
		const n = document.querySelector('.notice[data-call-id="c1"][data-reason="answered_elsewhere"]');
		return !!n && n.textContent.includes('Bob');
	})()`)
	waitFor("the card withdrawn", `(() => {
		const el = document.querySelector('[data-call-id="c1"]');
		return !el || el.dataset.state === 'withdrawn';
	})()`)

	// An ambiguous caller: the agent picks the customer, answers, writes a
	// note, and the call ends.
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "ambiguous", Caller: screenpop.Caller{Number: "+4930999"},
		Agents: []string{"alice"}, At: time.Now(), Source: "test"})
	waitFor("the candidates", `!!document.querySelector('[data-call-id="ambiguous"] button[data-customer-id="k2"]')
		&& document.querySelector('[data-call-id="ambiguous"] [data-role="line"]').hidden`) // no DID, no line
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-call-id="ambiguous"] button[data-customer-id="k2"]`))); err != nil {
		t.Fatal(err)
	}
	waitFor("the picked customer's card", `(() => {
		const n = document.querySelector('[data-call-id="ambiguous"] [data-field="customer-name"]');
		return !!n && n.textContent === 'Picked k2';
	})()`)
	e.d.HandleCall(answered("ambiguous", "alice", time.Now()))
	waitFor("the answered state", `document.querySelector('[data-call-id="ambiguous"]').dataset.state === 'answered'`)
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`[data-call-id="ambiguous"] textarea`), "Wants the VIP price list by Friday."),
		chromedp.Click(chromedp.CSS(`[data-call-id="ambiguous"] .note-form button[type="submit"]`)),
	); err != nil {
		t.Fatal(err)
	}
	waitFor("the saved note", `(() => {
		const n = document.querySelector('[data-call-id="ambiguous"] [data-note] .note-text');
		return !!n && n.textContent === 'Wants the VIP price list by Friday.';
	})()`)
	e.rec.mu.Lock()
	notes := fmt.Sprint(e.rec.notes)
	e.rec.mu.Unlock()
	if !strings.Contains(notes, "Wants the VIP price list by Friday.") {
		t.Errorf("note not stored: %s", notes)
	}
	e.d.HandleCall(ended("ambiguous", "alice", screenpop.OutcomeAnswered, time.Now()))
	waitFor("the ended state", `(() => {
		const el = document.querySelector('[data-call-id="ambiguous"]');
		return el.dataset.state === 'ended' && el.dataset.outcome === 'answered' && !el.querySelector('[data-action="dismiss"]').hidden;
	})()`)

	// The server drops the page (as it drops a slow one); a call rings
	// meanwhile. The page comes back with ?since= and gets the pop from the
	// replay ring, not from a new snapshot.
	snapshots := metricValue(t, e.reg, "screenpop_pop_messages_total", map[string]string{"type": TypeSnapshot})
	e.hub.mu.Lock()
	for c := range e.hub.agents["alice"].conns {
		e.hub.detach(e.hub.agents["alice"], c, 4000, "test kick")
	}
	e.hub.mu.Unlock()
	waitFor("the page noticing it is offline", `document.querySelector('#conn').dataset.connection !== 'open'`)
	e.d.HandleCall(ringing("while-away", time.Now(), "alice"))
	waitFor("the pop rung while away", `!!document.querySelector('[data-call-id="while-away"][data-state="ringing"]')`)
	waitFor("the connection open again", `document.querySelector('#conn').dataset.connection === 'open'`)
	if got := metricValue(t, e.reg, "screenpop_pop_messages_total", map[string]string{"type": TypeSnapshot}); got != snapshots {
		t.Errorf("the page resumed with a snapshot (%v -> %v), want a replay", snapshots, got)
	}
	if !strings.Contains(eval(`document.querySelector('[data-call-id="ambiguous"]').dataset.state`), "ended") {
		t.Error("the ended card was lost over the reconnect")
	}

	// A withheld number: said so, no number shown, and no notes box; the
	// line dialled, which has no label, by its number.
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "w", Caller: screenpop.Caller{Withheld: true},
		DID: "200", Agents: []string{"alice"}, At: time.Now(), Source: "test"})
	waitFor("the withheld card", `(() => {
		const el = document.querySelector('[data-call-id="w"][data-state="ringing"]');
		return !!el && el.querySelector('[data-field="caller-title"]').textContent === 'Withheld number'
			&& !el.querySelector('[data-field="number"]')
			&& el.querySelector('[data-role="note-form"]').hidden
			&& !el.querySelector('[data-role="note-unavailable"]').hidden
			&& !!el.querySelector('[data-section="accounting"][data-status="skipped"]')
			&& el.querySelector('[data-role="line"]:not([hidden])').textContent === 'Line: 200';
	})()`)

	// A call whose phone system never named the caller (first heard of
	// mid-call, after a restart): not "withheld", not "not in the
	// directory", but what it is.
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "nonumber", Agents: []string{"alice"}, At: time.Now(), Source: "test"})
	waitFor("the card of a caller with no number", `(() => {
		const el = document.querySelector('[data-call-id="nonumber"][data-state="ringing"]');
		return !!el && el.querySelector('[data-field="caller-title"]').textContent === 'Unknown caller'
			&& el.querySelector('[data-field="caller-hint"]').textContent === 'The phone system sent no number for this call. Ask who is calling.'
			&& !el.querySelector('[data-field="number"]');
	})()`)
	// The phone system names the caller when alice answers: the card she
	// shows becomes the customer's, in place.
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: "nonumber", Agent: "alice",
		Caller: screenpop.Caller{Number: "030 123456"}, At: time.Now(), Source: "test"})
	waitFor("the customer's card once the caller is named", `(() => {
		const els = document.querySelectorAll('[data-call-id="nonumber"]');
		const el = document.querySelector('[data-call-id="nonumber"][data-state="answered"]');
		return els.length === 1 && !!el
			&& el.querySelector('[data-field="customer-name"]')?.textContent === 'ACME Logistics GmbH'
			&& !el.querySelector('[data-field="caller-title"]');
	})()`)

	// Bob consults alice before an attended transfer: her phone rings with
	// the card, saying so; bob gives up, and her card says that too.
	e.d.HandleCall(ringing("consult", time.Now(), "bob"))
	e.d.HandleCall(answered("consult", "bob", time.Now()))
	readUntil(t, bob, "consult", TypeAnswered)
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "consult", Agents: []string{"alice"},
		Transfer: &screenpop.Transfer{From: "bob", Consult: true}, At: time.Now(), Source: "test"})
	waitFor("the consultation card", `(() => {
		const el = document.querySelector('article[data-call-id="consult"][data-state="ringing"]');
		const tr = !!el && el.querySelector('[data-role="transfer"]:not([hidden])');
		return !!tr && el.querySelector('[data-role="state"]').textContent === 'Consultation'
			&& tr.textContent.startsWith('Bob') && tr.textContent.endsWith('is calling you about this caller (the caller is on hold).');
	})()`)
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "consult",
		Transfer: &screenpop.Transfer{From: "bob", Consult: true}, At: time.Now(), Source: "test"})
	waitFor("the consultation given up", `(() => {
		const el = document.querySelector('article[data-call-id="consult"]');
		return !!el && el.dataset.state === 'withdrawn' && el.querySelector('[data-role="transfer"]').hidden
			&& el.querySelector('[data-role="withdrawn"]').textContent === 'Transfer cancelled: your colleague kept the call';
	})()`)

	// A blind transfer from bob rings alice, whose phone rings out: the
	// card says who transferred it, then that it rang out.
	e.d.HandleCall(ringing("blind", time.Now(), "bob"))
	e.d.HandleCall(answered("blind", "bob", time.Now()))
	readUntil(t, bob, "blind", TypeAnswered)
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "blind", Agents: []string{"alice"},
		Transfer: &screenpop.Transfer{From: "bob"}, At: time.Now(), Source: "test"})
	waitFor("the transferred card", `(() => {
		const el = document.querySelector('article[data-call-id="blind"][data-state="ringing"]');
		const tr = !!el && el.querySelector('[data-role="transfer"]:not([hidden])');
		return !!tr && el.querySelector('[data-role="state"]').textContent === 'Ringing'
			&& tr.textContent.startsWith('Transferred to you by Bob');
	})()`)
	e.d.HandleCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "blind", RangOut: true,
		Transfer: &screenpop.Transfer{From: "bob"}, At: time.Now(), Source: "test"})
	waitFor("the rang-out notice", `(() => {
		const el = document.querySelector('article[data-call-id="blind"]');
		return !!el && el.dataset.state === 'withdrawn'
			&& el.querySelector('[data-role="withdrawn"]').textContent === 'Rang out: not answered at your phone'
			&& !!document.querySelector('.notice[data-call-id="blind"][data-reason="rang_out"]');
	})()`)
	// Bob let go at once and was told whom the call went to.
	var w WithdrawnData
	if err := json.Unmarshal(readUntil(t, bob, "blind", TypeWithdrawn).Data, &w); err != nil {
		t.Fatal(err)
	}
	if w.Reason != ReasonTransferred || w.By == nil || w.By.ID != "alice" {
		t.Errorf("bob's withdrawal: %+v, want transferred to alice", w)
	}
}

// readUntil reads c until a message of type typ about callID, skipping
// the others.
func readUntil(t *testing.T, c *websocket.Conn, callID, typ string) envelope {
	t.Helper()
	give := time.Now().Add(patience) // each read has its own; this bounds the skipping
	for {
		if env := read(t, c); env.Type == typ && env.CallID == callID {
			return env
		}
		if time.Now().After(give) {
			t.Fatalf("no %s for %s within %s", typ, callID, patience)
		}
	}
}
