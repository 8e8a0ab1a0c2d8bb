package httpin

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/promreg"
)

// statusCodes are every status the handler answers with: the code label
// takes no other value.
var statusCodes = []int{200, 400, 401, 405, 413, 415, 503}

type metrics struct {
	accepted prometheus.Counter
	rejected prometheus.Counter
	requests map[int]prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	events := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "screenpop_httpin_events_total",
		Help: "Call events posted to the HTTP call-event endpoint, by result: accepted (handed to the pipeline) or rejected (refused; a request refused before its events were read counts as one).",
	}, []string{"result"})
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "screenpop_httpin_requests_total",
		Help: "Requests to the HTTP call-event endpoint, by HTTP status code.",
	}, []string{"code"})
	if reg != nil {
		var err error
		if events, err = promreg.Register(reg, events); err != nil {
			return nil, err
		}
		if requests, err = promreg.Register(reg, requests); err != nil {
			return nil, err
		}
	}
	m := &metrics{
		accepted: events.WithLabelValues("accepted"),
		rejected: events.WithLabelValues("rejected"),
		requests: map[int]prometheus.Counter{},
	}
	for _, code := range statusCodes {
		m.requests[code] = requests.WithLabelValues(strconv.Itoa(code))
	}
	return m, nil
}
