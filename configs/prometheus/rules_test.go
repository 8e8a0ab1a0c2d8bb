// Package prometheus_test checks the shipped Prometheus rules with
// promtool (syntax, and the unit tests under tests/), and that every rule
// is complete and tested: an alert has a for:, a severity, a summary, a
// description and a runbook, and unit tests in which it fires and in which
// it does not; a recording rule has a unit test of its own.
package prometheus_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/internal/promqlnames"
	"github.com/screenpop/screenpop/internal/promtooltest"
)

// ruleFiles and testFiles are what this folder ships; a new file must be
// listed here (TestFilesListed).
var (
	ruleFiles = []string{"recording.rules.yml", "alerts.rules.yml"}
	testFiles = []string{"tests/recording_test.yml", "tests/alerts_test.yml"}
)

func TestFilesListed(t *testing.T) {
	rules, _ := filepath.Glob("*.yml")
	tests, _ := filepath.Glob("tests/*.yml")
	slices.Sort(rules)
	slices.Sort(tests)
	if want := slices.Sorted(slices.Values(ruleFiles)); !slices.Equal(rules, want) {
		t.Errorf("rule files %v, listed %v", rules, want)
	}
	if want := slices.Sorted(slices.Values(testFiles)); !slices.Equal(tests, want) {
		t.Errorf("rule test files %v, listed %v", tests, want)
	}
}

func TestPromtoolCheckRules(t *testing.T) {
	out, err := promtooltest.Run(t, ".", append([]string{"check", "rules"}, ruleFiles...)...)
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	out, err := promtooltest.Run(t, ".", append([]string{"test", "rules"}, testFiles...)...)
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type unitTestFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTests []struct {
			AlertName string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTests []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// decodeFile decodes the YAML file at path into v; strict: refusing keys
// v has no field for (a misspelt annotations: would drop them silently).
func decodeFile(t *testing.T, path string, v any, strict bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(strict)
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// rules returns every rule of the shipped rule files.
func rules(t *testing.T) []rule {
	var out []rule
	for _, f := range ruleFiles {
		var rf ruleFile
		decodeFile(t, f, &rf, true)
		for _, g := range rf.Groups {
			out = append(out, g.Rules...)
		}
	}
	return out
}

// severities are the values of the severity label, in the words of the
// alerts file's header.
var severities = []string{"critical", "warning"}

func TestAlertsAreComplete(t *testing.T) {
	alerts := 0
	for _, r := range rules(t) {
		if r.Alert == "" {
			continue
		}
		alerts++
		if r.For == "" || r.For == "0s" || r.For == "0m" {
			t.Errorf("%s: no for:; a blip would page someone", r.Alert)
		}
		if !slices.Contains(severities, r.Labels["severity"]) {
			t.Errorf("%s: severity %q, want one of %v", r.Alert, r.Labels["severity"], severities)
		}
		for _, a := range []string{"summary", "description", "runbook"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		if !strings.HasPrefix(r.Alert, "Screenpop") {
			t.Errorf("%s: alert names start with Screenpop, to tell them apart in Alertmanager", r.Alert)
		}
	}
	if alerts == 0 {
		t.Fatal("no alert found")
	}
}

// Every alert has a unit test in which it fires and one in which it does
// not, with its annotations rendered; every recording rule is evaluated by
// a unit test.
func TestEveryRuleIsTested(t *testing.T) {
	fires, silent, annotated := map[string]bool{}, map[string]bool{}, map[string]bool{}
	exprNames := map[string]bool{}
	for _, f := range testFiles {
		var tf unitTestFile
		decodeFile(t, f, &tf, false)
		for _, rf := range tf.RuleFiles {
			if !slices.Contains(ruleFiles, filepath.Base(rf)) {
				t.Errorf("%s: rule file %s is not one this folder ships", f, rf)
			}
		}
		for _, tc := range tf.Tests {
			for _, at := range tc.AlertRuleTests {
				if len(at.ExpAlerts) == 0 {
					silent[at.AlertName] = true
				} else {
					fires[at.AlertName] = true
				}
				for _, e := range at.ExpAlerts {
					if len(e.ExpAnnotations) > 0 {
						annotated[at.AlertName] = true
					}
				}
			}
			for _, et := range tc.PromQLExprTests {
				names, err := promqlnames.Names(et.Expr)
				if err != nil {
					t.Errorf("%s: %v", f, err)
				}
				for _, n := range names {
					exprNames[n] = true
				}
			}
		}
	}
	all := rules(t)
	for _, r := range all {
		switch {
		case r.Alert != "":
			if !fires[r.Alert] {
				t.Errorf("alert %s: no unit test in which it fires", r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("alert %s: no unit test in which it does not fire", r.Alert)
			}
			if !annotated[r.Alert] {
				t.Errorf("alert %s: no unit test checks its annotations", r.Alert)
			}
		case r.Record != "":
			if !exprNames[r.Record] {
				t.Errorf("recording rule %s: no promql_expr_test evaluates it", r.Record)
			}
			if strings.Count(r.Record, ":") != 2 {
				t.Errorf("recording rule %s: name it level:metric:operations", r.Record)
			}
		}
	}
	for name := range fires {
		if !slices.ContainsFunc(all, func(r rule) bool { return r.Alert == name }) {
			t.Errorf("a unit test expects alert %s, which no rule file has", name)
		}
	}
}
