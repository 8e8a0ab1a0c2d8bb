package ari

import (
	"math/bits"
	"sync"
)

// Frames are copied out of the socket's read buffer into buffers that the
// session loop gives back once it has handled them: an answered call is
// about 118 frames (185 to 1,012 bytes in the recording, 587 the median),
// and copying each into a new slice was a third of all the bytes the
// daemon allocated on the ARI path (a heap profile at 50 calls/s), garbage
// the collector then had to chase.
//
// Buffers are kept by size class (powers of two from 512 bytes to 64 KiB),
// so that a frame holds at most twice its size, or 512 bytes, while it
// waits in the queue; larger frames (a transfer with many snapshots) are
// allocated at their size and left to the collector. Nothing keeps a frame
// after handle: the decoder copies every string it keeps, and ari/v5's
// DecodeEvent (encoding/json) copies too.
const (
	minFrameClass = 9  // 512 bytes
	maxFrameClass = 16 // 64 KiB
)

var framePools [maxFrameClass - minFrameClass + 1]sync.Pool // of *[]byte

// frameClass is the size class of an n-byte frame, and whether it is
// pooled.
func frameClass(n int) (int, bool) {
	c := minFrameClass
	if n > 1<<minFrameClass {
		c = bits.Len(uint(n - 1))
	}
	return c - minFrameClass, c <= maxFrameClass
}

// copyFrame returns a copy of b in a pooled buffer when one of its class
// is free.
func copyFrame(b []byte) []byte {
	k, pooled := frameClass(len(b))
	if !pooled {
		return append(make([]byte, 0, len(b)), b...)
	}
	var buf []byte
	if p, _ := framePools[k].Get().(*[]byte); p != nil {
		buf = (*p)[:0]
	} else {
		buf = make([]byte, 0, 1<<(k+minFrameClass))
	}
	return append(buf, b...)
}

// releaseFrame gives a frame copyFrame returned back once nothing refers
// to it any more.
func releaseFrame(b []byte) {
	k, pooled := frameClass(cap(b))
	if !pooled || cap(b) != 1<<(k+minFrameClass) {
		return // not one of the pool's buffers
	}
	b = b[:0]
	framePools[k].Put(&b)
}
