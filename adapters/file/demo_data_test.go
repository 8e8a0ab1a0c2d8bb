package file

import (
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"regexp"
	"testing"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

// The demo data set in configs/demo must load through this adapter the way
// configs/demo.yaml configures it, and hang together: every customer the
// directory knows has a balance, credit data and purchases, so that a demo
// card is complete; overdue totals add up to the overdue invoices.
func TestDemoDataSet(t *testing.T) {
	files := os.DirFS("../../configs")
	load := func(path, param, match string) aggregator.Source {
		t.Helper()
		src, err := New(adapters.Spec{Name: path, Options: options(t, "{path: "+path+", param: "+param+", match: "+match+"}"), Files: files})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return src
	}
	directory := load("demo/directory.json", "phone", "phone")
	accounting := load("demo/accounting.json", "customer_id", "customer_id")
	invoices := load("demo/invoices.json", "customer_id", "customer_id")
	purchases := load("demo/purchases.json", "customer_id", "customer_id")
	recommendations := load("demo/recommendations.json", "customer_id", "customer_id")
	credit := load("demo/credit.json", "customer_id", "customer_id")

	var entries []map[string]any
	data, err := fs.ReadFile(files, "demo/directory.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatal(err)
	}

	e164 := regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	countries := map[string]string{"DE": "EUR", "AT": "EUR", "FR": "EUR", "NL": "EUR", "PL": "PLN", "GB": "GBP", "US": "USD", "CH": "CHF"}
	customers := map[string]map[string]any{}
	phones := map[string]map[string]bool{}
	for _, e := range entries {
		id, _ := e["id"].(string)
		phone, _ := e["phone"].(string)
		if id == "" || e["name"] == "" || !e164.MatchString(phone) {
			t.Errorf("directory entry lacks id, name or an E.164 phone: %v", e)
		}
		switch e["kind"] {
		case "person":
		case "company":
			if e["contact"] == "" || e["role"] == "" {
				t.Errorf("%s: a company entry names its contact person and role: %v", id, e)
			}
		default:
			t.Errorf("%s: kind %v", id, e["kind"])
		}
		if _, ok := countries[e["country"].(string)]; !ok {
			t.Errorf("%s: country %v", id, e["country"])
		}
		if _, ok := e["tags"].([]any); !ok {
			t.Errorf("%s: tags should be a list", id)
		}
		customers[id] = e
		if phones[phone] == nil {
			phones[phone] = map[string]bool{}
		}
		phones[phone][id] = true
	}
	if n := len(customers); n < 25 || n > 40 {
		t.Errorf("%d customers, want 25..40", n)
	}
	shared := 0
	for phone, ids := range phones {
		if len(ids) > 1 {
			shared++
			if got := fetch(t, directory, aggregator.Key{Phone: phone}); len(got) != len(ids) {
				t.Errorf("shared number %s: %d records, want %d", phone, len(got), len(ids))
			}
		}
	}
	if shared == 0 {
		t.Error("no phone number is shared by two customers: the demo has no ambiguous caller")
	}

	for id, c := range customers {
		key := aggregator.Key{CustomerID: id}
		currency := countries[c["country"].(string)]

		acc := fetch(t, accounting, key)
		if len(acc) != 1 {
			t.Errorf("%s: %d accounting records, want 1", id, len(acc))
			continue
		}
		if acc[0]["currency"] != currency {
			t.Errorf("%s: accounting in %v, want %s", id, acc[0]["currency"], currency)
		}
		sum := 0.0
		for _, inv := range fetch(t, invoices, key) {
			sum += inv["amount"].(float64)
			if inv["currency"] != currency {
				t.Errorf("%s: invoice %v in %v", id, inv["invoice"], inv["currency"])
			}
			if d, _ := inv["days_overdue"].(float64); d <= 0 {
				t.Errorf("%s: invoice %v is not overdue", id, inv["invoice"])
			}
		}
		overdue := acc[0]["overdue_total"].(float64)
		if math.Abs(sum-overdue) > 0.005 {
			t.Errorf("%s: overdue_total %.2f, invoices add up to %.2f", id, overdue, sum)
		}
		if balance := acc[0]["balance"].(float64); balance+0.005 < overdue {
			t.Errorf("%s: balance %.2f below overdue %.2f", id, balance, overdue)
		}

		cr := fetch(t, credit, key)
		if len(cr) != 1 {
			t.Errorf("%s: %d credit records, want 1", id, len(cr))
		} else if cr[0]["currency"] != currency || cr[0]["available"].(float64) > cr[0]["credit_limit"].(float64) {
			t.Errorf("%s: credit %v", id, cr[0])
		}

		ps := fetch(t, purchases, key)
		if len(ps) == 0 {
			t.Errorf("%s: no purchases", id)
		}
		for _, p := range ps {
			if p["currency"] != currency {
				t.Errorf("%s: purchase in %v", id, p["currency"])
			}
		}
		if len(fetch(t, recommendations, key)) == 0 {
			t.Errorf("%s: no recommendations", id)
		}
	}
}

// Every file source of the embedded demo configuration builds with its
// options as written in configs/demo.yaml.
func TestDemoConfigurationSources(t *testing.T) {
	cfg, err := configs.Demo()
	if err != nil {
		t.Fatal(err)
	}
	all := append([]configs.Source{}, cfg.Sources...)
	if cfg.Directory != nil {
		all = append(all, *cfg.Directory)
	}
	built := 0
	for _, s := range all {
		if s.Type != "file" {
			continue
		}
		if _, err := New(adapters.Spec{Name: s.Name, Options: s.Options, Files: cfg.Files}); err != nil {
			t.Errorf("%s (line %d): %v", s.Name, s.Line, err)
		}
		built++
	}
	if built == 0 {
		t.Fatal("the demo configuration has no file source")
	}
}
