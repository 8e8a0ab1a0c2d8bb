package aggregator

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrNothingToEvict is what Evict returns when given neither a customer id
// nor a phone number.
var ErrNothingToEvict = errors.New("customer_id or phone is required")

// Evict drops every cached source answer of a customer and of a phone
// number (either may be empty, not both), because a company system said
// that its data about them changed: the next card asks the sources again.
//
// For the number it drops the answers of sources keyed by phone or
// national number, and, when the directory's answer for the number is
// cached, the answers keyed by each customer it names. Answers keyed by
// region are shared by every caller of the region and are left alone.
// OnRefresh is then told, so that cards on screen are rebuilt.
//
// A fan-out or background refresh already running may write the answer it
// got before the eviction once more; it is gone again at its TTL.
func (a *Aggregator) Evict(ctx context.Context, customerID, phone string) error {
	customerID, phone = strings.TrimSpace(customerID), strings.TrimSpace(phone)
	if customerID == "" && phone == "" {
		return ErrNothingToEvict
	}
	st := a.state.Load()
	var num Number
	if phone != "" {
		var err error
		if num, err = normalize(phone, st.region); err != nil {
			return fmt.Errorf("phone: %w", err)
		}
	}
	if a.cache != nil {
		if err := a.evict(ctx, st, customerID, num); err != nil {
			a.metrics.evictions.WithLabelValues("error").Inc()
			return err
		}
	}
	a.metrics.evictions.WithLabelValues("ok").Inc()
	if a.refresh.onRefresh != nil {
		a.refresh.onRefresh(num.E164, customerID)
	}
	return nil
}

func (a *Aggregator) evict(ctx context.Context, st *state, customerID string, num Number) error {
	customers := []string{}
	if customerID != "" {
		customers = append(customers, customerID)
	}
	numberKey := Key{Phone: num.E164, National: num.National}
	if d := st.directory; d != nil && d.spec.CacheTTL > 0 && num.E164 != "" {
		if v, ok := numberKey.Param(d.spec.Needs); ok {
			// Which customers the number belongs to, as cards were shown:
			// their customer-keyed answers are what agents saw with it.
			if data, err := a.cache.Get(ctx, cacheKey(d.spec.Name, d.spec.Needs, v)); err == nil {
				if e, err := decodeEntry(data); err == nil {
					for _, c := range customersFrom(e.Records) {
						customers = append(customers, c.ID)
					}
				}
			}
		}
	}
	var keys []string
	for _, rt := range st.all() {
		if rt.spec.CacheTTL <= 0 {
			continue
		}
		switch rt.spec.Needs {
		case "customer_id":
			for _, id := range customers {
				keys = append(keys, cacheKey(rt.spec.Name, rt.spec.Needs, id))
			}
		case "phone", "national":
			if v, ok := numberKey.Param(rt.spec.Needs); ok {
				keys = append(keys, cacheKey(rt.spec.Name, rt.spec.Needs, v))
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	a.decoded.forget(keys...)
	if err := a.cache.Delete(ctx, keys...); err != nil {
		return fmt.Errorf("aggregator: evict: %w", err)
	}
	return nil
}
