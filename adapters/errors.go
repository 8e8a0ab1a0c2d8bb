package adapters

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// NetworkReason names a socket-level failure in words fit for a log line an
// IT person reads, without the addresses the net package writes into its
// messages. ok is false when err is not such a failure; each kind checks its
// own causes (DNS, TLS hints that name its options) before calling it.
func NetworkReason(err error) (reason string, ok bool) {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the server", true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "host unreachable", true
	case errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the server closed the connection", true
	case errors.As(err, &netErr) && netErr.Timeout():
		return "network timeout", true
	}
	return "", false
}
