package promqlnames

import (
	"slices"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`screenpop_redis_up == 0`, []string{"screenpop_redis_up"}},
		{`up{job="screenpop"} == 0`, []string{"up"}},
		// Functions and aggregations are no metrics; labels in matchers,
		// grouping and durations are skipped.
		{`histogram_quantile(0.99, sum by (source, le) (rate(screenpop_aggregator_source_duration_seconds_bucket{outcome!="cached", source=~"a|b"}[5m])))`,
			[]string{"screenpop_aggregator_source_duration_seconds_bucket"}},
		{`sum(rate(a_total[5m])) by (source) / sum without (instance) (rate(b_total[5m]))`, []string{"a_total", "b_total"}},
		{`max by (source) (increase(x_total[30m])) / on (source) group_left (line) max by (source, line) (y)`, []string{"x_total", "y"}},
		{`a * on(source) group_left b`, []string{"a", "b"}},
		{`a > bool 3 and b unless c or d`, []string{"a", "b", "c", "d"}},
		{`a offset 5m + b offset -1h + c @ 1609746000 + d @ start()`, []string{"a", "b", "c", "d"}},
		{`max_over_time(deriv(q[10m])[1h:5m])`, []string{"q"}},
		{`label_replace(screenpop_pop_queued_events, "queue", "dispatcher", "", "") or label_replace(screenpop_history_queued_writes, "queue", "history", "", "")`,
			[]string{"screenpop_history_queued_writes", "screenpop_pop_queued_events"}},
		{`count_values("version", build_info) + topk(3, x) + quantile(0.9, y) + vector(1) + time() - 1e-3 * 0x1f + .5 + Inf`,
			[]string{"build_info", "x", "y"}},
		{`{__name__="by_name", job="x"} + source:screenpop_calls_answered:rate5m`, []string{"by_name", "source:screenpop_calls_answered:rate5m"}},
		{"a # a comment with b_total in it\n+ c", []string{"a", "c"}},
		{`a{l="}{[(\"'"} + b{l='x\'y'} + c{l=` + "`a\\b`" + `}`, []string{"a", "b", "c"}},
		{`a + a`, []string{"a"}},
		{`1 + 2`, []string{}},
	} {
		got, err := Names(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s:\n got %q\nwant %q", tc.expr, got, tc.want)
		}
	}
}

func TestNamesErrors(t *testing.T) {
	for _, tc := range []struct{ expr, want string }{
		{`rate(x[$__rate_interval])`, `unexpected '$'`},
		{`x{source=~"$source"`, "unbalanced {"},
		{`rate(x[5m)`, "unbalanced ["},
		{`sum by (source (x)`, "unbalanced ( after by"},
		{`x{l="a}`, "unterminated string"},
		{`{__name__=~"screenpop_.*"}`, "cannot be checked"},
	} {
		_, err := Names(tc.expr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", tc.expr, err, tc.want)
		}
	}
}
