package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulse-social/pulse/internal/social"
)

// querier runs queries on the pool (*pgxpool.Pool) or in a transaction
// (pgx.Tx).
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// reader implements social.Reader once, for reads outside transactions (on
// the pool) and inside them (on the pgx.Tx).
type reader struct {
	q querier
	// lock is appended to the reads of a post or comment: lockContent in a
	// transaction, "" outside.
	lock string
}

// lockContent makes a transaction that read a post or comment hold it until
// it ends: a concurrent delete of it waits, and one that committed first is
// seen, so that nothing is added to deleted content (a reaction has no
// foreign key to its target). FOR KEY SHARE conflicts with a DELETE only.
const lockContent = ` FOR KEY SHARE`

// stored returns t as the store keeps it: in UTC, to the microsecond (pgx
// drops the nanoseconds when it sends a time).
func stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// rowErr turns pgx.ErrNoRows into CodeNotFound ("<what> not found") and
// wraps any other error with op.
func rowErr(err error, op, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return social.Errorf(social.CodeNotFound, "%s not found", what)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// list runs a query and scans every row it returns.
func list[T any](ctx context.Context, q querier, scan func(pgx.Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (T, error) { return scan(row) })
}

const userColumns = `id, username, created_at`

func scanUser(row pgx.Row) (social.User, error) {
	var u social.User
	err := row.Scan(&u.ID, &u.Username, &u.CreatedAt)
	u.CreatedAt = u.CreatedAt.UTC()
	return u, err
}

// UserByID returns the user, or CodeNotFound.
func (r reader) UserByID(ctx context.Context, id int64) (social.User, error) {
	u, err := scanUser(r.q.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
	if err != nil {
		return social.User{}, rowErr(err, "user by id", "user")
	}
	return u, nil
}

// UserByUsername finds a user ignoring case, or returns CodeNotFound.
func (r reader) UserByUsername(ctx context.Context, username string) (social.User, error) {
	// The unique index on lower(username) serves it.
	u, err := scanUser(r.q.QueryRow(ctx,
		`SELECT `+userColumns+` FROM users WHERE lower(username) = lower($1)`, username))
	if err != nil {
		return social.User{}, rowErr(err, "user by username", "user")
	}
	return u, nil
}

// PasswordHash returns the user's password hash, or CodeNotFound.
func (r reader) PasswordHash(ctx context.Context, userID int64) ([]byte, error) {
	var hash []byte
	err := r.q.QueryRow(ctx, `SELECT password_hash FROM users WHERE id = $1`, userID).Scan(&hash)
	if err != nil {
		return nil, rowErr(err, "password hash", "user")
	}
	return hash, nil
}

const sessionColumns = `s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.user_agent`

func scanSession(row pgx.Row, extra ...any) (social.Session, error) {
	var sess social.Session
	err := row.Scan(append([]any{&sess.ID, &sess.UserID, &sess.CreatedAt, &sess.LastUsedAt, &sess.ExpiresAt, &sess.UserAgent}, extra...)...)
	sess.CreatedAt, sess.LastUsedAt, sess.ExpiresAt = sess.CreatedAt.UTC(), sess.LastUsedAt.UTC(), sess.ExpiresAt.UTC()
	return sess, err
}

// sessionUser reads one row of sessionColumns, the user's columns and a
// credential's expiry.
func sessionUser(row pgx.Row) (social.SessionUser, error) {
	var su social.SessionUser
	var err error
	su.Session, err = scanSession(row, &su.User.Username, &su.User.CreatedAt, &su.ExpiresAt)
	su.User.ID = su.Session.UserID
	su.User.CreatedAt, su.ExpiresAt = su.User.CreatedAt.UTC(), su.ExpiresAt.UTC()
	return su, err
}

// SessionUser returns the session, live at now, of the token with this
// hash (itself live at now), and its user; or CodeNotFound.
func (r reader) SessionUser(ctx context.Context, tokenHash []byte, now time.Time) (social.SessionUser, error) {
	su, err := sessionUser(r.q.QueryRow(ctx, `
		SELECT `+sessionColumns+`, u.username, u.created_at, t.expires_at
		FROM tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id
		WHERE t.hash = $1 AND t.expires_at > $2 AND s.expires_at > $2`,
		tokenHash, now))
	if err != nil {
		return social.SessionUser{}, rowErr(err, "session user", "session")
	}
	return su, nil
}

// LiveSession returns the session if it is live at now, or CodeNotFound.
func (r reader) LiveSession(ctx context.Context, id int64, now time.Time) (social.Session, error) {
	sess, err := scanSession(r.q.QueryRow(ctx,
		`SELECT `+sessionColumns+` FROM sessions s WHERE s.id = $1 AND s.expires_at > $2`, id, now))
	if err != nil {
		return social.Session{}, rowErr(err, "live session", "session")
	}
	return sess, nil
}

// UserSessions lists the user's sessions live at now, newest first.
func (r reader) UserSessions(ctx context.Context, userID int64, now time.Time) ([]social.Session, error) {
	ss, err := list(ctx, r.q, func(row pgx.Row) (social.Session, error) { return scanSession(row) },
		`SELECT `+sessionColumns+` FROM sessions s WHERE s.user_id = $1 AND s.expires_at > $2
		ORDER BY s.created_at DESC, s.id DESC`, userID, now)
	if err != nil {
		return nil, fmt.Errorf("user sessions: %w", err)
	}
	return ss, nil
}

// FollowCounts returns how many users follow userID and how many it follows.
func (r reader) FollowCounts(ctx context.Context, userID int64) (followers, following int, err error) {
	err = r.q.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM follows WHERE followee_id = $1),
		       (SELECT count(*) FROM follows WHERE follower_id = $1)`,
		userID).Scan(&followers, &following)
	if err != nil {
		return 0, 0, fmt.Errorf("follow counts: %w", err)
	}
	return followers, following, nil
}

const postColumns = `id, author_id, body, created_at`

func scanPost(row pgx.Row) (social.Post, error) {
	var p social.Post
	err := row.Scan(&p.ID, &p.AuthorID, &p.Body, &p.CreatedAt)
	p.CreatedAt = p.CreatedAt.UTC()
	return p, err
}

// PostByID returns the post, or CodeNotFound.
func (r reader) PostByID(ctx context.Context, id int64) (social.Post, error) {
	p, err := scanPost(r.q.QueryRow(ctx, `SELECT `+postColumns+` FROM posts WHERE id = $1`+r.lock, id))
	if err != nil {
		return social.Post{}, rowErr(err, "post by id", "post")
	}
	return p, nil
}

// commentColumns reads a NULL parent_id (no parent) as 0.
const commentColumns = `id, post_id, coalesce(parent_id, 0), author_id, body, created_at`

func scanComment(row pgx.Row) (social.Comment, error) {
	var c social.Comment
	err := row.Scan(&c.ID, &c.PostID, &c.ParentID, &c.AuthorID, &c.Body, &c.CreatedAt)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, err
}

// CommentByID returns the comment, or CodeNotFound.
func (r reader) CommentByID(ctx context.Context, id int64) (social.Comment, error) {
	c, err := scanComment(r.q.QueryRow(ctx, `SELECT `+commentColumns+` FROM comments WHERE id = $1`+r.lock, id))
	if err != nil {
		return social.Comment{}, rowErr(err, "comment by id", "comment")
	}
	return c, nil
}

// CommentsByPost lists a page of a post's comments, replies included,
// oldest first (by ID).
func (r reader) CommentsByPost(ctx context.Context, postID int64, page social.ListPage) ([]social.Comment, error) {
	cs, err := list(ctx, r.q, scanComment,
		`SELECT `+commentColumns+` FROM comments WHERE post_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		postID, page.After, page.Limit)
	if err != nil {
		return nil, fmt.Errorf("comments by post: %w", err)
	}
	return cs, nil
}

