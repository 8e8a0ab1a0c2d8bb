package redisbus

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/redis/go-redis/v9"
)

// The metrics pass promlint and every series exists from the start.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	if _, err := New(Config{Client: client, Hub: &localHub{}, Registerer: reg}); err != nil {
		t.Fatal(err)
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
		"screenpop_redis_up":                          1,
		"screenpop_redis_errors_total":                8,
		"screenpop_redisbus_delivered_total":          2,
		"screenpop_redisbus_dropped_messages_total":   3,
		"screenpop_redisbus_resyncs_total":            3,
		"screenpop_redisbus_buffered_messages":        1,
		"screenpop_redisbus_queued_messages":          1,
		"screenpop_redisbus_write_retries_total":      1,
		"screenpop_redisbus_republished_pops_total":   1,
		"screenpop_redisbus_resnapshots_total":        1,
		"screenpop_redisbus_forwarded_requests_total": 3,
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
