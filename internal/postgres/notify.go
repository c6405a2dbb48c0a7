package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulse-social/pulse/internal/social"
)

// AddNotifications stores notifications (ID, Seq and Read are ignored) and
// returns them with their ID and Seq set, in the same order; see social.Tx.
// A recipient that is not a user is CodeNotFound, and then no counter has
// moved.
//
// It takes at most three round trips, whatever the number of
// notifications:
//
//  1. lock the recipients' user rows, in ID order
//     (SELECT ... ORDER BY id FOR NO KEY UPDATE), and check that they are
//     all there;
//  2. bump each recipient's users.notification_seq by its number of
//     notifications (one UPDATE ... FROM unnest(...) RETURNING), and only
//     then take as many ids from the notification_ids sequence (nextval),
//     both in one batch;
//  3. insert the rows (one INSERT ... SELECT FROM unnest(...)).
//
// With a single recipient, the common case, step 1 is left out: the UPDATE
// takes the same row lock itself, before nextval runs, and one lock has no
// order to keep.
//
// Each recipient's notifications get Seqs on from its old counter and ids
// in increasing order, both in input order, so that its IDs increase with
// its Seqs.
//
// Why a recipient's IDs and Seqs increase in commit order: say
// transactions A and B both notify recipient r, and A commits first. Both
// lock r's row before they take ids, and hold the lock until they end. Had
// B locked it first, A would have waited for B to end, and committed after
// B; so A locked it first, and B got the lock only once A had committed.
// B's UPDATE therefore reads the counter A committed and gives Seqs after
// A's. B's nextval calls come after it got the lock, so after A's commit,
// and A's came before; the sequence (CACHE 1) hands out increasing values
// across sessions, so B's ids are greater than A's. And as B commits after
// A, a snapshot that sees B's notifications sees A's: a reader never sees a
// later notification without the earlier ones. (Taking ids without the
// lock, as a bigserial default does at INSERT, breaks this: B may take its
// ids first and commit last.)
//
// Ids taken by a transaction that rolls back are lost, which leaves gaps
// in IDs but not in Seqs: the counter rolls back with it. Locking in ID
// order, in one statement, keeps transactions that notify overlapping sets
// of recipients from deadlocking. FOR NO KEY UPDATE, the lock the UPDATE
// takes anyway, does not conflict with the KEY SHARE locks that foreign
// key checks take, so rows that merely reference the recipients (their
// posts, their follows) are not held up.
func (t *tx) AddNotifications(ctx context.Context, ns []social.Notification) ([]social.Notification, error) {
	if len(ns) == 0 {
		return nil, nil
	}
	count := make(map[int64]int64)
	for _, n := range ns {
		count[n.RecipientID]++
	}
	recipients := make([]int64, 0, len(count))
	for r := range count {
		recipients = append(recipients, r)
	}
	slices.Sort(recipients)

	if len(recipients) > 1 {
		if err := t.lockRecipients(ctx, recipients); err != nil {
			return nil, err
		}
	}
	next, ids, err := t.reserve(ctx, recipients, count, len(ns))
	if err != nil {
		return nil, err
	}
	out := make([]social.Notification, len(ns))
	for i, n := range ns {
		n.ID = ids[i]
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
// distinct) by its count, and then takes n ids. It returns the first Seq
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
	created := make([]time.Time, n)
	for i, x := range ns {
		ids[i], recipients[i], seqs[i] = x.ID, x.RecipientID, x.Seq
		messages[i], actions[i], actionIDs[i] = x.Message, string(x.Action), x.ActionID
		byUsers[i], contents[i] = x.ByUser, x.ActionContent
		affected[i], affectedIDs[i] = string(x.Affected), x.AffectedID
		created[i] = x.CreatedAt
	}
	_, err := t.tx.Exec(ctx, `INSERT INTO notifications (id, recipient_id, seq, message, action, action_id,
			by_user, action_content, affected, affected_id, created_at)
		SELECT id, recipient_id, seq, message, action, action_id,
			by_user, nullif(action_content, ''), nullif(affected, ''), nullif(affected_id, 0), created_at
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::bigint[],
			$7::text[], $8::text[], $9::text[], $10::bigint[], $11::timestamptz[])
			AS n (id, recipient_id, seq, message, action, action_id,
				by_user, action_content, affected, affected_id, created_at)`,
		ids, recipients, seqs, messages, actions, actionIDs, byUsers, contents, affected, affectedIDs, created)
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	return nil
}
