package postgres

import (
	"context"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	screenpop "github.com/screenpop/screenpop"
	"github.com/screenpop/screenpop/aggregator"
	"github.com/screenpop/screenpop/configs"
)

// SearchOptions are the postgres kind's keys under a directory's search:.
type SearchOptions struct {
	// The bounds every kind's search has (min_length, max_results,
	// timeout) are the aggregator's: the configuration loader hands them
	// to it, and they are accepted here too, so that a search: block reads
	// the same wherever it is decoded.
	aggregator.SearchSpec `yaml:",inline"`
	// Query is one SELECT of the directory's columns (id, name, kind,
	// contact, role, email, city, country, tags) with the named parameters
	// of SearchParams, e.g.
	//
	//	SELECT id, name, email FROM customers
	//	 WHERE id = :text OR name ILIKE :pattern OR email ILIKE :pattern
	//	 ORDER BY id = :text DESC, name LIMIT :limit
	Query string `yaml:"query"`
}

// SearchParams are the parameters a search query may use: :text, what the
// agent typed (trimmed, white space collapsed); :pattern, the same as an
// ILIKE pattern matching it anywhere (%text%, with the text's own %, _
// and \ escaped); :limit, the rows to return at most.
var SearchParams = []string{"text", "pattern", "limit"}

// parseSearch checks a search: block; nil when there is none.
func parseSearch(options *yaml.Node, o *SearchOptions) (*namedQuery, error) {
	if o == nil {
		return nil, nil
	}
	block := valueOf(options, "search")
	if strings.TrimSpace(o.Query) == "" {
		return nil, configs.KeyError(options, "search", "search.query is required: one SELECT of the directory's columns with :text, :pattern or :limit, e.g. SELECT id, name, email FROM customers WHERE id = :text OR name ILIKE :pattern LIMIT :limit")
	}
	q, err := parseNamedWith(o.Query, SearchParams)
	if err != nil {
		return nil, configs.KeyError(block, "query", "%s", err)
	}
	if !slices.Contains(q.params, "text") && !slices.Contains(q.params, "pattern") {
		return nil, configs.KeyError(block, "query", "the search query uses none of :text and :pattern, so it would list the same customers whatever the agent typed")
	}
	return &q, nil
}

// valueOf is the value of key in a mapping node; the node itself when
// there is no such key.
func valueOf(n *yaml.Node, key string) *yaml.Node {
	if n == nil {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return n
}

var _ aggregator.Searcher = (*Source)(nil)

// Search implements aggregator.Searcher: the search query with the text,
// its pattern and the limit, returning as soon as ctx ends, as Fetch does.
func (s *Source) Search(ctx context.Context, q aggregator.SearchQuery) ([]aggregator.Record, error) {
	if s.search == nil {
		return nil, screenpop.ErrNoSearch
	}
	args := make([]any, len(s.search.params))
	for i, name := range s.search.params {
		switch name {
		case "text":
			args[i] = q.Text
		case "pattern":
			args[i] = "%" + likeEscape(q.Text) + "%"
		case "limit":
			args[i] = q.Limit
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, s.fetchError(ctx, nil, args)
	}
	pool, err := s.pools.pool(s.entry)
	if err != nil {
		return nil, s.fetchError(ctx, err, args)
	}
	type result struct {
		records []aggregator.Record
		err     error
	}
	done := make(chan result, 1)
	go func() {
		records, err := s.runSQL(ctx, pool, s.search.sql, args, q.Limit)
		done <- result{records, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, s.fetchError(ctx, r.err, args)
		}
		return r.records, nil
	case <-ctx.Done():
		return nil, s.fetchError(ctx, nil, args)
	}
}

// likeEscape makes text match itself in a LIKE pattern, whose default
// escape character is the backslash.
func likeEscape(text string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(text)
}
