package aggregator

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// cacheKey is built in one allocation, and is what it always was: the
// keys in a shared Redis outlive a daemon's upgrade.
func TestCacheKeyUnchanged(t *testing.T) {
	for _, c := range [][3]string{{"credit", "customer_id", "C-1"}, {"s", "phone", "+4930123456"}, {"", "", ""}, {"dir", "phone", strings.Repeat("9", 100)}} {
		sum := sha256.Sum256([]byte(c[1] + "\x00" + c[2]))
		if got, want := cacheKey(c[0], c[1], c[2]), cacheKeyPrefix+c[0]+":"+hex.EncodeToString(sum[:16]); got != want {
			t.Errorf("cacheKey%q = %q, want %q", c, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { cacheKey("credit", "customer_id", "C-1") }); n > 1 {
		t.Errorf("cacheKey allocates %v times, want 1", n)
	}
}
