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
// It takes one round trip, whatever the number of changes: it calls
// append_changes (migrations 12 to 14), which applies the REMOVED and READ
// changes, narrowing their ids; numbers the changes it keeps (the
// recipients' rows locked in ID order, their notification_seq and
// unread_count counters moved, ids taken from notification_ids under those
// locks; see the package doc for why this orders them by commit); inserts
// the added notifications; and updates and reads the state of every group
// the changes touched. The insert of the changes with their groups goes with the
// transaction's next statement or its COMMIT.
//
// The counts are consistent with the order of the changes: they come from
// the recipient's counter, which each transaction moves under the row lock
// that also orders its Seqs.
func (t *tx) AppendChanges(ctx context.Context, cs []social.Change) ([]social.Change, error) {
	if err := social.CheckChanges(cs); err != nil {
		return nil, err
	}
	args, err := appendArgs(cs)
	if err != nil {
		return nil, err
	}
	rows, err := t.tx.Query(ctx, `SELECT * FROM append_changes($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`, args...)
	if err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	var (
		out      []social.Change
		outIdx   []int32                      // each out change's input index, from 1
		groups   = map[int32][]social.Group{} // by input index, by key
		notFound bool
		r        appendRow
	)
	_, err = pgx.ForEachRow(rows, r.targets(), func() error {
		switch r.kind {
		case "N":
			notFound = true
		case "C":
			c := cs[r.idx-1]
			c.ID, c.Seq, c.UnreadCount = r.id, r.seq, int(r.unread)
			if c.Kind == social.ChangeAdded {
				n := *c.Notification
				n.ID, n.Seq, n.Read, n.CreatedAt = r.id, r.seq, false, stored(n.CreatedAt)
				c.Notification, c.RecipientID, c.IDs = &n, n.RecipientID, []int64{r.id}
			} else {
				c.IDs = slices.Clone(r.ids)
				// Groups the rows below do not carry: a removed post
				// notification's, empty.
				for _, key := range r.keys {
					if c.Kind == social.ChangeRemoved && social.IsPostGroupKey(key) {
						groups[r.idx] = append(groups[r.idx], social.EmptyGroup(key, time.Time{}))
					}
				}
			}
			out, outIdx = append(out, c), append(outIdx, r.idx)
		case "G":
			groups[r.idx] = append(groups[r.idx], r.group())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	if notFound {
		return nil, social.Errorf(social.CodeNotFound, "recipient not found")
	}
	if len(out) == 0 {
		return nil, nil
	}
	emptied := stored(time.Now())
	for i := range out {
		c := &out[i]
		if c.Kind == social.ChangeAdded && c.Notification.Action == social.ActionPost {
			c.Groups = []social.Group{social.PostGroup(c.Notification)}
			continue
		}
		c.Groups = groups[outIdx[i]]
		if len(c.Groups) == 0 {
			return nil, fmt.Errorf("append changes: append_changes returned no group for change %d", c.ID)
		}
		slices.SortFunc(c.Groups, func(a, b social.Group) int { return strings.Compare(a.Key, b.Key) })
		for j := range c.Groups {
			if c.Groups[j].Latest == nil {
				c.Groups[j].UpdatedAt = emptied
			}
		}
	}
	if err := t.queueChanges(out); err != nil {
		return nil, fmt.Errorf("append changes: %w", err)
	}
	return out, nil
}

// appendArgs returns append_changes' arguments for cs: every change's
// recipient; the REMOVED and READ changes' indexes, kinds and ids; the
// ADDED changes' indexes and notifications, a column array per field.
func appendArgs(cs []social.Change) ([]any, error) {
	recipients := make([]int64, len(cs))
	var rmIdx []int32
	var rmRead []bool
	var rmIDs []string
	var a struct {
		idx                                            []int32
		messages, actions, byUsers, contents, affected []string
		actionIDs, affectedIDs                         []int64
		created                                        []time.Time
		keys                                           []string
	}
	for i, c := range cs {
		idx := int32(i + 1)
		switch c.Kind {
		case social.ChangeAdded:
			n := c.Notification
			recipients[i] = n.RecipientID
			a.idx = append(a.idx, idx)
			a.messages, a.actions, a.actionIDs = append(a.messages, n.Message), append(a.actions, string(n.Action)), append(a.actionIDs, n.ActionID)
			a.byUsers, a.contents = append(a.byUsers, n.ByUser), append(a.contents, n.ActionContent)
			a.affected, a.affectedIDs = append(a.affected, string(n.Affected)), append(a.affectedIDs, n.AffectedID)
			a.created, a.keys = append(a.created, stored(n.CreatedAt)), append(a.keys, social.GroupKey(*n))
		case social.ChangeRemoved, social.ChangeRead:
			recipients[i] = c.RecipientID
			rmIdx, rmRead, rmIDs = append(rmIdx, idx), append(rmRead, c.Kind == social.ChangeRead), append(rmIDs, arrayLiteral(c.IDs))
		default:
			return nil, fmt.Errorf("append changes: unknown kind %q", c.Kind)
		}
	}
	return []any{recipients, rmIdx, rmRead, rmIDs, a.idx, a.messages, a.actions, a.actionIDs, a.byUsers,
		a.contents, a.affected, a.affectedIDs, a.created, a.keys}, nil
}

// arrayLiteral writes ids as a PostgreSQL array literal, {1,2,3}.
func arrayLiteral(ids []int64) string {
	var b strings.Builder
	b.WriteByte('{')
	for j, id := range ids {
		if j > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte('}')
	return b.String()
}

// appendRow is one row of append_changes.
type appendRow struct {
	kind            string
	idx             int32
	id, seq, unread int64
	ids             []int64
	keys            []string
	names           []string
	latest          []int64
	totals          [3]int32 // a group's notifications, unread ones, actors
	n               social.Notification
}

func (r *appendRow) targets() []any {
	return []any{&r.kind, &r.idx, &r.id, &r.seq, &r.ids, &r.unread, &r.keys,
		&r.names, &r.latest, &r.totals[0], &r.totals[1], &r.totals[2],
		&r.n.ID, &r.n.Seq, &r.n.RecipientID, &r.n.Message, &r.n.Action, &r.n.ActionID,
		&r.n.ByUser, &r.n.ActionContent, &r.n.Affected, &r.n.AffectedID, &r.n.Read, &r.n.CreatedAt}
}

// group returns the group of a 'G' row; an empty group's UpdatedAt is left
// for the caller to set.
func (r *appendRow) group() social.Group {
	actors := make([]social.GroupActor, len(r.names))
	for i := range actors {
		actors[i] = social.GroupActor{Username: r.names[i], LatestID: r.latest[i]}
	}
	t := social.GroupTotals{Notifications: int(r.totals[0]), Unread: int(r.totals[1]), Actors: int(r.totals[2])}
	var latest *social.Notification
	if r.n.ID != 0 {
		n := r.n
		n.CreatedAt = n.CreatedAt.UTC()
		latest = &n
	}
	return social.NewGroupOf(r.keys[0], actors, t, latest, time.Time{})
}

// queueChanges queues the insert of the changes, whose IDs, Seqs and
// counts are set, as one statement to send with the transaction's next
// one or its COMMIT (txConn.queue): nothing the action does next depends
// on its result, and a failure fails the transaction. An ADDED change's
// ids are NULL (its id is its notification's); the others' are an array
// literal cast per row.
func (t *tx) queueChanges(cs []social.Change) error {
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
			s := arrayLiteral(c.IDs)
			lists[i] = &s
		}
	}
	t.tx.queue("append changes: insert changes", `INSERT INTO inbox_changes (id, recipient_id, seq, kind, ids, unread_count, groups)
		SELECT id, recipient_id, seq, kind, ids::bigint[], unread_count, groups
		FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::integer[], $7::text[])
			AS c (id, recipient_id, seq, kind, ids, unread_count, groups)`,
		ids, recipients, seqs, kinds, lists, counts, groups)
	return nil
}
