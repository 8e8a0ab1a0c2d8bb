package screenpop

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// CardLink opens the caller's record in another system ("Open in CRM",
// "New ticket"): a configured URL template with the card's customer id,
// number or call id, or the agent, filled in. A card keeps the templates
// while it is the server's (URL unfilled, Roles set); the copy an agent
// gets holds each link filled in for them (FillLink), only those
// VisibleTo them, without Roles, and none whose template needs a value
// the card lacks (no customer id for an unknown caller).
type CardLink struct {
	// Label is what the agent reads; Labels the same in other languages,
	// by language code ("pl": "Otwórz w CRM"), the page's language first.
	Label  string            `json:"label"`
	Labels map[string]string `json:"labels,omitempty"`
	URL    string            `json:"url"`
	// OpenOnAnswer: the page opens it when the agent answers the call
	// (once, in one tab). At most one link of a card has it.
	OpenOnAnswer bool `json:"open_on_answer,omitempty"`
	// Roles are the roles that may see the link; empty: every agent.
	Roles []string `json:"roles,omitempty"`
}

// VisibleTo reports whether an agent holding roles may see the link: it
// names no role, or one of roles.
func (l CardLink) VisibleTo(roles []string) bool {
	if len(l.Roles) == 0 {
		return true
	}
	return slices.ContainsFunc(l.Roles, func(r string) bool { return slices.Contains(roles, r) })
}

// Link placeholders: what a link's URL template may contain.
const (
	LinkCustomerID = "customer_id" // the resolved or picked customer
	LinkNumber     = "number"      // the caller's number in E.164
	LinkCallID     = "call_id"     // the call's id in screenpop (<pbx>/<id>)
	LinkAgent      = "agent"       // the agent the card goes to
)

// LinkParams lists the placeholders, for configuration checks.
var LinkParams = []string{LinkCustomerID, LinkNumber, LinkCallID, LinkAgent}

// CheckLinkURL reports what is wrong with a link's URL template, or nil:
// an absolute http or https URL whose scheme and host are written out
// (a placeholder there could send the agent to another site), with only
// known {placeholders}, in the path, the query or the fragment.
func CheckLinkURL(template string) error {
	if strings.TrimSpace(template) == "" {
		return errors.New("missing")
	}
	if strings.ContainsAny(template, " \t\r\n") {
		return errors.New("contains white space: write %20 for a space")
	}
	for _, p := range linkParts(template) {
		if p.param != "" && !slices.Contains(LinkParams, p.param) {
			return fmt.Errorf("unknown placeholder {%s} (known: {%s})", p.param, strings.Join(LinkParams, "}, {"))
		}
	}
	scheme, rest, ok := strings.Cut(template, "://")
	if !ok || (!strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https")) {
		return errors.New("must start with https:// or http://")
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	if strings.Contains(authority, "{") {
		return errors.New("a placeholder in the host could send agents to another site: placeholders go in the path, the query or the fragment")
	}
	if strings.Contains(authority, "@") {
		return errors.New("a user or password in a link's URL would be shown to every agent")
	}
	u, err := url.Parse(fillAll(template, "x"))
	if err != nil {
		return fmt.Errorf("not a URL: %v", errors.Unwrap(err))
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	return nil
}

// LinkUses reports whether a link's URL template has the placeholder.
func LinkUses(template, param string) bool {
	return slices.ContainsFunc(linkParts(template), func(p linkPart) bool { return p.param == param })
}

// FillLink fills the placeholders of a URL template CheckLinkURL accepts
// with value(name), each escaped for where it stands: path-escaped in the
// path, query-escaped in the query and the fragment, so that a value
// holding '/', '&', '#', '"' or any letter stays one value. ok is false
// when a placeholder's value is empty, or is "." or ".." in the path
// (which a browser would resolve to another folder).
func FillLink(template string, value func(name string) string) (filled string, ok bool) {
	var b strings.Builder
	where := inPath
	for _, p := range linkParts(template) {
		if p.param == "" || !slices.Contains(LinkParams, p.param) {
			b.WriteString(p.text)
			where = max(where, placeOf(p.text))
			continue
		}
		v := value(p.param)
		switch {
		case v == "":
			return "", false
		case where == inPath && (v == "." || v == ".."):
			return "", false
		case where == inPath:
			b.WriteString(url.PathEscape(v))
		case where == inQuery:
			b.WriteString(url.QueryEscape(v))
		default: // a fragment: no '+' for a space, which nothing decodes there
			b.WriteString(strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
		}
	}
	return b.String(), true
}

// Where in a URL a placeholder stands.
const (
	inPath = iota
	inQuery
	inFragment
)

// placeOf is where the URL is after text: its last '?' or '#' moves it on.
func placeOf(text string) int {
	switch {
	case strings.Contains(text, "#"):
		return inFragment
	case strings.Contains(text, "?"):
		return inQuery
	}
	return inPath
}

type linkPart struct {
	text  string
	param string // a {placeholder}'s name; text then holds "{name}"
}

// linkParts splits a template at its {identifier} placeholders.
func linkParts(s string) []linkPart {
	var parts []linkPart
	for len(s) > 0 {
		open := strings.IndexByte(s, '{')
		end := -1
		if open >= 0 {
			end = strings.IndexByte(s[open:], '}')
		}
		if open < 0 || end < 0 {
			parts = append(parts, linkPart{text: s})
			break
		}
		end += open
		name := s[open+1 : end]
		if !isIdentifier(name) {
			parts = append(parts, linkPart{text: s[:open+1]})
			s = s[open+1:]
			continue
		}
		if open > 0 {
			parts = append(parts, linkPart{text: s[:open]})
		}
		parts = append(parts, linkPart{text: s[open : end+1], param: name})
		s = s[end+1:]
	}
	return parts
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// fillAll puts v in every placeholder, to check the rest of the URL.
func fillAll(template, v string) string {
	var b strings.Builder
	for _, p := range linkParts(template) {
		if p.param != "" {
			b.WriteString(v)
		} else {
			b.WriteString(p.text)
		}
	}
	return b.String()
}
