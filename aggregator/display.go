package aggregator

import (
	"strings"

	"github.com/nyaruka/phonenumbers"

	screenpop "github.com/screenpop/screenpop"
)

// Display is the number as an agent working in region reads it back to the
// caller or dials it: in national format when the number belongs to
// region's numbering plan ("030 1234567" with region DE, "601 234 567"
// with PL, "(415) 555-0134" with US), in international format otherwise
// ("+48 601 234 567"), with the extension when there is one ("… ext. 12").
// The grouping is libphonenumber's, country by country: blocks of three
// digits are wrong for most numbering plans.
//
// "Belongs to region's plan" means it has region's country calling code, so
// that a Canadian number is national for an agent in the US and a Jersey
// number for one in GB: dialled from there, the national form reaches it.
// A number only possible by normalize's rule (a range libphonenumber's
// metadata does not know yet) is international too: its national form
// would need a grouping and a trunk prefix the metadata cannot give.
// An empty region (no default region configured) gives the international
// format for every number. A Number without E164 gives "".
func (n Number) Display(region string) string {
	if n.E164 == "" {
		return ""
	}
	num, err := phonenumbers.Parse(n.E164, "")
	if err != nil {
		// Not from normalize, which only returns numbers that parse back.
		return n.E164
	}
	if n.Extension != "" {
		ext := n.Extension
		num.Extension = &ext
	}
	format := phonenumbers.INTERNATIONAL
	if cc := phonenumbers.GetCountryCodeForRegion(region); cc != 0 && int32(cc) == num.GetCountryCode() &&
		phonenumbers.IsValidNumber(num) {
		format = phonenumbers.NATIONAL
	}
	return phonenumbers.Format(num, format)
}

// phoneDisplay is Card.PhoneDisplay for a caller that classify put in kind:
// a phone number formatted for region (Number.Display); a caller ID that
// is not a phone number (an internal extension, a placeholder such as
// 0000000, a name) exactly as the PBX sent it, since any grouping would
// make it look like a number it is not; nothing for a withheld caller,
// whose page shows its own "withheld" label.
func phoneDisplay(c screenpop.Caller, n Number, kind callerKind, region string) string {
	switch kind {
	case callerPhone:
		return n.Display(region)
	case callerNotPhone:
		return strings.TrimSpace(c.Number)
	default:
		return ""
	}
}
