package grafanatest

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestQueriesSubstituteVariables(t *testing.T) {
	var d Dashboard
	err := json.Unmarshal([]byte(`{
		"templating": {"list": [
			{"name": "datasource", "type": "datasource", "query": "prometheus"},
			{"name": "source", "type": "query", "query": {"query": "label_values(screenpop_calls_total{job=\"x\"}, source)"}},
			{"name": "sl", "type": "custom", "query": "10,20", "options": [{"value": "10"}, {"value": "20"}]}
		]},
		"panels": [
			{"type": "row", "title": "r", "panels": [
				{"type": "stat", "title": "in a collapsed row", "targets": [{"refId": "A", "expr": "sum(x{source=~\"${source:regex}\", le=\"$sl\"}[$__range])"}]}
			]},
			{"type": "timeseries", "title": "t", "targets": [
				{"refId": "A", "expr": "rate(y{source=~\"$source\"}[$__rate_interval])"},
				{"refId": "B", "expr": "z{instance=~\"$instance\"}"}
			]}
		]}`), &d)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := d.Queries()
	if err == nil || !strings.Contains(err.Error(), "t (B): variables the dashboard does not define: $instance") {
		t.Errorf("error %v, want one naming $instance in t (B)", err)
	}
	want := []string{`sum(x{source=~"x", le="10"}[1h])`, `rate(y{source=~"x"}[5m])`}
	if len(qs) != len(want) {
		t.Fatalf("queries %+v, want %d", qs, len(want))
	}
	for i, q := range qs {
		if q.Expr != want[i] {
			t.Errorf("query %d: %q, want %q", i, q.Expr, want[i])
		}
	}
	if got := qs[0].Panel; got != "in a collapsed row (A)" {
		t.Errorf("panel name %q", got)
	}
	vm, err := d.VariableMetrics()
	if err != nil || vm["source"] != "screenpop_calls_total" || len(vm) != 1 {
		t.Errorf("VariableMetrics = %v, %v", vm, err)
	}
}
