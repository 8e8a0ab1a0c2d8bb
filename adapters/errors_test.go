package adapters

import (
	"context"
	"errors"
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

func TestFetchFailedScrubsSecretsAndNumbers(t *testing.T) {
	cause := errors.New("driver said so")
	err := FetchFailed(context.Background(), "http", "tickets",
		"lookup of +4930123456 with token s3cret failed", cause, []string{"s3cret", ""}, []string{"+4930123456", ""})
	const want = "http source tickets: lookup of +*******456 with token ***** failed"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, cause) {
		t.Error("the kind's error is not reachable with errors.Is")
	}
}

func TestFetchFailedDeadlineWins(t *testing.T) {
	budget := errors.New("source accounting took longer than 800ms")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(budget)
	err := FetchFailed(ctx, "postgres", "accounting", "connection reset", nil, nil, nil)
	const want = "postgres source accounting: no answer before the deadline (source accounting took longer than 800ms)"
	if err.Error() != want {
		t.Errorf("got %q, want %q", err.Error(), want)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, budget) {
		t.Errorf("%v does not wrap the context's error and its cause", err)
	}
	var fe *FetchError
	if !errors.As(error(err), &fe) || fe.Msg != "no answer before the deadline (source accounting took longer than 800ms)" {
		t.Errorf("errors.As(*FetchError) = %v", fe)
	}
}
