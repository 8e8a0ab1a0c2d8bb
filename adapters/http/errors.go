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

	"github.com/screenpop/screenpop/adapters"
)

// kind names the source's type in its errors.
const kind = "http"

// fail builds the source's error: see adapters.FetchFailed.
func (s *Source) fail(ctx context.Context, msg string, keyValues []string, err error) error {
	return adapters.FetchFailed(ctx, kind, s.name, msg, err, s.secrets, keyValues)
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