const reactionColumns = `id, user_id, kind, target_kind, target_id, created_at`

func scanReaction(row pgx.Row) (social.Reaction, error) {
	var x social.Reaction
	err := row.Scan(&x.ID, &x.UserID, &x.Kind, &x.TargetKind, &x.TargetID, &x.CreatedAt)
	x.CreatedAt = x.CreatedAt.UTC()
	return x, err
}

// Reactions lists a page of the reactions to one post or comment, oldest
// first (by ID).
func (r reader) Reactions(ctx context.Context, target social.ContentKind, targetID int64, page social.ListPage) ([]social.Reaction, error) {
	rs, err := list(ctx, r.q, scanReaction,
		`SELECT `+reactionColumns+` FROM reactions WHERE target_kind = $1 AND target_id = $2 AND id > $3 ORDER BY id LIMIT $4`,
		string(target), targetID, page.After, page.Limit)
	if err != nil {
		return nil, fmt.Errorf("reactions: %w", err)
	}
	return rs, nil
}

// ReactionOf returns userID's reaction to the target, or CodeNotFound.
func (r reader) ReactionOf(ctx context.Context, userID int64, target social.ContentKind, targetID int64) (social.Reaction, error) {
	x, err := scanReaction(r.q.QueryRow(ctx,
		`SELECT `+reactionColumns+` FROM reactions WHERE user_id = $1 AND target_kind = $2 AND target_id = $3`,
		userID, string(target), targetID))
	if err != nil {
		return social.Reaction{}, rowErr(err, "reaction of user", "reaction")
	}
	return x, nil
}

