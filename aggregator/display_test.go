package aggregator

import (
	"context"
	"testing"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/telephony/demo"
)

// displayCases are caller IDs as PBXs send them, with the default region
// and what the agent reads on the card (Card.PhoneDisplay). The
// formatting of phone numbers is libphonenumber's; these pin down which
// format is chosen and what happens to caller IDs that are no numbers.
var displayCases = []struct {
	raw      string
	withheld bool
	region   string
	want     string
}{
	// Poland: no trunk prefix; mobiles in threes, Warsaw landlines 2-3-2-2.
	{raw: "+48 601-234-567", region: "PL", want: "601 234 567"},
	{raw: "0048 601 234 567", region: "PL", want: "601 234 567"},
	{raw: "601234567", region: "PL", want: "601 234 567"},
	{raw: "+48 22 123 45 67", region: "PL", want: "22 123 45 67"},
	{raw: "+48 601-234-567", region: "DE", want: "+48 601 234 567"},
	// Germany: trunk prefix 0, area codes of two to five digits.
	{raw: "030 1234567", region: "DE", want: "030 1234567"},
	{raw: "(040) 345 67 89", region: "DE", want: "040 3456789"},
	{raw: "0341 2345670", region: "DE", want: "0341 2345670"},
	{raw: "+49 171 2345678", region: "DE", want: "0171 2345678"},
	{raw: "0049 69 24681358", region: "DE", want: "069 24681358"},
	{raw: "+49 171 2345678", region: "PL", want: "+49 171 2345678"},
	{raw: "+49 30 123456 ext. 12", region: "DE", want: "030 123456 ext. 12"},
	{raw: "sip:+4930123456;ext=7@pbx.example", region: "PL", want: "+49 30 123456 ext. 7"},
	// A number the metadata does not know yet (accepted as possible):
	// no national format is made up for it, with or without a trunk prefix.
	{raw: "+49 1234 5678901", region: "DE", want: "+49 12345678901"},
	// North America: one plan for the US and Canada.
	{raw: "+1 (415) 555-0134", region: "US", want: "(415) 555-0134"},
	{raw: "+1 416 555 0134", region: "US", want: "(416) 555-0134"},
	{raw: "+1 (415) 555-0134", region: "DE", want: "+1 415-555-0134"},
	// The United Kingdom, and Jersey, which shares its country code.
	{raw: "+44 20 7946 0321", region: "GB", want: "020 7946 0321"},
	{raw: "+447911123456", region: "GB", want: "07911 123456"},
	{raw: "+44 1534 123456", region: "GB", want: "01534 123456"},
	{raw: "+44 20 7946 0321", region: "DE", want: "+44 20 7946 0321"},
	{raw: "+44 161 496 0999", region: "US", want: "+44 161 496 0999"},
	// Other neighbours, from Germany.
	{raw: "+43 512 123456", region: "DE", want: "+43 512 123456"},
	{raw: "+41 44 123 45 67", region: "DE", want: "+41 44 123 45 67"},
	{raw: "+33 4 78 12 34 56", region: "DE", want: "+33 4 78 12 34 56"},
	// No region configured: every number international.
	{raw: "+49301234567", region: "", want: "+49 30 1234567"},
	{raw: "+48601234567", region: "", want: "+48 601 234 567"},
	// Not phone numbers: as the PBX sent them, never grouped into a
	// number they are not.
	{raw: "0000000", region: "DE", want: "0000000"},
	{raw: "+490000000", region: "DE", want: "+490000000"},
	{raw: "1001", region: "DE", want: "1001"},
	{raw: "123456789", region: "PL", want: "123456789"},
	{raw: "ABC123", region: "DE", want: "ABC123"},
	{raw: "+49 30 CALL ME", region: "DE", want: "+49 30 CALL ME"},
	{raw: " anonymous ", region: "DE", want: "anonymous"},
	{raw: "", region: "DE", want: ""},
	// Withheld: nothing; the page shows its own label.
	{withheld: true, region: "DE", want: ""},
}

func TestPhoneDisplay(t *testing.T) {
	for _, tc := range displayCases {
		caller := screenpop.Caller{Number: tc.raw, Withheld: tc.withheld}
		num, kind := classify(caller, tc.region)
		got := phoneDisplay(caller, num, kind, tc.region)
		if got != tc.want {
			t.Errorf("%q (withheld %v) with region %q: %q, want %q", tc.raw, tc.withheld, tc.region, got, tc.want)
		}
		if kind != callerPhone {
			continue
		}
		// What the agent reads is the caller's number: dialled or typed
		// in the same region, it is the same number again.
		again, err := normalize(got, tc.region)
		if err != nil || again.E164 != num.E164 || again.Extension != num.Extension {
			t.Errorf("%q with region %q is shown as %q, which reads back as %+v, %v; want %+v", tc.raw, tc.region, got, again, err, num)
		}
	}
}

