package httpsource

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
)

var customer = aggregator.Key{Phone: "+4930901820", National: "30901820", Region: "DE", CustomerID: "C1001"}

// jsonServer answers every request with body and status, and records the
// last request.
type jsonServer struct {
	*httptest.Server
	mu       sync.Mutex
	last     *http.Request
	lastBody []byte
	requests atomic.Int32
}

func newJSONServer(t *testing.T, status int, contentType, body string) *jsonServer {
	t.Helper()
	js := &jsonServer{}
	js.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		js.mu.Lock()
		js.last, js.lastBody = r, b
		js.mu.Unlock()
		js.requests.Add(1)
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(js.Close)
	return js
}

func (js *jsonServer) lastRequest() (*http.Request, []byte) {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.last, js.lastBody
}

func fetch(t *testing.T, s *Source, key aggregator.Key) []aggregator.Record {
	t.Helper()
	recs, err := s.Fetch(context.Background(), key)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return recs
}

func TestRecordsFromAListAtAPath(t *testing.T) {
	ts := newJSONServer(t, 200, "application/json", `{
		"data": {"items": [
			{"invoice": "INV-1", "amount": 1234.56, "paid": false, "tags": ["a", 2], "customer": {"no": 12345678901234567890}, "note": null},
			{"invoice": "INV-2", "amount": 10, "paid": true, "tags": [], "customer": {"no": 1}, "note": "ok"}
		]},
		"meta": {"total": 2}}`)
	s := newTestSource(t, "url: "+ts.URL+"/customers/{customer_id}/invoices\nrecords: data.items", nil, nil)
	got := fetch(t, s, customer)
	want := []aggregator.Record{
		{"invoice": "INV-1", "amount": 1234.56, "paid": false, "tags": []any{"a", 2.0},
			"customer": map[string]any{"no": "12345678901234567890"}, "note": nil},
		{"invoice": "INV-2", "amount": 10.0, "paid": true, "tags": []any{},
			"customer": map[string]any{"no": 1.0}, "note": "ok"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fetch =\n%#v\nwant\n%#v", got, want)
	}
	r, _ := ts.lastRequest()
	if r.URL.Path != "/customers/C1001/invoices" || r.Method != "GET" {
		t.Errorf("request = %s %s", r.Method, r.URL.Path)
	}
	if r.Header.Get("Accept") != "application/json" {
		t.Errorf("Accept = %q", r.Header.Get("Accept"))
	}
}

func TestOneObjectIsOneRecord(t *testing.T) {
	ts := newJSONServer(t, 200, "application/json", `{"account": {"balance": 99.5, "currency": "EUR"}}`)
	s := newTestSource(t, "url: "+ts.URL+"/{customer_id}\nrecords: account", nil, nil)
	got := fetch(t, s, customer)
	if want := []aggregator.Record{{"balance": 99.5, "currency": "EUR"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Fetch = %v, want %v", got, want)
	}

	// Without records, the whole answer is the record.
	s = newTestSource(t, "url: "+ts.URL+"/{customer_id}", nil, nil)
	got = fetch(t, s, customer)
	if want := []aggregator.Record{{"account": map[string]any{"balance": 99.5, "currency": "EUR"}}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Fetch without records = %v, want %v", got, want)
	}
}

func TestFieldPaths(t *testing.T) {
	ts := newJSONServer(t, 200, "application/json", `{"tickets": [
		{"id": 50001, "priority": {"name": "urgent"}, "lines": [{"sku": "A"}, {"sku": "B"}], "subject": "Leak"},
		{"id": 50002, "priority": {"name": "low"}, "lines": [], "subject": "Filter"}]}`)
	s := newTestSource(t, `
url: `+ts.URL+`/t?c={customer_id}
records: tickets
fields:
  ticket: id
  priority: priority.name
  skus: lines.#.sku
  first_sku: lines.0.sku
  missing: does.not.exist
`, nil, nil)
	got := fetch(t, s, customer)
	want := []aggregator.Record{
		{"ticket": 50001.0, "priority": "urgent", "skus": []any{"A", "B"}, "first_sku": "A", "missing": nil},
		{"ticket": 50002.0, "priority": "low", "skus": []any{}, "first_sku": nil, "missing": nil},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Fetch =\n%#v\nwant\n%#v", got, want)
	}

	// A list of plain values needs fields to name its column.
	ts2 := newJSONServer(t, 200, "application/json", `{"skus": ["A", "B"]}`)
	s = newTestSource(t, "url: "+ts2.URL+"/{customer_id}\nrecords: skus\nfields: {sku: \"@this\"}", nil, nil)
	if got, want := fetch(t, s, customer), []aggregator.Record{{"sku": "A"}, {"sku": "B"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("Fetch of plain values = %v, want %v", got, want)
	}
	s = newTestSource(t, "url: "+ts2.URL+"/{customer_id}\nrecords: skus", nil, nil)
	if _, err := s.Fetch(context.Background(), customer); err == nil || !strings.Contains(err.Error(), "record 0 is a string, not an object: name its columns with fields") {
		t.Errorf("Fetch of plain values without fields = %v", err)
	}
}

func TestURLParametersAreEscaped(t *testing.T) {
	ts := newJSONServer(t, 200, "application/json", `[]`)
	s := newTestSource(t, "url: "+ts.URL+"/customers/{customer_id}/calls?phone={phone}&n={national}&r={region}", nil, nil)
	key := aggregator.Key{CustomerID: "A/B C?x", Phone: "+4930901820", National: "30 901&820", Region: "DE"}
	if got := fetch(t, s, key); len(got) != 0 {
		t.Errorf("Fetch = %v, want no records for []", got)
	}
	r, _ := ts.lastRequest()
	if got, want := r.URL.EscapedPath(), "/customers/A%2FB%20C%3Fx/calls"; got != want {
		t.Errorf("path = %s, want %s", got, want)
	}
	q := r.URL.Query()
	if q.Get("phone") != "+4930901820" || q.Get("n") != "30 901&820" || q.Get("r") != "DE" {
		t.Errorf("query = %q, want the values back unchanged (a + in a query must be escaped)", r.URL.RawQuery)
	}
	if want := []string{"customer_id", "phone", "national", "region"}; !reflect.DeepEqual(s.Params(), want) {
		t.Errorf("Params = %v, want %v", s.Params(), want)
	}
}

func TestMissingParameterSendsNothing(t *testing.T) {
	ts := newJSONServer(t, 200, "application/json", `{}`)
	s := newTestSource(t, "url: "+ts.URL+"/customers/{customer_id}", nil, nil)
	got, err := s.Fetch(context.Background(), aggregator.Key{Phone: "+4930901820"})
	if got != nil || err != nil {
		t.Errorf("Fetch without customer_id = %v, %v; want nil, nil", got, err)
	}
	if n := ts.requests.Load(); n != 0 {
		t.Errorf("%d requests sent, want none", n)
	}
}

func TestPostWithJSONBody(t *testing.T) {
	ts := newJSONServer(t, 200, "application/json", `{"result": {"score": 712}}`)
	s := newTestSource(t, `
method: POST
url: `+ts.URL+`/lookup
body: '{"reference": "{customer_id}", "phone": "{phone}", "both": "{region}-{customer_id}"}'
records: result
`, nil, nil)
	key := aggregator.Key{CustomerID: `a"b\c` + "\n", Phone: "+4930901820", Region: "DE"}
	if got := fetch(t, s, key); !reflect.DeepEqual(got, []aggregator.Record{{"score": 712.0}}) {
		t.Errorf("Fetch = %v", got)
	}
	r, body := ts.lastRequest()
	if r.Method != "POST" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("request = %s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
	}
	var sent map[string]string
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatalf("body %q is not JSON: %v", body, err)
	}
	if want := map[string]string{"reference": key.CustomerID, "phone": key.Phone, "both": "DE-" + key.CustomerID}; !reflect.DeepEqual(sent, want) {
		t.Errorf("body = %v, want %v", sent, want)
	}
}

func TestAuthAndHeaders(t *testing.T) {
	ts := newJSONServer(t, 200, "application/json", `{}`)
	vars := map[string]string{"API_TOKEN": "tok-123", "API_KEY": "key-456", "API_PASS": "p@ss:word", "TENANT": "acme"}

	s := newTestSource(t, `
url: `+ts.URL+`/{customer_id}
auth: {bearer_env: API_TOKEN}
headers:
  X-Api-Key: ${API_KEY}
  X-Tenant: tenant-${TENANT}-eu
  Accept: application/vnd.crm+json
  Host: crm.internal
`, vars, nil)
	fetch(t, s, customer)
	r, _ := ts.lastRequest()
	if r.Host != "crm.internal" {
		t.Errorf("Host = %q, want crm.internal", r.Host)
	}
	for h, want := range map[string]string{
		"Authorization": "Bearer tok-123", "X-Api-Key": "key-456",
		"X-Tenant": "tenant-acme-eu", "Accept": "application/vnd.crm+json",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}

	s = newTestSource(t, "url: "+ts.URL+"/{customer_id}\nauth:\n  basic: {user: screenpop, password_env: API_PASS}", vars, nil)
	fetch(t, s, customer)
	r, _ = ts.lastRequest()
	if user, pass, ok := r.BasicAuth(); !ok || user != "screenpop" || pass != "p@ss:word" {
		t.Errorf("basic auth = %q, %q, %v", user, pass, ok)
	}
}

// A credential written into the file works, but the log says to move it
// to the environment, without repeating it.
func TestLiteralSecretsAreWarnedAbout(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	opts := "url: https://crm.example.com/{phone}\nheaders: {X-Api-Key: abc-literal-key, X-Tenant: acme}\ntls: {insecure_skip_verify: true}"
	if _, err := New(adapters.Spec{Name: "x", Options: options(t, opts), Logger: logger}); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if !strings.Contains(out, "header=X-Api-Key") || !strings.Contains(out, "environment variable") {
		t.Errorf("no warning about the literal X-Api-Key header in:\n%s", out)
	}
	if strings.Contains(out, "X-Tenant") {
		t.Errorf("X-Tenant is not a credential, but was warned about:\n%s", out)
	}
	if !strings.Contains(out, "insecure_skip_verify") {
		t.Errorf("no warning about insecure_skip_verify in:\n%s", out)
	}
	if strings.Contains(out, "abc-literal-key") {
		t.Errorf("the log repeats the credential:\n%s", out)
	}

	logs.Reset()
	opts = "url: https://crm.example.com/{phone}\nheaders: {X-Api-Key: '${KEY}'}"
	if _, err := New(adapters.Spec{Name: "x", Options: options(t, opts), Logger: logger, Env: env(map[string]string{"KEY": "k"})}); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Errorf("a header from the environment was warned about:\n%s", logs.String())
	}
}

// tlsServerCA writes the httptest TLS server's certificate as a CA file.
func tlsServerCA(t *testing.T, ts *httptest.Server, dir string) string {
	return writePEM(t, dir, "ca.pem", "CERTIFICATE", ts.Certificate().Raw)
}

func TestTLS(t *testing.T) {
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok": true}`)
	}))
	ts.Config.ErrorLog = quietLog // refused handshakes are the point here
	ts.StartTLS()
	defer ts.Close()
	dir := t.TempDir()
	ca := tlsServerCA(t, ts, dir)

	// Trusted through ca_file, absolute or relative to the configuration.
	for _, c := range []struct {
		name, caFile string
		files        fstest.MapFS
	}{
		{"absolute ca_file", ca, nil},
		{"relative ca_file", "certs/ca.pem", fstest.MapFS{"certs/ca.pem": {Data: mustRead(t, ca)}}},
	} {
		s := newTestSource(t, "url: "+ts.URL+"/{customer_id}\ntls: {ca_file: "+c.caFile+"}", nil, c.files)
		if got := fetch(t, s, customer); !reflect.DeepEqual(got, []aggregator.Record{{"ok": true}}) {
			t.Errorf("%s: Fetch = %v", c.name, got)
		}
	}

	// Not trusted without it.
	s := newTestSource(t, "url: "+ts.URL+"/{customer_id}", nil, nil)
	_, err := s.Fetch(context.Background(), customer)
	if err == nil || !strings.Contains(err.Error(), "unknown authority (set tls.ca_file") {
		t.Errorf("Fetch from an untrusted server = %v, want an unknown-authority error", err)
	}

	// server_name: httptest's certificate is for example.com.
	s = newTestSource(t, "url: "+ts.URL+"/{customer_id}\ntls: {ca_file: "+ca+", server_name: example.com}", nil, nil)
	fetch(t, s, customer)
	s = newTestSource(t, "url: "+ts.URL+"/{customer_id}\ntls: {ca_file: "+ca+", server_name: crm.internal}", nil, nil)
	if _, err := s.Fetch(context.Background(), customer); err == nil || !strings.Contains(err.Error(), "crm.internal") || !strings.Contains(err.Error(), "tls.server_name") {
		t.Errorf("Fetch with the wrong server_name = %v", err)
	}

	// insecure_skip_verify: works, and is the operator's choice.
	s = newTestSource(t, "url: "+ts.URL+"/{customer_id}\ntls: {insecure_skip_verify: true}", nil, nil)
	fetch(t, s, customer)

	// An https URL to a plain HTTP server.
	plain := newJSONServer(t, 200, "application/json", `{}`)
	s = newTestSource(t, "url: "+strings.Replace(plain.URL, "http:", "https:", 1)+"/{customer_id}", nil, nil)
	if _, err := s.Fetch(context.Background(), customer); err == nil || !strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		t.Errorf("Fetch over TLS from a plain server = %v", err)
	}
}

