package floor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/internal/chromiumtest"
)

// The sizes the supervisor page is looked at: a laptop and a phone.
var pageSizes = []struct {
	name string
	w, h int64
}{{"1366x768", 1366, 768}, {"390x844", 390, 844}}

type floorTab struct{ *chromiumtest.Tab }

func (p floorTab) truth(expr string) bool { p.T.Helper(); return chromiumtest.Eval[bool](p.Tab, expr) }
func (p floorTab) str(expr string) string {
	p.T.Helper()
	return chromiumtest.Eval[string](p.Tab, expr)
}

func (p floorTab) resize(w, h int64) {
	p.T.Helper()
	p.Do(chromedp.EmulateViewport(w, h))
	p.WaitFor(fmt.Sprintf("the size %dx%d", w, h), fmt.Sprintf(`innerWidth === %d && innerHeight === %d`, w, h))
}

func (p floorTab) noSideScroll(when string) {
	p.T.Helper()
	if !p.truth(`document.scrollingElement.scrollWidth <= innerWidth`) {
		p.T.Errorf("%s: the page scrolls sideways: %s", when, p.str(`(() => [...document.querySelectorAll('body *')]
			.filter(el => el.getBoundingClientRect().right > innerWidth + 1).slice(0, 6)
			.map(el => el.tagName + '.' + el.className).join(', '))()`))
	}
}

// kpi is a figure's raw value (data-value) as the page shows it.
func kpi(name string) string {
	return fmt.Sprintf(`document.querySelector('[data-kpi="%s"]').dataset.value`, name)
}

// The page in a browser: a supervisor sees the calls waiting, today's
// figures, every agent and the systems, live, in English and Polish, with
// no serious accessibility problem at a laptop's and a phone's size; an
// agent without the role and a visitor without a sign-in are told why
// they see nothing.
func TestSupervisorPageInChromium(t *testing.T) {
	src := axeSource(t)
	s := startFloorServer(t, func(o *Options) {
		o.Health = func() []Health {
			return []Health{{Kind: KindPBX, Name: "pbx-berlin", Status: HealthOK}, {Kind: KindSource, Name: "accounting", Status: HealthOK},
				{Kind: KindSource, Name: "credit", Status: HealthDown}, {Kind: KindSource, Name: "sales", Status: HealthDegraded},
				{Kind: KindHistory, Name: "postgres", Status: HealthOK}}
		}
	})
	s.pages.set("alice", true)
	now := time.Now()
	ring := func(id string, ago time.Duration, agents ...string) {
		s.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: id, Source: "pbx", At: now.Add(-ago), Agents: agents,
			Caller: screenpop.Caller{Number: "+48 601 234 567"}}, now)
	}
	ring("pbx/1", 75*time.Second, "alice", "bob")
	ring("pbx/2", 130*time.Second, "bob")
	s.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventAnswered, CallID: "pbx/2", Source: "pbx", At: now.Add(-120 * time.Second), Agent: "bob"}, now)
	ring("pbx/3", 10*time.Second)
	s.ObserveCall(screenpop.CallEvent{Kind: screenpop.EventEnded, CallID: "pbx/3", Source: "pbx", At: now, Outcome: screenpop.OutcomeAbandoned}, now)

	browser := chromiumtest.Start(t, chromedp.WindowSize(1366, 768))
	p := floorTab{chromiumtest.NewTab(t, browser, "supervisor page")}
	p.Do(chromedp.Navigate(s.url + "/supervisor/#token=" + s.token(t, "sam", "agent")))
	p.WaitFor("the floor, live", `document.querySelector('#conn').dataset.connection === 'open' && !document.querySelector('#floor').hidden`)
	p.WaitFor("the figures", kpi("waiting")+` === '1' && `+kpi("on-call")+` === '1' && `+kpi("answered")+` === '1' && `+kpi("abandoned")+` === '1'`)
	if got := p.str(kpi("service-level")); got != "0.5" {
		t.Errorf("service level %q, want 0.5 (bob's call answered within 10s, one abandoned)", got)
	}
	if !p.truth(`location.hash === ''`) {
		t.Error("the token stays in the address bar")
	}
	row := `document.querySelector('#waiting tr[data-call-id="pbx/1"]')`
	if got := p.str(row + `.textContent`); !strings.Contains(got, "Alice (alice)") || !strings.Contains(got, "no page open") || !strings.Contains(got, "+** *** *** 567") {
		t.Errorf("the waiting call reads %q", got)
	}
	for id, state := range map[string]string{"alice": "ringing", "bob": "on_call"} {
		if got := p.str(fmt.Sprintf(`document.querySelector('#agents tr[data-agent-id="%s"]').dataset.state`, id)); got != state {
			t.Errorf("%s is %q, want %q", id, got, state)
		}
	}
	if got := p.str(`[...document.querySelectorAll('#health li')].map(li => li.dataset.name + '=' + li.dataset.status + ':' + li.querySelector('.health-status').textContent).join(' ')`); got != "pbx-berlin=ok:OK accounting=ok:OK credit=down:Down sales=degraded:Failing postgres=ok:OK" {
		t.Errorf("systems: %q", got)
	}
	// The wait goes on between two views, on the page's clock.
	p.WaitFor("the wait ticking", `parseInt(`+kpi("longest-wait")+`) >= 76`)
	for _, v := range pageSizes {
		p.resize(v.w, v.h)
		p.noSideScroll(v.name)
		p.Shot("supervisor-" + v.name)
		axe(p, src, "English at "+v.name)
	}

	// Polish, from the browser's languages; every key in both catalogs.
	ua := p.str(`navigator.userAgent`)
	ctx, cancel := context.WithTimeout(p.Ctx, chromiumtest.DefaultPatience)
	_, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua, AcceptLanguage: "pl-PL,pl"})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	p.Do(chromedp.Reload())
	p.WaitFor("the page in Polish", `document.documentElement.lang === 'pl' && document.querySelector('#conn').textContent === 'Na żywo'
		&& document.querySelector('[data-kpi="abandoned"] .kpi-label').textContent === 'Porzucone dzisiaj'`)
	p.Shot("supervisor-pl-390x844")
	axe(p, src, "Polish at 390x844")
	checkCatalogs(t, p)
	p.resize(1366, 768)

	// An agent, and nobody: told why, no figure shown.
	agent := floorTab{chromiumtest.NewTab(t, browser, "agent on the supervisor page")}
	agent.Do(chromedp.Navigate(s.url + "/supervisor/#token=" + s.token(t, "carol", "agent")))
	agent.WaitFor("refused as no supervisor", `document.querySelector('#refused').dataset.reason === 'notSupervisor' && document.querySelector('#floor').hidden`)
	agent.Shot("supervisor-refused")
	axe(agent, src, "refused")
	nobody := floorTab{chromiumtest.NewTab(t, browser, "nobody")}
	nobody.Do(chromedp.Navigate(s.url + "/supervisor/"))
	nobody.WaitFor("asked to sign in", `document.querySelector('#refused').dataset.reason === 'signedOut'`)
}

