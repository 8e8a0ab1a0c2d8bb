package adapters

import "testing"

func TestSignificantDigits(t *testing.T) {
	for in, want := range map[string]int{
		"001200.50": 5, "1000000": 1, "0.000001": 1, "-12.5e10": 3, "+0": 0,
		"1234567890123456": 16, "12345.678901234567": 17,
	} {
		if got := SignificantDigits(in); got != want {
			t.Errorf("SignificantDigits(%q) = %d, want %d", in, got, want)
		}
	}
}
