package chromiumtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// AxeVersion is the axe-core release the accessibility checks run.
// Pinned: a new release may add rules, and a test must not turn red by
// itself.
const AxeVersion = "4.14.1"

// AxeSource returns axe-core's script, installed with npm into the user's
// cache directory (outside the repository) on first use and shared by
// every page's tests. Without npm the test is skipped: no check is better
// said than a check that cannot run.
func AxeSource(t testing.TB) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "screenpop-tests", "axe-core-"+AxeVersion)
	script := filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")
	if b, err := os.ReadFile(script); err == nil {
		return string(b)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Skipf("npm is not installed, so axe-core %s cannot be: no accessibility check (apt-get install npm)", AxeVersion)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	// Installed beside and renamed into place, so that two test runs at
	// once never read a half-installed package.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "axe-install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", tmp, "--no-audit", "--no-fund", "--no-package-lock", "--save-exact", "axe-core@"+AxeVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install axe-core@%s: %v\n%s", AxeVersion, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, os.ErrExist) {
		if _, statErr := os.Stat(script); statErr != nil {
			t.Fatalf("install axe-core: %v", err)
		}
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatalf("axe-core installed without its script: %v", err)
	}
	return string(b)
}

// Axe runs axe-core (src, from AxeSource) in the tab's page against WCAG
// 2.2 A and AA and the best practices, and fails the test on every
// serious or critical violation; lesser ones are logged. when says what
// the page shows, for the message.
func (p *Tab) Axe(src, when string) {
	p.T.Helper()
	if !Eval[bool](p, `typeof window.axe === 'object'`) {
		Eval[bool](p, src+"\n;true")
	}
	res := Eval[string](p, `axe.run(document, {
		runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
		resultTypes: ['violations'],
	}).then(r => JSON.stringify({passed: r.passes.length, violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
		nodes: v.nodes.slice(0, 6).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '').replace(/\s+/g, ' '))}))}))`, chromedp.EvalAwaitPromise)
	var result struct {
		Passed     int `json:"passed"`
		Violations []struct {
			ID     string   `json:"id"`
			Impact string   `json:"impact"`
			Help   string   `json:"help"`
			Nodes  []string `json:"nodes"`
		} `json:"violations"`
	}
	if err := json.Unmarshal([]byte(res), &result); err != nil {
		p.T.Fatal(err)
	}
	// A check that ran no rule would pass anything.
	if result.Passed < 10 {
		p.T.Errorf("%s: axe passed only %d rules: did it run?", when, result.Passed)
	}
	p.T.Logf("%s: axe: %d rules passed, %d violated", when, result.Passed, len(result.Violations))
	for _, v := range result.Violations {
		msg := fmt.Sprintf("%s: axe %s (%s): %s\n  %s", when, v.ID, v.Impact, v.Help, strings.Join(v.Nodes, "\n  "))
		if v.Impact == "serious" || v.Impact == "critical" {
			p.T.Error(msg)
		} else {
			p.T.Log(msg)
		}
	}
}
