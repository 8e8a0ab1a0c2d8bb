package ari

import (
	"time"

	"github.com/screenpop/screenpop/telephony/ari/callstate"
)

var _ callTracker = (*callstate.Tracker)(nil)

// newTracker builds the call model, once per Source: it outlives every
// connection, and Resync repairs it after each reconnect. The channel
// variables it reads are callstate's defaults (SCREENPOP_CALL,
// SCREENPOP_PRES, SCREENPOP_DID), which configs/asterisk sets.
func newTracker(cfg Config, presentation func(known bool)) callTracker {
	return callstate.New(callstate.Config{
		Presentation:            presentation,
		AgentOf:                 cfg.AgentOf,
		InboundContexts:         cfg.InboundContexts,
		Source:                  cfg.Name,
		Now:                     time.Now,
		ShowUnknownPresentation: cfg.OnUnknownPresentation == PresentationShow,
	})
}
