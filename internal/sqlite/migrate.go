package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"time"

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

// migrate applies to db, in version order, each migration in fsys that is
// not recorded in schema_migrations yet, each in its own transaction that
// also records it. It returns the versions it applied.
//
// The files in fsys are named NNNN_name.sql, NNNN being the version. Several
// processes may migrate the same database at once: each transaction checks
// again, under the write lock, whether its version is still missing.
func migrate(ctx context.Context, db *sql.DB, fsys fs.FS) ([]int, error) {
	ms, err := migration.List(fsys)
	if err != nil {
		return nil, err
	}
	_, err = db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`)
	if err != nil {
		return nil, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var applied []int
	for _, m := range ms {
		ok, err := applyMigration(ctx, db, fsys, m)
		if err != nil {
			return applied, fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
		if ok {
			applied = append(applied, m.Version)
		}
	}
	return applied, nil
}

// applyMigration applies m unless it is recorded already, and reports
// whether it did.
func applyMigration(ctx context.Context, db *sql.DB, fsys fs.FS, m migration.File) (bool, error) {
	script, err := fs.ReadFile(fsys, m.Name)
	if err != nil {
		return false, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	err = tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n)
	if err != nil || n > 0 {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, string(script)); err != nil {
		return false, err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, time.Now().UnixMilli())
	if err != nil {
		return false, err
	}
	return true, tx.Commit()
}
