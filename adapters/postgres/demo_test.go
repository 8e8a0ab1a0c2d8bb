package postgres

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

const (
	demoSQL    = "../../configs/demo-db/demo.sql"
	demoConfig = "../../configs/postgres.yaml"
)

// TestDemoDatabaseAndConfig proves the shipped demo works: demo.sql loads
// (twice: it is idempotent) into a database of its own, configs/postgres.yaml
// parses, and every query in it, including the service desk source left in
// comments as the example of adding a system, runs through this adapter and
// returns the columns its mapping names, with the data the README promises
// for its sample numbers.
func TestDemoDatabaseAndConfig(t *testing.T) {
	dsn := newDemoDatabase(t)
	sql, err := os.ReadFile(demoSQL)
	if err != nil {
		t.Fatal(err)
	}
	for load := 1; load <= 2; load++ {
		loadSQL(t, dsn, string(sql))
	}

	text, err := os.ReadFile(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	withService := uncommentServiceDesk(t, string(text))
	cfg, err := configs.Parse(demoConfig, []byte(withService), os.DirFS(filepath.Dir(demoConfig)))
	if err != nil {
		t.Fatalf("configs/postgres.yaml (service desk uncommented) does not parse:\n%v", err)
	}
	if _, err := configs.Parse(demoConfig, text, os.DirFS(filepath.Dir(demoConfig))); err != nil {
		t.Fatalf("configs/postgres.yaml does not parse:\n%v", err)
	}

	pools := NewPools(nil)
	defer pools.Close()
	factory := NewFactory(pools)
	environment := env(map[string]string{"SCREENPOP_DEMO_DSN": dsn})
	build := func(s configs.Source) aggregator.Source {
		t.Helper()
		if s.Type != "postgres" {
			t.Fatalf("source %s has type %q, want postgres", s.Name, s.Type)
		}
		src, err := factory(adapters.Spec{Name: s.Name, Options: s.Options, Env: environment})
		if err != nil {
			t.Fatalf("source %s: %v", s.Name, err)
		}
		return src
	}
	if cfg.Directory == nil {
		t.Fatal("no directory in configs/postgres.yaml")
	}
	directory := build(*cfg.Directory)
	sources := map[string]aggregator.Source{}
	mappings := map[string]aggregator.Mapping{}
	for _, s := range cfg.Sources {
		sources[s.Name] = build(s)
		mappings[s.Name] = s.Mapping
	}
	for _, name := range []string{"customer-value", "accounting-balance", "accounting-invoices", "sales-purchases", "sales-next", "credit",
		"service-cases", "warranty-claims", "service-tickets"} {
		if sources[name] == nil {
			t.Fatalf("configs/postgres.yaml has no source %s", name)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fetch := func(name string, src aggregator.Source, key aggregator.Key) []aggregator.Record {
		t.Helper()
		recs, err := src.Fetch(ctx, key)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// Every column the mapping shows must come back from the query.
		for _, r := range recs {
			for _, f := range mappings[name].Fields {
				if _, ok := r[f.From]; !ok {
					t.Errorf("%s: mapping shows %q but the query returns only %v", name, f.From, keys(r))
				}
			}
		}
		return recs
	}

	// The sample numbers of configs/demo-db/README.md.
	directoryCases := []struct {
		phone   string
		ids     []string
		contact string
	}{
		{"+493090182000", []string{"C1001"}, ""},
		{"+4915123456701", []string{"C1001"}, "Anna Schulz"},
		{"+4915123456702", []string{"C1001", "P2006"}, "Jonas Becker"},
		{"+447911123456", []string{"C1005"}, "Oliver Smith"},
		{"+12125550147", []string{"C1006"}, ""},
		{"+41446681800", []string{"C1007"}, ""},
		{"+4934155501313", []string{"C1012"}, ""},
		{"+4942112345678", []string{"C1004"}, "Henrik Hansen"},
		{"+4971123456780", []string{"P2001"}, ""},
		{"+4935155501234", []string{"P2004"}, ""},
		{"+4934112345678", []string{"C1012"}, "Petra Krume"},
		{"+33478550123", []string{"C1015"}, ""},
		{"+43153412000", []string{"C1013"}, ""},
		{"+4930123456789", nil, ""},
	}
	directoryColumns := []string{"city", "contact", "country", "email", "id", "kind", "name", "role", "tags"}
	for _, c := range directoryCases {
		recs := fetch("directory", directory, aggregator.Key{Phone: c.phone})
		var ids []string
		for _, r := range recs {
			ids = append(ids, r["id"].(string))
			if got := keys(r); !slices.Equal(got, directoryColumns) {
				t.Errorf("directory columns = %v, want %v", got, directoryColumns)
			}
			if c.contact != "" && r["kind"] == "company" && r["contact"] != c.contact {
				t.Errorf("%s: contact = %v, want %s", c.phone, r["contact"], c.contact)
			}
		}
		slices.Sort(ids)
		if !slices.Equal(ids, c.ids) {
			t.Errorf("directory(%s) = %v, want %v", c.phone, ids, c.ids)
		}
	}

	one := func(name, customerID string) aggregator.Record {
		t.Helper()
		recs := fetch(name, sources[name], aggregator.Key{CustomerID: customerID})
		if len(recs) != 1 {
			t.Fatalf("%s(%s) returned %d records, want 1", name, customerID, len(recs))
		}
		return recs[0]
	}
	list := func(name, customerID string) []aggregator.Record {
		t.Helper()
		return fetch(name, sources[name], aggregator.Key{CustomerID: customerID})
	}

	for _, id := range []string{"C1001", "C1004", "C1005", "C1006", "C1007", "C1012", "P2001", "P2006"} {
		one("accounting-balance", id)
		one("credit", id)
		if len(list("sales-purchases", id)) == 0 {
			t.Errorf("sales-purchases(%s): no purchases", id)
		}
		next := list("sales-next", id)
		if len(next) == 0 {
			t.Errorf("sales-next(%s): no suggestions", id)
		}
		bought := purchasedProducts(t, dsn, id)
		for _, r := range next {
			if bought[r["product"].(string)] {
				t.Errorf("sales-next(%s) suggests %q, which the customer already bought", id, r["product"])
			}
		}
		list("accounting-invoices", id)
		list("service-tickets", id)
		list("service-cases", id)
		list("warranty-claims", id)

		v := one("customer-value", id)
		lifetime, last := number(t, v["lifetime_value"]), number(t, v["revenue_12m"])
		if lifetime < last || last < 0 {
			t.Errorf("customer-value(%s): lifetime %v below the last 12 months' %v", id, lifetime, last)
		}
		if tier := v["tier"]; !slices.Contains([]any{"Platinum", "Gold", "Silver", "Bronze"}, tier) || v["trend"] == "" || v["trend"] == nil {
			t.Errorf("customer-value(%s): tier %v, trend %v", id, tier, v["trend"])
		}
	}

	// The stories the README tells.
	if got := list("accounting-invoices", "C1012"); len(got) == 0 {
		t.Error("Bäckerei Krume (C1012) has no overdue invoices")
	}
	if got := list("accounting-invoices", "C1015"); len(got) == 0 {
		t.Error("Bistro Quai Ouest (C1015) has no overdue invoices")
	}
	if got := one("credit", "C1012")["note"]; got == nil {
		t.Error("C1012 has no credit note")
	}
	if got := one("credit", "P2004")["offered_terms"]; got != "Prepayment" {
		t.Errorf("P2004 may be offered %q, want Prepayment only", got)
	}
	if got := list("accounting-invoices", "C1001"); len(got) != 0 {
		t.Errorf("Café Morgenrot (C1001) pays on time but has overdue invoices: %v", got)
	}
	if got := one("credit", "C1012")["offered_terms"]; got != "7 days net" {
		t.Errorf("C1012 may be offered %q, want only 7 days net (overdue, risk class C)", got)
	}
	if got, _ := one("credit", "C1001")["risk_class"].(string); !strings.HasPrefix(got, "A") {
		t.Errorf("C1001 risk class = %q, want A", got)
	}
	if got := one("accounting-balance", "C1004")["we_owe"]; got == 0.0 || got == nil {
		t.Errorf("Rösterei Hansen (C1004, a supplier) we_owe = %v, want their open bills", got)
	}
	tickets := list("service-tickets", "C1001")
	if len(tickets) == 0 || tickets[0]["priority"] != "urgent" {
		t.Errorf("C1001's first open ticket = %v, want the urgent one", tickets)
	}
	// The service stories: Café Morgenrot's new machine leaks (a new case
	// and a claim, this morning), the Grand Hotel's old lobby machine
	// waits for a technician, Dr. Müller's home machine is in the
	// workshop and claimed under warranty; the days open follow the dates.
	for _, c := range []struct {
		source, customer, product, status string
		days                              int64
	}{
		{"service-cases", "C1001", "Espresso machine, 2 groups", "new", 0},
		{"warranty-claims", "C1001", "Espresso machine, 2 groups", "submitted", 0},
		{"service-cases", "C1013", "Bean-to-cup automatic machine", "technician booked", 1},
		{"service-cases", "P2001", `Home espresso machine "Casa"`, "in workshop", 9},
		{"warranty-claims", "P2001", `Home espresso machine "Casa"`, "with the manufacturer", 8},
	} {
		found := false
		for _, r := range list(c.source, c.customer) {
			if r["product"] == c.product && r["status"] == c.status {
				found = true
				// days_open is current_date - opened::date in the session's
				// time zone: a day either way around midnight UTC.
				if d := int64(number(t, r["days_open"])); d < c.days-1 || d > c.days+1 || r["serial"] == "" {
					t.Errorf("%s(%s): %v", c.source, c.customer, r)
				}
			}
		}
		if !found {
			t.Errorf("%s(%s): no %q %s", c.source, c.customer, c.product, c.status)
		}
	}

	if got := list("sales-purchases", "C1001"); len(got) != 8 {
		t.Errorf("sales-purchases(C1001) returned %d rows, want 8 (LIMIT 8)", len(got))
	}
}

// newDemoDatabase creates a database of its own (demo.sql drops and
// creates fixed schema names, which must not collide with other tests) and
// drops it after the test.
func newDemoDatabase(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable at %s: %v", adminDSN, err)
	}
	name := "screenpop_demo_test_" + randomSuffix(t)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
		admin.Close(ctx)
	})
	return "postgres://postgres@127.0.0.1:5432/" + name
}

