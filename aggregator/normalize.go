package aggregator

import (
	"errors"
	"strings"
	"unicode"

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
	// ErrWithheld: the text is empty or a marker such as "anonymous" that
	// PBXs send in place of a withheld number. Only for Normalize: a card
	// is withheld when the telephony source says so (Caller.Withheld).
	ErrWithheld = errors.New("the caller withheld the number")
	// ErrNotAPhone: the text is not a phone number that can be dialled from
	// outside: junk, letters, a short internal extension such as "1001", or
	// a placeholder such as "0000000" or "123456789". Such a text is never
	// a lookup or history key.
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
// anything that is not a dialable number (an internal extension, junk, a
// placeholder such as 0000000). See normalize for the exact rules.
func (a *Aggregator) Normalize(raw string) (Number, error) {
	return normalize(raw, a.state.Load().region)
}

const (
	// maxE164Digits is the most digits an E.164 number has (country code
	// included).
	maxE164Digits = 15
	// minPossibleNationalDigits is the shortest national significant
	// number accepted under the possible-number rule.
	minPossibleNationalDigits = 6
	// maxInputLength bounds the text looked at, as libphonenumber does
	// (250): no caller ID is longer, and the extension patterns are costly
	// on long text.
	maxInputLength = 250
)

// testSequences are digit strings that PBXs, test tools and data entry put
// where a number is missing; they are never taken for a phone number, even
// where one is a real number (+48 12 345 67 89 in Kraków is one, and it is
// only accepted in international form). Checked against the digits as sent
// (a leading "+" dropped) and those of the E.164 result; for a number
// accepted only as possible, also against its national significant number.
var testSequences = map[string]bool{
	"123456":     true,
	"1234567":    true,
	"12345678":   true,
	"123456789":  true,
	"1234567890": true,
	"0123456":    true,
	"01234567":   true,
	"012345678":  true,
	"0123456789": true,
}

// normalize applies these rules in order; aggregator/README.md lists the
// same ones for operators:
//
//  1. Empty (after trimming) or a withheld marker ("anonymous", …), also as
//     the user part of a sip:/sips:/tel: URI: ErrWithheld.
//  2. A sip:/sips:/tel: URI is reduced to its number: the host part and the
//     URI parameters go, except ";ext=" (the extension) and a
//     ";phone-context=" starting with "+" (put before a local number, as
//     RFC 3966 has it).
//  3. Longer than 250 bytes: ErrNotAPhone. An extension suffix that
//     libphonenumber recognises ("ext. 12", "x12", ";ext=12", …) is set
//     aside; if what remains holds any letter: ErrNotAPhone. libphonenumber
//     would read "+49 30 CALL ME" as a vanity number, but a caller ID with
//     letters in it is a name or junk.
//  4. More than 15 digits (E.164's maximum), not counting a leading "00" or
//     "011" international prefix: ErrNotAPhone.
//  5. Its digits (a leading "+" dropped) are one of testSequences:
//     ErrNotAPhone.
//  6. libphonenumber must parse it (with region for national numbers), and
//     the number must be valid for its own region (IsValidNumber) or meet
//     the possible-number rule: written in international form ("+", or an
//     international prefix the library recognises for region, such as
//     00), of a length the country's plan allows for a full number
//     (IsPossibleNumberWithReason is IS_POSSIBLE, not local-only), with a
//     national significant number of at least 6 digits that is not one of
//     testSequences. The rule exists because numbering plans gain ranges
//     before the library's metadata does; a number in national form gets
//     no such benefit, since the short strings PBXs send for extensions
//     ("1001") are what it would let through. Else ErrNotAPhone.
//  7. A national significant number of one repeated digit ("0000000",
//     "1111111", "+49 9999999999"): ErrNotAPhone. Keying such placeholders
//     would put one anonymous caller's history on another's card.
//  8. The E.164 result must have at most 15 digits (libphonenumber calls
//     some longer German numbers valid), not be one of testSequences, and
//     parse back to the same number, so that normalising a result again
//     gives the same Number whatever the region. Else ErrNotAPhone.
func normalize(raw, region string) (Number, error) { return normalizeChecked(raw, region, false) }

// normalizeChecked is normalize; with everyCheck, without its two
// shortcuts (text of digits alone is not searched for an extension, a
// number sent in E.164 is not parsed back), as the rules are written:
// TestNormalizeShortcuts compares the two.
func normalizeChecked(raw, region string, everyCheck bool) (Number, error) {
	s := strings.TrimSpace(raw)
	if s == "" || withheldMarkers[strings.ToLower(s)] {
		return Number{}, ErrWithheld
	}
	s = stripURI(s)
	if s == "" || withheldMarkers[strings.ToLower(s)] {
		return Number{}, ErrWithheld
	}
	if len(s) > maxInputLength {
		return Number{}, ErrNotAPhone
	}
	number := s
	if everyCheck || !plainDigits(s) {
		// Every extension form libphonenumber knows has a separator
		// ("ext.", "x", "#", ";ext=", ","): digits alone have none.
		number, _ = phonenumbers.MaybeSeparateExtensionFromPhone(s)
	}
	if strings.IndexFunc(number, unicode.IsLetter) >= 0 {
		return Number{}, ErrNotAPhone
	}
	digits := phonenumbers.NormalizeDigitsOnly(number)
	if len(withoutInternationalPrefix(digits)) > maxE164Digits || testSequences[digits] {
		return Number{}, ErrNotAPhone
	}
	num, err := phonenumbers.ParseAndKeepRawInput(s, region)
	if err != nil {
		return Number{}, ErrNotAPhone
	}
	national := phonenumbers.GetNationalSignificantNumber(num)
	if !phonenumbers.IsValidNumber(num) && !possible(num, national) {
		return Number{}, ErrNotAPhone
	}
	if repeatedDigit(national) {
		return Number{}, ErrNotAPhone
	}
	e164 := phonenumbers.Format(num, phonenumbers.E164)
	if !strings.HasPrefix(e164, "+") || len(e164)-1 > maxE164Digits || testSequences[e164[1:]] {
		return Number{}, ErrNotAPhone
	}
	if everyCheck || e164 != s {
		// Sent in E.164 already, the number was just parsed from it: it
		// parses back the same.
		back, err := phonenumbers.Parse(e164, "")
		if err != nil || phonenumbers.Format(back, phonenumbers.E164) != e164 ||
			phonenumbers.GetNationalSignificantNumber(back) != national {
			return Number{}, ErrNotAPhone
		}
	}
	n := Number{
		E164:      e164,
		National:  national,
		Region:    phonenumbers.GetRegionCodeForNumber(num),
		Extension: num.GetExtension(),
	}
	if n.Region == "ZZ" {
		n.Region = ""
	}
	return n, nil
}

// plainDigits reports whether s is digits, with a leading "+" or not.
func plainDigits(s string) bool {
	s = strings.TrimPrefix(s, "+")
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// possible is normalize's possible-number rule (6): for an invalid number
// written in international form.
func possible(num *phonenumbers.PhoneNumber, national string) bool {
	switch num.GetCountryCodeSource() {
	case phonenumbers.PhoneNumber_FROM_NUMBER_WITH_PLUS_SIGN, phonenumbers.PhoneNumber_FROM_NUMBER_WITH_IDD:
	default:
		return false
	}
	return phonenumbers.IsPossibleNumberWithReason(num) == phonenumbers.IS_POSSIBLE &&
		len(national) >= minPossibleNationalDigits && !testSequences[national]
}

// withoutInternationalPrefix drops a leading 00 or 011 (the international
// prefixes of most of the world and of North America) from digits, for
// counting them against E.164's maximum.
func withoutInternationalPrefix(digits string) string {
	for _, prefix := range []string{"00", "011"} {
		if rest, ok := strings.CutPrefix(digits, prefix); ok {
			return rest
		}
	}
	return digits
}

// repeatedDigit reports whether s is one digit repeated (or empty).
func repeatedDigit(s string) bool {
	for i := 1; i < len(s); i++ {
		if s[i] != s[0] {
			return false
		}
	}
	return true
}

// stripURI reduces "sip:+4930123456@pbx.example;user=phone" and
// "tel:+4930123456" to the number part; SIP trunks hand over caller IDs in
// that shape. URI parameters go, except an extension (";ext=12", kept in
// the form libphonenumber reads) and a global phone-context ("tel:123456;
// phone-context=+4930" is +4930123456).
func stripURI(s string) string {
	lower := strings.ToLower(s)
	for _, scheme := range []string{"sips:", "sip:", "tel:"} {
		if !strings.HasPrefix(lower, scheme) {
			continue
		}
		s = s[len(scheme):]
		if i := strings.IndexByte(s, '@'); i >= 0 {
			s = s[:i]
		}
		number, params, _ := strings.Cut(s, ";")
		number = strings.TrimSpace(number)
		var ext string
		for p := range strings.SplitSeq(params, ";") {
			name, value, _ := strings.Cut(p, "=")
			switch strings.ToLower(strings.TrimSpace(name)) {
			case "ext":
				ext = strings.TrimSpace(value)
			case "phone-context":
				if value = strings.TrimSpace(value); strings.HasPrefix(value, "+") && !strings.HasPrefix(number, "+") {
					number = value + number
				}
			}
		}
		if ext != "" {
			number += ";ext=" + ext
		}
		return number
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

// classify decides what the aggregator can look the caller up by. Only the
// telephony source's Withheld flag makes a caller withheld; anything else
// that does not normalise is not a phone (ErrWithheld included).
func classify(c screenpop.Caller, region string) (Number, callerKind) {
	if c.Withheld {
		return Number{}, callerWithheld
	}
	n, err := normalize(c.Number, region)
	if err != nil {
		// Presentation is the telephony source's to decide: it did not
		// flag this caller withheld, so an empty number or "anonymous" is
		// a caller with no usable number (unknown), not a withheld one.
		return Number{}, callerNotPhone
	}
	return n, callerPhone
}

// validRegion reports whether phonenumbers knows region as a region with a
// numbering plan.
func validRegion(region string) bool {
	return phonenumbers.GetCountryCodeForRegion(region) != 0
}