// notificationColumns reads the NULLs of absent values as "" and 0.
const notificationColumns = `id, seq, recipient_id, message, action, action_id, by_user,
	coalesce(action_content, ''), coalesce(affected, ''), coalesce(affected_id, 0), read, created_at`

func scanNotification(row pgx.Row) (social.Notification, error) {
	var n social.Notification
	err := row.Scan(notificationTargets(&n)...)
	n.CreatedAt = n.CreatedAt.UTC()
	return n, err
}

// notificationTargets returns the scan targets of notificationColumns.
func notificationTargets(n *social.Notification) []any {
	return []any{&n.ID, &n.Seq, &n.RecipientID, &n.Message, &n.Action, &n.ActionID, &n.ByUser,
		&n.ActionContent, &n.Affected, &n.AffectedID, &n.Read, &n.CreatedAt}
}

// Notifications lists a user's notifications newest first (by ID
// descending): at most q.Limit of them, only those with ID < q.BeforeID
// when it is not 0, only unread ones when q.UnreadOnly.
func (r reader) Notifications(ctx context.Context, userID int64, q social.NotificationQuery) ([]social.Notification, error) {
	// One statement per combination, rather than conditions on the
	// arguments, so that each gets a plan on the right index.
	var b strings.Builder
	b.WriteString(`SELECT ` + notificationColumns + ` FROM notifications WHERE recipient_id = $1`)
	args := []any{userID}
	if q.BeforeID != 0 {
		args = append(args, q.BeforeID)
		fmt.Fprintf(&b, ` AND id < $%d`, len(args))
	}
	if q.UnreadOnly {
		// Literally "NOT read", the predicate of the partial index.
		b.WriteString(` AND NOT read`)
	}
	args = append(args, q.Limit)
	fmt.Fprintf(&b, ` ORDER BY id DESC LIMIT $%d`, len(args))
	ns, err := list(ctx, r.q, scanNotification, b.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	return ns, nil
}

// ChangesAfterSeq lists a user's inbox changes with Seq > afterSeq, oldest
// first, at most limit of them, each ADDED one with its notification if it
// is still there.
func (r reader) ChangesAfterSeq(ctx context.Context, userID, afterSeq int64, limit int) ([]social.Change, error) {
	cs, err := list(ctx, r.q, func(row pgx.Row) (social.Change, error) {
		var c social.Change
		var nid *int64
		var n social.Notification
		var content, affected *string
		var affectedID *int64
		var seq, recipient, actionID *int64
		var message, action, byUser *string
		var read *bool
		var created *time.Time
		var groups *string
		err := row.Scan(&c.ID, &c.Seq, &c.RecipientID, &c.Kind, &c.IDs, &c.UnreadCount, &groups,
			&nid, &seq, &recipient, &message, &action, &actionID, &byUser,
			&content, &affected, &affectedID, &read, &created)
		if err == nil && groups != nil {
			c.Groups, err = social.UnmarshalGroups(*groups)
		}
		if err != nil || nid == nil {
			return c, err
		}
		n = social.Notification{ID: *nid, Seq: *seq, RecipientID: *recipient, Message: *message,
			Action: social.Action(*action), ActionID: *actionID, ByUser: *byUser,
			ActionContent: *content, Affected: social.ContentKind(*affected), AffectedID: *affectedID,
			Read: *read, CreatedAt: created.UTC()}
		c.Notification = &n
		return c, nil
	}, `SELECT c.id, c.seq, c.recipient_id, c.kind, coalesce(c.ids, ARRAY[c.id]), c.unread_count, c.groups,
			n.id, n.seq, n.recipient_id, n.message, n.action, n.action_id, n.by_user,
			coalesce(n.action_content, ''), coalesce(n.affected, ''), coalesce(n.affected_id, 0), n.read, n.created_at
		FROM inbox_changes c LEFT JOIN notifications n ON c.kind = 'ADDED' AND n.id = c.id
		WHERE c.recipient_id = $1 AND c.seq > $2 ORDER BY c.seq LIMIT $3`,
		userID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("changes after seq: %w", err)
	}
	if ids := social.LatestIDs(cs); len(ids) > 0 {
		ns, err := list(ctx, r.q, scanNotification, `SELECT `+notificationColumns+` FROM notifications
			WHERE recipient_id = $1 AND id = ANY($2)`, userID, ids)
		if err != nil {
			return nil, fmt.Errorf("changes after seq: latest: %w", err)
		}
		latest := make(map[int64]social.Notification, len(ns))
		for _, n := range ns {
			latest[n.ID] = n
		}
		social.FillLatest(cs, latest)
	}
	return cs, nil
}

// NotificationGroups lists a user's non-empty groups, the one with the
// newest notification first; see social.Reader. The keys come from the
// (recipient_id, group_key, id) index; each group is then read by key, in
// the same snapshot: a transaction's, or Store.NotificationGroups' own.
func (r reader) NotificationGroups(ctx context.Context, userID int64, q social.NotificationQuery) ([]social.Group, error) {
	having := `max(id) < $2`
	if q.UnreadOnly {
		having += ` AND bool_or(NOT read)`
	}
	before := q.BeforeID
	if before == 0 {
		before = math.MaxInt64
	}
	keys, err := list(ctx, r.q, func(row pgx.Row) (string, error) {
		var key string
		return key, row.Scan(&key)
	}, `SELECT group_key FROM notifications WHERE recipient_id = $1 GROUP BY group_key
		HAVING `+having+` ORDER BY max(id) DESC LIMIT $3`, userID, before, q.Limit)
	if err != nil {
		return nil, fmt.Errorf("notification groups: %w", err)
	}
	gs, err := social.ReadGroups(keys, func(key string) (social.Group, error) {
		return r.group(ctx, userID, key)
	})
	if err != nil {
		return nil, fmt.Errorf("notification groups: %w", err)
	}
	return gs, nil
}

// group reads the current state of a user's group in one statement: its
// totals from its row of inbox_groups (a post notification's, which has
// none, from the notification), its most recent actors from group_recent,
// and its newest notification, the most recent actor's. An empty group has
// no row.
func (r reader) group(ctx context.Context, userID int64, key string) (social.Group, error) {
	totals := `SELECT notifications, unread, actors FROM inbox_groups WHERE recipient_id = $1 AND group_key = $2`
	if social.IsPostGroupKey(key) {
		totals = `SELECT count(*)::int, (count(*) FILTER (WHERE NOT read))::int, count(*)::int
			FROM notifications WHERE recipient_id = $1 AND group_key = $2`
	}
	var t social.GroupTotals
	var names []string
	var ids []int64
	var n social.Notification
	err := r.q.QueryRow(ctx, `SELECT t.*, a.names, a.ids, n.* FROM (`+totals+`) t (notifications, unread, actors)
		CROSS JOIN LATERAL (SELECT array_agg(g.by_user ORDER BY g.latest DESC) AS names,
				array_agg(g.latest ORDER BY g.latest DESC) AS ids
			FROM group_recent($1, $2, $3, least(t.actors, $4)) g) a
		CROSS JOIN LATERAL (SELECT `+notificationColumns+` FROM notifications WHERE id = a.ids[1]) n`,
		userID, key, int64(math.MaxInt64), social.MaxSampleActors).Scan(
		append([]any{&t.Notifications, &t.Unread, &t.Actors, &names, &ids}, notificationTargets(&n)...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return social.EmptyGroup(key, time.Time{}), nil
	}
	if err != nil {
		return social.Group{}, fmt.Errorf("group %s: %w", key, err)
	}
	n.CreatedAt = n.CreatedAt.UTC()
	actors := make([]social.GroupActor, len(names))
	for i := range actors {
		actors[i] = social.GroupActor{Username: names[i], LatestID: ids[i]}
	}
	return social.NewGroupOf(key, actors, t, &n, time.Time{}), nil
}

// GroupUnreadIDs lists the IDs of the user's unread notifications in the
// group with this key, oldest first.
func (r reader) GroupUnreadIDs(ctx context.Context, userID int64, key string) ([]int64, error) {
	ids, err := list(ctx, r.q, func(row pgx.Row) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	}, `SELECT id FROM notifications WHERE recipient_id = $1 AND group_key = $2 AND NOT read ORDER BY id`,
		userID, key)
	if err != nil {
		return nil, fmt.Errorf("group unread ids: %w", err)
	}
	return ids, nil
}

// SeqAtID returns the greatest Seq among the user's changes with ID <= id
// (0 if there is none). With id <= 0 it returns the greatest Seq of all the
// user's changes.
func (r reader) SeqAtID(ctx context.Context, userID, id int64) (int64, error) {
	// A recipient's Seq and ID increase together: the (recipient_id, seq)
	// index is read newest first, skipping changes newer than id.
	var row pgx.Row
	if id <= 0 {
		row = r.q.QueryRow(ctx,
			`SELECT coalesce(max(seq), 0) FROM inbox_changes WHERE recipient_id = $1`, userID)
	} else {
		row = r.q.QueryRow(ctx, `SELECT coalesce((
			SELECT seq FROM inbox_changes WHERE recipient_id = $1 AND id <= $2 ORDER BY seq DESC LIMIT 1
		), 0)`, userID, id)
	}
	var seq int64
	if err := row.Scan(&seq); err != nil {
		return 0, fmt.Errorf("seq at id: %w", err)
	}
	return seq, nil
}

// UnreadIDs lists the IDs of the user's unread notifications, oldest
// first, only those with ID <= upTo when upTo is not 0.
func (r reader) UnreadIDs(ctx context.Context, userID, upTo int64) ([]int64, error) {
	if upTo <= 0 {
		upTo = math.MaxInt64
	}
	ids, err := list(ctx, r.q, func(row pgx.Row) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	}, `SELECT id FROM notifications WHERE recipient_id = $1 AND NOT read AND id <= $2 ORDER BY id`, userID, upTo)
	if err != nil {
		return nil, fmt.Errorf("unread ids: %w", err)
	}
	return ids, nil
}

