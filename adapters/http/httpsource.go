// Package httpsource is the `http` source kind: one HTTP request per lookup
// to a company system's JSON API, the caller's number or customer ID filled
// into the URL (or a JSON body), the records picked out of the answer with
// path expressions.
//
// IT connects a new system by writing its URL and where the data sits in
// the answer; no Go is written. See README.md for every option.
package httpsource

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

// Sample is a commented example configuration of this kind, printed by
// `screenpopd sample source http`.
//
//go:embed sample.yaml
var Sample []byte

const (
	// DefaultMaxRows is how many records a response may hold before the
	// rest are ignored: a safety net, not a page size.
	DefaultMaxRows = 1000
	// DefaultMaxBody is the largest response body read. A customer lookup
	// is a few kilobytes; a megabyte means the API sent something else.
	DefaultMaxBody = 1 << 20
	maxMaxBody     = 64 << 20
)

// Options are the kind-specific keys of an http source.
type Options struct {
	URL      string            `yaml:"url"`
	Method   string            `yaml:"method"`
	Body     string            `yaml:"body"`
	Headers  map[string]string `yaml:"headers"`
	Auth     *AuthOptions      `yaml:"auth"`
	TLS      *TLSOptions       `yaml:"tls"`
	Proxy    string            `yaml:"proxy"`
	Records  string            `yaml:"records"`
	Fields   map[string]string `yaml:"fields"`
	MaxRows  int               `yaml:"max_rows"`
	MaxBody  ByteSize          `yaml:"max_body"`
	NotFound []int             `yaml:"not_found"`
	// Search makes a directory searchable by agents (search.go).
	Search *SearchOptions `yaml:"search"`
}

// AuthOptions: a bearer token or a user and password, read from the
// environment or from a file (read again at every reload).
type AuthOptions struct {
	BearerEnv  string     `yaml:"bearer_env"`
	BearerFile string     `yaml:"bearer_file"`
	Basic      *BasicAuth `yaml:"basic"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	User         string `yaml:"user"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
}

// TLSOptions configure how the server is verified and how this daemon
// identifies itself to it.
type TLSOptions struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	ServerName         string `yaml:"server_name"`
}

// Source sends one request per lookup. It is safe for concurrent use.
type Source struct {
	name      string
	method    string
	url       template
	urlQuery  []bool // per URL part: true when it is after the '?'
	body      *template
	header    http.Header
	host      string // a Host header, which net/http takes from Request.Host
	basicUser string
	basicPass string
	records   string
	fields    map[string]string
	maxRows   int
	maxBody   int64
	notFound  map[int]bool
	client    *http.Client
	transport *http.Transport
	secrets   []string
	logger    *slog.Logger
	search    *search // nil: no search configured
}

var _ aggregator.Source = (*Source)(nil)

// New builds an http source from its options: it parses the templates,
// reads environment variables and TLS files, but sends nothing.
func New(spec adapters.Spec) (aggregator.Source, error) {
	return NewSource(spec)
}