// TestPhoneDisplayOfDemoCallers: every caller of the demo generator is
// shown in a form that reads back as its number.
func TestPhoneDisplayOfDemoCallers(t *testing.T) {
	for _, region := range propertyRegions {
		for _, c := range demo.DefaultCallers() {
			raw := c.Number
			num, err := normalize(raw, region)
			if err != nil {
				continue // withheld, or a national number of another region
			}
			shown := num.Display(region)
			again, err := normalize(shown, region)
			if err != nil || again.E164 != num.E164 {
				t.Errorf("%q with region %q is shown as %q, which reads back as %+v, %v", raw, region, shown, again, err)
			}
		}
	}
}

// TestPhoneDisplayOnCard: the card carries the display form for its own
// caller, also when calls from two extensions of one number share a
// fan-out, and after the agent picked a customer.
func TestPhoneDisplayOnCard(t *testing.T) {
	f := newFixture(t, Config{
		Region:    "DE",
		Directory: &SourceSpec{Name: "directory", Source: directoryOf(brandt)},
		Sources:   []SourceSpec{{Name: "credit", Source: static(Record{"limit": 1})}},
	}, Options{})
	for _, tc := range []struct {
		caller screenpop.Caller
		phone  string
		want   string
	}{
		{screenpop.Caller{Number: "+4930123456"}, "+4930123456", "030 123456"},
		{screenpop.Caller{Number: "030 123456 ext. 12"}, "+4930123456", "030 123456 ext. 12"},
		{screenpop.Caller{Number: "+48 601-234-567"}, "+48601234567", "+48 601 234 567"},
		{screenpop.Caller{Number: "0000000"}, "", "0000000"},
		{screenpop.Caller{Withheld: true}, "", ""},
	} {
		call := ringing(tc.caller.Number)
		call.Caller = tc.caller
		card := f.agg.Build(context.Background(), call)
		if card.Phone != tc.phone || card.PhoneDisplay != tc.want {
			t.Errorf("%+v: phone %q shown as %q, want %q shown as %q", tc.caller, card.Phone, card.PhoneDisplay, tc.phone, tc.want)
		}
	}

	call := ringing("+4930123456")
	picked := f.agg.BuildFor(context.Background(), call, "C-1")
	if picked.PhoneDisplay != "030 123456" {
		t.Errorf("after a pick: shown as %q, want 030 123456", picked.PhoneDisplay)
	}
}

// TestLineDisplay: the dialled line's number is read as the caller's is;
// an internal extension is shown as the PBX sent it.
func TestLineDisplay(t *testing.T) {
	f := newFixture(t, Config{
		Region:    "DE",
		Lines:     map[string]string{"+493090182100": "Sales"},
		Directory: &SourceSpec{Name: "directory", Source: directoryOf(brandt)},
	}, Options{})
	for _, tc := range []struct {
		did  string
		want screenpop.Line
	}{
		{"+493090182100", screenpop.Line{Number: "+493090182100", Label: "Sales", Display: "030 90182100"}},
		{"+48226123456", screenpop.Line{Number: "+48226123456", Display: "+48 22 612 34 56"}},
		{"100", screenpop.Line{Number: "100"}},
	} {
		call := ringing("+4930123456")
		call.DID = tc.did
		card := f.agg.Build(context.Background(), call)
		if card.Line == nil || *card.Line != tc.want {
			t.Errorf("DID %q: line %+v, want %+v", tc.did, card.Line, tc.want)
		}
	}
}

// BenchmarkPhoneDisplay formats a mix of callers, as every card does once.
func BenchmarkPhoneDisplay(b *testing.B) {
	type input struct {
		caller screenpop.Caller
		num    Number
		kind   callerKind
		region string
	}
	var inputs []input
	for _, tc := range displayCases {
		c := screenpop.Caller{Number: tc.raw, Withheld: tc.withheld}
		num, kind := classify(c, tc.region)
		inputs = append(inputs, input{c, num, kind, tc.region})
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		in := inputs[i%len(inputs)]
		phoneDisplay(in.caller, in.num, in.kind, in.region)
		i++
	}
}
