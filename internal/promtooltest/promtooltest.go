// Package promtooltest runs Prometheus's promtool for the tests of the
// shipped alert and recording rules (configs/prometheus) and of the
// dashboard's queries (configs/grafana). promtool comes with Debian's
// prometheus package, which make test installs (.ci/services).
package promtooltest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Path is promtool's path. Without promtool the test is skipped on a
// developer's machine (go test ./... without make test) and fails in CI
// (CI set in the environment), where make test must have installed it.
func Path(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("promtool is missing in CI (.ci/services installs Debian's prometheus package): %v", err)
	}
	t.Skipf("promtool is not installed (make test installs it: apt-get install prometheus): %v", err)
	return ""
}

// timeout bounds one promtool run: checking a few rule files takes well
// under a second, so a run that takes this long has hung.
const timeout = 2 * time.Minute

// Run runs promtool with args in dir and returns its combined output. The
// error is promtool's: a non-zero exit means the check failed, and the
// output says why.
func Run(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Path(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}
