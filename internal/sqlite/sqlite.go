package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/pulse-social/pulse/internal/social"
)

// memory is the path of a private in-memory database.
const memory = ":memory:"

// busyTimeout is how long a connection waits for a lock that another
// connection (or process) holds before it fails with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// Store is a social.Store in one SQLite database. It is safe for concurrent
// use. Its Reader methods read outside any transaction, through the read
// pool.
type Store struct {
	reader
	committer *committer
	// checkpointer is nil for :memory:, which has no WAL.
	checkpointer *checkpointer
	write        *sql.DB
	// read is the read-only pool; the same pool as write for :memory:.
	read      *sql.DB
	readStmts *stmtCache
}

var _ social.Store = (*Store)(nil)

// Open opens the SQLite database that dsn names, creating it if it does not
// exist, and applies the migrations it has not had yet. dsn is one of:
//
//   - a file path, e.g. "data/pulse.db" or "/var/lib/pulse/pulse.db";
//   - "sqlite://" followed by a file path, e.g. "sqlite://data/pulse.db"
//     (relative) or "sqlite:///var/lib/pulse/pulse.db" (absolute);
//   - "sqlite:" followed by a file path, e.g. "sqlite:data/pulse.db";
//   - ":memory:" (also "sqlite://:memory:" or "sqlite::memory:"): a private
//     in-memory database that lives until Close, for tests.
//
// The parent directory of a file is created if it is missing. A file
// database runs in WAL mode with synchronous=NORMAL: writes go through one
// connection, reads through a pool of read-only connections, and readers do
// not wait for the writer. An in-memory database has a single connection
// that serves reads and writes alike.
//
// The caller must Close the Store.
func Open(ctx context.Context, dsn string) (*Store, error) {
	path, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if path == memory {
		return openMemory(ctx)
	}
	return openFile(ctx, path, walRestartFrames)
}

// parseDSN returns the file path that dsn names, or memory.
func parseDSN(dsn string) (string, error) {
	path := dsn
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		path = strings.TrimPrefix(dsn, "sqlite://")
	case strings.HasPrefix(dsn, "sqlite:"):
		path = strings.TrimPrefix(dsn, "sqlite:")
	case strings.Contains(dsn, "://"):
		scheme, _, _ := strings.Cut(dsn, "://")
		return "", fmt.Errorf("sqlite: unsupported database URL scheme %q", scheme)
	}
	if path == "" {
		return "", fmt.Errorf("sqlite: no database path in %q", dsn)
	}
	return path, nil
}

func openMemory(ctx context.Context) (*Store, error) {
	// An in-memory database belongs to its connection, so the pool has
	// exactly one, and it is never closed while the Store is open.
	db, err := sql.Open("sqlite", memory+"?"+connParams(false).Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	if err := setUp(ctx, db); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	c, err := newCommitter(db, false, nil)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: %w", err), db.Close())
	}
	stmts := newStmtCache(db)
	return &Store{reader: reader{q: pool{stmts}}, committer: c, write: db, read: db, readStmts: stmts}, nil
}

// openFile opens the database file at path; the committer starts the WAL
// over when it passes walFrames frames (see checkpointer).
func openFile(ctx context.Context, path string, walFrames int) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create database directory: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	write, err := sql.Open("sqlite", fileURI(abs, connParams(false)))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	// The writer creates the file and switches it to WAL before a read-only
	// connection opens it.
	if err := setUp(ctx, write); err != nil {
		return nil, errors.Join(err, write.Close())
	}
	read, err := sql.Open("sqlite", fileURI(abs, connParams(true)))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open: %w", err), write.Close())
	}
	n := max(4, runtime.GOMAXPROCS(0))
	read.SetMaxOpenConns(n)
	read.SetMaxIdleConns(n)
	if err := read.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open read pool: %w", err), read.Close(), write.Close())
	}
	ckpt, err := sql.Open("sqlite", fileURI(abs, connParams(false)))
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: open: %w", err), read.Close(), write.Close())
	}
	ckpt.SetMaxOpenConns(1)
	ckpt.SetMaxIdleConns(1)
	walFull := make(chan struct{}, 1)
	c, err := newCommitter(write, true, walFull)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("sqlite: %w", err), ckpt.Close(), read.Close(), write.Close())
	}
	readStmts := newStmtCache(read)
	return &Store{
		reader:       reader{q: pool{readStmts}},
		committer:    c,
		checkpointer: newCheckpointer(ckpt, walFrames, walFull),
		write:        write,
		read:         read,
		readStmts:    readStmts,
	}, nil
}

// setUp connects the writer pool and migrates the database.
func setUp(ctx context.Context, write *sql.DB) error {
	if err := write.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	if _, err := migrate(ctx, write, migrations); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// connParams returns the driver's DSN parameters for a connection. The
// driver applies them to every connection it opens, so every connection of
// a pool has the same settings.
func connParams(readOnly bool) url.Values {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	if readOnly {
		// SQLite's own URI parameter: the file is opened read-only.
		q.Set("mode", "ro")
		return q
	}
	// journal_mode is a property of the file (a no-op for :memory:),
	// synchronous=NORMAL is durable enough in WAL mode (a power cut may lose
	// the last commits, never consistency), and BEGIN IMMEDIATE takes the
	// write lock up front, so a transaction never fails on upgrading a read
	// lock.
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// The checkpointer, not the commits, copies the WAL into the database
	// file; after a burst the WAL file is trimmed back to 256 MiB (see
	// walRestartFrames).
	q.Add("_pragma", "wal_autocheckpoint(0)")
	q.Add("_pragma", "journal_size_limit(268435456)")
	// A multi-row statement keeps what it overwrote in a statement journal
	// (to undo itself on a constraint failure), and a transaction larger than
	// the page cache spills to the WAL before it commits: in memory and with
	// a 32 MiB cache (not 2 MiB), a post to 10,000 followers does neither
	// through system calls.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Add("_pragma", "cache_size(-32768)")
	q.Set("_txlock", "immediate")
	return q
}

// fileURI returns a SQLite URI filename for the absolute path abs; unlike a
// plain path, it can carry SQLite's own parameters (mode=ro), and any
// character in the path is escaped.
func fileURI(abs string, params url.Values) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive letter: file:///C:/...
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: params.Encode()}
	return u.String()
}

// Update runs fn in a BEGIN IMMEDIATE transaction on the writer
// connection and commits it if fn returns nil; see social.Store. Updates
// that wait for the writer are committed in groups, each fn in a savepoint
// of its own (see committer), so a caller's outcome is as if it ran alone.
// Another process holding the write lock is waited for up to the busy
// timeout.
//
// Once fn is queued, Update returns only when it has run, or was skipped
// because ctx ended first: fn's statements are not interrupted by ctx.
// fn must read through its Tx, not through the Store: with :memory: the
// transaction holds the only connection.
func (s *Store) Update(ctx context.Context, fn func(social.Tx) error) error {
	return s.committer.update(ctx, fn)
}

// Ping reports whether the writer runs a transaction (an empty one, in its
// turn) and the read pool answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.Update(ctx, func(social.Tx) error { return nil }); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes the database. The writer closes last, so that the last
// connection checkpoints the WAL into the database file.
func (s *Store) Close() error {
	errs := []error{s.committer.close()}
	if s.checkpointer != nil {
		errs = append(errs, s.checkpointer.close())
	}
	errs = append(errs, s.readStmts.close())
	if s.read != s.write {
		errs = append(errs, s.read.Close())
	}
	errs = append(errs, s.write.Close())
	return errors.Join(errs...)
}
