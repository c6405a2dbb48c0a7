package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"strings"

	"github.com/pulse-social/pulse/internal/social"
)

// batchRows is how many rows (or IN-list ids) one multi-row statement
// carries at most. A notification row has 10 parameters, far below
// SQLite's limit of 32766.
const batchRows = 100

// placeholders returns n comma-separated "?".
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// valueRows returns rows comma-separated "(?, ?, ...)" of cols each.
func valueRows(rows, cols int) string {
	row := "(" + placeholders(cols) + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// chunkSize returns the size of the next chunk of a list with n items
// left: batchRows, or else the greatest power of two up to n. A statement
// thus comes in 8 sizes only (100, 64, 32, ..., 1), which are cached like
// any other (stmtCache), and the tail of a list takes 7 statements at most.
func chunkSize(n int) int {
	if n >= batchRows {
		return batchRows
	}
	return 1 << (bits.Len(uint(n)) - 1)
}

// preparer prepares statements: a transaction.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// inBatches splits n items into consecutive chunks [lo, hi) of chunkSize
// and calls run for each with a statement prepared from sqlFor(hi-lo).
// Chunks of the same size share the statement.
func inBatches(ctx context.Context, p preparer, n int, sqlFor func(rows int) string, run func(stmt *sql.Stmt, lo, hi int) error) error {
	var stmt *sql.Stmt
	defer func() {
		if stmt != nil {
			_ = stmt.Close()
		}
	}()
	prepared := 0
	for lo := 0; lo < n; {
		hi := lo + chunkSize(n-lo)
		if hi-lo != prepared {
			if stmt != nil {
				_ = stmt.Close()
			}
			var err error
			if stmt, err = p.PrepareContext(ctx, sqlFor(hi-lo)); err != nil {
				return err
			}
			prepared = hi - lo
		}
		if err := run(stmt, lo, hi); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullInt(n int64) sql.NullInt64 { return sql.NullInt64{Int64: n, Valid: n != 0} }

// AddNotifications stores notifications (ID, Seq and Read are ignored) and
// returns them with their ID and Seq set, in the same order; see social.Tx.
// A recipient that is not a user is CodeNotFound.
//
// Each recipient's notifications are numbered on from its latest Seq, in
// input order, and inserted in input order, so that each recipient's IDs
// increase with its Seqs. The transaction holds SQLite's only write lock,
// so the latest Seqs it reads stay the latest until it commits. Both steps
// run multi-row statements of up to batchRows rows: a post to 10,000
// followers takes 200 statements, not 20,000.
func (t *tx) AddNotifications(ctx context.Context, ns []social.Notification) ([]social.Notification, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	next, err := t.nextSeqs(ctx, ns)
	if err != nil {
		return nil, fmt.Errorf("add notifications: %w", err)
	}
	out := make([]social.Notification, len(ns))
	for i, n := range ns {
		n.ID = 0
		n.Seq = next[n.RecipientID]
		next[n.RecipientID]++
		n.Read = false
		n.CreatedAt = stored(n.CreatedAt)
		out[i] = n
	}
	if err := t.insertNotifications(ctx, out); err != nil {
		return nil, fmt.Errorf("add notifications: %w", err)
	}
	return out, nil
}

// nextSeqs returns, for each recipient of ns, the Seq its next
// notification takes: one more than its latest, read from the
// (recipient_id, seq) index, one lookup per recipient:
//
//	SELECT id, coalesce((SELECT max(seq) FROM notifications WHERE recipient_id = users.id), 0)
//	FROM users WHERE id IN (...)
//
// A recipient missing from users is CodeNotFound.
func (t *tx) nextSeqs(ctx context.Context, ns []social.Notification) (map[int64]int64, error) {
	next := make(map[int64]int64)
	var recipients []int64
	for _, n := range ns {
		if _, ok := next[n.RecipientID]; !ok {
			next[n.RecipientID] = 0
			recipients = append(recipients, n.RecipientID)
		}
	}
	args := make([]any, 0, batchRows)
	err := inBatches(ctx, t.w, len(recipients), func(rows int) string {
		return `SELECT id, coalesce((SELECT max(seq) FROM notifications WHERE recipient_id = users.id), 0)
			FROM users WHERE id IN (` + placeholders(rows) + `)`
	}, func(stmt *sql.Stmt, lo, hi int) error {
		args = args[:0]
		for _, id := range recipients[lo:hi] {
			args = append(args, id)
		}
		rows, err := stmt.QueryContext(ctx, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		found := 0
		for rows.Next() {
			var id, latest int64
			if err := rows.Scan(&id, &latest); err != nil {
				return err
			}
			next[id] = latest + 1
			found++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if found != hi-lo {
			return social.Errorf(social.CodeNotFound, "recipient not found")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("next seqs: %w", err)
	}
	return next, nil
}

// insertNotifications inserts ns, whose Seqs are set, in order and sets
// their IDs. The transaction holds SQLite's only write lock, so it numbers
// them itself from AUTOINCREMENT's high-water mark, which the inserts then
// move on: no RETURNING to read back.
func (t *tx) insertNotifications(ctx context.Context, ns []social.Notification) error {
	const cols = 11
	var last int64
	err := t.w.QueryRowContext(ctx,
		`SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'notifications'), 0),
			coalesce((SELECT max(id) FROM notifications), 0))`).Scan(&last)
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	for i := range ns {
		ns[i].ID = last + 1 + int64(i)
	}
	args := make([]any, 0, cols*batchRows)
	err = inBatches(ctx, t.w, len(ns), func(rows int) string {
		return `INSERT INTO notifications (id, recipient_id, seq, message, action, action_id, by_user,
			action_content, affected, affected_id, created_at)
			VALUES ` + valueRows(rows, cols)
	}, func(stmt *sql.Stmt, lo, hi int) error {
		args = args[:0]
		for _, n := range ns[lo:hi] {
			args = append(args, n.ID, n.RecipientID, n.Seq, n.Message, n.Action, n.ActionID, n.ByUser,
				nullString(n.ActionContent), nullString(string(n.Affected)), nullInt(n.AffectedID), millis(n.CreatedAt))
		}
		_, err := stmt.ExecContext(ctx, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}
