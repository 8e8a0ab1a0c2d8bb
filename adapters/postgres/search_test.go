package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

// A search query's mistakes are reported at the line of search.query
// (or of search: when the query is missing), before any connection.
func TestSearchQueryProblems(t *testing.T) {
	pools := NewPools(nil)
	defer pools.Close()
	for text, want := range map[string]string{
		"dsn: postgres://db/x\nquery: SELECT 1 WHERE :phone = ''\nsearch:\n  query: SELECT id FROM customers WHERE name = :phone\n": "line 4, column 3: query uses the unknown parameter :phone at query line 1, column 39 (known parameters: :text, :pattern, :limit)",
		"dsn: postgres://db/x\nquery: SELECT 1 WHERE :phone = ''\nsearch:\n  query: SELECT id FROM customers LIMIT :limit\n":        "line 4, column 3: the search query uses none of :text and :pattern",
		"dsn: postgres://db/x\nquery: SELECT 1 WHERE :phone = ''\nsearch: {}\n":                                                     "line 3, column 1: search.query is required",
		"dsn: postgres://db/x\nquery: SELECT 1 WHERE :phone = ''\nsearch:\n  query: SELECT id FROM c WHERE id = $1\n":               "line 4, column 3: query uses the positional parameter $1",
	} {
		_, err := New(pools, adapters.Spec{Name: "directory", Options: options(t, text)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\n  got  %v\n  want %s", text, err, want)
		}
	}
}

// The search runs on the source's pool with :text, :pattern and :limit;
// the rows beyond the limit are not read; an ended context ends it.
func TestSearchOnTheSourcesPool(t *testing.T) {
	db := newTestDB(t)
	db.exec(t, `CREATE TABLE customers (id text PRIMARY KEY, name text, phone text)`)
	db.exec(t, `INSERT INTO customers VALUES ('C-1', 'Kowalski_Serwis', '+1'), ('C-2', 'KowalskiXSerwis', '+2'),
		('C-3', 'Kowalski Serwis', '+3'), ('C-4', 'Kowalska', '+4')`)
	pools := NewPools(nil)
	defer pools.Close()
	src, err := New(pools, adapters.Spec{Name: "directory", Options: options(t,
		"dsn: "+db.dsn+"\nquery: SELECT * FROM customers WHERE phone = :phone\nsearch:\n  query: |\n    SELECT id, name FROM customers\n     WHERE id = :text OR name ILIKE :pattern ORDER BY id LIMIT :limit\n")})
	if err != nil {
		t.Fatal(err)
	}
	search := func(text string, limit int) []string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		recs, err := src.Search(ctx, aggregator.SearchQuery{Text: text, Limit: limit})
		if err != nil {
			t.Fatalf("Search(%q): %v", text, err)
		}
		var ids []string
		for _, r := range recs {
			ids = append(ids, r["id"].(string))
		}
		return ids
	}
	if got := strings.Join(search("kowalski_serwis", 10), " "); got != "C-1" {
		t.Errorf("_ is the text's own: %q, want C-1", got)
	}
	if got := strings.Join(search("kowal", 2), " "); got != "C-1 C-2" {
		t.Errorf("limit 2: %q", got)
	}
	if got := strings.Join(search("C-4", 10), " "); got != "C-4" {
		t.Errorf("by id: %q", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Search(ctx, aggregator.SearchQuery{Text: "kowal", Limit: 5}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	plain, err := New(pools, adapters.Spec{Name: "balance", Options: options(t, "dsn: "+db.dsn+"\nquery: SELECT * FROM customers WHERE id = :customer_id\n")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Search(context.Background(), aggregator.SearchQuery{Text: "kowal", Limit: 5}); !errors.Is(err, screenpop.ErrNoSearch) {
		t.Errorf("a source without search: %v", err)
	}
}

// The shipped demo: configs/postgres.yaml's directory search on
// configs/demo-db/demo.sql finds a customer by name, by a contact
// person's name, and by customer number (first, whatever its case).
func TestDemoDirectorySearch(t *testing.T) {
	dsn := newDemoDatabase(t)
	sql, err := os.ReadFile(demoSQL)
	if err != nil {
		t.Fatal(err)
	}
	loadSQL(t, dsn, string(sql))
	text, err := os.ReadFile(demoConfig)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := configs.Parse(demoConfig, text, os.DirFS(filepath.Dir(demoConfig)))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Directory.Search == nil {
		t.Fatal("configs/postgres.yaml: the directory has no search")
	}
	pools := NewPools(nil)
	defer pools.Close()
	src, err := NewFactory(pools)(adapters.Spec{Name: "directory", Options: cfg.Directory.Options, Env: env(map[string]string{"SCREENPOP_DEMO_DSN": dsn})})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for text, want := range map[string]string{
		"morgenrot":   "C1001",
		"anna schulz": "C1001",
		"c1005":       "C1005",
	} {
		recs, err := src.(aggregator.Searcher).Search(ctx, aggregator.SearchQuery{Text: text, Limit: 10})
		if err != nil {
			t.Fatalf("Search(%q): %v", text, err)
		}
		if len(recs) == 0 || recs[0]["id"] != want {
			t.Errorf("Search(%q) = %v, want %s first", text, recs, want)
		}
	}
}
