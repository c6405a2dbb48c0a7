package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

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

// eachRow runs the query stmt with args and calls fn with each row.
func eachRow(ctx context.Context, stmt *sql.Stmt, args []any, fn func(scanner) error) error {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func nullInt(n int64) sql.NullInt64 { return sql.NullInt64{Int64: n, Valid: n != 0} }

// AppendChanges changes inboxes and records the changes; see social.Tx.
// A recipient that is not a user is CodeNotFound.
//
// It first applies the REMOVED and READ changes (DELETE or UPDATE ...
// RETURNING, which narrows their ids), then numbers the changes it keeps:
// each recipient's on from its latest Seq, ids on from the greatest id
// taken, both in input order, so that each recipient's IDs increase with
// its Seqs. The transaction holds SQLite's only write lock, so neither can
// change before it commits. It then inserts the added notifications, counts
// each recipient's unread notifications, derives every change's count from
// that, and inserts the changes. Each step runs multi-row statements of up
// to batchRows rows: a post to 10,000 followers takes a few hundred
// statements, not 20,000.
func (t *tx) AppendChanges(ctx context.Context, cs []social.Change) ([]social.Change, error) {
	out := make([]social.Change, 0, len(cs))
	var delta []int
	var keys [][]string
	for _, c := range cs {
		d := 1
		var k []string
		switch c.Kind {
		case social.ChangeAdded:
			n := *c.Notification
			n.Read = false
			n.CreatedAt = stored(n.CreatedAt)
			c.Notification, c.RecipientID = &n, n.RecipientID
		case social.ChangeRemoved, social.ChangeRead:
			var err error
			if c.IDs, d, k, err = t.apply(ctx, c); err != nil {
				return nil, fmt.Errorf("append changes: %w", err)
			}
			if len(c.IDs) == 0 {
				continue
			}
		default:
			return nil, fmt.Errorf("append changes: unknown kind %q", c.Kind)
		}
		out = append(out, c)
		delta = append(delta, d)
		keys = append(keys, k)
	}
	if len(out) == 0 {
		return nil, nil
	}
	recipients := social.Recipients(out)
	next, err := t.nextSeqs(ctx, recipients)
	if err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	var last int64
	err = t.w.QueryRowContext(ctx, `SELECT max(
			coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'notifications'), 0),
			coalesce((SELECT max(id) FROM inbox_changes), 0))`).Scan(&last)
	if err != nil {
		return nil, fmt.Errorf("append changes: last id: %w", err)
	}
	var added []social.Notification
	for i := range out {
		c := &out[i]
		c.ID, c.Seq = last+1+int64(i), next[c.RecipientID]
		next[c.RecipientID]++
		if c.Kind == social.ChangeAdded {
			c.Notification.ID, c.Notification.Seq = c.ID, c.Seq
			c.IDs = []int64{c.ID}
			added = append(added, *c.Notification)
		}
	}
	if err := t.insertNotifications(ctx, added); err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	final, err := t.unreadCounts(ctx, recipients)
	if err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	social.FillUnreadCounts(out, delta, final)
	emptied := stored(time.Now())
	err = social.FillGroups(out, keys, func(recipientID int64, key string, bound int64) (social.Group, error) {
		return t.group(ctx, recipientID, key, bound, emptied)
	})
	if err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	if err := t.insertChanges(ctx, out); err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	return out, nil
}

// apply carries out a REMOVED or READ change and returns the ids it
// changed, in increasing order, by how much it changed the recipient's
// unread count, and the keys of the groups it touched.
func (t *tx) apply(ctx context.Context, c social.Change) ([]int64, int, []string, error) {
	var changed []int64
	var keys []string
	delta := 0
	err := inBatches(ctx, t.w, len(c.IDs), func(rows int) string {
		if c.Kind == social.ChangeRemoved {
			return `DELETE FROM notifications WHERE recipient_id = ? AND id IN (` +
				placeholders(rows) + `) RETURNING id, read, group_key`
		}
		return `UPDATE notifications SET read = 1 WHERE recipient_id = ? AND read = 0 AND id IN (` +
			placeholders(rows) + `) RETURNING id, 0, group_key`
	}, func(stmt *sql.Stmt, lo, hi int) error {
		args := make([]any, 0, 1+hi-lo)
		args = append(args, c.RecipientID)
		for _, id := range c.IDs[lo:hi] {
			args = append(args, id)
		}
		return eachRow(ctx, stmt, args, func(row scanner) error {
			var id int64
			var read bool
			var key string
			if err := row.Scan(&id, &read, &key); err != nil {
				return err
			}
			changed = append(changed, id)
			keys = social.AddKey(keys, key)
			if !read {
				delta--
			}
			return nil
		})
	})
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%s: %w", strings.ToLower(string(c.Kind)), err)
	}
	slices.Sort(changed)
	slices.Sort(keys)
	return changed, delta, keys, nil
}

