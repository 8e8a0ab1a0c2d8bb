package httpsource

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/screenpop/screenpop/aggregator"
)

// The test request goes out with the source's URL, headers and
// authentication, and the report says which field paths found something.
func TestCheckFindsFields(t *testing.T) {
	js := newJSONServer(t, 200, "application/json", `{"data": {"account": {"balance": 12.5, "currency": null}}}`)
	s := newTestSource(t, `
url: `+js.URL+`/customers/{customer_id}?phone={phone}
headers: {X-Api-Key: "${KEY}"}
records: data
fields: {balance: account.balance, currency: account.currency, limit: account.credit_limit}
`, map[string]string{"KEY": "k-123"}, nil)

	res, err := s.Check(context.Background(), customer)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	want := CheckResult{Status: 200, Records: 1, Found: []string{"balance"}, Missing: []string{"currency", "limit"}}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("Check = %+v, want %+v", res, want)
	}
	req, _ := js.lastRequest()
	if req.URL.Path != "/customers/C1001" || req.URL.Query().Get("phone") != customer.Phone || req.Header.Get("X-Api-Key") != "k-123" {
		t.Errorf("request = %s %s, X-Api-Key %q", req.Method, req.URL, req.Header.Get("X-Api-Key"))
	}
	if p := s.FieldPath("limit"); p != "account.credit_limit" {
		t.Errorf("FieldPath = %q", p)
	}
}

// Without fields, the records' own keys are reported.
func TestCheckListsKeysWithoutFields(t *testing.T) {
	js := newJSONServer(t, 200, "application/json", `[{"id": 1, "name": "a"}, {"id": 2, "city": "b"}]`)
	s := newTestSource(t, "url: "+js.URL+"/c?phone={phone}", nil, nil)
	res, err := s.Check(context.Background(), customer)
	if err != nil {
		t.Fatal(err)
	}
	if res.Records != 2 || !reflect.DeepEqual(res.Found, []string{"city", "id", "name"}) {
		t.Errorf("Check = %+v", res)
	}
}

// A 404 (or any not_found status) for an unknown test number is no
// failure: the server is there and answered.
func TestCheckNotFoundIsReachable(t *testing.T) {
	for _, status := range []int{404, 410, 204} {
		js := newJSONServer(t, status, "application/json", `{"error": "no such customer"}`)
		s := newTestSource(t, "url: "+js.URL+"/c/{phone}\nnot_found: [404, 410]\nfields: {balance: balance}", nil, nil)
		res, err := s.Check(context.Background(), customer)
		if err != nil {
			t.Fatalf("%d: Check: %v", status, err)
		}
		if want := (CheckResult{Status: status, NotFound: true}); !reflect.DeepEqual(res, want) {
			t.Errorf("%d: Check = %+v, want %+v", status, res, want)
		}
	}
}

// A server error fails with its status and the reason the server gave.
func TestCheckServerError(t *testing.T) {
	js := newJSONServer(t, 500, "application/json", `{"message": "database is down"}`)
	s := newTestSource(t, "url: "+js.URL+"/c/{phone}", nil, nil)
	res, err := s.Check(context.Background(), customer)
	if want := "http source test-api: HTTP 500 Internal Server Error: database is down"; err == nil || err.Error() != want {
		t.Errorf("Check = %v, want %s", err, want)
	}
	var se *StatusError
	if res.Status != 500 || !errors.As(err, &se) || se.Code != 500 {
		t.Errorf("status = %d, err %#v", res.Status, err)
	}
}

// An answer that is not JSON fails, saying so.
func TestCheckGarbage(t *testing.T) {
	js := newJSONServer(t, 200, "text/html", `<html><title>Login required</title></html>`)
	s := newTestSource(t, "url: "+js.URL+"/c/{phone}", nil, nil)
	_, err := s.Check(context.Background(), customer)
	if want := "http source test-api: the response is not JSON (Content-Type text/html): Login required"; err == nil || err.Error() != want {
		t.Errorf("Check = %v, want %s", err, want)
	}
}

// A records path that is not in the answer fails, listing what is there.
func TestCheckRecordsPathMissing(t *testing.T) {
	js := newJSONServer(t, 200, "application/json", `{"items": []}`)
	s := newTestSource(t, "url: "+js.URL+"/c/{phone}\nrecords: data", nil, nil)
	_, err := s.Check(context.Background(), customer)
	if err == nil || !strings.Contains(err.Error(), `records path "data" is not in the response (its top-level keys: items)`) {
		t.Errorf("Check = %v", err)
	}
}

// A server that never answers is cut off by the check's deadline, with
// the caller's cause.
func TestCheckHangTimesOut(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer ts.Close()
	defer close(release)
	s := newTestSource(t, "url: "+ts.URL+"/c/{phone}", nil, nil)
	cause := errors.New("config check -connect: no answer within 100ms")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 100*time.Millisecond, cause)
	defer cancel()
	_, err := s.Check(ctx, customer)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, cause) {
		t.Fatalf("Check = %v, want a deadline error with its cause", err)
	}
	if want := "http source test-api: no answer before the deadline (" + cause.Error() + ")"; err.Error() != want {
		t.Errorf("Check = %q, want %q", err, want)
	}
}

// A parameter the check has no value for is reported, not sent empty.
func TestCheckMissingParameter(t *testing.T) {
	js := newJSONServer(t, 200, "application/json", `{}`)
	s := newTestSource(t, "url: "+js.URL+"/c/{customer_id}", nil, nil)
	_, err := s.Check(context.Background(), aggregator.Key{Phone: customer.Phone})
	if err == nil || !strings.Contains(err.Error(), "needs {customer_id}") || js.requests.Load() != 0 {
		t.Errorf("Check = %v after %d request(s)", err, js.requests.Load())
	}
}
