package aggregator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	screenpop "github.com/screenpop/screenpop"
)

func lineOf(card screenpop.Card) string {
	if card.Line == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q %q", card.Line.Number, card.Line.Label)
}

// TestLineOnEveryCard: the number the customer dialled reaches every card,
// whoever calls, with the configured label when there is one.
func TestLineOnEveryCard(t *testing.T) {
	f := newFixture(t, Config{
		Region:    "DE",
		Directory: &SourceSpec{Name: "directory", Source: directoryOf(brandt)},
		Sources:   []SourceSpec{{Name: "credit", Source: static(Record{"limit": 1})}},
		Lines:     map[string]string{"100": "Support DE", "+493090182100": " Sales PL "},
	}, Options{})
	for _, tc := range []struct {
		name   string
		caller screenpop.Caller
		did    string
		want   string
	}{
		{"known caller", screenpop.Caller{Number: "030 123456"}, "100", `"100" "Support DE"`},
		{"unknown caller", screenpop.Caller{Number: "+48 601-234-567"}, "+493090182100", `"+493090182100" "Sales PL"`},
		{"withheld caller", screenpop.Caller{Withheld: true}, "100", `"100" "Support DE"`},
		{"internal caller", screenpop.Caller{Number: "1001"}, "100", `"100" "Support DE"`},
		{"line without a label", screenpop.Caller{Number: "030 123456"}, "300", `"300" ""`},
		{"spaces around the DID", screenpop.Caller{Number: "030 123456"}, " 100 ", `"100" "Support DE"`},
		{"no DID", screenpop.Caller{Number: "030 123456"}, "", "<nil>"},
		{"blank DID", screenpop.Caller{Withheld: true}, "  ", "<nil>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			call := ringing(tc.caller.Number)
			call.Caller, call.DID = tc.caller, tc.did
			card := f.agg.Build(context.Background(), call)
			if got := lineOf(card); got != tc.want {
				t.Errorf("line %s, want %s", got, tc.want)
			}
		})
	}
}

// TestLineAfterBuildFor: the card rebuilt for the customer the agent
// picked keeps the line.
func TestLineAfterBuildFor(t *testing.T) {
	shared := "+493412345670"
	f := newFixture(t, Config{
		Region: "DE",
		Directory: &SourceSpec{Name: "directory", Source: directoryOf(
			Record{"id": "C-7", "phone": shared, "name": "Lindner Druck"},
			Record{"id": "C-8", "phone": shared, "name": "Saxonia Verpackung"},
		)},
		Sources: []SourceSpec{{Name: "credit", Source: static(Record{"limit": 1})}},
		Lines:   map[string]string{"200": "Sales PL"},
	}, Options{})
	call := ringing(shared)
	call.DID = "200"
	if card := f.agg.Build(context.Background(), call); card.Resolution != screenpop.ResolvedAmbiguous || lineOf(card) != `"200" "Sales PL"` {
		t.Errorf("ambiguous card: resolution %s line %s", card.Resolution, lineOf(card))
	}
	card := f.agg.BuildFor(context.Background(), call, "C-8")
	if card.Customer == nil || card.Customer.ID != "C-8" || lineOf(card) != `"200" "Sales PL"` {
		t.Errorf("after the pick: customer %+v line %s", card.Customer, lineOf(card))
	}
}

// TestCoalescedCallsKeepTheirOwnLine: two calls from one number on two
// lines share a fan-out, not a line.
func TestCoalescedCallsKeepTheirOwnLine(t *testing.T) {
	release := make(chan struct{})
	f := newFixture(t, Config{
		Region: "DE", Deadline: 30 * time.Second,
		Directory: &SourceSpec{Name: "directory", Timeout: 30 * time.Second, Source: blockUntil(release, brandt)},
		Sources:   []SourceSpec{{Name: "credit", Source: static(Record{"limit": 1})}},
		Lines:     map[string]string{"100": "Support DE", "200": "Sales PL"},
	}, Options{})
	cards := make(chan screenpop.Card, 2)
	for _, did := range []string{"100", "200"} {
		go func() {
			call := ringing(knownPhone)
			call.CallID, call.DID = "call-"+did, did
			cards <- f.agg.Build(context.Background(), call)
		}()
	}
	waitMetric(t, f.reg, "screenpop_aggregator_coalesced_total", nil, 1)
	close(release)
	for range 2 {
		card := <-cards
		want := map[string]string{"call-100": `"100" "Support DE"`, "call-200": `"200" "Sales PL"`}[card.CallID]
		if got := lineOf(card); got != want {
			t.Errorf("%s: line %s, want %s", card.CallID, got, want)
		}
	}
}

// TestReloadSwapsLineLabels: a label changed in the configuration shows on
// the next card, as every other setting a SIGHUP reloads.
func TestReloadSwapsLineLabels(t *testing.T) {
	cfg := Config{Region: "DE", Lines: map[string]string{"100": "Support DE"}}
	f := newFixture(t, cfg, Options{})
	call := ringing("030 123456")
	call.DID = "100"
	if got := lineOf(f.agg.Build(context.Background(), call)); got != `"100" "Support DE"` {
		t.Fatalf("before reload: %s", got)
	}
	cfg.Lines = map[string]string{"100": "Kundendienst"}
	if err := f.agg.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := lineOf(f.agg.Build(context.Background(), call)); got != `"100" "Kundendienst"` {
		t.Errorf("after reload: %s", got)
	}
	// The aggregator keeps its own copy: changing the caller's map later
	// changes nothing.
	cfg.Lines["100"] = "changed behind its back"
	if got := lineOf(f.agg.Build(context.Background(), call)); got != `"100" "Kundendienst"` {
		t.Errorf("after the caller changed its map: %s", got)
	}
	cfg.Lines = nil
	if err := f.agg.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := lineOf(f.agg.Build(context.Background(), call)); got != `"100" ""` {
		t.Errorf("after the label was removed: %s", got)
	}
}

func TestLineWithoutNumberIsRefused(t *testing.T) {
	_, err := New(Config{Lines: map[string]string{" ": "Support DE"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), `lines[" "]: an entry has no number`) {
		t.Errorf("got %v", err)
	}
}