func TestClientCertificate(t *testing.T) {
	clientCA := newTestCA(t)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"client": %q}`, r.TLS.PeerCertificates[0].Subject.CommonName)
	}))
	pool := x509.NewCertPool()
	pool.AddCert(clientCA.cert)
	ts.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	ts.Config.ErrorLog = quietLog
	ts.StartTLS()
	defer ts.Close()

	dir := t.TempDir()
	ca := tlsServerCA(t, ts, dir)
	certDER, keyDER := clientCA.clientCert(t, "screenpop")
	cert := writePEM(t, dir, "client.pem", "CERTIFICATE", certDER)
	key := writePEM(t, dir, "client-key.pem", "EC PRIVATE KEY", keyDER)

	s := newTestSource(t, fmt.Sprintf("url: %s/{customer_id}\ntls: {ca_file: %s, cert_file: %s, key_file: %s}", ts.URL, ca, cert, key), nil, nil)
	if got := fetch(t, s, customer); !reflect.DeepEqual(got, []aggregator.Record{{"client": "screenpop"}}) {
		t.Errorf("Fetch = %v", got)
	}

	// Without the client certificate the server refuses the handshake.
	s = newTestSource(t, fmt.Sprintf("url: %s/{customer_id}\ntls: {ca_file: %s}", ts.URL, ca), nil, nil)
	if _, err := s.Fetch(context.Background(), customer); err == nil {
		t.Error("Fetch without a client certificate: no error")
	}
}

// A server that never answers: Fetch returns when the context ends, says
// why, and the request is abandoned on the wire (the server sees it go).
func TestHangingServerRespectsTheDeadline(t *testing.T) {
	release := make(chan struct{})
	gone := make(chan struct{}, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
			gone <- struct{}{}
		case <-release:
		}
	}))
	defer ts.Close()
	defer close(release)

	s := newTestSource(t, "url: "+ts.URL+"/customers/{customer_id}?phone={phone}", nil, nil)
	cause := errors.New("source test-api took longer than 200ms")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 200*time.Millisecond, cause)
	defer cancel()
	_, err := s.Fetch(ctx, customer)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, cause) {
		t.Fatalf("Fetch = %v, want a deadline error with its cause", err)
	}
	if want := "http source test-api: no answer before the deadline (source test-api took longer than 200ms)"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	<-gone // the server saw the client give up (the test hangs here otherwise)
}

// A server that sends headers and then stalls in the body.
func TestStallInTheBody(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data": [`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer ts.Close()
	defer close(release)
	s := newTestSource(t, "url: "+ts.URL+"/{customer_id}\nrecords: data", nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Fetch(ctx, customer); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Fetch = %v, want a deadline error", err)
	}
}

