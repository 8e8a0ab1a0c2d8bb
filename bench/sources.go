package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// systems are the company's systems the daemon asks for a card, served by
// the harness over HTTP: a directory (phone → customer) and three sources
// by customer (accounting, sales, credit), each answering after latency.
// They note how long each answer took, so that a cache-miss pop can be
// set against the slowest path its card waited for.
type systems struct {
	latency time.Duration
	// cacheFor is the cache-hit cases' cache_ttl and fresh_for: longer
	// than any window (the soak's included), so that no answer expires or
	// is revalidated while calls are measured.
	cacheFor time.Duration
	srv      *http.Server
	url      string

	mu   sync.Mutex
	dir  map[string]time.Duration // phone → how long the directory took
	slow map[string]time.Duration // customer id → slowest source
}

func startSystems(latency time.Duration) (*systems, error) {
	s := &systems{latency: latency, cacheFor: time.Hour, dir: map[string]time.Duration{}, slow: map[string]time.Duration{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /directory", s.directory)
	mux.HandleFunc("GET /accounting/{id}", s.byCustomer(accounting))
	mux.HandleFunc("GET /sales/{id}", s.byCustomer(sales))
	mux.HandleFunc("GET /credit/{id}", s.byCustomer(credit))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.url = "http://" + l.Addr().String()
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

func (s *systems) close() { _ = s.srv.Close() }

// customerOf is the customer a bench number belongs to: one per number.
func customerOf(phone string) string {
	return "C-" + strings.TrimPrefix(phone, "+")
}

func (s *systems) directory(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	phone := r.URL.Query().Get("phone")
	time.Sleep(s.latency)
	writeJSONBody(w, []map[string]any{{
		"id": customerOf(phone), "name": "Bench Customer " + phone[len(phone)-4:], "kind": "company",
		"contact": "Jane Bench", "role": "Purchasing", "city": "Berlin", "country": "DE", "tags": []string{"bench"},
	}})
	s.mu.Lock()
	s.dir[phone] = time.Since(start)
	s.mu.Unlock()
}

func (s *systems) byCustomer(answer func(id string) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.PathValue("id")
		time.Sleep(s.latency)
		writeJSONBody(w, answer(id))
		took := time.Since(start)
		s.mu.Lock()
		s.slow[id] = max(s.slow[id], took)
		s.mu.Unlock()
	}
}

// path is how long the slowest chain of systems took for a card of phone:
// the directory, then the slowest source asked with its answer. ok is
// false when a system was not asked for it (a cached answer).
func (s *systems) path(phone string) (d time.Duration, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dir, ok1 := s.dir[phone]
	src, ok2 := s.slow[customerOf(phone)]
	return dir + src, ok1 && ok2
}

func accounting(id string) any {
	return map[string]any{"customer_id": id, "balance": 1234.5, "overdue_total": 640, "credit_notes": 0,
		"last_payment_date": "2026-10-30", "currency": "EUR"}
}

func sales(id string) any {
	items := make([]map[string]any, 5)
	for i := range items {
		items[i] = map[string]any{"date": fmt.Sprintf("2026-10-%02d", 10+i), "product": fmt.Sprintf("Pallet wrap %d", i),
			"quantity": 10 * (i + 1), "amount": 99.5 * float64(i+1), "currency": "EUR"}
	}
	return map[string]any{"customer_id": id, "items": items}
}

func credit(id string) any {
	return map[string]any{"customer_id": id, "credit_limit": 50000, "available": 12000, "payment_terms": "30 days net",
		"offered_terms": "45 days net", "risk_class": "B", "currency": "EUR"}
}

func writeJSONBody(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// sourcesYAML is the directory and sources blocks of a daemon's
// configuration that ask these systems; cached (for cache-hit cases:
// answers kept for cacheFor and never revalidated meanwhile) or not.
// Their breakers are off: these systems never fail, and a machine busy
// enough for one answer to time out must not keep a source closed for the
// next 30 seconds of a measurement.
func (s *systems) sourcesYAML(cached bool) string {
	cache := func(indent string) string {
		if !cached {
			return ""
		}
		return "\n" + indent + "cache_ttl: " + s.cacheFor.String() + "\n" + indent + "fresh_for: " + s.cacheFor.String()
	}
	src := func(name, section, path, mapping string) string {
		return fmt.Sprintf(`  - name: %s
    type: http
    section: %s
    timeout: 500ms
    breaker: {disabled: true}%s
    url: %s/%s/{customer_id}
%s`, name, section, cache("    "), s.url, path, mapping)
	}
	return fmt.Sprintf(`sections:
  - {name: accounting, title: Accounting}
  - {name: sales, title: Sales}
  - {name: credit, title: Credit, roles: [credit, supervisor]}

directory:
  name: directory
  type: http
  timeout: 500ms
  breaker: {disabled: true}
  needs: phone%s
  url: %s/directory?phone={phone}

sources:
%s%s%s`, cache("  "), s.url,
		src("accounting", "accounting", "accounting", `    mapping:
      mode: fields
      fields:
        - {from: balance, label: Balance, format: money}
        - {from: overdue_total, label: Overdue, format: money}
        - {from: last_payment_date, label: Last payment, format: date}
        - {from: currency, label: Currency}
`),
		src("sales", "sales", "sales", `    records: items
    mapping:
      mode: list
      label: Recent purchases
      fields:
        - {from: date, label: Date, format: date}
        - {from: product, label: Product}
        - {from: quantity, label: Qty, format: number}
        - {from: amount, label: Amount, format: money}
`),
		src("credit", "credit", "credit", `    mapping:
      mode: fields
      fields:
        - {from: credit_limit, label: Credit limit, format: money}
        - {from: available, label: Available, format: money}
        - {from: offered_terms, label: Terms you may offer}
        - {from: risk_class, label: Risk class}
`))
}

// waitHTTP polls url until it answers 200 or ctx ends.
func waitHTTP(ctx context.Context, url string) error {
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v (last: %v)", url, context.Cause(ctx), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
