package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulse-social/pulse/internal/social"
)

// AppendChanges changes inboxes and records the changes; see social.Tx.
// A recipient that is not a user is CodeNotFound, and then no counter has
// moved.
//
// It first applies the REMOVED and READ changes, in one batch of DELETE
// or UPDATE ... RETURNING statements, which narrows their ids. It then
// numbers the changes it keeps (the recipients' rows locked in ID order,
// their notification_seq counters bumped, ids taken from notification_ids
// under those locks; see the package doc for why this orders them by
// commit),
// inserts the added notifications, counts each recipient's unread
// notifications, derives every change's count from that, and inserts the
// changes: a fixed number of round trips, whatever the number of changes.
//
// The counts are consistent with the order of the changes: another
// transaction that changes one of these inboxes takes the same row lock
// before it counts, so it counts after this one committed, or before this
// one counted and then with a smaller Seq.
func (t *tx) AppendChanges(ctx context.Context, cs []social.Change) ([]social.Change, error) {
	out, delta, keys, err := t.apply(ctx, cs)
	if err != nil || len(out) == 0 {
		return nil, err
	}
	count := make(map[int64]int64)
	for _, c := range out {
		count[c.RecipientID]++
	}
	recipients := social.Recipients(out)
	slices.Sort(recipients)
	if len(recipients) > 1 {
		if err := t.lockRecipients(ctx, recipients); err != nil {
			return nil, err
		}
	}
	next, ids, err := t.reserve(ctx, recipients, count, len(out))
	if err != nil {
		return nil, err
	}
	var added []social.Notification
	for i := range out {
		c := &out[i]
		c.ID, c.Seq = ids[i], next[c.RecipientID]
		next[c.RecipientID]++
		if c.Kind == social.ChangeAdded {
			c.Notification.ID, c.Notification.Seq = c.ID, c.Seq
			c.IDs = []int64{c.ID}
			added = append(added, *c.Notification)
		}
	}
	if len(added) > 0 {
		if err := t.insertNotifications(ctx, added); err != nil {
			return nil, fmt.Errorf("append changes: %w", err)
		}
	}
	rows, err := t.tx.Query(ctx, `SELECT recipient_id, count(*) FROM notifications
		WHERE recipient_id = ANY($1) AND NOT read GROUP BY recipient_id`, recipients)
	if err != nil {
		return nil, fmt.Errorf("append changes: unread counts: %w", err)
	}
	final := make(map[int64]int, len(recipients))
	var id int64
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error { final[id] = n; return nil }); err != nil {
		return nil, fmt.Errorf("append changes: unread counts: %w", err)
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

// apply carries out the REMOVED and READ changes of cs and returns the
// changes to record, REMOVED and READ ones narrowed to the ids they changed
// (in increasing order), with by how much each changed its recipient's
// unread count and the keys of the groups it touched (nil for ADDED).
func (t *tx) apply(ctx context.Context, cs []social.Change) ([]social.Change, []int, [][]string, error) {
	var b pgx.Batch
	for _, c := range cs {
		switch c.Kind {
		case social.ChangeAdded:
		case social.ChangeRemoved:
			b.Queue(`DELETE FROM notifications WHERE recipient_id = $1 AND id = ANY($2) RETURNING id, read, group_key`,
				c.RecipientID, c.IDs)
		case social.ChangeRead:
			b.Queue(`UPDATE notifications SET read = true WHERE recipient_id = $1 AND NOT read AND id = ANY($2)
				RETURNING id, false, group_key`, c.RecipientID, c.IDs)
		default:
			return nil, nil, nil, fmt.Errorf("append changes: unknown kind %q", c.Kind)
		}
	}
	var res pgx.BatchResults
	if b.Len() > 0 {
		res = t.tx.SendBatch(ctx, &b)
		defer res.Close()
	}
	out := make([]social.Change, 0, len(cs))
	delta := make([]int, 0, len(cs))
	keys := make([][]string, 0, len(cs))
	for _, c := range cs {
		if c.Kind == social.ChangeAdded {
			n := *c.Notification
			n.Read = false
			n.CreatedAt = stored(n.CreatedAt)
			c.Notification, c.RecipientID = &n, n.RecipientID
			out, delta, keys = append(out, c), append(delta, 1), append(keys, nil)
			continue
		}
		rows, err := res.Query()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("append changes: %s: %w", strings.ToLower(string(c.Kind)), err)
		}
		var changed []int64
		var touched []string
		d := 0
		var id int64
		var read bool
		var key string
		_, err = pgx.ForEachRow(rows, []any{&id, &read, &key}, func() error {
			changed = append(changed, id)
			touched = social.AddKey(touched, key)
			if !read {
				d--
			}
			return nil
		})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("append changes: %s: %w", strings.ToLower(string(c.Kind)), err)
		}
		if len(changed) == 0 {
			continue
		}
		slices.Sort(changed)
		slices.Sort(touched)
		c.IDs = changed
		out, delta, keys = append(out, c), append(delta, d), append(keys, touched)
	}
	if res != nil {
		if err := res.Close(); err != nil {
			return nil, nil, nil, fmt.Errorf("append changes: %w", err)
		}
	}
	return out, delta, keys, nil
}

