package main

import "time"

// httpTimeouts bound what one HTTP client may hold of the daemon.
type httpTimeouts struct {
	// readHeader and read bound reading a request: its header, and all of
	// it with the body (a call event, an eviction: a few kilobytes).
	readHeader, read time.Duration
	// write bounds a response (the page, /metrics, an API answer).
	write time.Duration
	// idle is how long a keep-alive connection may wait for its next
	// request.
	idle time.Duration
}

// defaultHTTPTimeouts are generous for what the daemon serves, and short
// enough that a client that trickles its request, or a pile of idle
// connections, cannot hold connections and goroutines for ever.
var defaultHTTPTimeouts = httpTimeouts{
	readHeader: 10 * time.Second,
	read:       30 * time.Second,
	write:      30 * time.Second,
	idle:       2 * time.Minute,
}
