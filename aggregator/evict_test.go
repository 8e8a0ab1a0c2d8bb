package aggregator

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/bearer"
)

type evictFixture struct {
	*fixture
	dir, credit, tickets *counted
	refreshed            chan refreshNote
}

func newEvictFixture(t *testing.T, cache Cache) *evictFixture {
	t.Helper()
	e := &evictFixture{
		dir:       count(directoryOf(brandt)),
		credit:    count(byCustomer(map[string][]Record{"C-1": {{"limit": 1}}})),
		tickets:   count(static(Record{"open": 1})),
		refreshed: make(chan refreshNote, 10),
	}
	e.fixture = newFixture(t, Config{
		Region:    "DE",
		Directory: &SourceSpec{Name: "directory", CacheTTL: time.Hour, Source: e.dir},
		Sources: []SourceSpec{
			{Name: "credit", CacheTTL: time.Hour, Source: e.credit},
			{Name: "tickets", Needs: "national", CacheTTL: time.Hour, Source: e.tickets},
		},
	}, Options{Cache: cache, OnRefresh: func(p, c string) { e.refreshed <- refreshNote{p, c} }})
	return e
}

func (e *evictFixture) calls() [3]int64 {
	return [3]int64{e.dir.calls.Load(), e.credit.calls.Load(), e.tickets.calls.Load()}
}

func (e *evictFixture) build(t *testing.T) {
	t.Helper()
	card := e.agg.Build(context.Background(), ringing(knownPhone))
	if s := section(t, card, "credit"); s.Status != screenpop.SectionOK {
		t.Fatalf("credit: %s", s.Status)
	}
}

func TestEvict(t *testing.T) {
	e := newEvictFixture(t, NewMemoryCache(0))
	ctx := context.Background()
	e.build(t)
	e.build(t)
	if got := e.calls(); got != [3]int64{1, 1, 1} {
		t.Fatalf("calls %v before eviction", got)
	}

	// By customer: only what is keyed by the customer.
	if err := e.agg.Evict(ctx, "C-1", ""); err != nil {
		t.Fatal(err)
	}
	if n := <-e.refreshed; n != (refreshNote{"", "C-1"}) {
		t.Errorf("OnRefresh%v", n)
	}
	e.build(t)
	if got := e.calls(); got != [3]int64{1, 2, 1} {
		t.Errorf("calls %v after evicting the customer, want [1 2 1]", got)
	}

	// By number, written as a source system has it: the number's answers
	// and those of the customer the directory said it belongs to.
	if err := e.agg.Evict(ctx, "", "030 123456"); err != nil {
		t.Fatal(err)
	}
	if n := <-e.refreshed; n != (refreshNote{knownPhone, ""}) {
		t.Errorf("OnRefresh%v", n)
	}
	e.build(t)
	if got := e.calls(); got != [3]int64{2, 3, 2} {
		t.Errorf("calls %v after evicting the number, want [2 3 2]", got)
	}

	if err := e.agg.Evict(ctx, " ", ""); !errors.Is(err, ErrNothingToEvict) {
		t.Errorf("empty: %v", err)
	}
	if err := e.agg.Evict(ctx, "", "1001"); !errors.Is(err, ErrNotAPhone) {
		t.Errorf("extension: %v", err)
	}
	if v := mustMetric(t, e.reg, "screenpop_aggregator_evictions_total", map[string]string{"result": "ok"}); v != 2 {
		t.Errorf("evictions ok = %v", v)
	}
}

func TestEvictHandler(t *testing.T) {
	cache := &recordingCache{MemoryCache: NewMemoryCache(0)}
	e := newEvictFixture(t, cache)
	e.build(t)
	tokens, err := bearer.NewSet([]string{"old-token-0123456789", "s3cret-token-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(EvictHandler(e.agg, tokens, nil))
	t.Cleanup(srv.Close)

	do := func(method, auth, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+"/api/v1/evict", strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Error string }
		if resp.StatusCode != http.StatusNoContent {
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s %q: content type %q", method, body, ct)
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
				t.Errorf("%s %q: error body: %v", method, body, err)
			}
		}
		return resp.StatusCode, out.Error
	}
	const good = "Bearer s3cret-token-0123456789"
	for _, tc := range []struct {
		method, auth, body string
		status             int
		err                string
	}{
		{"GET", good, "", 405, "use POST"},
		{"POST", "", `{"customer_id":"C-1"}`, 401, "a valid bearer token is required"},
		{"POST", "Bearer wrong", `{"customer_id":"C-1"}`, 401, "a valid bearer token is required"},
		{"POST", "Bearer ", `{"customer_id":"C-1"}`, 401, "a valid bearer token is required"},
		{"POST", "Basic s3cret-token-0123456789", `{"customer_id":"C-1"}`, 401, "a valid bearer token is required"},
		{"POST", good, ``, 400, "the body must be a JSON object with customer_id and/or phone: empty"},
		{"POST", good, `{"customer_id":`, 400, "the body must be a JSON object with customer_id and/or phone: not valid JSON"},
		{"POST", good, `{"customer":"C-1"}`, 400, `the body must be a JSON object with customer_id and/or phone: unknown field "customer"`},
		{"POST", good, `{"customer_id":7}`, 400, "the body must be a JSON object with customer_id and/or phone: customer_id must be a string"},
		{"POST", good, `{}`, 400, "customer_id or phone is required"},
		{"POST", "bearer s3cret-token-0123456789", `{}`, 400, "customer_id or phone is required"}, // the scheme is case-insensitive
		{"POST", good, `{"phone":"1001"}`, 400, "phone is not a valid phone number"},
	} {
		status, msg := do(tc.method, tc.auth, tc.body)
		if status != tc.status || msg != tc.err {
			t.Errorf("%s %q %q: %d %q, want %d %q", tc.method, tc.auth, tc.body, status, msg, tc.status, tc.err)
		}
	}
	if got := e.calls(); got != [3]int64{1, 1, 1} {
		t.Fatalf("refused requests evicted something: %v", got)
	}

	if status, msg := do("POST", "Bearer old-token-0123456789", `{"customer_id":"C-1"}`); status != 204 {
		t.Fatalf("evict: %d %q", status, msg)
	}
	if _, err := cache.MemoryCache.Get(context.Background(), cacheKey("credit", "customer_id", "C-1")); !errors.Is(err, ErrCacheMiss) {
		t.Errorf("the customer's answer is still cached: %v", err)
	}
	e.build(t)
	if got := e.calls(); got != [3]int64{1, 2, 1} {
		t.Errorf("calls %v after eviction, want [1 2 1]", got)
	}

	cache.mu.Lock()
	cache.broken = true
	cache.mu.Unlock()
	if status, msg := do("POST", good, `{"phone":"+4930123456"}`); status != 503 || msg != "the cache could not be updated; try again" {
		t.Errorf("broken cache: %d %q", status, msg)
	}
}

func TestEvictHandlerWithoutTokensRefusesAll(t *testing.T) {
	e := newEvictFixture(t, NewMemoryCache(0))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/api/v1/evict", strings.NewReader(`{"customer_id":"C-1"}`))
	req.Header.Set("Authorization", "Bearer ")
	EvictHandler(e.agg, nil, nil).ServeHTTP(rec, req)
	if rec.Code != http.StatusUnauthorized {
		t.Errorf("status %d", rec.Code)
	}
}

func (c *recordingCache) Delete(ctx context.Context, keys ...string) error {
	for _, k := range keys {
		if err := c.note(k); err != nil {
			return err
		}
	}
	return c.MemoryCache.Delete(ctx, keys...)
}
