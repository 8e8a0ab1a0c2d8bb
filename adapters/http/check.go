package httpsource

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
)

// CheckResult is what one test request found.
type CheckResult struct {
	// Status is the HTTP status of the answer (after redirects).
	Status int
	// NotFound is true when the status is one the source reads as "knows
	// nothing of the caller" (not_found, 404 by default, or 204): the
	// server is reachable and answered, there was nothing to read.
	NotFound bool
	// Records is how many records the answer held.
	Records int
	// Found and Missing are the configured fields whose path matched a
	// value (not null) in at least one record, and those that matched
	// nothing, sorted. Without fields, Found lists the records' keys.
	Found, Missing []string
}

// Check sends one request as a lookup for key would, with the source's
// headers, authentication and TLS, and reads the answer the way Fetch does.
// An error is a failure a lookup would have too (unreachable, TLS, a
// status that is neither 2xx nor not_found, a body that is not JSON, a
// records path that is not there), in Fetch's words. ctx bounds the check.
// `screenpopd config check -connect` runs it with a test number.
func (s *Source) Check(ctx context.Context, key aggregator.Key) (CheckResult, error) {
	var res CheckResult
	for _, p := range s.Params() {
		if _, ok := key.Param(p); !ok {
			return res, adapters.NewFetchError(kind, s.name, fmt.Sprintf("the request needs {%s} and the check has no value for it", p))
		}
	}
	// A copy of the source whose client notes the status: Fetch builds
	// and reads the request, so the check cannot drift from a lookup.
	probe := *s
	probe.client = &http.Client{
		Transport:     &statusRecorder{next: s.transport, status: &res.Status},
		CheckRedirect: s.client.CheckRedirect,
	}
	records, err := probe.Fetch(ctx, key)
	if err != nil {
		return res, err
	}
	res.NotFound = records == nil && (s.notFound[res.Status] || res.Status == http.StatusNoContent)
	res.Records = len(records)
	if len(s.fields) == 0 {
		keys := map[string]bool{}
		for _, r := range records {
			for k := range r {
				keys[k] = true
			}
		}
		for k := range keys {
			res.Found = append(res.Found, k)
		}
		sort.Strings(res.Found)
		return res, nil
	}
	if res.Records == 0 {
		return res, nil
	}
	for col := range s.fields {
		found := false
		for _, r := range records {
			if r[col] != nil {
				found = true
				break
			}
		}
		if found {
			res.Found = append(res.Found, col)
		} else {
			res.Missing = append(res.Missing, col)
		}
	}
	sort.Strings(res.Found)
	sort.Strings(res.Missing)
	return res, nil
}

// FieldPath is the path configured for a field (within each record), for
// a report that names what matched nothing.
func (s *Source) FieldPath(field string) string { return s.fields[field] }

// statusRecorder notes the status of each answer; the last one is the
// final answer after redirects.
type statusRecorder struct {
	next   http.RoundTripper
	status *int
}

func (r *statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	if err == nil {
		*r.status = resp.StatusCode
	}
	return resp, err
}