func TestGarbageAnswers(t *testing.T) {
	cases := []struct {
		name, contentType, body string
		want                    string
	}{
		{"html", "text/html", "<html><head><title>Login required</title></head><body>...</body></html>",
			"http source test-api: the response is not JSON (Content-Type text/html): Login required"},
		{"truncated JSON", "application/json", `{"data": [{"a": 1}, {"b"`,
			`http source test-api: the response is not JSON (Content-Type application/json): {"data": [{"a": 1}, {"b"`},
		{"binary", "application/octet-stream", "\x00\x01\x02garbage\xff",
			"http source test-api: the response is not JSON (Content-Type application/octet-stream): ???garbage?"},
		{"empty", "application/json", "",
			"http source test-api: the response is empty, expected JSON"},
		{"records path missing", "application/json", `{"items": [], "total": 0}`,
			`http source test-api: records path "data.items" is not in the response (its top-level keys: items, total)`},
		{"records path a scalar", "application/json", `{"data": {"items": "none"}}`,
			`http source test-api: records path "data.items" is a string, not a list or an object`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := newJSONServer(t, 200, c.contentType, c.body)
			s := newTestSource(t, "url: "+ts.URL+"/{customer_id}\nrecords: data.items", nil, nil)
			_, err := s.Fetch(context.Background(), customer)
			if err == nil || err.Error() != c.want {
				t.Errorf("error = %v\nwant    %s", err, c.want)
			}
		})
	}

	// A null where the records would be: the system knows nothing.
	ts := newJSONServer(t, 200, "application/json", `{"data": {"items": null}}`)
	s := newTestSource(t, "url: "+ts.URL+"/{customer_id}\nrecords: data.items", nil, nil)
	if got := fetch(t, s, customer); got != nil {
		t.Errorf("Fetch of null = %v, want nothing", got)
	}
}

