package screenpop

import (
	"net/url"
	"strings"
	"testing"
)

// Values that would change the URL if they went in as they are: a new
// query parameter (&), another folder (/), a fragment (#), an attribute's
// end ("), a space, and letters beyond ASCII. Each must come back from the
// URL as the value it was, and nothing else of the URL may change.
func TestFillLinkEscapesHostileValues(t *testing.T) {
	const template = "https://crm.example.com/customers/{customer_id}/calls?call={call_id}&agent={agent}&n={number}#note-{customer_id}"
	hostile := []string{
		"C-1&admin=true",
		"../../admin",
		"C-1/../../x",
		"C-1#top",
		`C-1" onmouseover="alert(1)`,
		"Łódź Zürich 東京",
		"a+b c%20d",
		"?x=1",
	}
	for _, v := range hostile {
		filled, ok := FillLink(template, func(name string) string {
			switch name {
			case LinkNumber:
				return "+48 601 234 567"
			case LinkAgent:
				return "1001&x=y"
			}
			return v
		})
		if !ok {
			t.Errorf("%q: not filled", v)
			continue
		}
		if strings.ContainsAny(filled, "\" ") {
			t.Errorf("%q: %s holds a quote or a space", v, filled)
		}
		u, err := url.Parse(filled)
		if err != nil {
			t.Errorf("%q: %s does not parse: %v", v, filled, err)
			continue
		}
		if u.Scheme != "https" || u.Host != "crm.example.com" {
			t.Errorf("%q: went to %s://%s", v, u.Scheme, u.Host)
		}
		segments := strings.Split(u.EscapedPath(), "/")
		if len(segments) != 4 || segments[1] != "customers" || segments[3] != "calls" {
			t.Errorf("%q: path %s, want /customers/<one segment>/calls", v, u.EscapedPath())
			continue
		}
		if got, _ := url.PathUnescape(segments[2]); got != v {
			t.Errorf("%q: the path segment reads %q", v, got)
		}
		q := u.Query()
		if len(q) != 3 || q.Get("call") != v || q.Get("agent") != "1001&x=y" || q.Get("n") != "+48 601 234 567" {
			t.Errorf("%q: query %v", v, q)
		}
		if u.Fragment != "note-"+v {
			t.Errorf("%q: fragment %q", v, u.Fragment)
		}
	}
}

// A link lacking one of its values is not made, nor one whose path value
// a browser would take for a folder step.
func TestFillLinkLeavesOutWhatItCannotFill(t *testing.T) {
	values := map[string]string{LinkCustomerID: "C-1", LinkCallID: "pbx/1"}
	get := func(name string) string { return values[name] }
	if _, ok := FillLink("https://crm.example.com/c/{customer_id}?n={number}", get); ok {
		t.Error("filled without a number")
	}
	if got, ok := FillLink("https://crm.example.com/c/{customer_id}?call={call_id}", get); !ok || got != "https://crm.example.com/c/C-1?call=pbx%2F1" {
		t.Errorf("FillLink = %q, %v", got, ok)
	}
	for _, dots := range []string{".", ".."} {
		values[LinkCustomerID] = dots
		if got, ok := FillLink("https://crm.example.com/c/{customer_id}", get); ok {
			t.Errorf("%q in the path: %s", dots, got)
		}
		if _, ok := FillLink("https://crm.example.com/c?id={customer_id}", get); !ok {
			t.Errorf("%q in the query refused", dots)
		}
	}
}

func TestCheckLinkURL(t *testing.T) {
	for _, ok := range []string{
		"https://crm.example.com/customers/{customer_id}",
		"http://helpdesk.local:8080/new?phone={number}&call={call_id}&by={agent}",
		"https://crm.example.com/#/customer/{customer_id}",
		"https://crm.example.com/search?q={customer_id}&json={\"a\":1}",
	} {
		if err := CheckLinkURL(ok); err != nil {
			t.Errorf("CheckLinkURL(%q): %v", ok, err)
		}
	}
	for template, want := range map[string]string{
		"":                                       "missing",
		"javascript:alert({customer_id})":        "must start with https:// or http://",
		"ftp://files.example.com/{customer_id}":  "must start with https:// or http://",
		"//crm.example.com/{customer_id}":        "must start with https:// or http://",
		"https://{customer_id}.crm.example.com/": "placeholder in the host",
		"https://crm.example.com:{agent}/":       "placeholder in the host",
		"https://user:secret@crm.example.com/":   "user or password",
		"https://crm.example.com/{customer}":     "unknown placeholder {customer}",
		"https://crm.example.com/a b":            "white space",
		"https:///{customer_id}":                 "no host",
	} {
		err := CheckLinkURL(template)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckLinkURL(%q) = %v, want %q", template, err, want)
		}
	}
}

func TestCardLinkVisibleTo(t *testing.T) {
	l := CardLink{Roles: []string{"supervisor", "credit"}}
	if l.VisibleTo([]string{"agent"}) || !l.VisibleTo([]string{"agent", "credit"}) || !(CardLink{}).VisibleTo(nil) {
		t.Error("VisibleTo")
	}
}
