package postgres

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/screenpop/screenpop/adapters"
	"github.com/screenpop/screenpop/aggregator"
)

// openPools counts the DSNs pools knows and the pools it has opened.
func openPools(p *Pools) (dsns, open int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.entries {
		if e.pool != nil {
			open++
		}
	}
	return len(p.entries), open
}

// A reload that drops the last source of a DSN closes its pool: its
// connections leave the database, the DSN still in use keeps its pool, and
// a lookup by a replaced source fails instead of reopening it.
func TestPruneClosesUnusedPools(t *testing.T) {
	keepDB, dropDB := newTestDB(t), newTestDB(t)
	pools := NewPools(nil)
	defer pools.Close()
	kept := newSource(t, pools, keepDB.dsn, "query: SELECT 1 AS one WHERE :phone <> ''")
	keptToo := newSource(t, pools, keepDB.dsn, "query: SELECT 2 AS two WHERE :phone <> ''")
	dropped := newSource(t, pools, dropDB.dsn, "query: SELECT 3 AS three WHERE :phone <> ''")
	key := aggregator.Key{Phone: "+4930123456"}
	for _, s := range []*Source{kept, keptToo, dropped} {
		if _, err := s.Fetch(context.Background(), key); err != nil {
			t.Fatal(err)
		}
	}
	if dsns, open := openPools(pools); dsns != 2 || open != 2 {
		t.Fatalf("before the prune: %d DSNs, %d pools open; want 2 and 2", dsns, open)
	}
	if dropDB.backends(t, "") == 0 {
		t.Fatal("the dropped source's database has no connection before the prune")
	}

	// The new configuration keeps two sources of one DSN, and a source of
	// another kind that Prune must ignore.
	if n := pools.Prune([]aggregator.Source{kept, keptToo, otherKind{}}); n != 1 {
		t.Errorf("Prune dropped %d DSNs, want 1", n)
	}
	if dsns, open := openPools(pools); dsns != 1 || open != 1 {
		t.Errorf("after the prune: %d DSNs, %d pools open; want 1 and 1", dsns, open)
	}
	// Closed at once by the pool; gone from the server's list a moment
	// later, when each backend has noticed.
	if n := dropped.entry.pool.Stat().TotalConns(); n != 0 {
		t.Errorf("the pruned pool reports %d connections", n)
	}
	if n := dropDB.waitBackendsGone(t, "", 10*time.Second); n != 0 {
		t.Errorf("the pruned pool's %d connections are still open in PostgreSQL", n)
	}
	if _, err := kept.Fetch(context.Background(), key); err != nil {
		t.Errorf("kept source after the prune: %v", err)
	}
	if _, err := dropped.Fetch(context.Background(), key); err == nil || !strings.Contains(err.Error(), "removed by a configuration reload") {
		t.Errorf("replaced source after the prune: %v, want a removed-by-reload error", err)
	}
	if dsns, _ := openPools(pools); dsns != 1 {
		t.Errorf("a replaced source registered its DSN again: %d DSNs", dsns)
	}

	// Nothing in use: everything goes, and the pools are still usable by a
	// source built afterwards (the next reload).
	if n := pools.Prune(nil); n != 1 {
		t.Errorf("Prune(nil) dropped %d DSNs, want 1", n)
	}
	again := newSource(t, pools, keepDB.dsn, "query: SELECT 1 AS one WHERE :phone <> ''")
	if _, err := again.Fetch(context.Background(), key); err != nil {
		t.Errorf("source built after a prune: %v", err)
	}
}

type otherKind struct{}

func (otherKind) Fetch(context.Context, aggregator.Key) ([]aggregator.Record, error) { return nil, nil }

