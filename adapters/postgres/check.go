package postgres

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CheckResult is what Check learnt from the database.
type CheckResult struct {
	// Database is where the source connects, as a URL without a password:
	// postgres://user@host:port/database.
	Database string
	// Columns are the names of the columns the query returns, in order.
	Columns []string
	// Params are the query's parameters with the type PostgreSQL inferred
	// for each, in $1..$n order: ":customer_id text".
	Params []string
	// SearchColumns and SearchParams are the same of the directory's
	// search query; empty when it has none.
	SearchColumns, SearchParams []string
}

// CheckError is why Check failed. Its message never holds the DSN, the
// password or the query text.
type CheckError struct {
	// Option is the option to look at: "dsn" when the connection failed
	// (the connection string, from dsn or dsn_env), "query" when
	// PostgreSQL refused the query, "search.query" when it refused the
	// directory's search query.
	Option string
	// Msg is the reason: the server's own error for a query it refused
	// (ERROR: syntax error at or near "SELEC" (SQLSTATE 42601)).
	Msg string
	// QueryLine and QueryColumn say where in the query, as written in the
	// configuration, the server pointed; 0 when it did not.
	QueryLine, QueryColumn int
	err                    error
}

func (e *CheckError) Error() string {
	if e.QueryLine > 0 {
		which := "query"
		if e.Option == "search.query" {
			which = "search query"
		}
		return e.Msg + " at " + which + " line " + strconv.Itoa(e.QueryLine) + ", column " + strconv.Itoa(e.QueryColumn)
	}
	return e.Msg
}

func (e *CheckError) Unwrap() error { return e.err }

// Check connects to the source's database once, on a connection of its own
// rather than the pool, and has PostgreSQL prepare the query exactly as a
// lookup would send it (named parameters rewritten to $n), without running
// it. So a misspelt keyword, a missing table or column, a role without
// GRANT SELECT or a wrong password shows before a call does.
// `screenpopd config check -connect` runs it; ctx bounds the whole check.
func (s *Source) Check(ctx context.Context) (CheckResult, error) {
	res := CheckResult{Database: location(&s.entry.config.ConnConfig.Config)}
	conn, err := pgx.ConnectConfig(ctx, s.entry.config.ConnConfig.Copy())
	if err != nil {
		return res, s.checkError(ctx, "dsn", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// The unnamed statement: nothing is left behind on the server, which
	// matters behind a transaction pooler.
	if res.Columns, res.Params, err = prepare(ctx, conn, s.query); err != nil {
		return res, s.checkError(ctx, "query", err)
	}
	// The search is asked only when an agent searches, mid-call: a typo
	// in it must show here, not as a warning in the log then.
	if s.search != nil {
		if res.SearchColumns, res.SearchParams, err = prepare(ctx, conn, *s.search); err != nil {
			return res, s.checkError(ctx, "search.query", err)
		}
	}
	return res, nil
}

// prepare has the server prepare q as the unnamed statement and returns
// its columns and its parameters with their types.
func prepare(ctx context.Context, conn *pgx.Conn, q namedQuery) (columns, params []string, err error) {
	sd, err := conn.Prepare(ctx, "", q.sql)
	if err != nil {
		return nil, nil, err
	}
	for _, f := range sd.Fields {
		columns = append(columns, f.Name)
	}
	for i, oid := range sd.ParamOIDs {
		name := "$" + strconv.Itoa(i+1)
		if i < len(q.params) {
			name = ":" + q.params[i]
		}
		typ := "oid " + strconv.FormatUint(uint64(oid), 10)
		if t, ok := conn.TypeMap().TypeForOID(oid); ok {
			typ = t.Name
		}
		params = append(params, name+" "+typ)
	}
	return columns, params, nil
}

// checkError says why Check failed: the server's own words for a query it
// refused, and where in the query; describe's words for anything else.
func (s *Source) checkError(ctx context.Context, option string, err error) error {
	ce := &CheckError{Option: option, err: err}
	var pgErr *pgconn.PgError
	switch {
	case ctx.Err() != nil:
		ce.Msg = "no answer before the deadline"
		if cause := context.Cause(ctx); cause != nil && cause != ctx.Err() {
			ce.Msg += " (" + cause.Error() + ")"
		}
	case (option == "query" || option == "search.query") && errors.As(err, &pgErr):
		ce.Msg = pgErr.Error()
		if pgErr.Hint != "" {
			ce.Msg += "; hint: " + pgErr.Hint
		}
		if pgErr.Position > 0 {
			q := s.query
			if option == "search.query" {
				q = *s.search
			}
			ce.QueryLine, ce.QueryColumn = queryPosition(q, int(pgErr.Position))
		}
	default:
		ce.Msg = describe(err)
	}
	for _, secret := range s.entry.secrets {
		if secret != "" {
			ce.Msg = strings.ReplaceAll(ce.Msg, secret, "*****")
		}
	}
	return ce
}

// queryPosition turns the server's error position (1-based, in characters
// of the SQL it was sent) into the line and column of the query as
// written. The rewrite only replaced each :name by $n on the same line, so
// the line is exact; the column is corrected for the parameters before it
// on that line. ($n inside a string literal or a comment would be counted
// as a parameter too: harmless, the column is then a few characters off.)
func queryPosition(q namedQuery, pos int) (line, column int) {
	sql := q.sql
	at := len(sql)
	for i := range sql {
		if pos--; pos == 0 {
			at = i
			break
		}
	}
	line = 1 + strings.Count(sql[:at], "\n")
	start := strings.LastIndexByte(sql[:at], '\n') + 1
	column = utf8.RuneCountInString(sql[start:at]) + 1
	for i := start; i < at; i++ {
		if sql[i] != '$' || i+1 >= len(sql) || !isDigit(sql[i+1]) || (i > 0 && isIdent(sql[i-1])) {
			continue
		}
		j := i + 1
		for j < len(sql) && isDigit(sql[j]) {
			j++
		}
		k, _ := strconv.Atoi(sql[i+1 : j])
		if k >= 1 && k <= len(q.params) && j <= at {
			column += len(q.params[k-1]) + 1 - (j - i)
		}
		i = j - 1
	}
	return line, column
}

// location is where a connection goes, in URL form and without the
// password, for IT to tell which database a line is about.
func location(c *pgconn.Config) string {
	u := url.URL{Scheme: "postgres", Path: "/" + c.Database}
	if c.User != "" {
		u.User = url.User(c.User)
	}
	if strings.HasPrefix(c.Host, "/") { // a Unix socket's folder
		u.RawQuery = url.Values{"host": {c.Host}}.Encode()
	} else {
		u.Host = net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))
	}
	return u.String()
}