func TestErrorStatuses(t *testing.T) {
	cases := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        string
	}{
		{"500 with a JSON error", 500, "application/json",
			`{"error": {"message": "lookup of +4930901820 failed: database unavailable", "code": 17}}`,
			"http source test-api: HTTP 500 Internal Server Error: lookup of +*******820 failed: database unavailable"},
		{"502 from a proxy", 502, "text/html",
			"<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>",
			"http source test-api: HTTP 502 Bad Gateway: 502 Bad Gateway"},
		{"401 echoing the token", 401, "text/plain", "invalid token tok-123\n\n\tfor tenant acme",
			"http source test-api: HTTP 401 Unauthorized: invalid token ***** for tenant acme"},
		{"500 without a body", 500, "", "",
			"http source test-api: HTTP 500 Internal Server Error"},
		{"a long page", 503, "text/plain", strings.Repeat("overloaded ", 100),
			"http source test-api: HTTP 503 Service Unavailable: " + strings.TrimSpace(strings.Repeat("overloaded ", 11))[:120] + "…"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := newJSONServer(t, c.status, c.contentType, c.body)
			s := newTestSource(t, "url: "+ts.URL+"/{customer_id}\nauth: {bearer_env: T}", map[string]string{"T": "tok-123"}, nil)
			_, err := s.Fetch(context.Background(), customer)
			if err == nil || err.Error() != c.want {
				t.Errorf("error = %v\nwant    %s", err, c.want)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.Code != c.status {
				t.Errorf("error does not unwrap to StatusError %d", c.status)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				t.Error("an error status must not look like a timeout")
			}
		})
	}
}