// dsn_file: the file holds the DSN (its line break trimmed) and is read at
// every build, so a reload picks up a new secret.
func TestDSNFile(t *testing.T) {
	db := newTestDB(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "erp.dsn")
	if err := os.WriteFile(secret, []byte(db.dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pools := NewPools(nil)
	defer pools.Close()
	build := func(opts string) (*Source, error) {
		return New(pools, adapters.Spec{Name: "erp", Options: options(t, opts), Files: os.DirFS(dir)})
	}
	for _, name := range []string{secret, "erp.dsn"} { // absolute, and relative to the configuration
		s, err := build("dsn_file: " + name + "\nquery: SELECT 'ok' AS answer WHERE :phone <> ''")
		if err != nil {
			t.Fatalf("dsn_file %s: %v", name, err)
		}
		recs, err := s.Fetch(context.Background(), aggregator.Key{Phone: "+4930123456"})
		if err != nil || len(recs) != 1 || recs[0]["answer"] != "ok" {
			t.Fatalf("dsn_file %s: Fetch = %v, %v", name, recs, err)
		}
	}

	// A new secret is read at the next build.
	if err := os.WriteFile(secret, []byte("postgres://postgres@127.0.0.1:5432/test?application_name=rotated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := build("dsn_file: erp.dsn\nquery: SELECT current_setting('application_name') AS app WHERE :phone <> ''")
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.Fetch(context.Background(), aggregator.Key{Phone: "+4930123456"})
	if err != nil || len(recs) != 1 || recs[0]["app"] != "rotated" {
		t.Fatalf("after the secret changed: Fetch = %v, %v; want application_name rotated", recs, err)
	}
}

func TestDSNFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("empty.dsn", "\n")
	write("bad.dsn", "postgres://screenpop:pw-in-file@hidden-host.internal:notaport/erp\n")
	cases := []struct {
		name, yaml, want string
		line             int
	}{
		{"missing file", "query: SELECT 1\ndsn_file: nope.dsn",
			"cannot read file nope.dsn: no such file or directory: write the secret in it (one line) and make it readable by the daemon's user (the connection string, e.g. postgres://", 2},
		{"empty file", "dsn_file: empty.dsn\nquery: SELECT 1", "file empty.dsn is empty", 1},
		{"invalid DSN", "query: SELECT 1\ndsn_file: bad.dsn", "file bad.dsn: not a valid PostgreSQL connection string", 2},
		{"outside the folder", "dsn_file: ../erp.dsn\nquery: SELECT 1", "leaves the configuration's folder; use an absolute path", 1},
		{"with dsn_env", "dsn_env: GOOD_DSN\ndsn_file: bad.dsn\nquery: SELECT 1", "set one of dsn_env, dsn_file or dsn, not several", 2},
		{"with dsn", "dsn: postgres://db/erp\ndsn_file: bad.dsn\nquery: SELECT 1", "set one of dsn_env, dsn_file or dsn, not several", 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(NewPools(nil), adapters.Spec{Name: "x", Options: options(t, c.yaml), Files: os.DirFS(dir),
				Env: env(map[string]string{"GOOD_DSN": adminDSN})})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error = %q, want it to contain %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), fmt.Sprintf("line %d, column 1: ", c.line)) {
				t.Errorf("error = %q, want it at line %d, column 1 (the option's key)", err, c.line)
			}
			for _, leak := range []string{"pw-in-file", "hidden-host"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error %q contains %q", err, leak)
				}
			}
		})
	}

	// Relative without a folder (embedded demo files do resolve, an
	// absent FS does not).
	_, err := New(NewPools(nil), adapters.Spec{Name: "x", Options: options(t, "dsn_file: erp.dsn\nquery: SELECT 1")})
	if err == nil || !strings.Contains(err.Error(), "no folder to resolve it in") {
		t.Errorf("relative dsn_file without a folder: %v", err)
	}
	_, err = New(NewPools(nil), adapters.Spec{Name: "x", Options: options(t, "dsn_file: erp.dsn\nquery: SELECT 1"),
		Files: fstest.MapFS{"erp.dsn": {Data: []byte("postgres://db/erp\r\n")}}})
	if err != nil {
		t.Errorf("dsn_file in an fs.FS: %v", err)
	}
}
