package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulse-social/pulse/internal/social"
)

// Store is a social.Store in one PostgreSQL database, through a pool of
// connections. It is safe for concurrent use. Its Reader methods read
// outside any transaction, each statement seeing what was committed when it
// started.
type Store struct {
	reader
	pool *pgxpool.Pool
}

var _ social.Store = (*Store)(nil)

// Open connects to the PostgreSQL database that url names and applies the
// migrations it has not had yet. url is a postgres:// or postgresql:// URL,
// e.g. "postgres://pulse:secret@db.example.com:5432/pulse?sslmode=require";
// pgx reads its parameters (sslmode, connect_timeout, ...) and pgxpool's
// (pool_max_conns, pool_max_conn_idle_time, ...).
//
// Unless the URL says otherwise, the pool holds at most four connections
// per CPU (8 on 2 cores, at least 4): a transaction keeps its connection
// while the service runs Go code between statements, and reads run beside
// writes, but beyond a few per core more connections only add contention.
// Connections identify themselves as application_name "pulse".
//
// Several processes may Open the same database at once: migrations are
// serialized by an advisory lock. The caller must Close the Store.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := poolConfig(url)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if _, err := migrate(ctx, pool, migrations); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &Store{reader: reader{q: pool}, pool: pool}, nil
}

// poolConfig parses a database URL and applies the Store's defaults where
// the URL sets nothing.
func poolConfig(rawURL string) (*pgxpool.Config, error) {
	if !strings.HasPrefix(rawURL, "postgres://") && !strings.HasPrefix(rawURL, "postgresql://") {
		return nil, errors.New("postgres: the database URL must start with postgres:// or postgresql://")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// Not the error itself: it would repeat the URL, password included.
		return nil, errors.New("postgres: the database URL is not a valid URL")
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err) // pgx redacts the password
	}
	if !u.Query().Has("pool_max_conns") {
		cfg.MaxConns = int32(max(4, 4*runtime.GOMAXPROCS(0)))
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "pulse"
	}
	return cfg, nil
}

// maxAttempts bounds how often Update runs a transaction that lost a race.
const maxAttempts = 5

// Update runs fn in one READ COMMITTED transaction and commits it if fn
// returns nil; see social.Store.
//
// A transaction that PostgreSQL aborted because it lost a race (a deadlock,
// 40P01, or a serialization failure, 40001) is rolled back and run again,
// fn included, after a short random pause, up to maxAttempts times in all.
// AppendChanges locks rows in one order, so a deadlock takes a fn that
// calls it more than once, or that updates the same rows as a concurrent
// transaction in another order.
//
// fn must use its Tx from one goroutine at a time, as it is one connection.
func (s *Store) Update(ctx context.Context, fn func(social.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.update(ctx, fn)
		if attempt == maxAttempts || !lostRace(err) {
			return err
		}
		pause := time.Duration(rand.Int64N(int64(attempt) * int64(5*time.Millisecond)))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
	}
}

// update runs fn in one transaction, once. The transaction is begun with
// its first statement and committed with the statements queued last (see
// txConn).
func (s *Store) update(ctx context.Context, fn func(social.Tx) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	// The pool closes a connection released inside a transaction: one that
	// a rollback could not end, because ctx was done or fn panicked.
	defer conn.Release()
	c := newTxConn(conn.Conn())
	committed := false
	defer func() {
		if !committed {
			c.rollback(ctx)
		}
	}()
	if err := fn(&tx{reader: reader{q: c, lock: lockContent}, tx: c}); err != nil {
		return err
	}
	committed = true
	if err := c.commit(ctx); err != nil {
		c.rollback(ctx)
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// lostRace reports whether err says that PostgreSQL aborted the transaction
// for a race with another one, which running it again may win.
func lostRace(err error) bool {
	var e *pgconn.PgError
	return errors.As(err, &e) && (e.Code == "40P01" || e.Code == "40001")
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool's connections, waiting for those in use to be
// released. It always returns nil.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}
