package httpsource

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/adapters"
)

// FetchError is what Fetch returns when a lookup fails. Its message names
// the source and says what went wrong in a line IT can act on; it never
// holds the URL (which carries the caller's number), a token or a password.
// The underlying error stays reachable with errors.Is/As: a *StatusError
// for a non-2xx answer, context.DeadlineExceeded for a timeout.
type FetchError struct {
	Source string
	Msg    string
	errs   []error
}

func (e *FetchError) Error() string   { return "http source " + e.Source + ": " + e.Msg }
func (e *FetchError) Unwrap() []error { return e.errs }

// fail builds the source's error. A context that ended wins over whatever
// the transport made of it, so a timeout always reads as one.
func (s *Source) fail(ctx context.Context, msg string, keyValues []string, err error) error {
	fe := &FetchError{Source: s.name}
	if ctx.Err() != nil {
		fe.Msg = "no answer before the deadline"
		cause := context.Cause(ctx)
		if cause != nil && cause != ctx.Err() {
			fe.Msg += " (" + cause.Error() + ")"
		}
		fe.errs = append(fe.errs, ctx.Err())
		if cause != ctx.Err() {
			fe.errs = append(fe.errs, cause)
		}
		fe.errs = append(fe.errs, err)
		return fe
	}
	for _, secret := range s.secrets {
		if secret != "" {
			msg = strings.ReplaceAll(msg, secret, "*****")
		}
	}
	for _, v := range keyValues {
		if v != "" {
			msg = strings.ReplaceAll(msg, v, screenpop.MaskPhone(v))
		}
	}
	fe.Msg = msg
	fe.errs = append(fe.errs, err)
	return fe
}

// requestReason says why a request failed without the URL net/http puts in
// front of every error (it holds the caller's number).
func requestReason(err error) string {
	var dnsErr *net.DNSError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certInvalid x509.CertificateInvalidError
	var certErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.As(err, &dnsErr):
		return "cannot resolve the host name " + dnsErr.Name
	case errors.As(err, &unknownAuth):
		return "TLS: the server's certificate is signed by an unknown authority (set tls.ca_file to the CA that signed it)"
	case errors.As(err, &hostErr):
		return "TLS: " + hostErr.Error() + " (set tls.server_name if the certificate names another host)"
	case errors.As(err, &certInvalid):
		return "TLS: " + certInvalid.Error()
	case errors.As(err, &certErr):
		return "TLS: the server's certificate is not trusted: " + errors.Unwrap(certErr).Error()
	case errors.As(err, &recordErr):
		return "TLS: the server does not speak TLS (is the URL https:// for an http:// server?)"
	}
	if reason, ok := adapters.NetworkReason(err); ok {
		return reason
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return sanitize(err.Error(), 160)
}

// shortReason makes one short, printable line of an error body: the
// message field of a JSON error, or the text of an HTML or plain page.
func shortReason(body []byte) string {
	if gjson.ValidBytes(body) {
		r := gjson.ParseBytes(body)
		for _, path := range []string{"error.message", "error_description", "message", "detail", "title", "error"} {
			if v := r.Get(path); v.Type == gjson.String && v.Str != "" {
				return sanitize(v.Str, 120)
			}
		}
		return sanitize(string(body), 120)
	}
	text := string(body)
	if m := titleRE.FindStringSubmatch(text); m != nil {
		text = m[1]
	} else {
		text = tagRE.ReplaceAllString(text, " ")
	}
	return sanitize(text, 120)
}

var (
	titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	tagRE   = regexp.MustCompile(`(?s)<[^>]*>`)
)

// sanitize keeps printable characters, folds whitespace and cuts to max
// runes: what a server sends may be binary, huge or hostile to a terminal.
func sanitize(s string, max int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	var b strings.Builder
	space := false
	n := 0
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case !unicode.IsPrint(r):
			r = '?'
		}
		need := 1
		if space {
			need = 2
		}
		if n+need > max {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
