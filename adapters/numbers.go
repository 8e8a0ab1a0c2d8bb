package adapters

import "strings"

// MaxExactDigits is how many significant decimal digits a float64 is
// guaranteed to give back unchanged (DBL_DIG): a number with more is kept
// as text, so that an amount or an id is never shown rounded.
const MaxExactDigits = 15

// SignificantDigits counts the digits of a decimal number written as text
// (a JSON number, a PostgreSQL numeric) from its first to its last
// non-zero digit, ignoring sign and exponent: "001200.50" has 5 ("12005").
// Zeros at either end are scale, not precision: 1000000 and 0.000001 both
// need one digit.
func SignificantDigits(s string) int {
	s = strings.TrimLeft(s, "+-")
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		s = s[:i]
	}
	return len(strings.Trim(strings.Replace(s, ".", "", 1), "0"))
}
