package aggregator

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/telephony/demo"
)

// propertyRegions are the default regions the property and fuzz tests
// normalise with, and re-normalise every result with ("" included: an
// E.164 number needs no region).
var propertyRegions = []string{"DE", "PL", "GB", "US", "FR", "IT", ""}

// checkNormalized asserts what every successful normalisation must give: an
// E.164 number of at most 15 digits that is valid, or possible by
// normalize's rule, not a placeholder, and that normalises to the same
// Number again whatever the default region.
func checkNormalized(t *testing.T, raw, region string, n Number) {
	t.Helper()
	digits, ok := strings.CutPrefix(n.E164, "+")
	if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" || len(digits) > maxE164Digits {
		t.Errorf("normalize(%q, %q): E164 %q is not + and at most 15 digits", raw, region, n.E164)
		return
	}
	num, err := phonenumbers.ParseAndKeepRawInput(n.E164, "")
	if err != nil {
		t.Errorf("normalize(%q, %q): E164 %q does not parse: %v", raw, region, n.E164, err)
		return
	}
	national := phonenumbers.GetNationalSignificantNumber(num)
	if national != n.National || !strings.HasSuffix(digits, national) {
		t.Errorf("normalize(%q, %q): national %q, but %q has %q", raw, region, n.National, n.E164, national)
	}
	if !phonenumbers.IsValidNumber(num) && !possible(num, national) {
		t.Errorf("normalize(%q, %q): %q is neither valid nor possible by the rule", raw, region, n.E164)
	}
	if repeatedDigit(national) || testSequences[national] && !phonenumbers.IsValidNumber(num) || testSequences[digits] {
		t.Errorf("normalize(%q, %q): %q is a placeholder", raw, region, n.E164)
	}
	want := n
	want.Extension = ""
	for _, r := range propertyRegions {
		again, err := normalize(n.E164, r)
		if err != nil || again != want {
			t.Errorf("normalize(%q, %q) = %+v, but normalize(%q, %q) = %+v, %v", raw, region, n, n.E164, r, again, err)
		}
	}
}

// TestNormalizeIsIdempotent normalises thousands of generated numbers in
// national and international form (a fixed seed: the same ones every run)
// and checks every result with checkNormalized.
func TestNormalizeIsIdempotent(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 5))
	digits := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		return b.String()
	}
	// spaced breaks a digit string up the way PBXs and people write it.
	spaced := func(s string) string {
		var b strings.Builder
		for i, c := range s {
			if i > 0 && rng.IntN(4) == 0 {
				b.WriteByte(" -."[rng.IntN(3)])
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	// mutated is an example number of the region with its last digits
	// replaced: mostly valid numbers, which random strings rarely are.
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE, phonenumbers.VOIP}
	mutated := func(region string) string {
		ex := phonenumbers.GetExampleNumberForType(region, types[rng.IntN(len(types))])
		if ex == nil {
			return digits(9)
		}
		nsn := phonenumbers.GetNationalSignificantNumber(ex)
		keep := max(len(nsn)-1-rng.IntN(5), 1)
		return nsn[:keep] + digits(len(nsn)-keep)
	}
	const tries = 3000
	ok := 0
	for i := range tries {
		region := propertyRegions[i%(len(propertyRegions)-1)] // a default region, never ""
		cc := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(region))
		var national string
		if rng.IntN(2) == 0 {
			national = mutated(region)
		} else {
			national = digits(3 + rng.IntN(14))
		}
		var raw string
		switch rng.IntN(5) {
		case 0:
			raw = national
		case 1:
			raw = phonenumbers.GetNddPrefixForRegion(region, true) + national
		case 2:
			raw = "+" + cc + national
		case 3:
			raw = "00" + cc + national
		case 4:
			raw = "+" + cc + " " + spaced(national)
		}
		if rng.IntN(3) == 0 {
			raw = spaced(raw)
		}
		n, err := normalize(raw, region)
		if err != nil {
			continue
		}
		ok++
		checkNormalized(t, raw, region, n)
	}
	// Mostly valid numbers go in: the property must have been checked on
	// many of them, not vacuously.
	if ok < tries/4 {
		t.Errorf("only %d of %d generated numbers normalised", ok, tries)
	}
	t.Logf("%d of %d generated numbers normalised", ok, tries)
}

