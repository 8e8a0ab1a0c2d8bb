package adapters

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/screenpop/screenpop"
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

// FetchError is what a source of any kind returns when a lookup fails. Its
// message names the kind and the source and says what went wrong in a line
// IT can act on; it never holds a URL or a DSN (they carry the caller's
// number, a host, a user), a token, a password or a query. The underlying
// errors stay reachable with errors.Is/As: context.DeadlineExceeded and the
// context's cause for a timeout, and the kind's own error (an HTTP
// *httpsource.StatusError, a *pgconn.PgError with its SQLSTATE), whose text
// is not part of the message.
type FetchError struct {
	Kind   string // the source's type: "http", "postgres"
	Source string // the source's name
	Msg    string
	errs   []error
}

func (e *FetchError) Error() string { return e.Kind + " source " + e.Source + ": " + e.Msg }

// Unwrap gives errors.Is/As the kind's error and, when the call's context
// ended, its error and cause too, so that a timeout can be told from a
// failure.
func (e *FetchError) Unwrap() []error { return e.errs }

// NewFetchError returns the FetchError of source with msg as it is, wrapping
// the non-nil errs. msg must already be fit to show: see FetchFailed.
func NewFetchError(kind, source, msg string, errs ...error) *FetchError {
	fe := &FetchError{Kind: kind, Source: source, Msg: msg}
	for _, err := range errs {
		if err != nil {
			fe.errs = append(fe.errs, err)
		}
	}
	return fe
}

// FetchFailed returns the FetchError of a failed lookup. A context that
// ended wins over whatever the driver or transport made of it, so a timeout
// always reads as one, with the cause that names the source and its budget.
// Otherwise the message is msg with every secret replaced by ***** and every
// lookup value masked (a phone number is personal data), in case the
// server's or driver's words that msg quotes repeat them.
func FetchFailed(ctx context.Context, kind, source, msg string, err error, secrets, values []string) *FetchError {
	if ctx.Err() != nil {
		msg = "no answer before the deadline"
		cause := context.Cause(ctx)
		if cause != nil && cause != ctx.Err() {
			msg += " (" + cause.Error() + ")"
			return NewFetchError(kind, source, msg, ctx.Err(), cause, err)
		}
		return NewFetchError(kind, source, msg, ctx.Err(), err)
	}
	for _, secret := range secrets {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "*****")
		}
	}
	for _, v := range values {
		if v != "" {
			msg = strings.ReplaceAll(msg, v, screenpop.MaskPhone(v))
		}
	}
	return NewFetchError(kind, source, msg, err)
}
