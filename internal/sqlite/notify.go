package sqlite

import (
	"cmp"
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
// carries at most. The widest row, an event's, has 12 parameters, far
// below SQLite's limit of 32766.
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

// inBatches splits n items into consecutive chunks [lo, hi) of chunkSize
// and calls run for each with w's statement for sqlFor(hi-lo) (w owns it)
// and the context to run it under: the writer's, which nobody cancels (see
// begin). Chunks of the same size share the statement.
func inBatches(w *writerConn, n int, sqlFor func(rows int) string, run func(ctx context.Context, stmt *sql.Stmt, lo, hi int) error) error {
	ctx := context.Background()
	var stmt *sql.Stmt
	prepared := 0
	for lo := 0; lo < n; {
		hi := lo + chunkSize(n-lo)
		if hi-lo != prepared {
			var err error
			if stmt, err = w.PrepareContext(ctx, sqlFor(hi-lo)); err != nil {
				return err
			}
			prepared = hi - lo
		}
		if err := run(ctx, stmt, lo, hi); err != nil {
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
// RETURNING, which narrows their ids; a removed notification's ADDED
// change moves to inbox_changes), then reads each recipient's latest
// change (see latestChangesSQL): each change's Seq and unread count follow
// from it, in input order. Ids go on from the greatest id of notifications
// and changes, in input order, so that each recipient's IDs increase with
// its Seqs. The transaction holds SQLite's only write lock, so neither can
// change before it commits. It then stores each distinct event of the
// added notifications once, updates the rows of the groups the changes
// touch (see groupWriter), and stores a row per recipient that points to
// the event (the notification and its ADDED change in one, with its
// groups) and the other changes. Each step runs multi-row statements of up
// to batchRows rows: a post to 10,000 followers takes a few hundred
// statements, not 20,000.
func (t *tx) AppendChanges(ctx context.Context, cs []social.Change) ([]social.Change, error) {
	if err := social.CheckChanges(cs); err != nil {
		return nil, err
	}
	out := make([]social.Change, 0, len(cs))
	var delta []int
	// A REMOVED or READ change's groups are read right after it is
	// applied, before the next one changes them; the ADDED changes' groups
	// once their ids are known (fillGroups).
	groups := newGroupWriter(t, stored(time.Now()))
	for _, c := range cs {
		d := 1
		switch c.Kind {
		case social.ChangeAdded:
			n := *c.Notification
			n.Read = false
			n.CreatedAt = stored(n.CreatedAt)
			c.Notification, c.RecipientID = &n, n.RecipientID
		case social.ChangeRemoved, social.ChangeRead:
			var err error
			var ts []touched
			if c.IDs, d, ts, err = t.apply(ctx, c); err != nil {
				return nil, fmt.Errorf("append changes: %w", err)
			}
			if len(c.IDs) == 0 {
				continue
			}
			if c.Groups, err = groups.changedAll(ctx, c, ts); err != nil {
				return nil, fmt.Errorf("append changes: %w", err)
			}
		default:
			return nil, fmt.Errorf("append changes: unknown kind %q", c.Kind)
		}
		out = append(out, c)
		delta = append(delta, d)
	}
	if len(out) == 0 {
		return nil, nil
	}
	nextSeq, unread, err := t.inboxes(ctx, out, delta)
	if err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	var lastID, lastEvent int64
	err = t.w.QueryRowContext(ctx, `SELECT
			max(coalesce((SELECT max(id) FROM inbox_changes), 0), coalesce((SELECT max(id) FROM notifications), 0)),
			coalesce((SELECT max(id) FROM notification_events), 0)`).Scan(&lastID, &lastEvent)
	if err != nil {
		return nil, fmt.Errorf("append changes: last ids: %w", err)
	}
	social.FillUnreadCounts(out, delta, unread)
	events := make(map[eventKey]*event)
	var added []delivery
	for i := range out {
		c := &out[i]
		c.ID, c.Seq = lastID+1+int64(i), nextSeq[c.RecipientID]
		nextSeq[c.RecipientID]++
		if c.Kind != social.ChangeAdded {
			continue
		}
		n := c.Notification
		n.ID, n.Seq = c.ID, c.Seq
		c.IDs = []int64{c.ID}
		k := keyOf(*n)
		e := events[k]
		if e == nil {
			lastEvent++
			e = &event{n: *n, id: lastEvent, groupKey: social.GroupKey(*n), firstID: c.ID}
			events[k] = e
		}
		e.lastID = c.ID
		added = append(added, delivery{n: n, event: e, unread: c.UnreadCount})
	}
	if err := t.insertEvents(ctx, events); err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	if err := t.fillGroups(ctx, groups, out); err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	if err := t.insertNotifications(ctx, added, out); err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	if err := t.insertChanges(ctx, out); err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	return out, nil
}

// eventKey is what the notifications of one event have in common: all but
// their recipient, id, Seq and read flag.
type eventKey struct {
	message, byUser, content string
	action                   social.Action
	affected                 social.ContentKind
	actionID, affectedID     int64
	created                  int64
}

func keyOf(n social.Notification) eventKey {
	return eventKey{message: n.Message, byUser: n.ByUser, content: n.ActionContent, action: n.Action,
		affected: n.Affected, actionID: n.ActionID, affectedID: n.AffectedID, created: millis(n.CreatedAt)}
}

// event is an event to store: one of its notifications, its id, its
// group's key, and the ids of its first and last notifications.
type event struct {
	n               social.Notification
	id              int64
	groupKey        string
	firstID, lastID int64
}

// delivery is an added notification, whose ID and Seq are set, its event,
// and the unread count of its ADDED change.
type delivery struct {
	n      *social.Notification
	event  *event
	unread int
}

// latestChange is the Seq of a user's latest change and the unread count
// right after it: 0 and 0 for a user without changes.
type latestChange struct {
	seq    int64
	unread int
}

// latestChangesSQL selects, for each of rows users, its id and the Seq and
// unread count of its latest change in notifications and in inbox_changes
// (0 and 0 where it has none). The user's latest change is the greater of
// the two: every change is a row of one or the other, and none is ever
// deleted (a removed notification's ADDED change moves to inbox_changes).
func latestChangesSQL(rows int) string {
	return `SELECT u.id, coalesce(n.seq, 0), coalesce(n.unread_count, 0), coalesce(c.seq, 0), coalesce(c.unread_count, 0)
		FROM users u
		LEFT JOIN notifications n ON n.id = (SELECT id FROM notifications WHERE recipient_id = u.id ORDER BY seq DESC LIMIT 1)
		LEFT JOIN inbox_changes c ON c.id = (SELECT id FROM inbox_changes WHERE recipient_id = u.id ORDER BY seq DESC LIMIT 1)
		WHERE u.id IN (` + placeholders(rows) + `)`
}

// scanLatestChange scans a row of latestChangesSQL into the user's id and
// latest change.
func scanLatestChange(row scanner) (int64, latestChange, error) {
	var id int64
	var n, c latestChange
	if err := row.Scan(&id, &n.seq, &n.unread, &c.seq, &c.unread); err != nil {
		return 0, latestChange{}, err
	}
	if c.seq > n.seq {
		return id, c, nil
	}
	return id, n, nil
}

// inboxes returns, for each recipient of cs, the Seq of its first change
// in cs and its unread count after cs, both from its latest change. The
// transaction holds SQLite's only write lock, so no other can change an
// inbox before it commits. A recipient that is not a user is
// CodeNotFound.
func (t *tx) inboxes(ctx context.Context, cs []social.Change, delta []int) (nextSeq map[int64]int64, unread map[int64]int, err error) {
	unread = make(map[int64]int, len(cs))
	var recipients []int64
	for i, c := range cs {
		if _, ok := unread[c.RecipientID]; !ok {
			recipients = append(recipients, c.RecipientID)
		}
		unread[c.RecipientID] += delta[i]
	}
	nextSeq = make(map[int64]int64, len(recipients))
	args := make([]any, 0, min(len(recipients), batchRows))
	err = inBatches(t.w, len(recipients), latestChangesSQL, func(ctx context.Context, stmt *sql.Stmt, lo, hi int) error {
		args = args[:0]
		for _, id := range recipients[lo:hi] {
			args = append(args, id)
		}
		found := 0
		err := eachRow(ctx, stmt, args, func(row scanner) error {
			id, latest, err := scanLatestChange(row)
			if err != nil {
				return err
			}
			nextSeq[id] = latest.seq + 1
			unread[id] += latest.unread
			found++
			return nil
		})
		if err == nil && found != hi-lo {
			return social.Errorf(social.CodeNotFound, "recipient not found")
		}
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("inboxes: %w", err)
	}
	return nextSeq, unread, nil
}

// insertEvents inserts the events, whose ids are set, in id order.
func (t *tx) insertEvents(ctx context.Context, events map[eventKey]*event) error {
	es := make([]*event, 0, len(events))
	for _, e := range events {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *event) int { return cmp.Compare(a.id, b.id) })
	const cols = 12
	args := make([]any, 0, cols*min(len(es), batchRows))
	err := inBatches(t.w, len(es), func(rows int) string {
		return `INSERT INTO notification_events (id, message, action, action_id, by_user, action_content,
			affected, affected_id, created_at, group_key, first_id, last_id) VALUES ` + valueRows(rows, cols)
	}, func(ctx context.Context, stmt *sql.Stmt, lo, hi int) error {
		args = args[:0]
		for _, e := range es[lo:hi] {
			n := e.n
			args = append(args, e.id, n.Message, n.Action, n.ActionID, n.ByUser, nullString(n.ActionContent),
				nullString(string(n.Affected)), nullInt(n.AffectedID), millis(n.CreatedAt), e.groupKey, e.firstID, e.lastID)
		}
		_, err := stmt.ExecContext(ctx, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("insert events: %w", err)
	}
	return nil
}

// fillGroups sets the Groups of the ADDED changes of cs, whose IDs are
// set, updates their groups' rows in order, and writes every group row that
// w changed. A post notification's group is the notification alone, so its
// ADDED change reads and writes nothing.
func (t *tx) fillGroups(ctx context.Context, w *groupWriter, cs []social.Change) error {
	for i := range cs {
		c := &cs[i]
		if c.Kind != social.ChangeAdded {
			continue
		}
		if c.Notification.Action == social.ActionPost {
			c.Groups = []social.Group{social.PostGroup(c.Notification)}
			continue
		}
		g, err := w.added(ctx, c.Notification)
		if err != nil {
			return err
		}
		c.Groups = []social.Group{g}
	}
	return w.flush(ctx)
}

// apply carries out a REMOVED or READ change and returns the ids it
// changed, in increasing order, by how much it changed the recipient's
// unread count, and the notifications it changed. The ADDED changes of the
// notifications it removes move to inbox_changes.
func (t *tx) apply(ctx context.Context, c social.Change) ([]int64, int, []touched, error) {
	var changed []int64
	var ts []touched
	var moved []changeRow
	delta := 0
	err := inBatches(t.w, len(c.IDs), func(rows int) string {
		if c.Kind == social.ChangeRemoved {
			return `DELETE FROM notifications WHERE recipient_id = ? AND id IN (` +
				placeholders(rows) + `) RETURNING id, read, group_key, seq, unread_count, groups, event_id`
		}
		return `UPDATE notifications SET read = 1 WHERE recipient_id = ? AND read = 0 AND id IN (` +
			placeholders(rows) + `) RETURNING id, 0, group_key, seq, unread_count, groups, event_id`
	}, func(ctx context.Context, stmt *sql.Stmt, lo, hi int) error {
		args := make([]any, 0, 1+hi-lo)
		args = append(args, c.RecipientID)
		for _, id := range c.IDs[lo:hi] {
			args = append(args, id)
		}
		return eachRow(ctx, stmt, args, func(row scanner) error {
			var read bool
			var key string
			added := changeRow{recipientID: c.RecipientID, kind: social.ChangeAdded}
			err := row.Scan(&added.id, &read, &key, &added.seq, &added.unread, &added.groups, &added.eventID)
			if err != nil {
				return err
			}
			changed = append(changed, added.id)
			ts = append(ts, touched{id: added.id, key: key, unread: !read, eventID: added.eventID.Int64})
			if !read {
				delta--
			}
			if c.Kind == social.ChangeRemoved {
				moved = append(moved, added)
			}
			return nil
		})
	})
	if err == nil {
		err = t.insertChangeRows(ctx, moved)
	}
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%s: %w", strings.ToLower(string(c.Kind)), err)
	}
	slices.Sort(changed)
	return changed, delta, ts, nil
}

// insertChanges inserts the REMOVED and READ changes of cs, whose IDs,
// Seqs, counts and groups are set; an ADDED change is its notification's
// row.
func (t *tx) insertChanges(ctx context.Context, cs []social.Change) error {
	var rows []changeRow
	for _, c := range cs {
		if c.Kind == social.ChangeAdded {
			continue
		}
		groups, err := social.MarshalGroups(c.Groups)
		if err != nil {
			return err
		}
		rows = append(rows, changeRow{id: c.ID, recipientID: c.RecipientID, seq: c.Seq, kind: c.Kind,
			ids: sql.NullString{String: joinIDs(c.IDs), Valid: true}, unread: c.UnreadCount,
			groups: sql.NullString{String: groups, Valid: true}})
	}
	return t.insertChangeRows(ctx, rows)
}

// changeRow is a row of inbox_changes.
type changeRow struct {
	id, recipientID, seq int64
	kind                 social.ChangeKind
	ids                  sql.NullString
	unread               int
	groups               sql.NullString
	eventID              sql.NullInt64
}

// insertChangeRows inserts rows into inbox_changes.
func (t *tx) insertChangeRows(ctx context.Context, rows []changeRow) error {
	const cols = 8
	args := make([]any, 0, cols*min(len(rows), batchRows))
	err := inBatches(t.w, len(rows), func(n int) string {
		return `INSERT INTO inbox_changes (id, recipient_id, seq, kind, ids, unread_count, groups, event_id)
			VALUES ` + valueRows(n, cols)
	}, func(ctx context.Context, stmt *sql.Stmt, lo, hi int) error {
		args = args[:0]
		for _, r := range rows[lo:hi] {
			args = append(args, r.id, r.recipientID, r.seq, string(r.kind), r.ids, r.unread, r.groups, r.eventID)
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

// insertNotifications inserts the recipients' rows of ds, in order, with
// the groups of their ADDED changes among cs, but for post notifications: a
// post's group is the notification alone, which the reader derives
// (social.PostGroup).
func (t *tx) insertNotifications(ctx context.Context, ds []delivery, cs []social.Change) error {
	groups := make(map[int64]sql.NullString)
	for _, c := range cs {
		if c.Kind != social.ChangeAdded || c.Notification.Action == social.ActionPost {
			continue
		}
		g, err := social.MarshalGroups(c.Groups)
		if err != nil {
			return err
		}
		groups[c.ID] = sql.NullString{String: g, Valid: true}
	}
	const cols = 7
	args := make([]any, 0, cols*min(len(ds), batchRows))
	err := inBatches(t.w, len(ds), func(rows int) string {
		return `INSERT INTO notifications (id, recipient_id, seq, event_id, group_key, unread_count, groups) VALUES ` +
			valueRows(rows, cols)
	}, func(ctx context.Context, stmt *sql.Stmt, lo, hi int) error {
		args = args[:0]
		for _, d := range ds[lo:hi] {
			args = append(args, d.n.ID, d.n.RecipientID, d.n.Seq, d.event.id, d.event.groupKey, d.unread, groups[d.n.ID])
		}
		_, err := stmt.ExecContext(ctx, args...)
		return err
	})
	if err != nil {
		return fmt.Errorf("insert notifications: %w", err)
	}
	return nil
}
