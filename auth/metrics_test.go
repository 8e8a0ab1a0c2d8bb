package auth_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/promreg/promregtest"

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
	promregtest.Lint(t, reg, map[string]int{
		"screenpop_auth_authentications_total": 16,
		"screenpop_auth_logins_total":          7,
		"screenpop_auth_jwks_fetches_total":    6,
	})
}
