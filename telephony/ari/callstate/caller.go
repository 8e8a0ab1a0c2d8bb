package callstate

import (
	"strconv"
	"strings"

	screenpop "github.com/screenpop/screenpop"
)

// Presentation bits of Asterisk's AST_PRES_* values (Q.931 octet 3a):
// 0x00 allowed, 0x20 restricted, 0x40 number not available.
const (
	presMask         = 0x60
	presRestricted   = 0x20
	presUnavailable  = 0x40
	presNotAvailable = 0x60 // reserved; treated as restricted
)

// presentationRestricted reads a CALLERID(pres) value: a name such as
// "allowed_not_screened" or "prohib", or the number behind it. Anything it
// does not recognise counts as restricted: a wrong guess must hide a
// number, never show one.
func presentationRestricted(value string) bool {
	v := strings.ToLower(strings.TrimSpace(value))
	if n, err := strconv.Atoi(v); err == nil {
		return presentationCodeRestricted(n)
	}
	return !strings.HasPrefix(v, "allowed")
}

// presentationCodeRestricted reads a numeric presentation
// (ChannelCallerId's caller_presentation).
func presentationCodeRestricted(code int) bool {
	switch code & presMask {
	case presRestricted, presUnavailable, presNotAvailable:
		return true
	}
	return false
}

// setPresentation records what the PBX said about presentation. A caller
// once restricted stays restricted for the rest of the call.
func (c *call) setPresentation(restricted bool) {
	c.presKnown = true
	c.restricted = c.restricted || restricted
}

// anonymousNumbers are what carriers and phones put where a withheld number
// would be.
var anonymousNumbers = map[string]bool{
	"":            true,
	"anonymous":   true,
	"restricted":  true,
	"private":     true,
	"unknown":     true,
	"unavailable": true,
	"withheld":    true,
	"blocked":     true,
}

// callerOf is the caller as the rest of the daemon may see it: nothing of a
// withheld caller, not even the name (presentation restricts both).
//
//   - presentation restricted: withheld;
//   - presentation never reported by the PBX: withheld, unless the
//     configuration says to show such callers (ShowUnknownPresentation);
//   - presentation allowed but no number ("anonymous", empty: the network
//     did not deliver one): an unknown caller with no number, not a
//     withheld one.
func (t *Tracker) callerOf(c *call) screenpop.Caller {
	anonymous := anonymousNumbers[strings.ToLower(strings.TrimSpace(c.number))]
	switch {
	case c.restricted:
		return screenpop.Caller{Withheld: true}
	case !c.presKnown && (!t.cfg.ShowUnknownPresentation || anonymous):
		return screenpop.Caller{Withheld: true}
	case anonymous:
		name := c.name
		if anonymousNumbers[strings.ToLower(strings.TrimSpace(name))] {
			name = ""
		}
		return screenpop.Caller{Name: name}
	}
	return screenpop.Caller{Number: c.number, Name: c.name}
}