// FuzzNormalize checks checkNormalized on whatever normalises, with every
// default region. Plain `go test` runs the seeds; fuzz with
// go test -run '^$' -fuzz FuzzNormalize -fuzztime 20s ./aggregator/
func FuzzNormalize(f *testing.F) {
	for _, seed := range []string{
		"0000000", "+48 601-234-567", "tel:+4930123456", "ABC", "00000000000000000000",
		"030 123456", "0048 601 234 567", "+49 30 123456 ext. 12", "sip:+4930123456@pbx.example;user=phone",
		"123456789", "+49 9999999999", "+4930123456789012", "anonymous", "1001", "+1 (415) 555-0134",
		"tel:30123456;phone-context=+49", "0341 555 01313",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, region := range propertyRegions {
			n, err := normalize(raw, region)
			if err != nil {
				if !errors.Is(err, ErrNotAPhone) && !errors.Is(err, ErrWithheld) {
					t.Errorf("normalize(%q, %q): unexpected error %v", raw, region, err)
				}
				if n != (Number{}) {
					t.Errorf("normalize(%q, %q): %+v along with %v", raw, region, n, err)
				}
				continue
			}
			checkNormalized(t, raw, region, n)
		}
	})
}

// TestDemoNumbersNormalize: every phone of the demo data (the file
// directory, the database and the generator's callers) must still be a phone
// number, or the demo would show its customers as unknown callers.
func TestDemoNumbersNormalize(t *testing.T) {
	data, err := os.ReadFile("../configs/demo/directory.json")
	if err != nil {
		t.Fatal(err)
	}
	var directory []struct {
		ID    string `json:"id"`
		Phone string `json:"phone"`
	}
	if err := json.Unmarshal(data, &directory); err != nil {
		t.Fatal(err)
	}
	if len(directory) == 0 {
		t.Fatal("no numbers in configs/demo/directory.json")
	}
	for _, c := range directory {
		n, err := normalize(c.Phone, "DE")
		if err != nil || n.E164 != c.Phone {
			t.Errorf("directory.json %s: normalize(%q) = %+v, %v", c.ID, c.Phone, n, err)
		}
	}

	sql, err := os.ReadFile("../configs/demo-db/demo.sql")
	if err != nil {
		t.Fatal(err)
	}
	phones := regexp.MustCompile(`'(\+[0-9]+)'`).FindAllStringSubmatch(string(sql), -1)
	if len(phones) == 0 {
		t.Fatal("no numbers in configs/demo-db/demo.sql")
	}
	for _, m := range phones {
		if n, err := normalize(m[1], "DE"); err != nil || n.E164 != m[1] {
			t.Errorf("demo.sql: normalize(%q) = %+v, %v", m[1], n, err)
		}
	}

	for _, c := range demo.DefaultCallers() {
		if c.Withheld {
			continue
		}
		if _, kind := classify(screenpop.Caller{Number: c.Number}, "DE"); kind != callerPhone {
			t.Errorf("demo caller %q is not a phone (%d)", c.Number, kind)
		}
	}
}

// TestClassify: only the telephony source's flag makes a caller withheld;
// an unflagged caller without a usable number is not a phone.
func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		caller screenpop.Caller
		want   callerKind
	}{
		{screenpop.Caller{Withheld: true}, callerWithheld},
		{screenpop.Caller{Withheld: true, Number: "+4930123456"}, callerWithheld},
		{screenpop.Caller{Number: ""}, callerNotPhone},
		{screenpop.Caller{Number: "anonymous"}, callerNotPhone},
		{screenpop.Caller{Number: "sip:anonymous@anonymous.invalid"}, callerNotPhone},
		{screenpop.Caller{Number: "0000000"}, callerNotPhone},
		{screenpop.Caller{Number: "1001"}, callerNotPhone},
		{screenpop.Caller{Number: "030 123456"}, callerPhone},
	} {
		n, kind := classify(tc.caller, "DE")
		if kind != tc.want || (kind != callerPhone) != (n == Number{}) {
			t.Errorf("classify(%+v) = %+v, %d; want kind %d", tc.caller, n, kind, tc.want)
		}
	}
}
