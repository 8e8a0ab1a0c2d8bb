package postgres

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/screenpop/screenpop/adapters"
)

// kind names the source's type in its errors.
const kind = "postgres"

// fetchError describes err for the source, scrubbing secrets and the lookup
// values from whatever text of the driver's ends up in the message: see
// adapters.FetchFailed. The driver's own error, which may name the host and
// user, stays reachable with errors.As but is not part of the message.
func (s *Source) fetchError(ctx context.Context, err error, args []any) error {
	var msg string
	if ctx.Err() == nil {
		msg = describe(err)
	}
	var values []string
	for _, a := range args {
		if v, _ := a.(string); v != "" {
			values = append(values, v)
		}
	}
	return adapters.FetchFailed(ctx, kind, s.name, msg, err, s.entry.secrets, values)
}

// describe says what went wrong in one line, from the error's type rather
// than its text: pgx's connection errors start with "user=... database=..."
// and the network errors carry addresses, none of which belongs in a card.
func describe(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		msg := fmt.Sprintf("%s (SQLSTATE %s)", pgErr.Message, pgErr.Code)
		if pgErr.Hint != "" {
			msg += "; hint: " + pgErr.Hint
		}
		// Detail is left out on purpose: it quotes the data (key values,
		// rows), which may be a customer's personal data.
		var connErr *pgconn.ConnectError
		if errors.As(err, &connErr) {
			return "cannot connect to the database: " + msg
		}
		if lostConnection(err) {
			return "lost the connection to the database: " + msg
		}
		return "query failed: " + msg
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return "cannot connect to the database: " + networkReason(err)
	}
	if lostConnection(err) {
		return "lost the connection to the database: " + networkReason(err)
	}
	return "query failed: " + networkReason(err)
}

// networkReason names the cause of a network-level failure without the
// addresses the net package puts in its messages.
func networkReason(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &dnsErr):
		return "cannot resolve the database host name"
	case errors.As(err, &unknownAuth), errors.As(err, &certErr), errors.As(err, &hostErr):
		return "TLS: the server's certificate is not trusted (check sslrootcert / sslmode in the DSN)"
	}
	if reason, ok := adapters.NetworkReason(err); ok {
		return reason
	}
	// Not a network error: something pgx itself reports, such as a value
	// it cannot decode. Its text names no host; the first line is enough.
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return msg
}

// lostConnection reports whether err means the connection (and probably
// every other one to the same server) is gone: the server restarted, was
// shut down, or the network dropped. Such errors empty the pool so the next
// query dials afresh instead of trying the other dead connections one by one.
func lostConnection(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01..57P05: admin/crash
		// shutdown, cannot connect now, idle session timeout.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P")
	}
	var netErr net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, net.ErrClosed) ||
		(errors.As(err, &netErr) && !netErr.Timeout())
}
