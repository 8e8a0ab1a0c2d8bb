package httpsource

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

// SearchOptions are the http kind's keys under a directory's search:. The
// source's headers, auth, tls, proxy, fields, max_body and not_found apply
// to the search too.
type SearchOptions struct {
	// The bounds every kind's search has (min_length, max_results,
	// timeout) are the aggregator's: the configuration loader hands them
	// to it, and they are accepted here too, so that a search: block reads
	// the same wherever it is decoded.
	aggregator.SearchSpec `yaml:",inline"`
	// URL is the company system's search, sent as a GET, with the
	// placeholders of SearchParams, e.g.
	// https://crm.example.com/api/customers?q={text}&limit={limit}.
	URL string `yaml:"url"`
	// Records is the path of the list of customers in the answer; default
	// the source's records.
	Records string `yaml:"records"`
}

// SearchParams are the placeholders a search URL may use: {text}, what the
// agent typed (trimmed, white space collapsed), and {limit}, how many
// customers to return at most. Each is escaped for where it stands.
var SearchParams = []string{"text", "limit"}

// search is a source's search, parsed once.
type search struct {
	url      template
	urlQuery []bool // per URL part: true when it is after the '?'
	records  string
	set      bool // records was given
}

func newSearch(options *yaml.Node, o *SearchOptions) (*search, error) {
	if o == nil {
		return nil, nil
	}
	block := options
	for i := 0; i+1 < len(options.Content); i += 2 {
		if options.Content[i].Value == "search" {
			block = options.Content[i+1]
		}
	}
	if o.URL == "" {
		return nil, configs.KeyError(options, "search", "search.url is required, e.g. url: https://crm.example.com/api/customers?q={text}&limit={limit}")
	}
	t, err := parseTemplateWith(o.URL, SearchParams)
	if err != nil {
		return nil, configs.KeyError(block, "url", "url: %s", err)
	}
	if err := checkURL(t); err != nil {
		return nil, configs.KeyError(block, "url", "url: %s", err)
	}
	if !strings.Contains(o.URL, "{text}") {
		return nil, configs.KeyError(block, "url", "url has no {text}: every search would list the same customers")
	}
	sr := &search{url: t, records: o.Records, set: o.Records != ""}
	inQuery := false
	for _, p := range t.parts {
		sr.urlQuery = append(sr.urlQuery, inQuery)
		if strings.Contains(p.text, "?") {
			inQuery = true
		}
	}
	return sr, nil
}

var _ aggregator.Searcher = (*Source)(nil)

// Search implements aggregator.Searcher: one GET of the search URL, the
// records read from the answer as Fetch reads them, at most q.Limit.
func (s *Source) Search(ctx context.Context, q aggregator.SearchQuery) ([]aggregator.Record, error) {
	sr := s.search
	if sr == nil {
		return nil, screenpop.ErrNoSearch
	}
	limit := strconv.Itoa(q.Limit)
	target, _ := sr.url.renderWith(func(name string) (string, bool) {
		if name == "limit" {
			return limit, true
		}
		return q.Text, true
	}, func(i int, v string) string {
		if sr.urlQuery[i] {
			return url.QueryEscape(v)
		}
		return url.PathEscape(v)
	})
	path := s.records
	if sr.set {
		path = sr.records
	}
	records, err := s.exchange(ctx, http.MethodGet, target, nil, []string{q.Text, url.QueryEscape(q.Text), url.PathEscape(q.Text)}, path)
	if err != nil {
		return nil, err
	}
	return records[:min(len(records), q.Limit)], nil
}
