package aggregator

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	screenpop "github.com/screenpop/screenpop"
)

// LinkSpec is a link every card offers to the caller's record in another
// system: "Open in CRM", "New ticket". Its URL is a template whose
// placeholders — {customer_id}, {number} (E.164), {call_id}, {agent} — are
// filled in for each agent the card goes to, each escaped for where it
// stands (screenpop.FillLink); a card lacking a value the URL needs (no
// customer id for an unknown caller, no number for a withheld one) goes
// without the link.
type LinkSpec struct {
	// Label is what the agent reads; Labels the same in other languages,
	// by language code ({pl: Otwórz w CRM}).
	Label  string            `yaml:"label"`
	Labels map[string]string `yaml:"labels"`
	URL    string            `yaml:"url"`
	// Roles are the roles that may see the link; empty: every agent.
	Roles []string `yaml:"roles"`
	// OpenOnAnswer opens the link in a new browser tab when the agent
	// answers the call (once, in the tab that rang). At most one link.
	OpenOnAnswer bool `yaml:"open_on_answer"`
}

// Bounds of links.
const (
	MaxLinks     = 10
	MaxLinkLabel = 40 // characters: a button's text
)

var languageRE = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$`)

// links checks the links cards offer.
func (v *validation) links(links []LinkSpec) {
	if len(links) > MaxLinks {
		v.add("links", "", fmt.Sprintf("%d links, more than %d", len(links), MaxLinks), "a card offers a few: keep those agents use on most calls")
	}
	opens := -1
	for i, l := range links {
		at := func(option string) string { return fmt.Sprintf("links[%d].%s", i, option) }
		const example = "e.g. label: Open in CRM"
		switch n := utf8.RuneCountInString(strings.TrimSpace(l.Label)); {
		case n == 0:
			v.add(at("label"), "", "missing", "write what agents read on the button, "+example)
		case n > MaxLinkLabel:
			v.add(at("label"), "", fmt.Sprintf("%d characters, more than %d", n, MaxLinkLabel), "a button's text: a few words, "+example)
		}
		for _, lang := range slices.Sorted(maps.Keys(l.Labels)) {
			path := fmt.Sprintf("links[%d].labels.%s", i, lang)
			switch n := utf8.RuneCountInString(strings.TrimSpace(l.Labels[lang])); {
			case !languageRE.MatchString(lang):
				v.add(path, "", fmt.Sprintf("%q is not a language code", lang), "the page's language, e.g. labels: {pl: Otwórz w CRM}")
			case n == 0:
				v.add(path, "", "the label is empty", "write it in that language, or leave the language out (the label is shown instead)")
			case n > MaxLinkLabel:
				v.add(path, "", fmt.Sprintf("%d characters, more than %d", n, MaxLinkLabel), "a button's text: a few words")
			}
		}
		if err := screenpop.CheckLinkURL(l.URL); err != nil {
			v.add(at("url"), "", err.Error(), "e.g. url: https://crm.example.com/customers/{customer_id}?caller={number}")
		}
		v.roles(at("roles"), l.Roles)
		if l.OpenOnAnswer {
			if opens >= 0 {
				v.add(at("open_on_answer"), "", fmt.Sprintf("links[%d] opens on answer already", opens), "one link opens by itself: set open_on_answer on one only")
			} else {
				opens = i
			}
		}
	}
}

// cardLinks are the links a card carries while it is the server's:
// templates, filled in for each agent it goes to. Each card gets its own
// slice: the dispatcher keeps cards.
func (c Config) cardLinks() []screenpop.CardLink {
	if len(c.Links) == 0 {
		return nil
	}
	out := make([]screenpop.CardLink, len(c.Links))
	for i, l := range c.Links {
		out[i] = screenpop.CardLink{
			Label: strings.TrimSpace(l.Label), Labels: maps.Clone(l.Labels), URL: strings.TrimSpace(l.URL),
			OpenOnAnswer: l.OpenOnAnswer, Roles: slices.Clone(l.Roles),
		}
	}
	return out
}
