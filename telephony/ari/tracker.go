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
func newTracker(cfg Config) callTracker {
	return callstate.New(callstate.Config{
		AgentOf:             cfg.AgentOf,
		InboundContexts:     cfg.InboundContexts,
		Source:              cfg.Name,
		Now:                 time.Now,
		RequirePresentation: cfg.RequirePresentation,
	})
}
