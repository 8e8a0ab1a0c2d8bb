package file

import (
	"context"
	"maps"
	"slices"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

// SearchOptions are the file kind's keys under a directory's search:
// which fields an agent's text is looked for in. Case and accents do not
// count: "kuhn" finds "Kühn", "lodz" finds "Łódź".
type SearchOptions struct {
	// The bounds every kind's search has (min_length, max_results,
	// timeout) are the aggregator's: the configuration loader hands them
	// to it, and they are accepted here too, so that a search: block reads
	// the same wherever it is decoded.
	aggregator.SearchSpec `yaml:",inline"`
	// Contains are the fields in which every word of the text must appear
	// (in any of them, in any order); default name, contact, email.
	Contains []string `yaml:"contains"`
	// Equals are the fields the whole text may equal instead (a customer
	// id): these matches come first; default id.
	Equals []string `yaml:"equals"`
}

// searcher is a file's search, built once from its options.
type searcher struct {
	contains, equals []string
}

// Default fields of the search.
var (
	DefaultSearchContains = []string{"name", "contact", "email"}
	DefaultSearchEquals   = []string{"id"}
)

func newSearcher(options *yaml.Node, o SearchOptions) (*searcher, error) {
	sr := &searcher{contains: o.Contains, equals: o.Equals}
	if sr.contains == nil {
		sr.contains = DefaultSearchContains
	}
	if sr.equals == nil {
		sr.equals = DefaultSearchEquals
	}
	if len(sr.contains)+len(sr.equals) == 0 {
		return nil, configs.KeyError(options, "search", "search names no field to look in: leave contains and equals out for name, contact, email and id")
	}
	for _, f := range slices.Concat(sr.contains, sr.equals) {
		if strings.TrimSpace(f) == "" {
			return nil, configs.KeyError(options, "search", "search: a field name is empty (e.g. contains: [name, email])")
		}
	}
	return sr, nil
}

var _ aggregator.Searcher = (*Source)(nil)

// Search implements aggregator.Searcher: the records whose Equals fields
// equal the text, then those with every word of the text in their
// Contains fields, each in the file's order, at most q.Limit.
func (s *Source) Search(ctx context.Context, q aggregator.SearchQuery) ([]aggregator.Record, error) {
	if s.search == nil {
		return nil, screenpop.ErrNoSearch
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.reload {
		s.reloadIfChanged()
	}
	text := fold(q.Text)
	words := strings.Fields(text)
	if len(words) == 0 || q.Limit <= 0 {
		return nil, nil
	}
	s.mu.RLock()
	records := s.records
	s.mu.RUnlock()
	var exact, partial []aggregator.Record
	for _, r := range records {
		switch {
		case s.search.equal(r, text):
			exact = append(exact, r)
		case len(exact) < q.Limit && s.search.contain(r, words):
			partial = append(partial, r)
		}
	}
	found := append(exact, partial...)
	found = found[:min(len(found), q.Limit)]
	out := make([]aggregator.Record, len(found))
	for i, r := range found {
		out[i] = maps.Clone(r) // the caller may change it; the file's records are shared
	}
	return out, nil
}

func (sr *searcher) equal(r aggregator.Record, text string) bool {
	for _, f := range sr.equals {
		for _, v := range matchValues(r[f]) {
			if fold(v) == text {
				return true
			}
		}
	}
	return false
}

func (sr *searcher) contain(r aggregator.Record, words []string) bool {
	var in []string
	for _, f := range sr.contains {
		for _, v := range matchValues(r[f]) {
			in = append(in, fold(v))
		}
	}
	for _, w := range words {
		if !slices.ContainsFunc(in, func(v string) bool { return strings.Contains(v, w) }) {
			return false
		}
	}
	return true
}

// letters that do not decompose into a letter and an accent.
var unaccented = strings.NewReplacer("ł", "l", "ß", "ss", "ø", "o", "đ", "d", "æ", "ae", "œ", "oe", "ı", "i")

// fold is s as the search compares it: lower case, accents removed,
// white space collapsed.
func fold(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, strings.ToLower(s))
	if err != nil {
		out = strings.ToLower(s)
	}
	return strings.Join(strings.Fields(unaccented.Replace(out)), " ")
}
