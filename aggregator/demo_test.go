package aggregator_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/adapters/file"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

// TestDemoCallers runs the callers of the demo generator, in the shapes
// PBXs send numbers, through the embedded demo configuration and its file
// sources: the resolutions configs/demo/README.md promises must hold, and
// a resolved customer's card must be complete: every section ok, except
// the service section of a customer without open service cases or
// warranty claims, which is empty.
func TestDemoCallers(t *testing.T) {
	cfg, err := configs.Demo()
	if err != nil {
		t.Fatal(err)
	}
	build := func(s *configs.Source) aggregator.Source {
		t.Helper()
		if s.Type != "file" {
			t.Fatalf("demo source %s is of type %s, expected file", s.Name, s.Type)
		}
		src, err := file.New(adapters.Spec{Name: s.Name, Options: s.Options, Files: cfg.Files})
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		return src
	}
	ac := cfg.Aggregator()
	ac.Deadline = 5 * time.Second
	ac.Directory.Source = build(cfg.Directory)
	for i := range cfg.Sources {
		ac.Sources[i].Source = build(&cfg.Sources[i])
	}
	agg, err := aggregator.New(ac, aggregator.Options{Cache: aggregator.NewMemoryCache(100), History: aggregator.NewMemoryHistory(5), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		number     string
		withheld   bool
		phone      string
		resolution screenpop.Resolution
		customer   string // name, when resolved
		service    bool   // the customer has open service cases or warranty claims
		candidates int
	}{
		{number: "+48 601-234-567", phone: "+48601234567", resolution: screenpop.ResolvedCustomer, customer: "Nowak Budownictwo", service: true},
		{number: "0048 601 234 567", phone: "+48601234567", resolution: screenpop.ResolvedCustomer, customer: "Nowak Budownictwo", service: true},
		{number: "030 1234567", phone: "+49301234567", resolution: screenpop.ResolvedCustomer, customer: "Brandt Metallbau", service: true},
		{number: "(040) 345 67 89", phone: "+49403456789", resolution: screenpop.ResolvedCustomer, customer: "Hoffmann Logistik", service: true},
		{number: "0049 69 24681358", phone: "+496924681358", resolution: screenpop.ResolvedCustomer, customer: "Rhein-Main Facility Services", service: true},
		{number: "+1 (415) 555-0134", phone: "+14155550134", resolution: screenpop.ResolvedCustomer, customer: "Bayview Fabrication", service: true},
		{number: "+447911123456", phone: "+447911123456", resolution: screenpop.ResolvedCustomer, customer: "Oliver Bennett", service: true},
		{number: "+49 171 2345678", phone: "+491712345678", resolution: screenpop.ResolvedCustomer, customer: "Klaus Richter"},
		{number: "0341 2345670", phone: "+493412345670", resolution: screenpop.ResolvedAmbiguous, candidates: 2},
		{number: "+49 89 99887766", phone: "+498999887766", resolution: screenpop.ResolvedUnknown},
		{number: "+44 161 496 0999", phone: "+441614960999", resolution: screenpop.ResolvedUnknown},
		{withheld: true, resolution: screenpop.ResolvedWithheld},
	} {
		call := screenpop.CallEvent{Kind: screenpop.EventRinging, CallID: "demo", Caller: screenpop.Caller{Number: tc.number, Withheld: tc.withheld}}
		card := agg.Build(context.Background(), call)
		if card.Phone != tc.phone || card.Resolution != tc.resolution || len(card.Candidates) != tc.candidates {
			t.Errorf("%q: phone %q resolution %s candidates %d; want %q %s %d", tc.number, card.Phone, card.Resolution, len(card.Candidates), tc.phone, tc.resolution, tc.candidates)
			continue
		}
		if tc.customer != "" {
			if card.Customer == nil || !hasPrefix(card.Customer.Name, tc.customer) {
				t.Errorf("%q: customer %+v, want %s", tc.number, card.Customer, tc.customer)
			}
			checkDemoSections(t, tc.number, card, tc.service)
		}
		if tc.candidates > 0 {
			picked := agg.BuildFor(context.Background(), call, card.Candidates[1].ID)
			if picked.Customer == nil || picked.Customer.ID != card.Candidates[1].ID {
				t.Errorf("%q: after the pick: %+v", tc.number, picked.Customer)
			}
			checkDemoSections(t, tc.number+" after the pick", picked, false)
		}
	}
}

// checkDemoSections: a resolved demo card has every configured section,
// each ok; the service section may be empty unless service says the
// customer has open cases or claims.
func checkDemoSections(t *testing.T, what string, card screenpop.Card, service bool) {
	t.Helper()
	names := map[string]bool{}
	for _, s := range card.Sections {
		names[s.Name] = true
		if s.Status == screenpop.SectionOK || s.Status == screenpop.SectionEmpty && s.Name == "service" && !service {
			continue
		}
		t.Errorf("%s: section %s is %s (%s)", what, s.Name, s.Status, s.Error)
	}
	for _, want := range []string{"value", "accounting", "sales", "credit", "service"} {
		if !names[want] {
			t.Errorf("%s: no %s section", what, want)
		}
	}
}

func hasPrefix(s, prefix string) bool { return len(s) >= len(prefix) && s[:len(prefix)] == prefix }