func TestNotFoundMeansNothingKnown(t *testing.T) {
	for _, c := range []struct {
		status  int
		options string
	}{
		{404, ""},
		{410, "not_found: [404, 410]"},
		{204, ""},
	} {
		ts := newJSONServer(t, c.status, "application/json", `{"error": "no such customer"}`)
		s := newTestSource(t, "url: "+ts.URL+"/{customer_id}\n"+c.options, nil, nil)
		got, err := s.Fetch(context.Background(), customer)
		if got != nil || err != nil {
			t.Errorf("status %d: Fetch = %v, %v; want nil, nil", c.status, got, err)
		}
	}
	// 404 is an error when not_found says otherwise.
	ts := newJSONServer(t, 404, "application/json", `{"error": "no route"}`)
	s := newTestSource(t, "url: "+ts.URL+"/{customer_id}\nnot_found: [410]", nil, nil)
	if _, err := s.Fetch(context.Background(), customer); err == nil || !strings.Contains(err.Error(), "HTTP 404 Not Found: no route") {
		t.Errorf("404 outside not_found: %v", err)
	}
}

func TestThousandsOfRecords(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"rows": [`)
	for i := range 5000 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"n": %d, "sku": "SKU-%05d"}`, i, i)
	}
	b.WriteString("]}")
	ts := newJSONServer(t, 200, "application/json", b.String())

	for _, c := range []struct {
		options string
		want    int
	}{
		{"", DefaultMaxRows},
		{"max_rows: 10", 10},
		{"max_rows: 10000", 5000},
	} {
		s := newTestSource(t, "url: "+ts.URL+"/{customer_id}\nrecords: rows\n"+c.options, nil, nil)
		got := fetch(t, s, customer)
		if len(got) != c.want {
			t.Fatalf("%q: %d records, want %d", c.options, len(got), c.want)
		}
		for i, r := range got {
			if r["n"] != float64(i) {
				t.Fatalf("record %d = %v, want the first records in order", i, r)
			}
		}
	}
}

