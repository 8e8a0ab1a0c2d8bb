package bench

import (
	"math"
	"slices"
	"time"
)

// Latency is the distribution of ring → browser over one measurement.
type Latency struct {
	N    int
	P50  time.Duration
	P99  time.Duration
	P999 time.Duration
	Max  time.Duration
}

// summarize takes the nearest-rank quantiles of ds (which it sorts).
func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	return Latency{
		N:    len(ds),
		P50:  quantile(ds, 0.50),
		P99:  quantile(ds, 0.99),
		P999: quantile(ds, 0.999),
		Max:  ds[len(ds)-1],
	}
}

// quantile is the nearest-rank q-quantile of sorted: the smallest value
// at least a fraction q of the samples do not exceed.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// medianOf is the median of what pick takes from each repetition: the
// middle one of an odd count, the mean of the two middle ones of an even
// count.
func medianOf[T any](reps []T, pick func(T) float64) float64 {
	if len(reps) == 0 {
		return 0
	}
	xs := make([]float64, len(reps))
	for i, r := range reps {
		xs[i] = pick(r)
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// ms is d in milliseconds, as the tables show durations.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
