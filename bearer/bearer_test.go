package bearer

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const good = "0123456789abcdef-good"

func TestToken(t *testing.T) {
	for _, c := range []struct {
		header, token string
		err           error
	}{
		{"Bearer abc", "abc", nil},
		{"bearer abc", "abc", nil},
		{"BEARER abc", "abc", nil},
		{"", "", ErrNoToken},
		{"Bearer", "", ErrNoToken},
		{"Bearer ", "", ErrNoToken},
		{"Bearer  abc", "", ErrMalformed},
		{"Bearer abc def", "", ErrMalformed},
		{"Basic abc", "", ErrMalformed},
		{"abc", "", ErrMalformed},
	} {
		tok, err := Token(c.header)
		if tok != c.token || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("Token(%q) = %q, %v; want %q, %v", c.header, tok, err, c.token, c.err)
		}
	}
}

func TestNewSet(t *testing.T) {
	for _, c := range []struct {
		tokens []string
		want   string
	}{
		{nil, "at least one bearer token is required"},
		{[]string{good, "short"}, "token 2 is 5 characters long; use at least 16 random characters (e.g. openssl rand -hex 24)"},
		{[]string{good + " x"}, "token 1 contains white space"},
	} {
		_, err := NewSet(c.tokens)
		if err == nil || err.Error() != c.want {
			t.Errorf("NewSet(%d tokens) = %v; want %q", len(c.tokens), err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "short") {
			t.Errorf("the error %q shows the token", err)
		}
	}
}

func TestCheck(t *testing.T) {
	s, err := NewSet([]string{good, "fedcba9876543210-new"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"Bearer " + good, "bearer fedcba9876543210-new"} {
		if err := s.Check(h); err != nil {
			t.Errorf("Check(%q) = %v", h, err)
		}
	}
	for _, h := range []string{"", "Bearer", "Bearer " + good + "x", "Basic " + good, good, "Bearer  " + good} {
		if err := s.Check(h); err == nil {
			t.Errorf("Check(%q) accepted", h)
		}
	}
	var zero *Set
	if zero.Check("Bearer "+good) == nil {
		t.Error("a nil Set accepted a token")
	}
}

func TestSplitList(t *testing.T) {
	for in, want := range map[string][]string{
		"":                              nil,
		" , ,":                          nil,
		"tok1":                          {"tok1"},
		" tok1 ,tok2,, tok3 ":           {"tok1", "tok2", "tok3"},
		"0123456789abcdef,fedcba987654": {"0123456789abcdef", "fedcba987654"},
	} {
		if got := SplitList(in); !slices.Equal(got, want) {
			t.Errorf("SplitList(%q) = %q, want %q", in, got, want)
		}
	}
}