func TestMaxBody(t *testing.T) {
	ts := newJSONServer(t, 200, "application/json", `{"pad": "`+strings.Repeat("x", 2000)+`"}`)
	s := newTestSource(t, "url: "+ts.URL+"/{customer_id}\nmax_body: 1KiB", nil, nil)
	_, err := s.Fetch(context.Background(), customer)
	if err == nil || err.Error() != "http source test-api: the response is larger than max_body (1 KiB)" {
		t.Errorf("Fetch = %v", err)
	}
	s = newTestSource(t, "url: "+ts.URL+"/{customer_id}\nmax_body: 4096", nil, nil)
	fetch(t, s, customer)
}

func TestConnectionRefusedHidesTheURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := newTestSource(t, "url: http://"+addr+"/customers/{customer_id}?phone={phone}", nil, nil)
	_, err = s.Fetch(context.Background(), customer)
	if err == nil || err.Error() != "http source test-api: connection refused" {
		t.Errorf("Fetch = %v, want a plain connection-refused error", err)
	}
}

func TestConcurrentFetches(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"id": %q}`, strings.TrimPrefix(r.URL.Path, "/"))
	}))
	defer ts.Close()
	s := newTestSource(t, "url: "+ts.URL+"/{customer_id}", nil, nil)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("C%d", i)
			got, err := s.Fetch(context.Background(), aggregator.Key{CustomerID: id})
			if err != nil || len(got) != 1 || got[0]["id"] != id {
				t.Errorf("Fetch(%s) = %v, %v", id, got, err)
			}
		}()
	}
	wg.Wait()
}

func TestConstructionErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := dir + "/not.pem"
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"TOKEN": "t", "PASS": "p"}
	cases := []struct {
		name, yaml, want string
		line             int
	}{
		{"no url", "method: GET", "url is required", 1},
		{"not http", "url: ftp://example.com/{phone}", "url: must start with http:// or https://", 1},
		{"relative url", "url: /customers/{customer_id}", "url: must start with http:// or https://", 1},
		{"parameter in the host", "records: x\nurl: https://{region}.crm.example.com/c/{customer_id}", "url: parameters may appear in the path and query only", 2},
		{"user in the url", "url: https://me:pw@crm.example.com/{phone}", "must not contain a user or password", 1},
		{"unknown parameter", "url: https://crm.example.com/c/{custmer_id}",
			"url: unknown parameter {custmer_id} (known parameters: {phone}, {national}, {region}, {customer_id})", 1},
		{"misspelt option", "url: https://crm.example.com/{phone}\nrecrods: data", `unknown option "recrods" (did you mean "records"?)`, 2},
		{"misspelt nested option", "url: https://crm.example.com/{phone}\ntls:\n  ca_fiel: x.pem", `line 3, column 3: tls: unknown option "ca_fiel" (did you mean "ca_file"?)`, 3},
		{"bad method", "url: https://crm.example.com/{phone}\nmethod: DELETE", `method "DELETE" is not supported`, 2},
		{"body with GET", "url: https://crm.example.com/x\nbody: '{\"p\": \"{phone}\"}'", "a body needs method: POST", 2},
		{"body not JSON", "url: https://crm.example.com/x\nmethod: POST\nbody: '{\"p\": {phone}}'",
			`body is not valid JSON once its parameters are filled in`, 3},
		{"body unknown parameter", "url: https://crm.example.com/x\nmethod: POST\nbody: '{\"p\": \"{phone_number}\"}'",
			"body: unknown parameter {phone_number}", 3},
		{"header variable unset", "url: https://crm.example.com/{phone}\nheaders:\n  X-Api-Key: ${NOPE}",
			"headers.X-Api-Key: environment variable NOPE is not set or empty", 2},
		{"bad header name", "url: https://crm.example.com/{phone}\nheaders:\n  'X Api': v", `headers: "X Api" is not a valid header name`, 2},
		{"both auths", "url: https://crm.example.com/{phone}\nauth: {bearer_env: TOKEN, basic: {user: u, password_env: PASS}}",
			"auth: set bearer_env or basic, not both", 2},
		{"auth and Authorization header", "url: https://crm.example.com/{phone}\nheaders: {Authorization: x}\nauth: {bearer_env: TOKEN}",
			"set auth or an Authorization header, not both", 3},
		{"bearer unset", "url: https://crm.example.com/{phone}\nauth: {bearer_env: NOPE}", "auth.bearer_env: environment variable NOPE is not set or empty", 2},
		{"basic without password", "url: https://crm.example.com/{phone}\nauth: {basic: {user: u}}", "auth.basic.password_env is required", 2},
		{"basic password unset", "url: https://crm.example.com/{phone}\nauth: {basic: {user: u, password_env: NOPE}}", "environment variable NOPE is not set or empty", 2},
		{"empty auth", "url: https://crm.example.com/{phone}\nauth: {}", "auth needs bearer_env, bearer_file or basic", 2},
		{"missing ca_file", "url: https://crm.example.com/{phone}\ntls: {ca_file: /nonexistent/ca.pem}", "tls: ca_file: open /nonexistent/ca.pem", 2},
		{"ca_file not PEM", "url: https://crm.example.com/{phone}\ntls: {ca_file: " + notPEM + "}", "holds no PEM certificate", 2},
		{"cert without key", "url: https://crm.example.com/{phone}\ntls: {cert_file: " + notPEM + "}", "cert_file and key_file go together", 2},
		{"not_found 200", "url: https://crm.example.com/{phone}\nnot_found: [404, 200]", "not_found: 200 is a success", 2},
		{"not_found not a status", "url: https://crm.example.com/{phone}\nnot_found: [4040]", "not_found: 4040 is not an HTTP status code", 2},
		{"max_body not a size", "url: https://crm.example.com/{phone}\nmax_body: lots", `"lots" is not a size`, 2},
		{"max_body too large", "url: https://crm.example.com/{phone}\nmax_body: 1GiB", "max_body must be between 1 and 64MiB", 2},
		{"negative max_rows", "url: https://crm.example.com/{phone}\nmax_rows: -5", "max_rows must not be negative", 2},
		{"proxy with a password", "url: https://crm.example.com/{phone}\nproxy: http://u:secret@proxy:3128", "proxy contains a password", 2},
		{"empty field path", "url: https://crm.example.com/{phone}\nfields: {balance: ''}", `fields: "balance" needs a column name and a path`, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(adapters.Spec{Name: "x", Options: options(t, c.yaml), Env: env(vars)})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %q\nwant it to contain %q", err, c.want)
			}
			if c.line > 0 && !strings.HasPrefix(err.Error(), fmt.Sprintf("line %d, column ", c.line)) {
				t.Errorf("error = %q, want it at line %d", err, c.line)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows a secret", err)
			}
		})
	}
}

func TestSampleBuilds(t *testing.T) {
	ts := httptest.NewTLSServer(http.NotFoundHandler())
	defer ts.Close()
	files := fstest.MapFS{"certs/internal-ca.pem": {Data: mustRead(t, tlsServerCA(t, ts, t.TempDir()))}}
	sources := sampleSources(t, Sample)
	if len(sources) < 2 {
		t.Fatalf("sample.yaml has %d sources, want at least 2", len(sources))
	}
	for name, opts := range sources {
		_, err := New(adapters.Spec{Name: name, Options: opts, Files: files,
			Env: env(map[string]string{"SERVICEDESK_API_KEY": "k", "CREDIT_AGENCY_PASSWORD": "p"})})
		if err != nil {
			t.Errorf("sample source %s: %v", name, err)
		}
	}
}

var quietLog = log.New(io.Discard, "", 0)

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The examples in README.md build.
func TestReadmeExamples(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	built := 0
	rest := string(b)
	for {
		i := strings.Index(rest, "```yaml\n")
		if i < 0 {
			break
		}
		rest = rest[i+len("```yaml\n"):]
		j := strings.Index(rest, "```")
		for name, opts := range sampleSources(t, []byte(rest[:j])) {
			if _, err := New(adapters.Spec{Name: name, Options: opts, Env: func(string) string { return "x" }}); err != nil {
				t.Errorf("README example %s: %v", name, err)
			}
			built++
		}
		rest = rest[j+3:]
	}
	if built == 0 {
		t.Error("no source in the README examples")
	}
}
