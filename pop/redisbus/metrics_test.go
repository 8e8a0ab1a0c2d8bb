package redisbus

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/screenpop/screenpop/promreg/promregtest"
)

// The metrics pass promlint and every series exists from the start.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	if _, err := New(Config{Client: client, Hub: &localHub{}, Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	promregtest.Lint(t, reg, map[string]int{
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
		"screenpop_redisbus_append_delay_seconds":     1,
	})
}