// insertChanges inserts the changes, whose IDs, Seqs and counts are set,
// with one statement. An ADDED change's ids are NULL (its id is its
// notification's); the others' are an array literal cast per row.
func (t *tx) insertChanges(ctx context.Context, cs []social.Change) error {
	n := len(cs)
	ids, recipients, seqs := make([]int64, n), make([]int64, n), make([]int64, n)
	kinds, lists, counts := make([]string, n), make([]*string, n), make([]int32, n)
	groups := make([]string, n)
	for i, c := range cs {
		var err error
		if groups[i], err = social.MarshalGroups(c.Groups); err != nil {
			return fmt.Errorf("insert changes: %w", err)
		}
		ids[i], recipients[i], seqs[i] = c.ID, c.RecipientID, c.Seq
		kinds[i], counts[i] = string(c.Kind), int32(c.UnreadCount)
		if c.Kind != social.ChangeAdded {
			var b strings.Builder
			b.WriteByte('{')
			for j, id := range c.IDs {
				if j > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.FormatInt(id, 10))
			}
			b.WriteByte('}')
			s := b.String()
			lists[i] = &s
		}
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO inbox_changes (id, recipient_id, seq, kind, ids, unread_count, groups)
		SELECT id, recipient_id, seq, kind, ids::bigint[], unread_count, groups
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::integer[], $7::text[])
			AS c (id, recipient_id, seq, kind, ids, unread_count, groups)`,
		ids, recipients, seqs, kinds, lists, counts, groups)
	if err != nil {
		return fmt.Errorf("insert changes: %w", err)
	}
	return nil
}

// lockRecipients locks the user rows of recipients, which are sorted and
// distinct, in that order until the transaction ends. A recipient that is
// not a user is CodeNotFound.
func (t *tx) lockRecipients(ctx context.Context, recipients []int64) error {
	rows, err := t.tx.Query(ctx,
		`SELECT id FROM users WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`, recipients)
	if err != nil {
		return fmt.Errorf("add notifications: lock recipients: %w", err)
	}
	locked, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return fmt.Errorf("add notifications: lock recipients: %w", err)
	}
	if len(locked) != len(recipients) {
		return social.Errorf(social.CodeNotFound, "recipient not found")
	}
	return nil
}

// reserve bumps the notification_seq of each of recipients (sorted and
// distinct) by its count of changes, and then takes n ids. It returns the first Seq
// reserved for each recipient, and the ids in increasing order. Unless the
// transaction has locked the recipients' rows already, there must be one
// recipient only; if it is not a user, reserve returns CodeNotFound and has
// bumped nothing.
func (t *tx) reserve(ctx context.Context, recipients []int64, count map[int64]int64, n int) (map[int64]int64, []int64, error) {
	counts := make([]int64, len(recipients))
	for i, r := range recipients {
		counts[i] = count[r]
	}
	var b pgx.Batch
	b.Queue(`UPDATE users u SET notification_seq = u.notification_seq + c.n
		FROM unnest($1::bigint[], $2::bigint[]) AS c (id, n)
		WHERE u.id = c.id
		RETURNING u.id, u.notification_seq`, recipients, counts)
	b.Queue(`SELECT nextval('notification_ids') FROM generate_series(1, $1)`, n)
	res := t.tx.SendBatch(ctx, &b)
	defer res.Close()

	rows, err := res.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("add notifications: reserve seqs: %w", err)
	}
	first := make(map[int64]int64, len(recipients))
	var id, seq int64
	_, err = pgx.ForEachRow(rows, []any{&id, &seq}, func() error {
		first[id] = seq - count[id] + 1
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("add notifications: reserve seqs: %w", err)
	}
	if len(first) != len(recipients) {
		return nil, nil, social.Errorf(social.CodeNotFound, "recipient not found")
	}

	rows, err = res.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("add notifications: reserve ids: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, nil, fmt.Errorf("add notifications: reserve ids: %w", err)
	}
	slices.Sort(ids)
	return first, ids, res.Close()
}

// insertNotifications inserts ns, whose IDs and Seqs are set, with one
// statement: a column array per field, zipped by unnest.
func (t *tx) insertNotifications(ctx context.Context, ns []social.Notification) error {
	n := len(ns)
	ids, recipients, seqs := make([]int64, n), make([]int64, n), make([]int64, n)
	messages, actions, actionIDs := make([]string, n), make([]string, n), make([]int64, n)
	byUsers, contents := make([]string, n), make([]string, n)
	affected, affectedIDs := make([]string, n), make([]int64, n)
	created, keys := make([]time.Time, n), make([]string, n)
	for i, x := range ns {
		keys[i] = social.GroupKey(x)
		ids[i], recipients[i], seqs[i] = x.ID, x.RecipientID, x.Seq
		messages[i], actions[i], actionIDs[i] = x.Message, string(x.Action), x.ActionID
		byUsers[i], contents[i] = x.ByUser, x.ActionContent
		affected[i], affectedIDs[i] = string(x.Affected), x.AffectedID
		created[i] = x.CreatedAt
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO notifications (id, recipient_id, seq, message, action, action_id,
			by_user, action_content, affected, affected_id, created_at, group_key)
		SELECT id, recipient_id, seq, message, action, action_id,
			by_user, nullif(action_content, ''), nullif(affected, ''), nullif(affected_id, 0), created_at, group_key
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
			$7::text[], $8::text[], $9::text[], $10::bigint[], $11::timestamptz[], $12::text[])
			AS n (id, recipient_id, seq, message, action, action_id,
				by_user, action_content, affected, affected_id, created_at, group_key)`,
		ids, recipients, seqs, messages, actions, actionIDs, byUsers, contents, affected, affectedIDs, created, keys)
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}
