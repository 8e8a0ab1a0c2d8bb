package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"go.yaml.in/yaml/v3"

	"github.com/screenpop/screenpop/adapters"
)

// adminDSN is the PostgreSQL `make test` provides (trust authentication).
const adminDSN = "postgres://postgres@127.0.0.1:5432/test"

func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testDB is a schema of its own in the test database, dropped after the
// test, and a DSN whose search_path points at it and whose application_name
// marks the connections the sources open (to find them in pg_stat_activity).
type testDB struct {
	schema string
	app    string
	dsn    string
	admin  *pgx.Conn
}

func newTestDB(t *testing.T) *testDB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		t.Fatalf("PostgreSQL is not reachable at %s (make test starts it: make services): %v", adminDSN, err)
	}
	suffix := randomSuffix(t)
	db := &testDB{
		schema: "screenpop_pgtest_" + suffix,
		app:    "screenpop_pgtest_" + suffix,
		admin:  admin,
	}
	db.dsn = "postgres://postgres@127.0.0.1:5432/test?search_path=" + db.schema + "&application_name=" + db.app
	db.exec(t, "CREATE SCHEMA "+db.schema)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Connections of this test still open would hold locks on its tables.
		_, _ = admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", db.app)
		if _, err := admin.Exec(ctx, "DROP SCHEMA "+db.schema+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
		admin.Close(ctx)
	})
	return db
}

func (db *testDB) exec(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.admin.Exec(ctx, "SET search_path = "+db.schema+"; "+sql); err != nil {
		t.Fatalf("setup %q: %v", sql, err)
	}
}

// backends counts this test's connections, or those running a query like
// pattern when pattern is not empty.
func (db *testDB) backends(t *testing.T, pattern string) int {
	t.Helper()
	var n int
	q := "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND ($2 = '' OR (state = 'active' AND query LIKE $2))"
	if err := db.admin.QueryRow(context.Background(), q, db.app, pattern).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitBackendsGone waits until PostgreSQL lists no connection of db's
// application (matching pattern, as backends does) and returns how many
// were left when within ran out. A backend leaves pg_stat_activity a moment
// after its client closed the socket or cancelled its query, not at once:
// within only bounds a hung test on a loaded machine, it measures nothing.
func (db *testDB) waitBackendsGone(t *testing.T, pattern string, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		n := db.backends(t, pattern)
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// options builds a source's option node from YAML text, as the
// configuration loader hands it over.
func options(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("bad test YAML: %v", err)
	}
	return doc.Content[0]
}

// env is a fixed environment for Spec.Env.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// newSource builds a source reading dsn from $TEST_DSN.
func newSource(t *testing.T, pools *Pools, dsn, extra string) *Source {
	t.Helper()
	s, err := New(pools, adapters.Spec{
		Name:    "test-source",
		Options: options(t, "dsn_env: TEST_DSN\n"+extra),
		Env:     env(map[string]string{"TEST_DSN": dsn}),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// indent makes a YAML block scalar of a query.
func indent(query string) string {
	return "query: |\n  " + strings.ReplaceAll(strings.TrimSpace(query), "\n", "\n  ") + "\n"
}

// cutProxy is a TCP proxy between pgx and PostgreSQL that the test can cut,
// as a database restart or a network failure would: every connection
// through it is closed, and new ones are accepted and closed at once until
// it is restored.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			client.Close()
			continue
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		p.conns[client], p.conns[server] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(client, server)
		go p.pipe(server, client)
	}
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// commonKeys are the source keys the configuration loader keeps for itself;
// the rest are the kind's options.
var commonKeys = map[string]bool{
	"name": true, "type": true, "section": true, "timeout": true, "cache_ttl": true, "required": true,
	"needs": true, "max_concurrent": true, "breaker": true, "mapping": true,
}

// sourceNodes returns the directory and source mappings of a configuration
// document's root.
func sourceNodes(root *yaml.Node) []*yaml.Node {
	var out []*yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "directory":
			out = append(out, root.Content[i+1])
		case "sources":
			out = append(out, root.Content[i+1].Content...)
		}
	}
	return out
}

// kindOptions splits a source mapping as the loader does: its name, and a
// mapping of the keys that are not common ones (lines kept).
func kindOptions(n *yaml.Node) (string, *yaml.Node) {
	name := ""
	rest := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: n.Line, Column: n.Column}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if k == "name" {
			name = n.Content[i+1].Value
		}
		if !commonKeys[k] {
			rest.Content = append(rest.Content, n.Content[i], n.Content[i+1])
		}
	}
	return name, rest
}

// readmeYAML returns the ```yaml blocks of a README.
func readmeYAML(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	rest := string(b)
	for {
		i := strings.Index(rest, "```yaml\n")
		if i < 0 {
			return blocks
		}
		rest = rest[i+len("```yaml\n"):]
		j := strings.Index(rest, "```")
		blocks = append(blocks, rest[:j])
		rest = rest[j+3:]
	}
}
