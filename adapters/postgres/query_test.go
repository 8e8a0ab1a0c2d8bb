package postgres

import (
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

func TestParseNamed(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		sql    string
		params []string
	}{
		{"one parameter", "SELECT * FROM t WHERE id = :customer_id",
			"SELECT * FROM t WHERE id = $1", []string{"customer_id"}},
		{"same parameter twice is bound once", "SELECT :phone, x FROM t WHERE a = :phone OR b = :national",
			"SELECT $1, x FROM t WHERE a = $1 OR b = $2", []string{"phone", "national"}},
		{"casts are not parameters", "SELECT :phone::text, amount::numeric(12,2), '2024-01-01'::date",
			"SELECT $1::text, amount::numeric(12,2), '2024-01-01'::date", []string{"phone"}},
		{"string literals are text", "SELECT ':phone', 'it''s :region', :region",
			"SELECT ':phone', 'it''s :region', $1", []string{"region"}},
		{"E strings let a backslash escape the quote", `SELECT E'\' :phone', :customer_id`,
			`SELECT E'\' :phone', $1`, []string{"customer_id"}},
		{"a backslash ends nothing in a standard string", `SELECT 'C:\', :phone`,
			`SELECT 'C:\', $1`, []string{"phone"}},
		{"dollar quoting", "SELECT $$ :phone $$, $tag$ it's :region $tag$, :national",
			"SELECT $$ :phone $$, $tag$ it's :region $tag$, $1", []string{"national"}},
		{"quoted identifiers", `SELECT "odd:phone" FROM t WHERE x = :phone`,
			`SELECT "odd:phone" FROM t WHERE x = $1`, []string{"phone"}},
		{"line comments", "SELECT 1 -- :bogus here\nWHERE a = :phone",
			"SELECT 1 -- :bogus here\nWHERE a = $1", []string{"phone"}},
		{"nested block comments", "SELECT /* a /* :bogus */ :bogus2 */ :phone",
			"SELECT /* a /* :bogus */ :bogus2 */ $1", []string{"phone"}},
		{"array slices", "SELECT (array_agg(x))[1:2] FROM t WHERE c = :customer_id",
			"SELECT (array_agg(x))[1:2] FROM t WHERE c = $1", []string{"customer_id"}},
		{"no parameters", "SELECT now()", "SELECT now()", nil},
		{"a trailing semicolon and comment are fine", "SELECT :phone; -- done\n",
			"SELECT $1; -- done\n", []string{"phone"}},
		{"identifiers with a dollar", "SELECT a$1 FROM t WHERE x = :phone",
			"SELECT a$1 FROM t WHERE x = $1", []string{"phone"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := parseNamed(c.in)
			if err != nil {
				t.Fatalf("parseNamed(%q): %v", c.in, err)
			}
			if q.sql != c.sql {
				t.Errorf("sql\n got: %q\nwant: %q", q.sql, c.sql)
			}
			if !reflect.DeepEqual(q.params, c.params) {
				t.Errorf("params = %q, want %q", q.params, c.params)
			}
		})
	}
}

func TestParseNamedErrors(t *testing.T) {
	cases := []struct {
		in   string
		want []string // substrings of the error
	}{
		{"SELECT * FROM t WHERE id = :custmer_id",
			[]string{"unknown parameter :custmer_id", "query line 1, column 28", "known parameters: :phone, :national, :region, :customer_id"}},
		{"SELECT *\n  FROM t\n WHERE a = :phone AND b = :email",
			[]string{"unknown parameter :email", "query line 3, column 27"}},
		{"SELECT * FROM t WHERE id = $1", []string{"positional parameter $1", "named parameter"}},
		{"SELECT 'open", []string{"string literal that is never closed"}},
		{`SELECT "open`, []string{"quoted identifier that is never closed"}},
		{"SELECT /* open", []string{"comment that is never closed"}},
		{"SELECT $x$ open", []string{"$x$-quoted string that is never closed"}},
		{"SELECT 1; DELETE FROM t", []string{"more than one statement", "query line 1, column 9"}},
		{"   \n ", []string{"query is empty"}},
	}
	for _, c := range cases {
		_, err := parseNamed(c.in)
		if err == nil {
			t.Errorf("parseNamed(%q): no error", c.in)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("parseNamed(%q) = %q, want it to contain %q", c.in, err, w)
			}
		}
	}
}