// NewSource is New with the concrete type, for callers that want Close.
func NewSource(spec adapters.Spec) (*Source, error) {
	var opts Options
	if err := configs.DecodeStrict(spec.Options, &opts); err != nil {
		return nil, err
	}
	at := func(key string, format string, args ...any) error {
		return configs.KeyError(spec.Options, key, format, args...)
	}
	getenv := spec.Env
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	logger := spec.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{
		name:    spec.Name,
		records: opts.Records,
		fields:  opts.Fields,
		maxRows: opts.MaxRows,
		maxBody: int64(opts.MaxBody),
		header:  http.Header{},
		logger:  logger.With("kind", "http"), // source=<name> is on spec.Logger
	}

	// URL.
	if opts.URL == "" {
		return nil, at("url", "url is required, e.g. url: https://crm.example.com/api/customers/{customer_id}")
	}
	var err error
	if s.url, err = parseTemplate(opts.URL); err != nil {
		return nil, at("url", "url: %s", err)
	}
	if err := checkURL(s.url); err != nil {
		return nil, at("url", "url: %s", err)
	}
	inQuery := false
	for _, p := range s.url.parts {
		s.urlQuery = append(s.urlQuery, inQuery)
		if strings.Contains(p.text, "?") {
			inQuery = true
		}
	}

	// Method and body.
	switch m := strings.ToUpper(opts.Method); m {
	case "", http.MethodGet:
		s.method = http.MethodGet
		if opts.Body != "" {
			return nil, at("body", "a body needs method: POST")
		}
	case http.MethodPost:
		s.method = http.MethodPost
	default:
		return nil, at("method", "method %q is not supported: GET (the default) or POST", opts.Method)
	}

	// Headers, with ${NAME} from the environment.
	for name, value := range opts.Headers {
		if !headerNameRE.MatchString(name) {
			return nil, at("headers", "headers: %q is not a valid header name", name)
		}
		expanded, secrets, err := expandEnv(value, getenv)
		if err != nil {
			return nil, at("headers", "headers.%s: %s", name, err)
		}
		if strings.ContainsAny(expanded, "\r\n") {
			return nil, at("headers", "headers.%s: the value contains a line break", name)
		}
		s.secrets = append(s.secrets, secrets...)
		if len(secrets) == 0 && secretHeaderRE.MatchString(name) {
			s.logger.Warn("a header that looks like a credential is written in the configuration file: put it in an environment variable and write ${NAME}", "header", name)
		}
		if http.CanonicalHeaderKey(name) == "Host" {
			s.host = expanded
			continue
		}
		s.header.Set(name, expanded)
	}
	if s.header.Get("Accept") == "" {
		s.header.Set("Accept", "application/json")
	}
	if opts.Body != "" {
		if s.header.Get("Content-Type") == "" {
			s.header.Set("Content-Type", "application/json")
		}
		body, err := parseTemplate(opts.Body)
		if err != nil {
			return nil, at("body", "body: %s", err)
		}
		if strings.Contains(s.header.Get("Content-Type"), "json") {
			filled := body.withAll("x")
			if err := json.Unmarshal([]byte(filled), new(any)); err != nil {
				return nil, at("body", "body is not valid JSON once its parameters are filled in (%s): parameters are inserted JSON-escaped without quotes, so write \"{phone}\" with the quotes", err)
			}
		}
		s.body = &body
	}

	// Authentication.
	if opts.Auth != nil {
		a := opts.Auth
		if s.header.Get("Authorization") != "" {
			return nil, at("auth", "set auth or an Authorization header, not both")
		}
		switch {
		case a.BearerEnv != "" && a.Basic != nil:
			return nil, at("auth", "auth: set bearer_env or basic, not both")
		case a.BearerFile != "" && (a.BearerEnv != "" || a.Basic != nil):
			return nil, at("auth", "auth: set one of bearer_env, bearer_file or basic, not several")
		case a.BearerFile != "":
			token, err := adapters.ReadSecretFile(spec.Files, a.BearerFile)
			if err != nil {
				return nil, at("auth", "auth.bearer_file: %s", err)
			}
			token = strings.TrimSpace(token)
			s.header.Set("Authorization", "Bearer "+token)
			s.secrets = append(s.secrets, token)
		case a.BearerEnv != "":
			token := strings.TrimSpace(getenv(a.BearerEnv))
			if token == "" {
				return nil, at("auth", "auth.bearer_env: environment variable %s is not set or empty", a.BearerEnv)
			}
			s.header.Set("Authorization", "Bearer "+token)
			s.secrets = append(s.secrets, token)
		case a.Basic != nil:
			if a.Basic.User == "" {
				return nil, at("auth", "auth.basic.user is required")
			}
			var pass string
			switch {
			case a.Basic.PasswordEnv != "" && a.Basic.PasswordFile != "":
				return nil, at("auth", "auth.basic: set password_env or password_file, not both")
			case a.Basic.PasswordFile != "":
				var err error
				if pass, err = adapters.ReadSecretFile(spec.Files, a.Basic.PasswordFile); err != nil {
					return nil, at("auth", "auth.basic.password_file: %s", err)
				}
			case a.Basic.PasswordEnv == "":
				return nil, at("auth", "auth.basic.password_env is required: name the environment variable holding the password (or password_file: a file holding it)")
			default:
				if pass = getenv(a.Basic.PasswordEnv); pass == "" {
					return nil, at("auth", "auth.basic.password_env: environment variable %s is not set or empty", a.Basic.PasswordEnv)
				}
			}
			s.basicUser, s.basicPass = a.Basic.User, pass
			s.secrets = append(s.secrets, pass)
		default:
			return nil, at("auth", "auth needs bearer_env, bearer_file or basic")
		}
	}

	// What to read from the answer.
	if s.maxRows < 0 {
		return nil, at("max_rows", "max_rows must not be negative (0 means the default, %d)", DefaultMaxRows)
	}
	if s.maxRows == 0 {
		s.maxRows = DefaultMaxRows
	}
	if s.maxBody < 0 || s.maxBody > maxMaxBody {
		return nil, at("max_body", "max_body must be between 1 and 64MiB")
	}
	if s.maxBody == 0 {
		s.maxBody = DefaultMaxBody
	}
	for col, path := range s.fields {
		if col == "" || strings.TrimSpace(path) == "" {
			return nil, at("fields", "fields: %q needs a column name and a path, e.g. balance: account.balance", col)
		}
	}
	s.notFound = map[int]bool{}
	if opts.NotFound == nil {
		opts.NotFound = []int{http.StatusNotFound}
	}
	for _, code := range opts.NotFound {
		if code < 100 || code > 599 {
			return nil, at("not_found", "not_found: %d is not an HTTP status code", code)
		}
		if code >= 200 && code < 300 {
			return nil, at("not_found", "not_found: %d is a success; a 2xx answer is read for records", code)
		}
		s.notFound[code] = true
	}

	if s.search, err = newSearch(spec.Options, opts.Search); err != nil {
		return nil, err
	}

	// Transport.
	tlsConfig, err := buildTLS(opts.TLS, spec.Files)
	if err != nil {
		return nil, at("tls", "tls: %s", err)
	}
	if tlsConfig.InsecureSkipVerify {
		s.logger.Warn("tls.insecure_skip_verify: the server's certificate is not checked; anyone on the network path can read and change this source's data")
	}
	proxy := func(*http.Request) (*url.URL, error) { return nil, nil }
	if opts.Proxy != "" {
		pu, err := url.Parse(opts.Proxy)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			return nil, at("proxy", "proxy %q is not an http(s) URL, e.g. proxy: http://proxy.example.com:3128", opts.Proxy)
		}
		if pw, ok := pu.User.Password(); ok && pw != "" {
			return nil, at("proxy", "proxy contains a password: this option cannot read one from the environment; use a proxy that authenticates by address")
		}
		proxy = http.ProxyURL(pu)
	}
	s.transport = &http.Transport{
		// Packages read no environment: no HTTP_PROXY unless configured.
		Proxy:                 proxy,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	s.client = &http.Client{
		Transport: s.transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		},
	}
	return s, nil
}