// unreadCounts counts the unread notifications of each of recipients.
func (t *tx) unreadCounts(ctx context.Context, recipients []int64) (map[int64]int, error) {
	counts := make(map[int64]int, len(recipients))
	args := make([]any, 0, batchRows)
	err := inBatches(ctx, t.w, len(recipients), func(rows int) string {
		return `SELECT recipient_id, count(*) FROM notifications
			WHERE recipient_id IN (` + placeholders(rows) + `) AND read = 0 GROUP BY recipient_id`
	}, func(stmt *sql.Stmt, lo, hi int) error {
		args = args[:0]
		for _, id := range recipients[lo:hi] {
			args = append(args, id)
		}
		return eachRow(ctx, stmt, args, func(row scanner) error {
			var id int64
			var n int
			err := row.Scan(&id, &n)
			counts[id] = n
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("unread counts: %w", err)
	}
	return counts, nil
}

// insertChanges inserts the changes, whose IDs, Seqs and counts are set.
func (t *tx) insertChanges(ctx context.Context, cs []social.Change) error {
	const cols = 7
	args := make([]any, 0, cols*batchRows)
	err := inBatches(ctx, t.w, len(cs), func(rows int) string {
		return `INSERT INTO inbox_changes (id, recipient_id, seq, kind, ids, unread_count, groups)
			VALUES ` + valueRows(rows, cols)
	}, func(stmt *sql.Stmt, lo, hi int) error {
		args = args[:0]
		for _, c := range cs[lo:hi] {
			var ids sql.NullString
			if c.Kind != social.ChangeAdded {
				ids = sql.NullString{String: joinIDs(c.IDs), Valid: true}
			}
			groups, err := social.MarshalGroups(c.Groups)
			if err != nil {
				return err
			}
			args = append(args, c.ID, c.RecipientID, c.Seq, string(c.Kind), ids, c.UnreadCount, groups)
		}
		_, err := stmt.ExecContext(ctx, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("insert changes: %w", err)
	}
	return nil
}

// joinIDs returns ids comma-separated, as inbox_changes.ids keeps them.
func joinIDs(ids []int64) string {
	b := make([]byte, 0, 8*len(ids))
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(b)
}

// splitIDs parses what joinIDs returned.
func splitIDs(s string) ([]int64, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	ids := make([]int64, len(parts))
	for i, p := range parts {
		var err error
		if ids[i], err = strconv.ParseInt(p, 10, 64); err != nil {
			return nil, fmt.Errorf("change ids: %w", err)
		}
	}
	return ids, nil
}

// nextSeqs returns, for each of recipients (distinct), the Seq its next
// change takes: one more than its latest, read from the (recipient_id, seq)
// index, one lookup per recipient:
//
//	SELECT id, coalesce((SELECT max(seq) FROM inbox_changes WHERE recipient_id = users.id), 0)
//	FROM users WHERE id IN (...)
//
// A recipient missing from users is CodeNotFound.
func (t *tx) nextSeqs(ctx context.Context, recipients []int64) (map[int64]int64, error) {
	next := make(map[int64]int64, len(recipients))
	args := make([]any, 0, batchRows)
	err := inBatches(ctx, t.w, len(recipients), func(rows int) string {
		return `SELECT id, coalesce((SELECT max(seq) FROM inbox_changes WHERE recipient_id = users.id), 0)
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

// insertNotifications inserts ns, whose IDs and Seqs are set, in order.
func (t *tx) insertNotifications(ctx context.Context, ns []social.Notification) error {
	const cols = 12
	args := make([]any, 0, cols*batchRows)
	err := inBatches(ctx, t.w, len(ns), func(rows int) string {
		return `INSERT INTO notifications (id, recipient_id, seq, message, action, action_id, by_user,
			action_content, affected, affected_id, created_at, group_key)
			VALUES ` + valueRows(rows, cols)
	}, func(stmt *sql.Stmt, lo, hi int) error {
		args = args[:0]
		for _, n := range ns[lo:hi] {
			args = append(args, n.ID, n.RecipientID, n.Seq, n.Message, n.Action, n.ActionID, n.ByUser,
				nullString(n.ActionContent), nullString(string(n.Affected)), nullInt(n.AffectedID), millis(n.CreatedAt),
				social.GroupKey(n))
		}
		_, err := stmt.ExecContext(ctx, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}
