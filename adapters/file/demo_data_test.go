package file

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"regexp"
	"testing"
	"time"

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
	value := load("demo/value.json", "customer_id", "customer_id")
	cases := load("demo/service_cases.json", "customer_id", "customer_id")
	claims := load("demo/warranty_claims.json", "customer_id", "customer_id")

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

	serviced := 0
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
		bought := 0.0
		for _, p := range ps {
			if p["currency"] != currency {
				t.Errorf("%s: purchase in %v", id, p["currency"])
			}
			bought += p["amount"].(float64)
		}

		v := fetch(t, value, key)
		if len(v) != 1 {
			t.Errorf("%s: %d customer value records, want 1", id, len(v))
		} else {
			checkValue(t, id, currency, bought, v[0])
		}
		serviced += len(fetch(t, cases, key)) + len(fetch(t, claims, key))
		if len(fetch(t, recommendations, key)) == 0 {
			t.Errorf("%s: no recommendations", id)
		}
	}

	// Every open case and claim belongs to a customer in the directory,
	// has a number of its own and is as many days open as its opening
	// date is before the data set's day.
	records := 0
	for _, path := range []string{"demo/service_cases.json", "demo/warranty_claims.json"} {
		var rows []map[string]any
		data, err := fs.ReadFile(files, path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &rows); err != nil {
			t.Fatal(err)
		}
		numbers := map[string]bool{}
		for _, r := range rows {
			records++
			number, _ := r["case_no"].(string)
			if number == "" {
				number, _ = r["claim_no"].(string)
			}
			id, _ := r["customer_id"].(string)
			if customers[id] == nil || number == "" || numbers[number] || r["product"] == "" || r["serial"] == "" || r["status"] == "" {
				t.Errorf("%s: a record without a directory customer, a number of its own, product, serial or status: %v", path, r)
			}
			numbers[number] = true
			opened, err := time.Parse(time.RFC3339, r["opened"].(string))
			if err != nil {
				t.Errorf("%s %s: opened: %v", path, number, err)
				continue
			}
			day := time.Date(opened.Year(), opened.Month(), opened.Day(), 0, 0, 0, 0, time.UTC)
			if want := math.Round(demoDay.Sub(day).Hours() / 24); r["days_open"] != want {
				t.Errorf("%s %s: opened %s, %v days open; want %v", path, number, opened.Format(time.DateOnly), r["days_open"], want)
			}
		}
	}
	if records != serviced {
		t.Errorf("%d cases and claims, %d of them for customers in the directory", records, serviced)
	}
	if serviced == 0 {
		t.Error("no customer has an open service case or warranty claim")
	}
}

// demoDay is the day the demo data set's figures are as of
// (configs/demo/README.md).
var demoDay = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

// eurPer and tiers are configs/demo/README.md's rules for the tier.
var (
	eurPer = map[string]float64{"EUR": 1, "PLN": 0.23, "GBP": 1.17, "USD": 0.93, "CHF": 1.06}
	tiers  = []struct {
		name string
		min  float64
	}{{"Platinum", 40000}, {"Gold", 15000}, {"Silver", 5000}, {"Bronze", 0}}
)

// checkValue checks a customer's value record against the rules of
// configs/demo/README.md: the trend and the tier follow from the revenue,
// the lifetime value holds at least the last two years, the last 12
// months at least the purchases listed.
func checkValue(t *testing.T, id, currency string, bought float64, v aggregator.Record) {
	t.Helper()
	last, _ := v["revenue_12m"].(float64)
	previous, _ := v["revenue_previous_12m"].(float64)
	lifetime, _ := v["lifetime_value"].(float64)
	if v["currency"] != currency {
		t.Errorf("%s: customer value in %v, want %s", id, v["currency"], currency)
	}
	if lifetime+0.005 < last+previous || last+0.005 < bought {
		t.Errorf("%s: lifetime %.2f, last 12 months %.2f, the 12 before %.2f, purchases listed %.2f", id, lifetime, last, previous, bought)
	}
	since, err := time.Parse(time.DateOnly, fmt.Sprint(v["customer_since"]))
	if err != nil || since.After(demoDay) {
		t.Errorf("%s: customer since %v: %v", id, v["customer_since"], err)
		return
	}
	var trend string
	switch pct := 100 * (last - previous) / previous; {
	case since.After(demoDay.AddDate(0, 0, -365)):
		trend = "new customer: first 12 months"
	case pct >= 10:
		trend = fmt.Sprintf("up %.0f%% on the previous 12 months", pct)
	case pct <= -10:
		trend = fmt.Sprintf("down %.0f%% on the previous 12 months", -pct)
	default:
		trend = fmt.Sprintf("steady (%+.0f%% on the previous 12 months)", pct)
	}
	if v["trend"] != trend {
		t.Errorf("%s: trend %q, want %q", id, v["trend"], trend)
	}
	for _, tier := range tiers {
		if last*eurPer[currency] >= tier.min {
			if v["tier"] != tier.name {
				t.Errorf("%s: tier %v, want %s (%.2f %s in the last 12 months)", id, v["tier"], tier.name, last, currency)
			}
			break
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
