package ari

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/screenpop/screenpop/promreg"
)

// Values of Config.OnUnknownPresentation.
const (
	// PresentationWithhold treats a caller whose presentation the PBX did
	// not report as withheld: no number shown, looked up or stored. The
	// default, because ARI snapshots carry no presentation of their own and
	// a withheld number would otherwise arrive in clear.
	PresentationWithhold = "withhold"
	// PresentationShow shows such a caller's number.
	PresentationShow = "show"
)

// presentationFix is what IT must add to the PBX so that screenpop knows
// whether a caller withheld the number.
const presentationFix = "add CALLERID(pres) to channelvars in ari.conf [general] " +
	"(channelvars = CALLERID(pres),CHANNEL(linkedid)) and run 'asterisk -rx \"module reload res_ari.so\"'; " +
	"see configs/asterisk/README.md"

// presentationWatch follows whether the PBX reports callers' presentation
// (the tracker tells it once per call) and says so to IT when it does not:
// a metric, an error log on each change to "unknown", and a warning in
// /readyz while the latest inbound call came without it.
type presentationWatch struct {
	source   string
	mode     string
	log      *slog.Logger
	unknownC prometheus.Counter
	knownG   prometheus.Gauge

	mu      sync.Mutex
	seen    bool // a call was reported at all
	unknown bool // the latest call came without presentation
	count   uint64
}

func newPresentationWatch(reg prometheus.Registerer, source, mode string, log *slog.Logger) (*presentationWatch, error) {
	unknown := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "screenpop_ari_presentation_unknown_calls_total",
		Help: "Inbound calls whose caller presentation the PBX did not report (no CALLERID(pres) in channelvars, no SCREENPOP_PRES), by telephony source; they are withheld or shown as on_unknown_presentation says.",
	}, []string{"source"})
	known := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "screenpop_ari_presentation_known",
		Help: "1 when the latest inbound call of the telephony source came with its caller presentation (or none came yet), 0 when it did not.",
	}, []string{"source"})
	if reg != nil {
		var err error
		if unknown, err = promreg.Register(reg, unknown); err != nil {
			return nil, err
		}
		if known, err = promreg.Register(reg, known); err != nil {
			return nil, err
		}
	}
	w := &presentationWatch{
		source: source, mode: mode, log: log,
		unknownC: unknown.WithLabelValues(source),
		knownG:   known.WithLabelValues(source),
	}
	w.knownG.Set(1)
	return w, nil
}

// observe is the tracker's Presentation callback: called from the session
// goroutine, once per inbound call as it is first reported.
func (w *presentationWatch) observe(known bool) {
	w.mu.Lock()
	was := w.unknown
	w.seen, w.unknown = true, !known
	if !known {
		w.count++
	}
	w.mu.Unlock()
	if known {
		w.knownG.Set(1)
		if was {
			w.log.Info("ari: the PBX reports caller presentation again")
		}
		return
	}
	w.knownG.Set(0)
	w.unknownC.Inc()
	if !was {
		w.log.Error("ari: the PBX does not report whether callers withheld their number; "+w.consequence()+": "+presentationFix,
			"source", w.source, "on_unknown_presentation", w.mode)
	}
}

func (w *presentationWatch) consequence() string {
	if w.mode == PresentationShow {
		return "on_unknown_presentation is show, so a caller who withheld the number is SHOWN to agents, looked up and stored"
	}
	return "such callers are treated as withheld (no number shown, looked up or stored)"
}

// warning is what /readyz lists while the latest call came without its
// presentation, or "".
func (w *presentationWatch) warning() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.unknown {
		return ""
	}
	return fmt.Sprintf("caller presentation unknown (%d calls so far): %s; to fix it, %s",
		w.count, w.consequence(), presentationFix)
}
