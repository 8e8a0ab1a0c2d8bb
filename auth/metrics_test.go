package auth_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/screenpop/screenpop/auth"
)

// The metrics pass promlint, every series exists from the start, and a
// second Authenticator (a reload) shares the first one's collectors.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := auth.Options{HS256: &auth.HS256{Secret: []byte(hsSecret), Issuer: "screenpop", Audience: "screenpop-agent"}, Registerer: reg}
	for range 2 {
		if _, err := auth.New(opts); err != nil {
			t.Fatal(err)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]int{}
	for _, mf := range mfs {
		series[mf.GetName()] = len(mf.GetMetric())
	}
	for name, want := range map[string]int{
		"screenpop_auth_authentications_total": 16,
		"screenpop_auth_logins_total":          7,
		"screenpop_auth_jwks_fetches_total":    6,
	} {
		if series[name] != want {
			t.Errorf("%s has %d series, want %d", name, series[name], want)
		}
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}
