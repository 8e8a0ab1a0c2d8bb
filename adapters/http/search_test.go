package httpsource

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
)

// The search URL is a GET with the text and the limit escaped for where
// they stand, the source's auth and headers sent along, the records read
// at the search's own path, at most the limit.
func TestSearchRequest(t *testing.T) {
	var mu sync.Mutex
	var seen []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r)
		mu.Unlock()
		if r.URL.Query().Get("q") == "nobody" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"data": {"hits": [{"id": "C-1", "name": "Anna"}, {"id": "C-2", "name": "Annabel"}, {"id": "C-3", "name": "Hanna"}]}}`))
	}))
	defer srv.Close()
	s := newTestSource(t, `
url: `+srv.URL+`/customers/by-phone/{phone}
records: customers
headers: {X-Api-Key: "${CRM_KEY}"}
search:
  url: `+srv.URL+`/search/{text}?q={text}&limit={limit}
  records: data.hits
`, map[string]string{"CRM_KEY": "k-123"}, nil)
	recs, err := s.Search(context.Background(), aggregator.SearchQuery{Text: "Anna & Co/#1 Łódź", Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0]["id"] != "C-1" || recs[1]["name"] != "Annabel" {
		t.Errorf("records: %v", recs)
	}
	r := seen[0]
	if r.Method != http.MethodGet || r.Header.Get("X-Api-Key") != "k-123" {
		t.Errorf("request: %s %v", r.Method, r.Header)
	}
	if got := r.URL.Query(); got.Get("q") != "Anna & Co/#1 Łódź" || got.Get("limit") != "2" || len(got) != 2 {
		t.Errorf("query: %v (raw %s)", got, r.URL.RawQuery)
	}
	if r.URL.Path != "/search/Anna & Co/#1 Łódź" || !strings.HasPrefix(r.URL.RawPath, "/search/Anna%20&%20Co%2F%231%20") {
		t.Errorf("path %q (raw %q): one segment", r.URL.Path, r.URL.RawPath)
	}
	// A 404 (not_found) is no customer, not an error.
	if recs, err := s.Search(context.Background(), aggregator.SearchQuery{Text: "nobody", Limit: 5}); err != nil || len(recs) != 0 {
		t.Errorf("not found: %v, %v", recs, err)
	}
}

func TestSearchOptionProblems(t *testing.T) {
	for text, want := range map[string]string{
		"url: https://crm.example/c/{phone}\nsearch: {records: hits}\n":                             "line 2, column 1: search.url is required",
		"url: https://crm.example/c/{phone}\nsearch:\n  url: https://crm.example/s?limit={limit}\n": "line 3, column 3: url has no {text}",
		"url: https://crm.example/c/{phone}\nsearch:\n  url: https://crm.example/s?q={phone}\n":     "line 3, column 3: url: unknown parameter {phone} (known parameters: {text}, {limit})",
		"url: https://crm.example/c/{phone}\nsearch:\n  url: https://{text}.example/s\n":            "line 3, column 3: url: parameters may appear in the path and query only",
		"url: https://crm.example/c/{phone}\nsearch:\n  uri: https://crm.example/s?q={text}\n":      `unknown option "uri"`,
	} {
		_, err := NewSource(adapters.Spec{Name: "directory", Options: options(t, text)})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\n  got  %v\n  want %s", text, err, want)
		}
	}
	s := newTestSource(t, "url: https://crm.example/c/{phone}\n", nil, nil)
	if _, err := s.Search(context.Background(), aggregator.SearchQuery{Text: "anna", Limit: 5}); !errors.Is(err, screenpop.ErrNoSearch) {
		t.Errorf("without search: %v", err)
	}
}
