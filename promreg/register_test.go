package promreg

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func newCounter(help string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "screenpop_test_things_total",
		Help: help,
	}, []string{"result"})
}

func TestRegisterReusesTheFirstCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	first, err := Register(reg, newCounter("Things."))
	if err != nil {
		t.Fatal(err)
	}
	second, err := Register(reg, newCounter("Things."))
	if err != nil {
		t.Fatalf("second registration: %v", err)
	}
	if second != first {
		t.Fatal("the second registration did not return the first collector")
	}
	second.WithLabelValues("ok").Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Fatalf("gathered %v, want one counter at 1", mfs)
	}
}

func TestRegisterReturnsOtherErrors(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := Register(reg, newCounter("Things.")); err != nil {
		t.Fatal(err)
	}
	// Same name, other help: a conflict, not a reuse.
	c := newCounter("Other things.")
	got, err := Register(reg, c)
	if err == nil {
		t.Fatal("no error for a conflicting collector")
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		t.Fatalf("error %v is AlreadyRegisteredError, want a conflict", err)
	}
	if got != c {
		t.Fatal("on error Register must return the collector it was given")
	}
}

func TestRegisterNilRegistry(t *testing.T) {
	c := newCounter("Things.")
	got, err := Register(nil, c)
	if err != nil || got != c {
		t.Fatalf("Register(nil) = %v, %v; want the collector, nil", got, err)
	}
	if err := RegisterUnique(nil, c); err != nil {
		t.Fatalf("RegisterUnique(nil) = %v", err)
	}
}

func TestRegisterUniqueRefusesASecondInstance(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := RegisterUnique(reg, newCounter("Things.")); err != nil {
		t.Fatal(err)
	}
	err := RegisterUnique(reg, newCounter("Things."))
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Fatalf("second RegisterUnique = %v, want AlreadyRegisteredError", err)
	}
}
