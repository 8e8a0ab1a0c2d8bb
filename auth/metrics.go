package auth

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/promreg"
)

// Outcomes of an Authenticate call, label values of
// screenpop_auth_authentications_total.
const (
	outcomeOK       = "ok"
	outcomeInvalid  = "invalid"   // no, malformed, forged or unknown credentials
	outcomeExpired  = "expired"   // valid once, expired now
	outcomeNotAgent = "not_agent" // valid, but names no agent here
)

// methodNone labels a request that carried no credentials at all.
const methodNone = "none"

var (
	authMethods  = []string{string(MethodSession), string(MethodJWT), string(MethodHS256), methodNone}
	authOutcomes = []string{outcomeOK, outcomeInvalid, outcomeExpired, outcomeNotAgent}
)

// Outcomes of a sign-in, label values of screenpop_auth_logins_total.
const (
	loginOK             = "ok"
	loginStale          = "stale_state"      // unknown state, or the callback came to another browser
	loginIdPRefused     = "idp_refused"      // the provider answered with an error
	loginExchangeFailed = "exchange_failed"  // the code was not exchanged for tokens
	loginInvalidToken   = "invalid_id_token" // signature, iss, aud, exp or nonce wrong
	loginNotAgent       = "not_agent"
	loginUnavailable    = "unavailable" // provider unreachable, or too many sign-ins under way
)

var loginOutcomes = []string{
	loginOK, loginStale, loginIdPRefused, loginExchangeFailed,
	loginInvalidToken, loginNotAgent, loginUnavailable,
}

// Outcomes of a key set fetch, label values of
// screenpop_auth_jwks_fetches_total.
const (
	fetchOK          = "ok"
	fetchError       = "error"
	fetchRateLimited = "rate_limited" // wanted, but the last was too recent
)

var (
	keySetNames   = []string{"oidc", "jwt"}
	fetchOutcomes = []string{fetchOK, fetchError, fetchRateLimited}
)

type metrics struct {
	authentications *prometheus.CounterVec
	logins          *prometheus.CounterVec
	jwksFetches     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		authentications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_auth_authentications_total",
			Help: "Requests authenticated (page sockets, /auth/session, API calls), by method and outcome.",
		}, []string{"method", "outcome"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_auth_logins_total",
			Help: "OpenID Connect sign-ins that came back to /auth/callback or could not start, by outcome.",
		}, []string{"outcome"}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "screenpop_auth_jwks_fetches_total",
			Help: "Fetches of an identity provider's key set, by key set (oidc, jwt) and outcome; rate_limited: wanted but skipped.",
		}, []string{"key_set", "outcome"}),
	}
	for _, c := range []**prometheus.CounterVec{&m.authentications, &m.logins, &m.jwksFetches} {
		var err error
		if *c, err = promreg.Register(reg, *c); err != nil {
			return nil, err
		}
	}
	for _, method := range authMethods {
		for _, o := range authOutcomes {
			m.authentications.WithLabelValues(method, o)
		}
	}
	for _, o := range loginOutcomes {
		m.logins.WithLabelValues(o)
	}
	for _, ks := range keySetNames {
		for _, o := range fetchOutcomes {
			m.jwksFetches.WithLabelValues(ks, o)
		}
	}
	return m, nil
}
