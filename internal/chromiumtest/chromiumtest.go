// Package chromiumtest runs a headless Chromium for the tests of the agent
// page: pop's, on the page alone, and cmd/screenpopd's, on the whole
// daemon signing in through an identity provider. A Tab fails its test on
// any JavaScript exception, waits across page loads, and saves
// screenshots into $SCREENPOP_SCREENSHOTS when set (for a person to look
// at), else into the test's temporary directory.
package chromiumtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Path is where make test installs Chromium.
const Path = "/usr/bin/chromium"

// DefaultPatience is how long a Tab waits for one thing by default.
const DefaultPatience = 20 * time.Second

// Start starts a headless Chromium for one test, stopped when it ends,
// with opts added to the allocator's options (a window size, flags).
// Without Chromium the test fails, or is skipped with -short.
func Start(t testing.TB, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		if testing.Short() {
			t.Skipf("no %s: %v", Path, err)
		}
		t.Fatalf("install chromium (make test does): %v", err)
	}
	all := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
	}, opts...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), all...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	return bctx
}

// Tab is one tab of the browser.
type Tab struct {
	T    testing.TB
	Ctx  context.Context
	Name string
	// Patience bounds each action and each WaitFor; DefaultPatience.
	Patience time.Duration
	dir      string

	mu         sync.Mutex
	exceptions []string
}

// NewTab opens a tab (with chromedp.WithNewBrowserContext(): in a browser
// context of its own, with its own cookies, as another person's browser).
// Every JavaScript exception on its pages fails the test at its end.
func NewTab(t testing.TB, browser context.Context, name string, opts ...chromedp.ContextOption) *Tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser, opts...)
	p := &Tab{T: t, Ctx: ctx, Name: name, Patience: DefaultPatience}
	if err := chromedp.Listen(ctx, func(ev any) {
		if ex, ok := ev.(*runtime.EventExceptionThrown); ok && ex.ExceptionDetails != nil {
			msg := ex.ExceptionDetails.Text
			if ex.ExceptionDetails.Exception != nil {
				msg += " " + ex.ExceptionDetails.Exception.Description
			}
			p.mu.Lock()
			p.exceptions = append(p.exceptions, msg)
			p.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, ex := range p.exceptions {
			t.Errorf("%s: JavaScript exception on the page: %s", name, ex)
		}
	})
	return p
}

// Do runs actions in the tab.
func (p *Tab) Do(actions ...chromedp.Action[chromedp.Void]) {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Patience)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.T.Fatalf("%s: %v", p.Name, err)
	}
}

// Eval evaluates expr in the tab's page.
func Eval[T any](p *Tab, expr string, opts ...chromedp.EvaluateOption) T {
	p.T.Helper()
	ctx, cancel := context.WithTimeout(p.Ctx, p.Patience)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		p.T.Fatalf("%s: evaluate %s: %v", p.Name, expr, err)
	}
	return v
}

// WaitFor polls expr until it is true. A navigation (a link, a redirect
// of a sign-in) replaces the page under a poll, which then fails saying
// nothing about the page: it polls again in the new one.
func (p *Tab) WaitFor(what, expr string) {
	p.T.Helper()
	deadline := time.Now().Add(p.Patience)
	for {
		ctx, cancel := context.WithDeadline(p.Ctx, deadline)
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(time.Until(deadline))))
		cancel()
		if err == nil {
			return
		}
		if navigatedAway(err) && time.Now().Before(deadline) {
			continue
		}
		ctx, cancel = context.WithTimeout(p.Ctx, 5*time.Second)
		body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + '\n' + (document.body ? document.body.innerText : '')`))
		cancel()
		p.T.Fatalf("%s: page never showed %s: %v\npage:\n%s", p.Name, what, err, body)
	}
}

func navigatedAway(err error) bool {
	for _, s := range []string{"Cannot find context", "Execution context was destroyed", "navigated or closed"} {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}

// Shot saves what the person sees (the viewport) as name.png.
func (p *Tab) Shot(name string) {
	p.T.Helper()
	if p.dir == "" {
		p.dir = os.Getenv("SCREENPOP_SCREENSHOTS")
		if p.dir == "" {
			p.dir = p.T.TempDir()
		} else if err := os.MkdirAll(p.dir, 0o755); err != nil {
			p.T.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(p.Ctx, p.Patience)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.T.Fatalf("%s: screenshot %s: %v", p.Name, name, err)
	}
	path := filepath.Join(p.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.T.Fatal(err)
	}
	p.T.Logf("screenshot: %s", path)
}
