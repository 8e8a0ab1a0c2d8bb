package adapters

import (
	"math"
	"math/big"
	"regexp"
	"strconv"
	"testing"
)

// jsonNumber is the grammar of a JSON number (RFC 8259), which also
// covers what PostgreSQL writes for numeric.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// FuzzSignificantDigits checks SignificantDigits against what it is for:
// deciding whether a number survives a float64 unchanged. For any number
// in float64's normal range, it must say at most MaxExactDigits exactly
// when the float64 written back with 15 significant digits is the same
// number, and for those, the count must be the fewest digits that give
// the number back. Any text at all must not make it panic or count more
// digits than the text has.
func FuzzSignificantDigits(f *testing.F) {
	for _, s := range []string{
		"001200.50", "1000000", "0.000001", "-12.5e10", "+0", "1234567890123456", "12345.678901234567",
		"123456789012345", "0.1", "9007199254740993", "1e-5", "1.000000000000001", "100000000000000000000001",
		"99999999999999.9", "4.9e-324", "1.7976931348623157e308", "", "-", ".", "e5", "1.2.3", "0e0",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := SignificantDigits(s)
		if n < 0 || n > len(s) {
			t.Fatalf("SignificantDigits(%q) = %d, for a text of %d bytes", s, n, len(s))
		}
		if !jsonNumber.MatchString(s) {
			return
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || v == 0 || math.Abs(v) < 1e-300 || math.Abs(v) > 1e300 {
			// Zero needs no digit; beyond the normal range a float64 keeps
			// fewer digits, which is not what MaxExactDigits is about.
			return
		}
		exact, ok := new(big.Rat).SetString(s)
		if !ok {
			return // an exponent too large for math/big to work with exactly
		}
		// back is v written with digits significant digits, read exactly.
		back := func(digits int) *big.Rat {
			r, ok := new(big.Rat).SetString(strconv.FormatFloat(v, 'e', digits-1, 64))
			if !ok {
				t.Fatalf("cannot read back %v with %d digits", v, digits)
			}
			return r
		}
		survives := back(MaxExactDigits).Cmp(exact) == 0
		if (n <= MaxExactDigits) != survives {
			t.Fatalf("SignificantDigits(%q) = %d, but a float64 written back with %d digits gives %s: the number %s",
				s, n, MaxExactDigits, back(MaxExactDigits).FloatString(20), map[bool]string{true: "survives", false: "does not survive"}[survives])
		}
		if n > MaxExactDigits {
			return
		}
		if back(n).Cmp(exact) != 0 {
			t.Fatalf("SignificantDigits(%q) = %d, but %d digits do not give the number back", s, n, n)
		}
		if n > 1 && back(n-1).Cmp(exact) == 0 {
			t.Fatalf("SignificantDigits(%q) = %d, but %d digits give the number back", s, n, n-1)
		}
	})
}
