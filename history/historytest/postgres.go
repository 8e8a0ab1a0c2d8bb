package historytest

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/screenpop/screenpop/history"
)

// TestDSN is the PostgreSQL `make test` provides (trust authentication).
const TestDSN = "postgres://postgres@127.0.0.1:5432/test"

// PostgresSchema creates a schema of its own in the database of adminDSN,
// dropped when the test ends, and returns a DSN whose search_path points
// at it and whose application_name marks the test's connections (ended
// before the drop, so that none holds a lock on its tables).
func PostgresSchema(t testing.TB, adminDSN string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable (make test starts it: make services): %v", err)
	}
	schema := "screenpop_history_" + strings.ReplaceAll(history.NewID(), "-", "")[:12]
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", schema)
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		admin.Close(ctx)
	})
	u, err := url.Parse(adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	q.Set("application_name", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
