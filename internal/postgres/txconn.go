package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// txConn is one transaction on one connection that saves round trips:
// BEGIN is sent with the first statement, and a statement whose result
// only matters if it fails (queue) is sent with the next one or with
// COMMIT, each group as one pgx batch. An action then takes one round trip
// per statement it reads the result of, and none more.
type txConn struct {
	conn   *pgx.Conn
	queued []queuedStmt
	begun  bool // BEGIN was sent
}

// queuedStmt is a statement waiting for the next round trip; an error it
// returns is wrapped with op.
type queuedStmt struct {
	op, sql string
	args    []any
}

func newTxConn(conn *pgx.Conn) *txConn {
	return &txConn{conn: conn, queued: []queuedStmt{{op: "begin transaction", sql: "begin isolation level read committed"}}}
}

// queue adds a statement to send with the next one, or with COMMIT. Its
// error is returned by that statement, or by commit, wrapped with op.
func (c *txConn) queue(op, sql string, args ...any) {
	c.queued = append(c.queued, queuedStmt{op: op, sql: sql, args: args})
}

// send sends the queued statements and then sql in one batch, and returns
// the batch's results with the queued statements' read: the caller reads
// sql's result and closes them.
func (c *txConn) send(ctx context.Context, sql string, args ...any) (pgx.BatchResults, error) {
	var b pgx.Batch
	for _, q := range c.queued {
		b.Queue(q.sql, q.args...)
	}
	b.Queue(sql, args...)
	queued := c.queued
	c.queued, c.begun = nil, true
	br := c.conn.SendBatch(ctx, &b)
	for _, q := range queued {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, fmt.Errorf("%s: %w", q.op, err)
		}
	}
	return br, nil
}

// Query runs a query in the transaction, after the queued statements.
func (c *txConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if len(c.queued) == 0 {
		return c.conn.Query(ctx, sql, args...)
	}
	br, err := c.send(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// QueryRow runs a query that returns at most one row, after the queued
// statements; see pgx.Conn.QueryRow.
func (c *txConn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := c.Query(ctx, sql, args...)
	return &oneRow{rows: rows, err: err}
}

// Exec runs a statement in the transaction, after the queued statements.
func (c *txConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if len(c.queued) == 0 {
		return c.conn.Exec(ctx, sql, args...)
	}
	br, err := c.send(ctx, sql, args...)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// commit sends the queued statements and COMMIT. A transaction that sent
// nothing yet has nothing to commit.
func (c *txConn) commit(ctx context.Context) error {
	if !c.begun && len(c.queued) == 1 {
		c.queued = nil
		return nil
	}
	_, err := c.Exec(ctx, "commit")
	return err
}

// rollback ends a transaction that was begun; an error leaves the
// connection in the transaction, and the pool then closes it rather than
// reuse it.
func (c *txConn) rollback(ctx context.Context) {
	c.queued = nil
	if c.begun {
		_, _ = c.conn.Exec(ctx, "rollback")
	}
}

// batchRows are the rows of a batch's last query; closing them closes the
// batch.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if r.br != nil {
		r.err, r.br = r.br.Close(), nil
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// oneRow is the pgx.Row of a query, as pgx.Conn.QueryRow returns it.
type oneRow struct {
	rows pgx.Rows
	err  error
}

func (r *oneRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
