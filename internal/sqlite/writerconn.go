package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// writerConn is the writer connection as the committer uses it: one
// *sql.Conn and the statements prepared on it. A transaction is plain
// statements on it (BEGIN IMMEDIATE, SAVEPOINT, COMMIT, ...), each
// prepared once like any other, rather than a *sql.Tx: database/sql
// prepares a *sql.Tx's BEGIN and COMMIT anew for each transaction, starts
// a goroutine to watch the transaction's context and another for the rows
// of each query in it, and copies every cached statement into the
// transaction before running it. On a held connection none of that
// happens.
//
// Its statements run under a context that nobody cancels, whatever context
// their callers pass (see begin). Only the committer's goroutine uses it
// (the functions it runs included), so it needs no lock.
type writerConn struct {
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

// takeWriterConn takes a connection of db for the writer; close gives it
// back.
func takeWriterConn(db *sql.DB) (*writerConn, error) {
	conn, err := db.Conn(context.Background())
	if err != nil {
		return nil, fmt.Errorf("writer connection: %w", err)
	}
	return &writerConn{conn: conn, stmts: make(map[string]*sql.Stmt)}, nil
}

// close closes the prepared statements and gives the connection back to
// its pool.
func (w *writerConn) close() error {
	return errors.Join(closeStmts(w.stmts), w.conn.Close())
}

// PrepareContext returns the statement for query, prepared on the
// connection the first time. It belongs to w: the caller must not close
// it.
func (w *writerConn) PrepareContext(_ context.Context, query string) (*sql.Stmt, error) {
	if st, ok := w.stmts[query]; ok {
		return st, nil
	}
	st, err := w.conn.PrepareContext(context.Background(), query)
	if err != nil {
		return nil, err
	}
	w.stmts[query] = st
	return st, nil
}

// ExecContext runs query on the connection.
func (w *writerConn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := w.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(context.Background(), args...)
}

// QueryContext runs query on the connection.
func (w *writerConn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := w.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(context.Background(), args...)
}

// QueryRowContext runs query on the connection.
func (w *writerConn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := w.PrepareContext(ctx, query)
	if err != nil {
		// Only database/sql makes a *sql.Row that holds an error: running
		// the query unprepared reports the same failure through the Row.
		return w.conn.QueryRowContext(context.Background(), query, args...)
	}
	return st.QueryRowContext(context.Background(), args...)
}