// Close drops the source's idle connections (on a configuration reload).
func (s *Source) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// Params lists the lookup parameters the URL and body use. Each one must be
// known for a lookup to run.
func (s *Source) Params() []string {
	out := s.url.params()
	if s.body != nil {
		for _, p := range s.body.params() {
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// Fetch sends the request and reads the records from the answer. When the
// key lacks a value the URL or body needs, it returns (nil, nil) without a
// request. A status listed in not_found (404 by default) and 204 mean the
// system knows nothing of the caller: (nil, nil).
func (s *Source) Fetch(ctx context.Context, key aggregator.Key) ([]aggregator.Record, error) {
	target, ok := s.url.render(key, func(i int, v string) string {
		if s.urlQuery[i] {
			return url.QueryEscape(v)
		}
		return url.PathEscape(v)
	})
	if !ok {
		return nil, nil
	}
	var body io.Reader
	if s.body != nil {
		text, ok := s.body.render(key, func(_ int, v string) string { return jsonEscape(v) })
		if !ok {
			return nil, nil
		}
		body = strings.NewReader(text)
	}
	keyValues := []string{key.Phone, key.National, key.CustomerID}
	return s.exchange(ctx, s.method, target, body, keyValues, s.records)
}

// exchange sends one request and reads the records at recordsPath from
// the answer; keyValues are kept out of its errors.
func (s *Source) exchange(ctx context.Context, method, target string, body io.Reader, keyValues []string, recordsPath string) ([]aggregator.Record, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, s.fail(ctx, "cannot build the request: "+err.Error(), keyValues, err)
	}
	req.Header = s.header.Clone()
	if s.host != "" {
		req.Host = s.host
	}
	if s.basicUser != "" {
		req.SetBasicAuth(s.basicUser, s.basicPass)
	}

	resp, err := s.client.Do(req)
	if err != nil {
		return nil, s.fail(ctx, requestReason(err), keyValues, err)
	}
	defer resp.Body.Close()

	if s.notFound[resp.StatusCode] || resp.StatusCode == http.StatusNoContent {
		// Read a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		msg := "HTTP " + resp.Status
		if reason := shortReason(snippet); reason != "" {
			msg += ": " + reason
		}
		return nil, s.fail(ctx, msg, keyValues, &StatusError{Code: resp.StatusCode})
	}

	data, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBody+1))
	if err != nil {
		return nil, s.fail(ctx, "reading the response: "+requestReason(err), keyValues, err)
	}
	if int64(len(data)) > s.maxBody {
		return nil, s.fail(ctx, fmt.Sprintf("the response is larger than max_body (%s)", ByteSize(s.maxBody)), keyValues, errTooLarge)
	}
	records, err := s.parseAt(data, resp.Header.Get("Content-Type"), recordsPath)
	if err != nil {
		return nil, s.fail(ctx, err.Error(), keyValues, err)
	}
	return records, nil
}

