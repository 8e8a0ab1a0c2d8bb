package ari

import (
	"bytes"
	"testing"
)

func TestFrameClass(t *testing.T) {
	for _, c := range []struct {
		n      int
		class  int
		pooled bool
	}{
		{0, 0, true}, {1, 0, true}, {512, 0, true}, {513, 1, true}, {1024, 1, true}, {1025, 2, true},
		{3000, 3, true}, {64 << 10, 7, true}, {64<<10 + 1, 8, false}, {8 << 20, 14, false},
	} {
		class, pooled := frameClass(c.n)
		if class != c.class || pooled != c.pooled {
			t.Errorf("frameClass(%d) = %d, %v; want %d, %v", c.n, class, pooled, c.class, c.pooled)
		}
	}
}

// A copied frame holds the bytes read, in a buffer of its class (at most
// twice its size); a released one is handed out again, and a frame too
// large to pool is copied at its size.
func TestCopyFrame(t *testing.T) {
	for _, n := range []int{0, 700, 1024, 1500, 5000, 64 << 10, 100 << 10} {
		src := bytes.Repeat([]byte{'x'}, n)
		f := copyFrame(src)
		if f == nil || !bytes.Equal(f, src) {
			t.Fatalf("%d bytes: copy differs (nil %v, %d bytes)", n, f == nil, len(f))
		}
		if n > 0 && &f[0] == &src[0] {
			t.Fatalf("%d bytes: the frame aliases the read buffer", n)
		}
		if max(n, 512) <= 64<<10 && (cap(f) < n || cap(f) > 2*max(n, 512)) {
			t.Errorf("%d bytes: a buffer of %d", n, cap(f))
		}
		if n > 64<<10 && cap(f) != n {
			t.Errorf("%d bytes, not pooled: a buffer of %d", n, cap(f))
		}
		releaseFrame(f)
	}
	// Reuse, where the pool keeps what it was given (it may drop it, as
	// it does at random under the race detector: then nothing to check).
	f := copyFrame(make([]byte, 1500))
	releaseFrame(f)
	g := copyFrame([]byte("abc"))
	if string(g) != "abc" {
		t.Fatalf("a reused buffer holds %q", g)
	}
	// A slice that is not one of the pool's buffers is not kept.
	releaseFrame(make([]byte, 10, 1000))
	releaseFrame(make([]byte, 10, 100))
}
