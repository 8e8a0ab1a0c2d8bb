package aggregator

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
)

// BenchmarkNormalize measures number normalisation, once per card: the
// forms PBXs present numbers in, with the default region DE. One op is
// one number.
//
//	go test -run '^$' -bench Normalize -benchmem ./aggregator/
func BenchmarkNormalize(b *testing.B) {
	for _, c := range []struct{ name, raw string }{
		{"e164", "+4930123456"},
		{"national", "030 123456"},
		{"idd", "0048 601 234 567"},
		{"sip-uri", "sip:+4930123456@pbx.example;user=phone"},
		{"extension", "+49 30 123456 ext. 12"},
		{"internal", "1001"},
		{"withheld", "anonymous"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = normalize(c.raw, "DE")
			}
		})
	}
}

// staticSource answers every lookup with the same records.
type staticSource []Record

func (s staticSource) Fetch(context.Context, Key) ([]Record, error) { return s, nil }

// BenchmarkMergeSections measures the merge of the sources' answers into
// the card's sections (cardRun.sections), which runs once per card when
// every source has settled: an accounting section of two sources (mapped
// fields, and a list of all columns), a sales list of 30 rows shown up to
// 20, and a credit section whose source timed out. One op is one card's
// sections.
//
//	go test -run '^$' -bench MergeSections -benchmem ./aggregator/
func BenchmarkMergeSections(b *testing.B) {
	balance := staticSource{{"balance": 1234.5, "overdue_total": 980, "currency": "EUR", "payment_terms": "30 days net", "internal_note": "not shown"}}
	var invoices, purchases staticSource
	for i := range 3 {
		invoices = append(invoices, Record{"number": "INV-229" + string(rune('0'+i)), "due": "2025-03-01", "amount": 640.0, "currency": "EUR"})
	}
	for range 30 {
		purchases = append(purchases, Record{"date": time.Date(2025, 2, 11, 0, 0, 0, 0, time.UTC), "product": "Euro pallet 1200×800", "qty": 400, "price": "12.50"})
	}
	cfg := Config{
		Region: "DE",
		Sources: []SourceSpec{
			{Name: "balance", Section: "accounting", Source: balance, Mapping: Mapping{Fields: []FieldMap{
				{From: "balance", Label: "Open balance", Format: "money"}, {From: "overdue_total", Label: "Overdue", Format: "money"},
				{From: "currency", Label: "Currency"}, {From: "payment_terms", Label: "Payment terms"},
			}}},
			{Name: "invoices", Section: "accounting", Source: invoices, Mapping: Mapping{Mode: ModeList}},
			{Name: "purchases", Section: "sales", Source: purchases, Mapping: Mapping{Mode: ModeList, Label: "Recent purchases", Fields: []FieldMap{
				{From: "date", Label: "Date", Format: "date"}, {From: "product", Label: "Product"}, {From: "qty", Label: "Qty", Format: "number"},
			}}},
			{Name: "credit", Source: staticSource{}},
		},
		Sections: []SectionSpec{
			{Name: "accounting", Title: "Accounting"}, {Name: "sales", Title: "Sales"},
			{Name: "credit", Title: "Credit", Roles: []string{"credit", "supervisor"}},
		},
	}
	a, err := New(cfg, Options{Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	st := a.state.Load()
	r := &cardRun{a: a, st: st, outcomes: []outcome{
		{status: screenpop.SectionOK, records: balance, took: 40 * time.Millisecond},
		{status: screenpop.SectionOK, records: invoices, took: 42 * time.Millisecond},
		{status: screenpop.SectionOK, records: purchases, took: 65 * time.Millisecond},
		{status: screenpop.SectionTimeout, reason: "credit: no answer within 800ms", took: 800 * time.Millisecond},
	}}
	if len(r.outcomes) != len(st.sources) {
		b.Fatalf("%d outcomes for %d sources", len(r.outcomes), len(st.sources))
	}
	b.ReportAllocs()
	var secs []screenpop.CardSection
	for b.Loop() {
		secs = r.sections()
	}
	if len(secs) != 3 || len(secs[1].Lists) != 1 || len(secs[1].Lists[0].Rows) != 20 || secs[2].Status != screenpop.SectionTimeout {
		b.Fatalf("unexpected sections: %+v", secs)
	}
}

// BenchmarkCachedCard measures a card whose every answer is in the
// in-process cache: a directory by number naming the customer, and
// accounting, sales and credit sources by customer, as in the bench
// harness. Build is the plain card; progressive is BuildProgressive, as
// the dispatcher asks for a first card. One op is one card.
//
//	go test -run '^$' -bench CachedCard -benchmem ./aggregator/
func BenchmarkCachedCard(b *testing.B) {
	directory := staticSource{{"id": "C-1", "name": "ACME", "kind": "company", "city": "Berlin", "tags": "vip, pallets"}}
	balance := staticSource{{"customer_id": "C-1", "balance": 1234.5, "overdue_total": 640, "credit_notes": 0, "currency": "EUR"}}
	var items staticSource
	for i := range 5 {
		items = append(items, Record{"date": "2025-02-1" + string(rune('0'+i)), "product": "Euro pallet", "qty": 400, "price": 12.5})
	}
	credit := staticSource{{"credit_limit": 50000, "available": 12000, "payment_terms": "30 days net"}}
	cached := func(s SourceSpec) SourceSpec {
		s.Needs, s.CacheTTL, s.FreshFor = "customer_id", time.Hour, time.Hour
		return s
	}
	cfg := Config{
		Region:    "DE",
		Directory: &SourceSpec{Name: "directory", Needs: "phone", Source: directory, CacheTTL: time.Hour, FreshFor: time.Hour},
		Sources: []SourceSpec{
			cached(SourceSpec{Name: "balance", Section: "accounting", Source: balance, Mapping: Mapping{Fields: []FieldMap{
				{From: "balance", Label: "Open balance", Format: "money"}, {From: "overdue_total", Label: "Overdue", Format: "money"},
			}}}),
			cached(SourceSpec{Name: "sales", Section: "sales", Source: items, Mapping: Mapping{Mode: ModeList}}),
			cached(SourceSpec{Name: "credit", Section: "credit", Source: credit}),
		},
	}
	for _, progressive := range []bool{false, true} {
		name := "build"
		if progressive {
			name = "progressive"
		}
		b.Run(name, func(b *testing.B) {
			a, err := New(cfg, Options{Cache: NewMemoryCache(100), Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			call := screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "bench", Caller: screenpop.Caller{Number: "+49 30 123456"}, At: time.Now()}
			ctx := context.Background()
			steps := 0
			build := func() screenpop.Card {
				if progressive {
					return a.BuildProgressive(ctx, call, "", func(screenpop.CardUpdate) { steps++ })
				}
				return a.Build(ctx, call)
			}
			build() // fills the cache
			b.ReportAllocs()
			for b.Loop() {
				card := build()
				if card.Resolution != screenpop.ResolvedCustomer || len(card.Sections) != 3 || !card.Sections[1].Cached {
					b.Fatalf("card %+v", card)
				}
			}
			if steps > 1 {
				b.ReportMetric(float64(steps)/float64(b.N), "steps/op")
			}
		})
	}
}
