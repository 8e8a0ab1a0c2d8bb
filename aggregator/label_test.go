package aggregator

import (
	"math/rand/v2"
	"testing"
)

// TestDeriveLabelASCII checks deriveLabel's one-allocation path for ASCII
// names against the general one.
func TestDeriveLabelASCII(t *testing.T) {
	general := deriveAnyLabel
	names := []string{"", "_", " - ", "overdue_total", "sales-next", "a.b.c", "__x__", "Already Upper", "tab\tand\nnewline", "9lives", "é_accent", "x\u00a0y"}
	rnd := rand.New(rand.NewPCG(3, 4))
	const alphabet = "ab Z09_-.\t\r\v\f\n~"
	for range 5000 {
		b := make([]byte, rnd.IntN(12))
		for i := range b {
			b[i] = alphabet[rnd.IntN(len(alphabet))]
		}
		names = append(names, string(b))
	}
	for _, n := range names {
		if got, want := deriveLabel(n), general(n); got != want {
			t.Errorf("deriveLabel(%q) = %q, want %q", n, got, want)
		}
	}
}
