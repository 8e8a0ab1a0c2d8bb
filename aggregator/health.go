package aggregator

import "github.com/sony/gobreaker/v2"

// SourceHealth is how a data source fares, as its circuit breaker knows:
// what the supervisors' floor view shows of it.
type SourceHealth struct {
	Name string
	// Breaker is closed (asked), half-open (one lookup tries it again) or
	// open (not asked); closed when its breaker is disabled.
	Breaker string
	// Failures are the lookups that failed in a row, while closed; 0 when
	// the breaker is disabled.
	Failures uint32
}

// Breaker states, SourceHealth.Breaker.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half-open"
	BreakerOpen     = "open"
)

// Health is every configured source's (the directory first), from
// memory. Asking moves a breaker whose open time is over to half-open,
// so that screenpop_source_breaker_state follows while no card asks.
func (a *Aggregator) Health() []SourceHealth {
	var out []SourceHealth
	for _, rt := range a.state.Load().all() {
		h := SourceHealth{Name: rt.spec.Name, Breaker: BreakerClosed}
		if b := rt.guard.breaker; b != nil {
			switch b.State() {
			case gobreaker.StateOpen:
				h.Breaker = BreakerOpen
			case gobreaker.StateHalfOpen:
				h.Breaker = BreakerHalfOpen
			default:
				h.Failures = b.Counts().ConsecutiveFailures
			}
		}
		out = append(out, h)
	}
	return out
}
