package postgres

import (
	"context"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// migrations are the schema's versions, applied in order by goose; a new
// version is a new file (00002_....sql), never an edit of an applied one.
//
//go:embed migrations/*.sql
var migrations embed.FS

// VersionTable is where goose records the applied versions, in the schema
// of the connection's search_path like the history's tables.
const VersionTable = "history_goose_version"

// provider returns a goose provider on the store's pool. Daemons starting
// together take turns through an advisory lock, one per schema, so two
// installations sharing a database in different schemas do not wait for
// each other.
func (s *Store) provider(ctx context.Context) (*goose.Provider, func(), error) {
	var schema string
	if err := s.pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, nil, dbErr("migrate", err)
	}
	h := fnv.New64a()
	fmt.Fprintf(h, "screenpop-history:%s", schema)
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(int64(h.Sum64()>>1)), lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, nil, err
	}
	files, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, nil, err
	}
	db := stdlib.OpenDBFromPool(s.pool)
	p, err := goose.NewProvider(goose.DialectPostgres, db, files,
		goose.WithTableName(VersionTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(s.logger),
	)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return p, func() { db.Close() }, nil
}

// Migrate applies the migrations the database lacks and returns what it
// did, one line per version ("OK    up 00001_history.sql (12ms)"). It is
// safe to run from several daemons at once, and again.
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	p, done, err := s.provider(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	results, err := p.Up(ctx)
	var lines []string
	for _, r := range results {
		lines = append(lines, r.String())
	}
	if err != nil {
		return lines, dbErr("migrate", err)
	}
	s.health.setMigrated()
	s.health.reached(nil)
	return lines, nil
}

// SchemaVersion returns the version the database is at and the one this
// binary brings.
func (s *Store) SchemaVersion(ctx context.Context) (current, target int64, err error) {
	p, done, err := s.provider(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer done()
	current, target, err = p.GetVersions(ctx)
	return current, target, dbErr("schema version", err)
}
