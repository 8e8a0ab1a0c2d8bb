package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
)

const customersCSV = "id,phone,name,contact,email\n" +
	"C-1,+4930111111,Brandt Metallbau GmbH,Jörg Brandt,j.brandt@brandt.example\n" +
	"C-2,+48123456789,Anna Kowalska,,anna@poczta.example\n" +
	"C-3,+48600000003,Łódź Serwis,Ewa Łuczak,biuro@lodz.example\n" +
	"C-30,+4930300000,Thirty GmbH,,c-3@thirty.example\n"

func search(t *testing.T, src aggregator.Source, text string, limit int) []string {
	t.Helper()
	recs, err := src.(aggregator.Searcher).Search(context.Background(), aggregator.SearchQuery{Text: text, Limit: limit})
	if err != nil {
		t.Fatalf("Search(%q): %v", text, err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r["id"].(string))
	}
	return ids
}

func TestSearchFields(t *testing.T) {
	files := fstest.MapFS{"customers.csv": {Data: []byte(customersCSV)}}
	src := mustBuild(t, files, "{path: customers.csv, match: phone, param: phone, search: {}}")
	for text, want := range map[string]string{
		"kowalska":          "C-2",
		"ANNA":              "C-2",
		"jorg":              "C-1",      // the contact, without the umlaut
		"lodz":              "C-3",      // Ł does not decompose: folded by hand
		"luczak ewa":        "C-3",      // every word, in any order
		"brandt.example":    "C-1",      // e-mail
		"c-3":               "C-3 C-30", // the id first, then the e-mail holding it
		"brandt kowalska":   "",         // words of two customers: none
		"":                  "",
		"anna@poczta.examp": "C-2",
	} {
		if got := strings.Join(search(t, src, text, 10), " "); got != want {
			t.Errorf("Search(%q) = %q, want %q", text, got, want)
		}
	}
	if got := search(t, src, "gmbh", 1); len(got) != 1 || got[0] != "C-1" {
		t.Errorf("limit 1: %v", got)
	}
	// Only the fields configured: an e-mail is not searched when not named.
	src = mustBuild(t, files, "{path: customers.csv, match: phone, param: phone, search: {contains: [name], equals: []}}")
	if got := search(t, src, "poczta", 10); got != nil {
		t.Errorf("contains: [name] found by e-mail: %v", got)
	}
	if got := search(t, src, "C-2", 10); got != nil {
		t.Errorf("equals: [] found by id: %v", got)
	}
	// The caller may change what it got.
	recs, _ := src.(aggregator.Searcher).Search(context.Background(), aggregator.SearchQuery{Text: "anna", Limit: 5})
	recs[0]["name"] = "changed"
	if got := search(t, src, "anna", 5); len(got) != 1 {
		t.Fatalf("after changing a result: %v", got)
	}
}

func TestSearchNotConfiguredOrCancelled(t *testing.T) {
	files := fstest.MapFS{"customers.csv": {Data: []byte(customersCSV)}}
	src := mustBuild(t, files, "{path: customers.csv, match: phone, param: phone}")
	if _, err := src.(aggregator.Searcher).Search(context.Background(), aggregator.SearchQuery{Text: "anna", Limit: 5}); !errors.Is(err, screenpop.ErrNoSearch) {
		t.Errorf("without search: %v", err)
	}
	src = mustBuild(t, files, "{path: customers.csv, match: phone, param: phone, search: {}}")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.(aggregator.Searcher).Search(ctx, aggregator.SearchQuery{Text: "anna", Limit: 5}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	_, err := build(t, files, "{path: customers.csv, match: phone, param: phone,\n  search: {contains: [name, ' ']}}")
	if err == nil || !strings.Contains(err.Error(), "line 2, column 3: search: a field name is empty") {
		t.Errorf("an empty field: %v", err)
	}
	_, err = build(t, files, "{path: customers.csv, search: {contain: [name]}}")
	if err == nil || !strings.Contains(err.Error(), `unknown option "contain"`) {
		t.Errorf("a misspelt option: %v", err)
	}
}

// A file that reloads is searched as it is now.
func TestSearchAfterReload(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "customers.csv")
	base := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	write := func(data string, mod time.Time) {
		t.Helper()
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	write(customersCSV, base)
	src, err := New(adapters.Spec{Name: "directory", Options: options(t, "{path: customers.csv, match: phone, param: phone, reload: true, search: {}}"), Files: os.DirFS(dir)})
	if err != nil {
		t.Fatal(err)
	}
	if got := search(t, src, "nowak", 5); got != nil {
		t.Fatalf("before: %v", got)
	}
	write(customersCSV+"C-4,+48601234567,Jan Nowak,,jan@nowak.example\n", base.Add(time.Minute))
	if got := search(t, src, "nowak", 5); len(got) != 1 || got[0] != "C-4" {
		t.Fatalf("after the file changed: %v", got)
	}
}
