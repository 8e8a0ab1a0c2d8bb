package screenpop

import "errors"

// SearchResult is what a search of the customer directory found for an
// agent whose caller the directory did not know by number.
type SearchResult struct {
	Customers []Customer `json:"customers"`
	// More is true when more customers matched than are listed: the agent
	// should type more.
	More bool `json:"more,omitempty"`
}

// SearchLimits are what a directory search takes, for the page to say so
// before it asks.
type SearchLimits struct {
	// MinLength and MaxLength bound the text searched for, in characters.
	MinLength int `json:"min_length"`
	MaxLength int `json:"max_length"`
	// MaxResults is how many customers one search lists at most.
	MaxResults int `json:"max_results"`
}

// Errors of a directory search or link; test with errors.Is.
var (
	// ErrSearchText: the text is too short or too long to search for.
	// The error's text says which, in words fit for an agent.
	ErrSearchText = errors.New("search text refused")
	// ErrNoSearch: the directory has no search configured, or numbers
	// cannot be linked (no history that keeps links).
	ErrNoSearch = errors.New("the customer directory cannot be searched here")
)