var errTooLarge = errors.New("response too large")

// StatusError is the HTTP status of a failed request, reachable with
// errors.As through the adapters.FetchError.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return "HTTP status " + strconv.Itoa(e.Code) }

// parseAt picks the records at recordsPath (empty: the whole answer) out
// of a JSON answer.
func (s *Source) parseAt(data []byte, contentType, recordsPath string) ([]aggregator.Record, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("the response is empty, expected JSON")
	}
	if !gjson.ValidBytes(data) {
		msg := "the response is not JSON"
		if contentType != "" {
			msg += " (Content-Type " + sanitize(contentType, 60) + ")"
		}
		if snippet := shortReason(data); snippet != "" {
			msg += ": " + snippet
		}
		return nil, errors.New(msg)
	}
	root := gjson.ParseBytes(data)
	found := root
	if recordsPath != "" {
		found = root.Get(recordsPath)
		if !found.Exists() {
			return nil, fmt.Errorf("records path %q is not in the response (its top-level keys: %s)", recordsPath, topKeys(root))
		}
	}
	var items []gjson.Result
	switch {
	case found.Type == gjson.Null:
		return nil, nil
	case found.IsArray():
		i := 0
		found.ForEach(func(_, v gjson.Result) bool {
			if i == s.maxRows {
				return false
			}
			items = append(items, v)
			i++
			return true
		})
	case found.IsObject():
		items = []gjson.Result{found}
	default:
		return nil, fmt.Errorf("records path %q is a %s, not a list or an object", recordsPath, kindOf(found))
	}
	records := make([]aggregator.Record, 0, len(items))
	for i, item := range items {
		rec := aggregator.Record{}
		switch {
		case len(s.fields) > 0:
			for col, path := range s.fields {
				rec[col] = convert(item.Get(path))
			}
		case item.IsObject():
			item.ForEach(func(k, v gjson.Result) bool {
				rec[k.String()] = convert(v)
				return true
			})
		default:
			return nil, fmt.Errorf("record %d is a %s, not an object: name its columns with fields (e.g. fields: {value: \"@this\"})", i, kindOf(item))
		}
		records = append(records, rec)
	}
	return records, nil
}

