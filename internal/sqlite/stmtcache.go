package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmtCache keeps one prepared statement per query text on a pool, so that
// a query is parsed and planned once per connection instead of on every
// call: that is a third of the time of a small Update otherwise
// (BenchmarkCreatePost). database/sql prepares a cached *sql.Stmt on each
// connection of the pool the first time it runs there.
//
// The store's query texts are a small fixed set (batched statements come in
// a few sizes, see inBatches), so the cache needs no eviction. A cached
// statement must not run again on a connection while rows of an earlier run
// are open there; every query of the store reads its rows to the end first.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: make(map[string]*sql.Stmt)}
}

// get returns the cached statement for query, or nil.
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[query]
}

// prepare returns the cached statement for query, preparing and caching it
// first if need be. Preparing takes a connection of the pool for a moment:
// it must not be called by one who holds the only connection of the pool
// (a read transaction on :memory:).
func (c *stmtCache) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	if st := c.get(query); st != nil {
		return st, nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cached := c.stmts[query]; cached != nil {
		// Another goroutine prepared it meanwhile.
		return cached, st.Close()
	}
	c.stmts[query] = st
	return st, nil
}

// close closes the cached statements.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return closeStmts(c.stmts)
}

// closeStmts closes the statements of m and empties it.
func closeStmts(m map[string]*sql.Stmt) error {
	var errs []error
	for query, st := range m {
		errs = append(errs, st.Close())
		delete(m, query)
	}
	return errors.Join(errs...)
}

// pool runs queries on a pool through its statement cache.
type pool struct {
	c *stmtCache
}

// QueryContext runs query through its cached statement.
func (p pool) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := p.c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs query through its cached statement.
func (p pool) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := p.c.prepare(ctx, query)
	if err != nil {
		// Only database/sql makes a *sql.Row that holds an error: running
		// the query unprepared reports the same failure through the Row.
		return p.c.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// txQuerier runs queries in a read transaction on the read pool, through
// the pool's cached statements where there are some. With :memory: the
// transaction holds the pool's only connection, so a statement that is not
// cached yet runs unprepared and is remembered; cacheMissed caches it once
// the transaction is over. The statements of the transaction die with it.
//
// Every statement runs under ctx, the transaction's own context; the
// context arguments of its methods are there to satisfy the interfaces.
type txQuerier struct {
	ctx context.Context
	tx  *sql.Tx
	c   *stmtCache

	mu     sync.Mutex
	missed []string
}

// cached returns the transaction's copy of the cached statement for query,
// or nil, and then remembers query for cacheMissed.
func (q *txQuerier) cached(query string) *sql.Stmt {
	if st := q.c.get(query); st != nil {
		return q.tx.StmtContext(q.ctx, st)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.missed = append(q.missed, query)
	return nil
}

// cacheMissed prepares and caches the statements the transaction missed.
// Call it after the transaction ends. A statement that fails to prepare
// stays uncached; running it reports the error.
func (q *txQuerier) cacheMissed(ctx context.Context) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, query := range q.missed {
		if _, err := q.c.prepare(ctx, query); err != nil {
			return
		}
	}
}

// QueryContext runs query in the transaction.
func (q *txQuerier) QueryContext(_ context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := q.cached(query); st != nil {
		return st.QueryContext(q.ctx, args...)
	}
	return q.tx.QueryContext(q.ctx, query, args...)
}

// QueryRowContext runs query in the transaction.
func (q *txQuerier) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	if st := q.cached(query); st != nil {
		return st.QueryRowContext(q.ctx, args...)
	}
	return q.tx.QueryRowContext(q.ctx, query, args...)
}
