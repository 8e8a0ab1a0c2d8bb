package pop

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkIdleAgentSocket measures what an agent's page costs the daemon
// while nothing happens, which is most of an agent's day: n agents each
// open the socket, get their snapshot and go quiet. It reports the Go
// memory the sockets hold (live heap after a collection, and goroutine
// stacks) per socket, and the process's resident memory per socket,
// which also holds what the collector has not given back. The clients
// are raw TCP connections that speak just enough WebSocket to connect:
// a net.Conn each, a few hundred bytes, counted with the daemon's side.
// One op opens and measures n sockets, then closes them; run it once:
//
//	go test -run '^$' -bench IdleAgentSocket -benchtime 1x ./pop/
func BenchmarkIdleAgentSocket(b *testing.B) {
	for _, n := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			// The first op's figures are reported: later ones reuse the
			// stacks and heap the pages before them let go.
			var m idleMemory
			first := true
			for b.Loop() {
				if got := measureIdleSockets(b, n); first {
					m, first = got, false
				}
			}
			b.ReportMetric(float64(m.heap+m.stack)/float64(n), "B/socket")
			b.ReportMetric(float64(m.heap)/float64(n), "heap-B/socket")
			b.ReportMetric(float64(m.stack)/float64(n), "stack-B/socket")
			b.ReportMetric(float64(m.rss)/float64(n), "rss-B/socket")
		})
	}
}

// idleMemory is what n idle sockets added to the process.
type idleMemory struct{ heap, stack, rss int64 }

func measureIdleSockets(b *testing.B, n int) idleMemory {
	b.Helper()
	b.StopTimer()
	e := startHub(b, nil)
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = e.token(b, fmt.Sprintf("agent-%05d", i))
	}
	conns := make([]net.Conn, 0, n)
	// The pages leave before the next op measures: the hub has let go of
	// every socket.
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		for give := time.Now().Add(patience); e.hub.connectionCount() > 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(give) {
				b.Fatalf("%d sockets still attached after the pages left", e.hub.connectionCount())
			}
		}
	}()
	buf := make([]byte, 64<<10)
	before := settledMemory()
	b.StartTimer()
	for _, tok := range tokens {
		c, err := dialRaw(addr, tok, buf)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
	}
	b.StopTimer()
	if got := e.hub.connectionCount(); got != n {
		b.Fatalf("the hub holds %d connections, want %d", got, n)
	}
	after := settledMemory()
	runtime.KeepAlive(tokens)
	b.StartTimer()
	return idleMemory{heap: after.heap - before.heap, stack: after.stack - before.stack, rss: after.rss - before.rss}
}

// connectionCount is how many pages are attached to the hub.
func (h *Hub) connectionCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, b := range h.agents {
		n += len(b.conns)
	}
	return n
}

// settledMemory collects garbage until goroutine stacks have shrunk to
// what their goroutines use (each collection halves an oversized one),
// and reads the heap, the stacks and the resident set.
func settledMemory() idleMemory {
	for range 4 {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return idleMemory{heap: int64(ms.HeapAlloc), stack: int64(ms.StackInuse), rss: residentBytes()}
}

// residentBytes is the process's resident set (Linux), 0 where unknown.
func residentBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// dialRaw opens the agent socket as a page would (token in the
// subprotocol list) and reads the handshake's answer and the first
// message, the snapshot; after that the socket is idle. buf is scratch.
func dialRaw(addr, token string, buf []byte) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(patience))
	req := "GET /ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Sec-WebSocket-Protocol: " + Subprotocol + ", " + BearerSubprotocolPrefix + token + "\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("after %q: %w", buf[:n], err)
		}
		n += m
		head := bytes.Index(buf[:n], []byte("\r\n\r\n"))
		if head < 0 {
			continue
		}
		if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 101 ")) {
			c.Close()
			return nil, fmt.Errorf("handshake refused: %q", buf[:n])
		}
		if frameEnd(buf[head+4:n]) >= 0 {
			c.SetDeadline(time.Time{})
			return c, nil
		}
		if n == len(buf) {
			c.Close()
			return nil, fmt.Errorf("first message larger than %d bytes", len(buf))
		}
	}
}

// frameEnd is where the first complete unmasked WebSocket frame of p
// ends, or -1 while it is incomplete.
func frameEnd(p []byte) int {
	if len(p) < 2 {
		return -1
	}
	size, at := int(p[1]&0x7f), 2
	switch size {
	case 126:
		if len(p) < 4 {
			return -1
		}
		size, at = int(binary.BigEndian.Uint16(p[2:])), 4
	case 127:
		if len(p) < 10 {
			return -1
		}
		size, at = int(binary.BigEndian.Uint64(p[2:])), 10
	}
	if len(p) < at+size {
		return -1
	}
	return at + size
}
