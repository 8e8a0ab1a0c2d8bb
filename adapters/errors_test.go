package adapters

import (
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

func TestNetworkReason(t *testing.T) {
	dialRefused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5432},
		Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	for _, c := range []struct {
		err  error
		want string
		ok   bool
	}{
		{dialRefused, "connection refused", true},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), "connection reset by the server", true},
		{io.ErrUnexpectedEOF, "the server closed the connection", true},
		{&net.DNSError{Err: "timeout", Name: "db", IsTimeout: true}, "network timeout", true},
		{fmt.Errorf("cannot decode numeric"), "", false},
	} {
		got, ok := NetworkReason(c.err)
		if got != c.want || ok != c.ok {
			t.Errorf("NetworkReason(%v) = %q, %v; want %q, %v", c.err, got, ok, c.want, c.ok)
		}
	}
}
