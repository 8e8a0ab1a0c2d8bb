package aggregator

import (
	"errors"
	"strings"

	"github.com/nyaruka/phonenumbers"

	screenpop "github.com/screenpop/screenpop"
)

// Number is a caller's number after normalisation.
type Number struct {
	// E164 is the number in E.164 ("+4930123456"): what every source and
	// the history are keyed by.
	E164 string
	// National is the national significant number ("30123456"), for
	// systems that store numbers without the country code.
	National string
	// Region is the ISO 3166 region the number belongs to ("DE"), which may
	// differ from the configured default region.
	Region string
	// Extension is what followed "ext.", "x" or ";ext=": an extension
	// behind the caller's own PBX. It is kept aside, never part of E164.
	Extension string
}

var (
	// ErrWithheld: the caller withheld the number, or the PBX sent a
	// placeholder such as "anonymous" instead of one.
	ErrWithheld = errors.New("the caller withheld the number")
	// ErrNotAPhone: the text is not a phone number that can be dialled from
	// outside: junk, or a short internal extension such as "1001".
	ErrNotAPhone = errors.New("not a valid phone number")
)

// withheldMarkers are what PBXs and carriers put in the caller-ID field when
// there is no number to show (compared case-insensitively).
var withheldMarkers = map[string]bool{
	"anonymous":   true,
	"unknown":     true,
	"restricted":  true,
	"private":     true,
	"withheld":    true,
	"unavailable": true,
	"blocked":     true,
}

// Normalize turns a caller number, as a PBX presents it, into E.164 using
// the configured default region for national numbers. It returns
// ErrWithheld for placeholders of withheld numbers and ErrNotAPhone for
// anything that is not a dialable number (an internal extension, junk).
func (a *Aggregator) Normalize(raw string) (Number, error) {
	return normalize(raw, a.state.Load().region)
}

// minNationalDigits is the shortest national number accepted without being
// valid per the metadata: numbering plans gain ranges faster than the
// library's metadata is updated, but nothing shorter is a subscriber number.
const minNationalDigits = 6

func normalize(raw, region string) (Number, error) {
	s := strings.TrimSpace(raw)
	if s == "" || withheldMarkers[strings.ToLower(s)] {
		return Number{}, ErrWithheld
	}
	s = stripURI(s)
	if s == "" || withheldMarkers[strings.ToLower(s)] {
		return Number{}, ErrWithheld
	}
	num, err := phonenumbers.Parse(s, region)
	if err != nil {
		return Number{}, ErrNotAPhone
	}
	if !phonenumbers.IsValidNumber(num) {
		// A number given in international form whose length fits its
		// country is accepted even when the range is unknown to the
		// metadata; a short national string ("1001") is an extension.
		international := strings.HasPrefix(s, "+") || strings.HasPrefix(s, "00")
		if !international || !phonenumbers.IsPossibleNumber(num) ||
			len(phonenumbers.GetNationalSignificantNumber(num)) < minNationalDigits {
			return Number{}, ErrNotAPhone
		}
	}
	n := Number{
		E164:      phonenumbers.Format(num, phonenumbers.E164),
		National:  phonenumbers.GetNationalSignificantNumber(num),
		Region:    phonenumbers.GetRegionCodeForNumber(num),
		Extension: num.GetExtension(),
	}
	if n.Region == "ZZ" {
		n.Region = ""
	}
	return n, nil
}

// stripURI reduces "sip:+4930123456@pbx.example;user=phone" and
// "tel:+4930123456" to the number part; SIP trunks hand over caller IDs in
// that shape.
func stripURI(s string) string {
	lower := strings.ToLower(s)
	for _, scheme := range []string{"sips:", "sip:", "tel:"} {
		if strings.HasPrefix(lower, scheme) {
			s = s[len(scheme):]
			if i := strings.IndexByte(s, '@'); i >= 0 {
				s = s[:i]
			}
			return strings.TrimSpace(s)
		}
	}
	return s
}

// callerKind says what kind of number a call came from.
type callerKind int

const (
	callerPhone    callerKind = iota // a number to look up
	callerWithheld                   // no number
	callerNotPhone                   // an internal extension or junk
)

// classify decides what the aggregator can look the caller up by.
func classify(c screenpop.Caller, region string) (Number, callerKind) {
	if c.Withheld {
		return Number{}, callerWithheld
	}
	n, err := normalize(c.Number, region)
	switch {
	case errors.Is(err, ErrWithheld):
		return Number{}, callerWithheld
	case err != nil:
		return Number{}, callerNotPhone
	}
	return n, callerPhone
}

// validRegion reports whether phonenumbers knows region as a region with a
// numbering plan.
func validRegion(region string) bool {
	return phonenumbers.GetCountryCodeForRegion(region) != 0
}