// checkCatalogs: every key the page names is in every catalog, every
// catalog has English's keys and no other, and no text for people is
// written in floor.js.
func checkCatalogs(t *testing.T, p floorTab) {
	t.Helper()
	var catalogs map[string][]string
	if err := json.Unmarshal([]byte(p.str(`JSON.stringify(Object.fromEntries(Object.entries(window.screenpopFloorCatalogs).map(([k, v]) => [k, Object.keys(v)])))`)), &catalogs); err != nil {
		t.Fatal(err)
	}
	if len(catalogs) != 2 {
		t.Fatalf("catalogs: %v", catalogs)
	}
	js, err := os.ReadFile("web/floor.js")
	if err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile("web/index.html")
	if err != nil {
		t.Fatal(err)
	}
	// Keys built at run time: t('state.' + a.state) and the like.
	used := []string{"refused.signedOutTitle", "refused.signedOutText", "refused.notSupervisorTitle", "refused.notSupervisorText"}
	for _, s := range agentStatesShown {
		used = append(used, "state."+s)
	}
	for _, k := range []string{KindSource, KindPBX, KindRedis, KindHistory} {
		used = append(used, "health.kind."+k)
	}
	for s := range healthOrder {
		used = append(used, "health.status."+s)
	}
	for _, m := range regexp.MustCompile(`\bt\('([\w.]*\w)'`).FindAllSubmatch(js, -1) {
		used = append(used, string(m[1]))
	}
	for _, m := range regexp.MustCompile(`\bt\(\w+(?:\.\w+)? \? '([\w.]+)' : '([\w.]+)'`).FindAllSubmatch(js, -1) {
		used = append(used, string(m[1]), string(m[2]))
	}
	for _, m := range regexp.MustCompile(`data-i18n="([\w.]+)"`).FindAllSubmatch(html, -1) {
		used = append(used, string(m[1]))
	}
	for _, key := range used {
		for lang, keys := range catalogs {
			if !slices.Contains(keys, key) {
				t.Errorf("catalog %s lacks %q", lang, key)
			}
		}
	}
	for lang, keys := range catalogs {
		if len(keys) != len(catalogs["en"]) {
			t.Errorf("catalog %s has %d keys, English %d", lang, len(keys), len(catalogs["en"]))
		}
		for _, k := range keys {
			if !slices.Contains(catalogs["en"], k) {
				t.Errorf("catalog %s has %q, which English lacks", lang, k)
			}
		}
	}
	words := regexp.MustCompile(`'([A-Z][a-z]+ [a-z]+[^']*)'`)
	for n, line := range strings.Split(string(js), "\n") {
		if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "//") {
			continue
		}
		if m := words.FindStringSubmatch(line); m != nil {
			t.Errorf("floor.js:%d: a text for people outside the catalogs: %q", n+1, m[1])
		}
	}
}

// agentStatesShown are the agent states the page names.
var agentStatesShown = []string{ShowOnCall, ShowRinging, ShowWrapUp, ShowReady, ShowOffline}

// axeSource is chromiumtest.AxeSource: axe-core, installed once for
// every page's tests.
func axeSource(t *testing.T) string { t.Helper(); return chromiumtest.AxeSource(t) }

// axe runs axe-core in the page and fails on every serious or critical
// violation.
func axe(p floorTab, src, when string) { p.T.Helper(); p.Axe(src, when) }
