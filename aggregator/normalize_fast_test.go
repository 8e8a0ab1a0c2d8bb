package aggregator

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// normalizeFull is normalize with every check made on every number.
func normalizeFull(raw, region string) (Number, error) { return normalizeChecked(raw, region, true) }

// TestNormalizeShortcuts: normalize's shortcuts for digits-only text and
// for numbers sent in E.164 give what the full checks give, for random
// digit strings with and without "+", international prefixes, example
// numbers of many regions with their last digits changed, and those
// numbers in E.164.
func TestNormalizeShortcuts(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 1))
	digits := func(n int) string {
		var b strings.Builder
		for range n {
			b.WriteByte(byte('0' + rng.IntN(10)))
		}
		return b.String()
	}
	regions := []string{"DE", "PL", "US", "GB", "FR", "CH", "AT", "IT", "ES", "NL", "CA", "AU", "JP", "BR", "IN"}
	var inputs []string
	for _, r := range regions {
		cc := strconv.Itoa(phonenumbers.GetCountryCodeForRegion(r))
		for _, typ := range []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE} {
			ex := phonenumbers.GetExampleNumberForType(r, typ)
			if ex == nil {
				continue
			}
			nsn := phonenumbers.GetNationalSignificantNumber(ex)
			for range 20 {
				keep := max(len(nsn)-1-rng.IntN(5), 1)
				n := nsn[:keep] + digits(len(nsn)-keep+rng.IntN(3)-1)
				inputs = append(inputs, "+"+cc+n, "00"+cc+n, "0"+n, n, cc+n)
			}
		}
	}
	for range 500 {
		n := digits(1 + rng.IntN(17))
		inputs = append(inputs, n, "+"+n)
	}
	inputs = append(inputs, "+", "++4930123456", "+4930123456#", "+4930123456,12", "+49 30 123456", "")
	accepted := 0
	for i, raw := range inputs {
		region := regions[i%len(regions)]
		got, gotErr := normalize(raw, region)
		want, wantErr := normalizeFull(raw, region)
		if got != want || gotErr != wantErr {
			t.Errorf("normalize(%q, %s) = %+v, %v; the full checks give %+v, %v", raw, region, got, gotErr, want, wantErr)
		}
		if gotErr == nil {
			accepted++
			// Its E.164 form takes the shortcut: the same number again.
			again, err := normalize(got.E164, regions[(i+1)%len(regions)])
			ref, refErr := normalizeFull(got.E164, regions[(i+1)%len(regions)])
			if again != ref || err != refErr {
				t.Errorf("normalize(%q) = %+v, %v; the full checks give %+v, %v", got.E164, again, err, ref, refErr)
			}
		}
	}
	if accepted < len(inputs)/4 {
		t.Errorf("only %d of %d inputs are phone numbers: the shortcut for E.164 is hardly tried", accepted, len(inputs))
	}
}