// loadSQL runs a script of many statements, as psql -f does.
func loadSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.PgConn().Exec(ctx, sql).ReadAll(); err != nil {
		t.Fatalf("demo.sql: %v", err)
	}
}

// uncommentServiceDesk turns the commented service desk section and source
// of configs/postgres.yaml into configuration, as IT would.
func uncommentServiceDesk(t *testing.T, text string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	section, source := false, false
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "  # - {name: desk,"):
			lines[i] = "  " + strings.TrimPrefix(l, "  # ")
			lines[i] = strings.SplitN(lines[i], "#", 2)[0]
			section = true
		case strings.HasPrefix(l, "  # - name: service-tickets"):
			source = true
			fallthrough
		case source && strings.HasPrefix(l, "  #"):
			lines[i] = "  " + strings.TrimPrefix(strings.TrimPrefix(l, "  #"), " ")
		case source:
			source = false
		}
	}
	if !section {
		t.Fatal("configs/postgres.yaml: no commented service desk section")
	}
	out := strings.Join(lines, "\n")
	if !strings.Contains(out, "\n  - name: service-tickets\n") {
		t.Fatal("configs/postgres.yaml: no commented service-tickets source")
	}
	return out
}

func purchasedProducts(t *testing.T, dsn, customerID string) map[string]bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT DISTINCT p.name FROM sales.orders o
		JOIN sales.order_lines l ON l.order_id = o.id JOIN sales.products p ON p.sku = l.sku
		WHERE o.customer_id = $1 AND o.status <> 'cancelled'`, customerID)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

func keys(r aggregator.Record) []string {
	out := make([]string, 0, len(r))
	for k := range r {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// number reads a numeric column as the adapter hands it over (an integer,
// a float, or the text of a decimal too long for a float).
func number(t *testing.T, v any) float64 {
	t.Helper()
	switch n := v.(type) {
	case int64:
		return float64(n)
	case int32:
		return float64(n)
	case int:
		return float64(n)
	case float64:
		return n
	case string:
		f, err := strconv.ParseFloat(n, 64)
		if err == nil {
			return f
		}
	}
	t.Errorf("%v (%T) is not a number", v, v)
	return 0
}
