package aggregator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/history"
)

// LinkStore is what a History may offer beyond Recent (every
// history.Store does): the numbers agents linked to customers. With it,
// the directory is asked about a number only when no agent linked it;
// a linked number resolves to its customer (Link, linkedDirectory).
type LinkStore interface {
	Link(ctx context.Context, l history.Link) error
	LinkOf(ctx context.Context, phone string) (history.Link, error)
}

// links is the History's LinkStore, nil when it keeps no links.
func (a *Aggregator) links() LinkStore {
	ls, _ := a.history.(LinkStore)
	return ls
}

// Link keeps that l.Phone (E.164) belongs to l.CustomerID — an agent found
// the customer of an unknown caller with Search — and drops the
// directory's cached answer for the number, so that every card built from
// now on, the current call's first (BuildFor), resolves by the link. The
// history writes who linked which number to whom in its access log.
// screenpop.ErrNoSearch when the History keeps no links.
func (a *Aggregator) Link(ctx context.Context, l history.Link) error {
	ls := a.links()
	if ls == nil {
		return screenpop.ErrNoSearch
	}
	st := a.state.Load()
	num, err := normalize(l.Phone, st.region)
	if err != nil {
		return fmt.Errorf("%w: the number to link: %v", history.ErrInvalid, err)
	}
	l.Phone = num.E164
	if err := ls.Link(ctx, l); err != nil {
		return err
	}
	a.searchMetrics.links.Inc()
	d := st.directory
	if a.cache == nil || d == nil || d.spec.CacheTTL <= 0 {
		return nil
	}
	if v, ok := (Key{Phone: num.E164, National: num.National, Region: num.Region}).Param(d.spec.Needs); ok {
		ck := cacheKey(d.spec.Name, d.spec.Needs, v)
		a.decoded.forget(ck)
		if err := a.cache.Delete(ctx, ck); err != nil {
			// The link is kept; the number resolves by it once the
			// directory's cached answer expires.
			d.log.Warn("cannot drop the directory's cached answer for a number just linked; it resolves by the link after cache_ttl",
				"phone", screenpop.MaskPhone(num.E164), "cache_ttl_seconds", d.spec.CacheTTL.Seconds(), "err", err)
		}
	}
	return nil
}

// withLinks is the directory's spec with its Source answering for the
// numbers agents linked, when the History keeps links.
func (a *Aggregator) withLinks(spec SourceSpec) SourceSpec {
	if ls := a.links(); ls != nil && spec.Source != nil {
		ld := &linkedDirectory{a: a, links: ls, directory: spec.Source, name: spec.Name}
		if spec.Search != nil {
			ld.search, _ = spec.Source.(Searcher)
		}
		spec.Source = ld
	}
	return spec
}

// linkedDirectory is the directory as cards ask it: a number an agent
// linked to a customer resolves to that customer before, and instead of,
// the directory's lookup by number. The customer's record comes from the
// directory's search by their id (so that the card shows their name), or,
// when that finds nothing in time, holds their id only: the link is what
// an agent said, and the sources keyed by customer id still answer.
type linkedDirectory struct {
	a         *Aggregator
	links     LinkStore
	directory Source
	search    Searcher // nil: no search configured
	name      string
}

var _ Source = (*linkedDirectory)(nil)

// linkShare is the part of the directory's time budget the link lookup
// may take: the directory still needs time when the number is not linked.
const linkShare = 2

func (d *linkedDirectory) Fetch(ctx context.Context, key Key) ([]Record, error) {
	if key.Phone == "" {
		return d.directory.Fetch(ctx, key)
	}
	lctx, cancel := ctx, context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		lctx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/linkShare))
	}
	l, err := d.links.LinkOf(lctx, key.Phone)
	cancel()
	switch {
	case errors.Is(err, history.ErrNotLinked):
		d.a.searchMetrics.lookups.WithLabelValues(linkNotLinked).Inc()
		return d.directory.Fetch(ctx, key)
	case err != nil:
		d.a.searchMetrics.lookups.WithLabelValues(linkError).Inc()
		if ctx.Err() == nil && d.a.linkErrLog.allow() {
			d.a.log.Warn("cannot read the numbers agents linked; the directory is asked instead (logged at most once a minute)",
				"source", d.name, "phone", screenpop.MaskPhone(key.Phone), "err", err)
		}
		return d.directory.Fetch(ctx, key)
	}
	d.a.searchMetrics.lookups.WithLabelValues(linkLinked).Inc()
	return []Record{d.customer(ctx, l.CustomerID)}, nil
}

// customer is the directory's record of a linked customer, found by
// searching for their id; only the id when the search cannot say.
func (d *linkedDirectory) customer(ctx context.Context, id string) Record {
	if d.search != nil {
		records, err := d.search.Search(ctx, SearchQuery{Text: id, Limit: MaxSearchResults})
		if err == nil {
			for _, rec := range records {
				if text(rec["id"]) == id || text(rec["customer_id"]) == id {
					return maps.Clone(rec)
				}
			}
		} else if ctx.Err() == nil {
			d.a.log.Info("cannot read a linked customer's details from the directory's search; the card shows their id",
				"source", d.name, "customer", id, "err", err)
		}
	}
	return Record{"id": id}
}
