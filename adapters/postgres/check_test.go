package postgres

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/screenpop/screenpop/adapters"
)

func checkContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A good query is prepared, not run: its columns and the types PostgreSQL
// inferred for the parameters come back, and no row is read.
func TestCheckPreparesQuery(t *testing.T) {
	db := newTestDB(t)
	db.exec(t, "CREATE TABLE balances (customer_id text PRIMARY KEY, balance numeric(12,2), currency text)")
	pools := NewPools(nil)
	defer pools.Close()
	s := newSource(t, pools, db.dsn, indent(`
SELECT balance, currency
  FROM balances
 WHERE customer_id = :customer_id OR :customer_id = 'all'`))

	res, err := s.Check(checkContext(t))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if want := "postgres://postgres@127.0.0.1:5432/test"; res.Database != want {
		t.Errorf("Database = %q, want %q", res.Database, want)
	}
	if !slices.Equal(res.Columns, []string{"balance", "currency"}) {
		t.Errorf("Columns = %q", res.Columns)
	}
	if !slices.Equal(res.Params, []string{":customer_id text"}) {
		t.Errorf("Params = %q", res.Params)
	}
}

// A misspelt keyword fails with the server's message, pointing at the line
// and column of the query as written, named parameters and all.
func TestCheckReportsSyntaxErrorWhereItIs(t *testing.T) {
	db := newTestDB(t)
	db.exec(t, "CREATE TABLE balances (customer_id text, balance numeric)")
	pools := NewPools(nil)
	defer pools.Close()
	for _, tc := range []struct {
		name, query  string
		line, column int
		near         string
	}{
		{name: "first word", query: "SELEC balance FROM balances WHERE customer_id = :customer_id", line: 1, column: 1, near: `"SELEC"`},
		// The error follows a parameter on its line: $1 is two characters,
		// :customer_id twelve.
		{name: "after a parameter", query: "SELECT balance\n  FROM balances\n WHERE customer_id = :customer_id ORDR BY balance", line: 3, column: 35, near: `"ORDR"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, pools, db.dsn, indent(tc.query))
			_, err := s.Check(checkContext(t))
			var ce *CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("Check = %v, want a *CheckError", err)
			}
			if ce.Option != "query" {
				t.Errorf("Option = %q, want query", ce.Option)
			}
			want := `ERROR: syntax error at or near ` + tc.near + ` (SQLSTATE 42601)`
			if ce.Msg != want {
				t.Errorf("Msg = %q, want %q", ce.Msg, want)
			}
			if ce.QueryLine != tc.line || ce.QueryColumn != tc.column {
				t.Errorf("at query line %d, column %d; want line %d, column %d (%v)", ce.QueryLine, ce.QueryColumn, tc.line, tc.column, err)
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42601" {
				t.Errorf("the driver's error is not reachable: %#v", err)
			}
		})
	}
}

// A missing table and a missing column fail with the server's message.
func TestCheckReportsMissingTableAndColumn(t *testing.T) {
	db := newTestDB(t)
	db.exec(t, "CREATE TABLE balances (customer_id text, balance numeric)")
	pools := NewPools(nil)
	defer pools.Close()
	for query, want := range map[string]string{
		"SELECT balance FROM balance WHERE customer_id = :customer_id":  `ERROR: relation "balance" does not exist (SQLSTATE 42P01) at query line 1, column 21`,
		"SELECT balanse FROM balances WHERE customer_id = :customer_id": `ERROR: column "balanse" does not exist (SQLSTATE 42703)`,
	} {
		s := newSource(t, pools, db.dsn, indent(query))
		_, err := s.Check(checkContext(t))
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s:\n got %v\nwant %s", query, err, want)
		}
	}
}

// A database that cannot be reached is the DSN's problem, and the error
// names neither the password nor the DSN.
func TestCheckReportsConnectionFailureWithoutSecrets(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	dsn := "postgres://screenpop:s3cret-pw@" + addr + "/erp?connect_timeout=5"
	pools := NewPools(nil)
	defer pools.Close()
	s, err := New(pools, adapters.Spec{
		Name:    "erp",
		Options: options(t, "dsn_env: ERP_DSN\nquery: SELECT 1"),
		Env:     env(map[string]string{"ERP_DSN": dsn}),
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Check(checkContext(t))
	var ce *CheckError
	if !errors.As(err, &ce) || ce.Option != "dsn" {
		t.Fatalf("Check = %#v, want a CheckError on dsn", err)
	}
	if want := "cannot connect to the database: connection refused"; ce.Msg != want {
		t.Errorf("Msg = %q, want %q", ce.Msg, want)
	}
	if want := "postgres://screenpop@" + addr + "/erp"; res.Database != want {
		t.Errorf("Database = %q, want %q", res.Database, want)
	}
	if strings.Contains(err.Error()+res.Database, "s3cret") {
		t.Errorf("the password leaked: %v, %s", err, res.Database)
	}
}

// A check that runs out of time says so, with the caller's cause.
func TestCheckDeadline(t *testing.T) {
	db := newTestDB(t)
	pools := NewPools(nil)
	defer pools.Close()
	s := newSource(t, pools, db.dsn, "query: SELECT 1 WHERE :phone::text <> ''\n")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(errors.New("the check was cut short"))
	_, err := s.Check(ctx)
	if err == nil || !strings.Contains(err.Error(), "no answer before the deadline (the check was cut short)") {
		t.Errorf("Check = %v", err)
	}
}
