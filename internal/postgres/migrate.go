package postgres

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var embedded embed.FS

// migrations holds the schema, one file per version: NNNN_name.sql.
var migrations = mustSub(embedded, "migrations")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // dir is a constant that names an embedded directory
	}
	return sub
}

// migrateLock is the key of the transaction-level advisory lock that
// serializes migrations: "pulse" in ASCII. Advisory locks belong to one
// database, so the key only has to be unique among what locks it.
const migrateLock int64 = 0x70756c7365

// migration is one schema version.
type migration struct {
	version int
	name    string
}

// beginner starts transactions: a *pgxpool.Pool or a *pgx.Conn.
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// migrate applies to the database, in version order and all in one
// transaction, each migration in fsys that is not recorded in
// schema_migrations yet, and records it. It returns the versions it
// applied; if one fails, none is applied.
//
// The files in fsys are named NNNN_name.sql, NNNN being the version; each
// may hold several statements, and none may be one that cannot run in a
// transaction (CREATE INDEX CONCURRENTLY).
//
// Several processes may migrate the same database at once: the transaction
// first takes an advisory lock (pg_advisory_xact_lock, released at commit
// or rollback), so they run one after another, and each sees what the
// previous one recorded. Versions recorded in the database but unknown to
// fsys (a newer binary migrated it) are left alone.
func migrate(ctx context.Context, db beginner, fsys fs.FS) ([]int, error) {
	ms, err := listMigrations(fsys)
	if err != nil {
		return nil, err
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return nil, fmt.Errorf("migrate: lock: %w", err)
	}
	_, err = tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`)
	if err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("migrate: read schema_migrations: %w", err)
	}
	var applied []int
	for _, m := range ms {
		if slices.Contains(done, m.version) {
			continue
		}
		script, err := fs.ReadFile(fsys, m.name)
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		// Without arguments, Exec runs the script with the simple query
		// protocol, which allows several statements.
		if _, err := tx.Exec(ctx, string(script)); err != nil {
			return nil, fmt.Errorf("migrate: %s: %w", m.name, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
		if err != nil {
			return nil, fmt.Errorf("migrate: %s: record: %w", m.name, err)
		}
		applied = append(applied, m.version)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("migrate: commit: %w", err)
	}
	return applied, nil
}

// listMigrations returns the migrations in fsys in version order.
func listMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	ms := make([]migration, 0, len(names))
	for _, name := range names {
		prefix, _, ok := strings.Cut(path.Base(name), "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migrate: %s: the name must be NNNN_name.sql with NNNN > 0", name)
		}
		ms = append(ms, migration{version: v, name: name})
	}
	slices.SortFunc(ms, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrate: %s and %s have the same version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}
