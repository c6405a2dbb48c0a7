package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/pulse-social/pulse/internal/migration"
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
	ms, err := migration.List(fsys)
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
		if slices.Contains(done, m.Version) {
			continue
		}
		script, err := fs.ReadFile(fsys, m.Name)
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		// Without arguments, Exec runs the script with the simple query
		// protocol, which allows several statements.
		if _, err := tx.Exec(ctx, string(script)); err != nil {
			return nil, fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
		if err != nil {
			return nil, fmt.Errorf("migrate: %s: record: %w", m.Name, err)
		}
		applied = append(applied, m.Version)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("migrate: commit: %w", err)
	}
	return applied, nil
}