// convert turns a JSON value into the plain Go values the aggregator
// expects. Numbers become float64 when they have at most 15 significant
// digits (exact in a float64), otherwise their exact text: a 19-digit
// customer number must not come back rounded.
func convert(r gjson.Result) any {
	switch r.Type {
	case gjson.Null:
		return nil
	case gjson.False:
		return false
	case gjson.True:
		return true
	case gjson.String:
		return r.Str
	case gjson.Number:
		if adapters.SignificantDigits(r.Raw) <= adapters.MaxExactDigits {
			if f, err := strconv.ParseFloat(r.Raw, 64); err == nil {
				return f
			}
		}
		return r.Raw
	case gjson.JSON:
		if r.IsArray() {
			out := []any{}
			r.ForEach(func(_, v gjson.Result) bool {
				out = append(out, convert(v))
				return true
			})
			return out
		}
		out := map[string]any{}
		r.ForEach(func(k, v gjson.Result) bool {
			out[k.String()] = convert(v)
			return true
		})
		return out
	}
	// Not there (a field path that matched nothing).
	return nil
}

// checkURL makes sure the filled-in URL is an absolute http(s) URL whose
// host the parameters cannot change.
func checkURL(t template) error {
	a, err := url.Parse(t.withAll("x"))
	if err != nil {
		return fmt.Errorf("not a valid URL: %v", errors.Unwrap(err))
	}
	if a.Scheme != "http" && a.Scheme != "https" {
		return errors.New("must start with http:// or https://")
	}
	if a.Host == "" {
		return errors.New("has no host")
	}
	if a.User != nil {
		return errors.New("must not contain a user or password: use auth")
	}
	b, err := url.Parse(t.withAll("y"))
	if err != nil || b.Host != a.Host || b.Scheme != a.Scheme {
		return errors.New("parameters may appear in the path and query only, not in the scheme or host")
	}
	return nil
}

var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${NAME} with the variable's value and returns the
// values it inserted (secrets to keep out of errors). An unset or empty
// variable is an error: a header sent with an empty token fails later
// with a 401 that says less.
func expandEnv(value string, getenv func(string) string) (string, []string, error) {
	var secrets []string
	var missing string
	out := envRefRE.ReplaceAllStringFunc(value, func(ref string) string {
		name := envRefRE.FindStringSubmatch(ref)[1]
		v := getenv(name)
		if v == "" && missing == "" {
			missing = name
		}
		secrets = append(secrets, v)
		return v
	})
	if missing != "" {
		return "", nil, fmt.Errorf("environment variable %s is not set or empty", missing)
	}
	return out, secrets, nil
}

var (
	headerNameRE   = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
	secretHeaderRE = regexp.MustCompile(`(?i)(authorization|api[-_]?key|token|secret|password|cookie)`)
)

// buildTLS reads the TLS files. Relative paths are relative to the
// configuration file (files); absolute ones are read as they are.
func buildTLS(o *TLSOptions, files fs.FS) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o == nil {
		return cfg, nil
	}
	cfg.ServerName = o.ServerName
	cfg.InsecureSkipVerify = o.InsecureSkipVerify
	if o.CAFile != "" {
		pem, err := readFile(files, o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", o.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together (a client certificate and its key)")
	}
	if o.CertFile != "" {
		certPEM, err := readFile(files, o.CertFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		keyPEM, err := readFile(files, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("cert_file/key_file: %v", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func readFile(files fs.FS, name string) ([]byte, error) {
	if filepath.IsAbs(name) || files == nil {
		return os.ReadFile(name)
	}
	return fs.ReadFile(files, filepath.ToSlash(filepath.Clean(name)))
}

// jsonEscape is v as the inside of a JSON string.
func jsonEscape(v string) string {
	b, _ := json.Marshal(v)
	return string(b[1 : len(b)-1])
}

func topKeys(r gjson.Result) string {
	if !r.IsObject() {
		return "none, the response is a " + kindOf(r)
	}
	var keys []string
	r.ForEach(func(k, _ gjson.Result) bool {
		keys = append(keys, sanitize(k.String(), 40))
		return len(keys) < 10
	})
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, ", ")
}

func kindOf(r gjson.Result) string {
	switch {
	case r.IsArray():
		return "list"
	case r.IsObject():
		return "object"
	case r.Type == gjson.String:
		return "string"
	case r.Type == gjson.Number:
		return "number"
	case r.Type == gjson.True, r.Type == gjson.False:
		return "boolean"
	}
	return "null"
}