func TestHasPassword(t *testing.T) {
	cases := map[string]bool{
		"postgres://screenpop@db/erp":                       false,
		"postgres://screenpop:secret@db/erp":                true,
		"postgresql://u:@db/erp":                            true,
		"postgres://db/erp?sslmode=require&password=secret": true,
		"postgres://u:p%zz@db/erp":                          true, // unparseable, still caught
		"host=db user=screenpop dbname=erp":                 false,
		"host=db user=screenpop password=secret dbname=erp": true,
		"host=db password = 'x y' dbname=erp":               true,
		"host=db user=passwordless dbname=erp":              false,
	}
	for dsn, want := range cases {
		if got := hasPassword(dsn); got != want {
			t.Errorf("hasPassword(%q) = %v, want %v", dsn, got, want)
		}
	}
}

func TestConvertNumeric(t *testing.T) {
	num := func(i int64, exp int32) pgtype.Numeric {
		return pgtype.Numeric{Int: big.NewInt(i), Exp: exp, Valid: true}
	}
	big18, _ := new(big.Int).SetString("123456789012345678", 10)
	cases := []struct {
		in   pgtype.Numeric
		want any
	}{
		{num(123456, -2), 1234.56},
		{num(150, -2), 1.5},
		{num(-42, 0), float64(-42)},
		{num(1, 6), float64(1000000)},
		{num(999999999999999, -2), 9999999999999.99},                                          // 15 digits: exact as float64
		{num(1234567890123456, -2), "12345678901234.56"},                                      // 16 digits: kept as text
		{pgtype.Numeric{Int: big18, Exp: -1, Valid: true}, "12345678901234567.8"},             // an amount float64 would round
		{pgtype.Numeric{Int: big18, Exp: 0, Valid: true}, "123456789012345678"},               // an account number
		{pgtype.Numeric{NaN: true, Valid: true}, "NaN"},                                       //
		{pgtype.Numeric{InfinityModifier: pgtype.NegativeInfinity, Valid: true}, "-Infinity"}, //
		{pgtype.Numeric{}, nil},
	}
	for _, c := range cases {
		if got := convertValue(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("convertValue(%v) = %#v, want %#v", c.in, got, c.want)
		}
	}
}

func TestConvertValue(t *testing.T) {
	ts := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		in, want any
	}{
		{int16(7), int64(7)},
		{int32(7), int64(7)},
		{float32(0.5), 0.5},
		{"x", "x"},
		{ts, ts},
		{[]any{int32(1), pgtype.Numeric{Int: big.NewInt(25), Exp: -1, Valid: true}, nil}, []any{int64(1), 2.5, nil}},
		{[16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}, "12345678-9abc-def0-1234-56789abcdef0"},
		{pgtype.Interval{Days: 3, Microseconds: 3600e6, Valid: true}, "3 days 01:00:00"},
		{pgtype.Interval{Months: 14, Days: 1, Valid: true}, "1 year 2 mons 1 day"},
		{pgtype.Interval{Microseconds: -90_500_000, Valid: true}, "-00:01:30.5"},
		{pgtype.Interval{Valid: true}, "00:00:00"},
		{pgtype.Range[any]{Lower: int32(1), Upper: int32(5), LowerType: pgtype.Inclusive, UpperType: pgtype.Exclusive, Valid: true}, "[1,5)"},
		{pgtype.Range[any]{LowerType: pgtype.Unbounded, Upper: int32(5), UpperType: pgtype.Inclusive, Valid: true}, "(,5]"},
	}
	for _, c := range cases {
		if got := convertValue(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("convertValue(%#v) = %#v, want %#v", c.in, got, c.want)
		}
	}
}
