// Package grafanatest reads a Grafana dashboard (JSON) for the tests that
// check it: its panels and their PromQL queries with Grafana's variables
// replaced by values PromQL accepts, so that promtool can check their
// syntax and a scrape of the daemon the metrics they read.
package grafanatest

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Dashboard is the part of a dashboard's JSON model the tests read.
type Dashboard struct {
	UID           string     `json:"uid"`
	Title         string     `json:"title"`
	SchemaVersion int        `json:"schemaVersion"`
	Panels        []Panel    `json:"panels"`
	Templating    Templating `json:"templating"`
}

// Panel is a panel, or a row holding collapsed panels.
type Panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *Datasource `json:"datasource"`
	GridPos    GridPos     `json:"gridPos"`
	Targets    []Target    `json:"targets"`
	Panels     []Panel     `json:"panels"` // a collapsed row's
}

// GridPos places a panel on the dashboard's 24 columns.
type GridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *Datasource `json:"datasource"`
}

// Datasource names the data source a panel or query reads.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Templating holds the dashboard's variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a dashboard variable: the Prometheus data source to pick
// (type datasource), a label_values(...) query, or a custom list.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *Datasource     `json:"datasource"`
	Options    []struct {
		Value string `json:"value"`
	} `json:"options"`
}

// QueryText is a variable's query: a string, or the object of newer
// Grafana versions ({"query": "label_values(...)"}).
func (v Variable) QueryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	json.Unmarshal(v.Query, &o)
	return o.Query
}

// Load reads the dashboard at path.
func Load(path string) (*Dashboard, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d Dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &d, nil
}

// AllPanels lists every panel that is not a row, including those inside
// collapsed rows.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return out
}

// Query is one PromQL query of the dashboard, where it is and what it
// reads.
type Query struct {
	Panel string // the panel's title and the query's refId
	Raw   string // as written, with Grafana's variables
	Expr  string // the variables replaced: valid PromQL when Raw is
}

// Queries returns every panel query of d, its variables replaced: the
// range and interval variables by durations, each dashboard variable by a
// value it may take (the first option of a custom one, "x" for others,
// which sit in regular expression matchers here). A variable the
// dashboard does not define is an error.
func (d *Dashboard) Queries() ([]Query, error) {
	values := map[string]string{
		"__rate_interval": "5m", "__interval": "1m", "__range": "1h",
		"__range_s": "3600", "__interval_ms": "60000",
	}
	for _, v := range d.Templating.List {
		values[v.Name] = "x"
		if len(v.Options) > 0 && v.Options[0].Value != "" {
			values[v.Name] = v.Options[0].Value
		}
	}
	var out []Query
	var errs []string
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			name := fmt.Sprintf("%s (%s)", p.Title, t.RefID)
			expr, err := substitute(t.Expr, values)
			if err != nil {
				errs = append(errs, name+": "+err.Error())
				continue
			}
			out = append(out, Query{Panel: name, Raw: t.Expr, Expr: expr})
		}
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return out, nil
}

// variableRE matches $name, ${name} and ${name:format}.
var variableRE = regexp.MustCompile(`\$(?:\{([A-Za-z0-9_]+)(?::[A-Za-z0-9_]+)?\}|([A-Za-z0-9_]+))`)

func substitute(expr string, values map[string]string) (string, error) {
	var missing []string
	out := variableRE.ReplaceAllStringFunc(expr, func(m string) string {
		sub := variableRE.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		v, ok := values[name]
		if !ok {
			missing = append(missing, "$"+name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("variables the dashboard does not define: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// labelValuesRE reads label_values(metric, label) and label_values(label).
var labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(?:([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s*,\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$`)

// VariableMetrics returns the metric each label_values(metric, label)
// variable reads, keyed by the variable's name. Another query variable is
// an error: the tests would not know what it reads.
func (d *Dashboard) VariableMetrics() (map[string]string, error) {
	out := map[string]string{}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		m := labelValuesRE.FindStringSubmatch(v.QueryText())
		if m == nil || m[1] == "" {
			return nil, fmt.Errorf("variable %s: query %q is not label_values(metric, label)", v.Name, v.QueryText())
		}
		out[v.Name] = m[1]
	}
	return out, nil
}