// NotificationsCausedBy lists the notifications, of any recipient, that any
// of causes caused, in ID order.
func (r reader) NotificationsCausedBy(ctx context.Context, causes []social.Cause) ([]social.Notification, error) {
	actions, ids := make([]string, len(causes)), make([]int64, len(causes))
	for i, c := range causes {
		actions[i], ids[i] = string(c.Action), c.ActionID
	}
	ns, err := list(ctx, r.q, scanNotification, `SELECT `+notificationColumns+` FROM notifications
		WHERE (action, action_id) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))
		ORDER BY id`, actions, ids)
	if err != nil {
		return nil, fmt.Errorf("notifications caused by: %w", err)
	}
	return ns, nil
}

// UnreadCount returns the user's unread count, the counter every change
// moves under the user's row lock (migration 12).
func (r reader) UnreadCount(ctx context.Context, userID int64) (int, error) {
	var n int
	err := r.q.QueryRow(ctx,
		`SELECT coalesce((SELECT unread_count FROM users WHERE id = $1), 0)`, userID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("unread count: %w", err)
	}
	return n, nil
}

// NotificationGroups reads the groups in one read-only REPEATABLE READ
// transaction, so that each group's actors and newest notification come
// from one snapshot, whatever commits meanwhile.
func (s *Store) NotificationGroups(ctx context.Context, userID int64, q social.NotificationQuery) ([]social.Group, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("notification groups: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	return reader{q: tx}.NotificationGroups(ctx, userID, q)
}
