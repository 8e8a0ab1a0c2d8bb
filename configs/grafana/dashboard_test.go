// Package grafana_test checks the shipped Grafana dashboard: it imports
// into Grafana 10 with any Prometheus data source (the ${datasource}
// variable), its panels lie on the grid without overlapping, and every
// query is PromQL that promtool accepts. That the metrics it reads exist
// is checked against the running daemon (cmd/screenpopd
// TestMonitoringMetricsExist).
package grafana_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/internal/grafanatest"
	"github.com/screenpop/screenpop/internal/promqlnames"
	"github.com/screenpop/screenpop/internal/promtooltest"
)

const dashboardFile = "screenpop.json"

func load(t *testing.T) *grafanatest.Dashboard {
	t.Helper()
	d, err := grafanatest.Load(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDashboardModel(t *testing.T) {
	d := load(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed to import and link it", d.UID, d.Title)
	}
	// Grafana 10.0 writes schema 38; an older one would be migrated on
	// import, a newer one refused by 10.0.
	if d.SchemaVersion < 36 || d.SchemaVersion > 39 {
		t.Errorf("schemaVersion %d, want Grafana 10's (36..39)", d.SchemaVersion)
	}
	var dsVar bool
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Name == "datasource" && v.QueryText() == "prometheus" {
			dsVar = true
		}
		if v.Type == "query" && !viaVariable(v.Datasource) {
			t.Errorf("variable %s: datasource %+v, want the ${datasource} variable", v.Name, v.Datasource)
		}
	}
	if !dsVar {
		t.Error(`no variable {"type": "datasource", "name": "datasource", "query": "prometheus"}`)
	}
	if _, err := d.VariableMetrics(); err != nil {
		t.Error(err)
	}

	ids := map[int]string{}
	var placed []grafanatest.Panel
	for _, p := range d.Panels {
		placed = append(placed, p)
		placed = append(placed, p.Panels...)
	}
	for _, p := range placed {
		if other, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d (also %q)", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v off the 24 columns", p.Title, g)
		}
	}
	for i, a := range placed {
		for _, b := range placed[i+1:] {
			if overlap(a.GridPos, b.GridPos) {
				t.Errorf("panels %q %+v and %q %+v overlap", a.Title, a.GridPos, b.Title, b.GridPos)
			}
		}
	}

	panels := d.AllPanels()
	if len(panels) == 0 {
		t.Fatal("no panel")
	}
	for _, p := range panels {
		if strings.TrimSpace(p.Title) == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if !viaVariable(p.Datasource) {
			t.Errorf("panel %q: datasource %+v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if !viaVariable(q.Datasource) {
				t.Errorf("panel %q query %s: datasource %+v, want the ${datasource} variable", p.Title, q.RefID, q.Datasource)
			}
			if strings.TrimSpace(q.Expr) == "" {
				t.Errorf("panel %q query %s: no expression", p.Title, q.RefID)
			}
		}
	}
}

func viaVariable(ds *grafanatest.Datasource) bool {
	return ds != nil && ds.Type == "prometheus" && ds.UID == "${datasource}"
}

func overlap(a, b grafanatest.GridPos) bool {
	return a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H
}

// Every query is PromQL: each, its variables replaced, becomes a
// recording rule of a file promtool checks with Prometheus' own parser.
func TestDashboardQueriesArePromQL(t *testing.T) {
	d := load(t)
	queries, err := d.Queries()
	if err != nil {
		t.Fatal(err)
	}
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range queries {
		if _, err := promqlnames.Names(q.Expr); err != nil {
			t.Errorf("%s: %v", q.Panel, err)
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d:check", i), Expr: q.Expr})
	}
	doc := map[string]any{"groups": []any{map[string]any{"name": "dashboard-queries", "rules": rules}}}
	data, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "queries.yml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := promtooltest.Run(t, dir, "check", "rules", "queries.yml"); err != nil {
		// promtool names the rule: say which panel it was.
		for i, q := range queries {
			if strings.Contains(out, fmt.Sprintf("query_%d:", i)) {
				t.Errorf("%s: %s", q.Panel, q.Raw)
			}
		}
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}
