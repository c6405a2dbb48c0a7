package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

// querier runs queries: on the read pool (pool), in a read transaction
// (txQuerier), or in a write transaction (writerConn).
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// reader implements social.Reader once, for reads outside transactions (on
// the read pool) and inside them.
type reader struct {
	q querier
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// Times are stored as INTEGER unix milliseconds and read back in UTC.

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// stored returns t as the store keeps it: in UTC, to the millisecond.
func stored(t time.Time) time.Time { return fromMillis(millis(t)) }

// rowErr turns sql.ErrNoRows into CodeNotFound ("<what> not found") and
// wraps any other error with op.
func rowErr(err error, op, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return social.Errorf(social.CodeNotFound, "%s not found", what)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// list runs a query and scans every row it returns.
func list[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

const userColumns = `id, username, created_at`

func scanUser(s scanner) (social.User, error) {
	var u social.User
	var created int64
	err := s.Scan(&u.ID, &u.Username, &created)
	u.CreatedAt = fromMillis(created)
	return u, err
}

// UserByID returns the user, or CodeNotFound.
func (r reader) UserByID(ctx context.Context, id int64) (social.User, error) {
	u, err := scanUser(r.q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if err != nil {
		return social.User{}, rowErr(err, "user by id", "user")
	}
	return u, nil
}

// UserByUsername finds a user ignoring case, or returns CodeNotFound.
func (r reader) UserByUsername(ctx context.Context, username string) (social.User, error) {
	// The column's COLLATE NOCASE makes = ignore case, and the unique index
	// serves it.
	u, err := scanUser(r.q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if err != nil {
		return social.User{}, rowErr(err, "user by username", "user")
	}
	return u, nil
}

// PasswordHash returns the user's password hash, or CodeNotFound.
func (r reader) PasswordHash(ctx context.Context, userID int64) ([]byte, error) {
	var hash []byte
	err := r.q.QueryRowContext(ctx, `SELECT password_hash FROM users WHERE id = ?`, userID).Scan(&hash)
	if err != nil {
		return nil, rowErr(err, "password hash", "user")
	}
	return hash, nil
}

const sessionColumns = `s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.user_agent`

func scanSession(sc scanner, extra ...any) (social.Session, error) {
	var sess social.Session
	var created, used, expires int64
	err := sc.Scan(append([]any{&sess.ID, &sess.UserID, &created, &used, &expires, &sess.UserAgent}, extra...)...)
	sess.CreatedAt, sess.LastUsedAt, sess.ExpiresAt = fromMillis(created), fromMillis(used), fromMillis(expires)
	return sess, err
}

// sessionUser reads one row of sessionColumns, the user's columns and a
// credential's expiry.
func sessionUser(row scanner) (social.SessionUser, error) {
	var su social.SessionUser
	var userCreated, expires int64
	var err error
	su.Session, err = scanSession(row, &su.User.Username, &userCreated, &expires)
	su.User.ID = su.Session.UserID
	su.User.CreatedAt, su.ExpiresAt = fromMillis(userCreated), fromMillis(expires)
	return su, err
}

// SessionUser returns the session, live at now, of the token with this
// hash (itself live at now), and its user; or CodeNotFound.
func (r reader) SessionUser(ctx context.Context, tokenHash []byte, now time.Time) (social.SessionUser, error) {
	su, err := sessionUser(r.q.QueryRowContext(ctx, `
		SELECT `+sessionColumns+`, u.username, u.created_at, t.expires_at
		FROM tokens t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id
		WHERE t.hash = ?1 AND t.expires_at > ?2 AND s.expires_at > ?2`,
		tokenHash, millis(now)))
	if err != nil {
		return social.SessionUser{}, rowErr(err, "session user", "session")
	}
	return su, nil
}

// LiveSession returns the session if it is live at now, or CodeNotFound.
func (r reader) LiveSession(ctx context.Context, id int64, now time.Time) (social.Session, error) {
	sess, err := scanSession(r.q.QueryRowContext(ctx,
		`SELECT `+sessionColumns+` FROM sessions s WHERE s.id = ? AND s.expires_at > ?`, id, millis(now)))
	if err != nil {
		return social.Session{}, rowErr(err, "live session", "session")
	}
	return sess, nil
}

// UserSessions lists the user's sessions live at now, newest first.
func (r reader) UserSessions(ctx context.Context, userID int64, now time.Time) ([]social.Session, error) {
	ss, err := list(ctx, r.q, func(sc scanner) (social.Session, error) { return scanSession(sc) },
		`SELECT `+sessionColumns+` FROM sessions s WHERE s.user_id = ? AND s.expires_at > ?
		ORDER BY s.created_at DESC, s.id DESC`, userID, millis(now))
	if err != nil {
		return nil, fmt.Errorf("user sessions: %w", err)
	}
	return ss, nil
}

// FollowCounts returns how many users follow userID and how many it follows.
func (r reader) FollowCounts(ctx context.Context, userID int64) (followers, following int, err error) {
	err = r.q.QueryRowContext(ctx, `
		SELECT (SELECT count(*) FROM follows WHERE followee_id = ?1),
		       (SELECT count(*) FROM follows WHERE follower_id = ?1)`,
		userID).Scan(&followers, &following)
	if err != nil {
		return 0, 0, fmt.Errorf("follow counts: %w", err)
	}
	return followers, following, nil
}

const postColumns = `id, author_id, body, created_at`

func scanPost(s scanner) (social.Post, error) {
	var p social.Post
	var created int64
	err := s.Scan(&p.ID, &p.AuthorID, &p.Body, &created)
	p.CreatedAt = fromMillis(created)
	return p, err
}

// PostByID returns the post, or CodeNotFound.
func (r reader) PostByID(ctx context.Context, id int64) (social.Post, error) {
	p, err := scanPost(r.q.QueryRowContext(ctx, `SELECT `+postColumns+` FROM posts WHERE id = ?`, id))
	if err != nil {
		return social.Post{}, rowErr(err, "post by id", "post")
	}
	return p, nil
}

const commentColumns = `id, post_id, parent_id, author_id, body, created_at`

func scanComment(s scanner) (social.Comment, error) {
	var c social.Comment
	var parent sql.NullInt64
	var created int64
	err := s.Scan(&c.ID, &c.PostID, &parent, &c.AuthorID, &c.Body, &created)
	c.ParentID = parent.Int64
	c.CreatedAt = fromMillis(created)
	return c, err
}

// CommentByID returns the comment, or CodeNotFound.
func (r reader) CommentByID(ctx context.Context, id int64) (social.Comment, error) {
	c, err := scanComment(r.q.QueryRowContext(ctx, `SELECT `+commentColumns+` FROM comments WHERE id = ?`, id))
	if err != nil {
		return social.Comment{}, rowErr(err, "comment by id", "comment")
	}
	return c, nil
}

// CommentsByPost lists a page of a post's comments, replies included,
// oldest first (by ID).
func (r reader) CommentsByPost(ctx context.Context, postID int64, page social.ListPage) ([]social.Comment, error) {
	cs, err := list(ctx, r.q, scanComment,
		`SELECT `+commentColumns+` FROM comments WHERE post_id = ? AND id > ? ORDER BY id LIMIT ?`,
		postID, page.After, page.Limit)
	if err != nil {
		return nil, fmt.Errorf("comments by post: %w", err)
	}
	return cs, nil
}

const reactionColumns = `id, user_id, kind, target_kind, target_id, created_at`

func scanReaction(s scanner) (social.Reaction, error) {
	var x social.Reaction
	var created int64
	err := s.Scan(&x.ID, &x.UserID, &x.Kind, &x.TargetKind, &x.TargetID, &created)
	x.CreatedAt = fromMillis(created)
	return x, err
}

// Reactions lists a page of the reactions to one post or comment, oldest
// first (by ID).
func (r reader) Reactions(ctx context.Context, target social.ContentKind, targetID int64, page social.ListPage) ([]social.Reaction, error) {
	rs, err := list(ctx, r.q, scanReaction,
		`SELECT `+reactionColumns+` FROM reactions WHERE target_kind = ? AND target_id = ? AND id > ? ORDER BY id LIMIT ?`,
		target, targetID, page.After, page.Limit)
	if err != nil {
		return nil, fmt.Errorf("reactions: %w", err)
	}
	return rs, nil
}

// ReactionOf returns userID's reaction to the target, or CodeNotFound.
func (r reader) ReactionOf(ctx context.Context, userID int64, target social.ContentKind, targetID int64) (social.Reaction, error) {
	x, err := scanReaction(r.q.QueryRowContext(ctx,
		`SELECT `+reactionColumns+` FROM reactions WHERE user_id = ? AND target_kind = ? AND target_id = ?`,
		userID, target, targetID))
	if err != nil {
		return social.Reaction{}, rowErr(err, "reaction of user", "reaction")
	}
	return x, nil
}

// notificationColumns are a notification's, read from notificationsFrom:
// the recipient's row (n) joined with its event (e).
const notificationColumns = `n.id, n.seq, n.recipient_id, e.message, e.action, e.action_id, e.by_user,
	e.action_content, e.affected, e.affected_id, n.read, e.created_at`

const notificationsFrom = `notifications n JOIN notification_events e ON e.id = n.event_id`

func scanNotification(s scanner) (social.Notification, error) {
	var n social.Notification
	var content, affected sql.NullString
	var affectedID sql.NullInt64
	var created int64
	err := s.Scan(&n.ID, &n.Seq, &n.RecipientID, &n.Message, &n.Action, &n.ActionID, &n.ByUser,
		&content, &affected, &affectedID, &n.Read, &created)
	n.ActionContent = content.String
	n.Affected = social.ContentKind(affected.String)
	n.AffectedID = affectedID.Int64
	n.CreatedAt = fromMillis(created)
	return n, err
}

// Notifications lists a user's notifications newest first (by ID
// descending): at most q.Limit of them, only those with ID < q.BeforeID
// when it is not 0, only unread ones when q.UnreadOnly.
//
// A recipient's IDs and Seqs increase together, so newest first is Seq
// descending, which the (recipient_id, seq) index serves; BeforeID becomes
// a bound on Seq. Unread ones come from their partial index, in ID order.
func (r reader) Notifications(ctx context.Context, userID int64, q social.NotificationQuery) ([]social.Notification, error) {
	var query string
	args := []any{userID}
	switch {
	case q.UnreadOnly:
		// Literally "read = 0", so that the partial index serves it.
		query = `SELECT ` + notificationColumns + ` FROM ` + notificationsFrom + `
			WHERE n.recipient_id = ? AND n.read = 0 AND n.id < ? ORDER BY n.id DESC LIMIT ?`
		args = append(args, cmp.Or(q.BeforeID, math.MaxInt64))
	case q.BeforeID != 0:
		var seq int64 // IDs are positive: nothing is before 1
		if q.BeforeID > 1 {
			var err error
			if seq, err = r.SeqAtID(ctx, userID, q.BeforeID-1); err != nil {
				return nil, fmt.Errorf("notifications: %w", err)
			}
		}
		query = `SELECT ` + notificationColumns + ` FROM ` + notificationsFrom + `
			WHERE n.recipient_id = ? AND n.seq <= ? ORDER BY n.seq DESC LIMIT ?`
		args = append(args, seq)
	default:
		query = `SELECT ` + notificationColumns + ` FROM ` + notificationsFrom + `
			WHERE n.recipient_id = ? ORDER BY n.seq DESC LIMIT ?`
	}
	args = append(args, q.Limit)
	ns, err := list(ctx, r.q, scanNotification, query, args...)
	if err != nil {
		return nil, fmt.Errorf("notifications: %w", err)
	}
	return ns, nil
}

// ChangesAfterSeq lists a user's inbox changes with Seq > afterSeq, oldest
// first, at most limit of them, each ADDED one with its notification if it
// is still there.
//
// A notification's row is its ADDED change; inbox_changes holds the other
// changes, and the ADDED changes of notifications removed since. The query
// takes the first limit changes of each by Seq and merges them.
func (r reader) ChangesAfterSeq(ctx context.Context, userID, afterSeq int64, limit int) ([]social.Change, error) {
	cs, err := list(ctx, r.q, func(s scanner) (social.Change, error) {
		var c social.Change
		var ids, groups sql.NullString
		var read sql.NullBool // NULL: no notification (removed, or not ADDED)
		var e struct {
			message, action, byUser, content, affected sql.NullString
			actionID, affectedID, created              sql.NullInt64
		}
		err := s.Scan(&c.ID, &c.Seq, &c.Kind, &ids, &c.UnreadCount, &groups, &read,
			&e.message, &e.action, &e.actionID, &e.byUser, &e.content, &e.affected, &e.affectedID, &e.created)
		if err != nil {
			return c, err
		}
		c.RecipientID = userID
		if c.IDs, err = splitIDs(ids.String); err != nil {
			return c, err
		}
		if groups.Valid {
			if c.Groups, err = social.UnmarshalGroups(groups.String); err != nil {
				return c, err
			}
		}
		if c.Kind != social.ChangeAdded {
			return c, nil
		}
		c.IDs = []int64{c.ID}
		n := social.Notification{
			ID: c.ID, Seq: c.Seq, RecipientID: c.RecipientID,
			Message: e.message.String, Action: social.Action(e.action.String), ActionID: e.actionID.Int64,
			ByUser: e.byUser.String, ActionContent: e.content.String,
			Affected: social.ContentKind(e.affected.String), AffectedID: e.affectedID.Int64,
			Read: read.Bool, CreatedAt: fromMillis(e.created.Int64),
		}
		if read.Valid {
			c.Notification = &n
		}
		if !groups.Valid && e.action.Valid && n.Action == social.ActionPost {
			// Not stored: the notification alone, as it was added. FillLatest
			// below drops its Latest if it was removed since.
			c.Groups = []social.Group{social.PostGroup(&n)}
		}
		return c, nil
	}, `SELECT c.id, c.seq, c.kind, c.ids, c.unread_count, c.groups, c.read,
			e.message, e.action, e.action_id, e.by_user, e.action_content, e.affected, e.affected_id, e.created_at
		FROM (
			SELECT * FROM (SELECT id, seq, kind, ids, unread_count, groups, event_id, NULL AS read
				FROM inbox_changes WHERE recipient_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3)
			UNION ALL
			SELECT * FROM (SELECT id, seq, 'ADDED', NULL, unread_count, groups, event_id, read
				FROM notifications WHERE recipient_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3)
		) c LEFT JOIN notification_events e ON e.id = c.event_id
		ORDER BY c.seq LIMIT ?3`,
		userID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("changes after seq: %w", err)
	}
	latest, err := r.notificationsByID(ctx, userID, social.LatestIDs(cs))
	if err != nil {
		return nil, fmt.Errorf("changes after seq: %w", err)
	}
	social.FillLatest(cs, latest)
	return cs, nil
}

// notificationsByID returns those of the user's notifications with these
// ids that are stored.
func (r reader) notificationsByID(ctx context.Context, userID int64, ids []int64) (map[int64]social.Notification, error) {
	out := make(map[int64]social.Notification, len(ids))
	// Chunks of chunkSize: a few statement texts for the cache, not one
	// per number of ids.
	for lo := 0; lo < len(ids); lo += chunkSize(len(ids) - lo) {
		chunk := ids[lo : lo+chunkSize(len(ids)-lo)]
		args := make([]any, 0, 1+len(chunk))
		args = append(args, userID)
		for _, id := range chunk {
			args = append(args, id)
		}
		ns, err := list(ctx, r.q, scanNotification, `SELECT `+notificationColumns+` FROM `+notificationsFrom+`
			WHERE n.recipient_id = ? AND n.id IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("notifications by id: %w", err)
		}
		for _, n := range ns {
			out[n.ID] = n
		}
	}
	return out, nil
}

// NotificationGroups lists a user's non-empty groups, the one with the
// newest notification first; see social.Reader. The keys come from the
// (recipient_id, group_key, id) index; each group is then read by key, in
// the same snapshot: a transaction's, or Store.NotificationGroups' own.
func (r reader) NotificationGroups(ctx context.Context, userID int64, q social.NotificationQuery) ([]social.Group, error) {
	having := `max(id) < ?`
	if q.UnreadOnly {
		having += ` AND min(read) = 0`
	}
	keys, err := list(ctx, r.q, func(s scanner) (string, error) {
		var key string
		return key, s.Scan(&key)
	}, `SELECT group_key FROM notifications WHERE recipient_id = ? GROUP BY group_key
		HAVING `+having+` ORDER BY max(id) DESC LIMIT ?`,
		userID, cmp.Or(q.BeforeID, math.MaxInt64), q.Limit)
	if err != nil {
		return nil, fmt.Errorf("notification groups: %w", err)
	}
	gs, err := social.ReadGroups(keys, func(key string) (social.Group, error) {
		return r.currentGroup(ctx, userID, key, time.Time{})
	})
	if err != nil {
		return nil, fmt.Errorf("notification groups: %w", err)
	}
	return gs, nil
}

// GroupUnreadIDs lists the IDs of the user's unread notifications in the
// group with this key, oldest first.
func (r reader) GroupUnreadIDs(ctx context.Context, userID int64, key string) ([]int64, error) {
	ids, err := list(ctx, r.q, func(s scanner) (int64, error) {
		var id int64
		return id, s.Scan(&id)
	}, `SELECT id FROM notifications WHERE recipient_id = ? AND group_key = ? AND read = 0 ORDER BY id`,
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
	// A recipient's Seq and ID increase together. When id is one of the
	// user's changes (a client's cursor), its Seq is the answer: a lookup by
	// primary key, in notifications (ADDED) or inbox_changes (the others,
	// and the ADDED changes of removed notifications). Otherwise the user's
	// changes in each are read newest first, skipping those newer than id.
	if id <= 0 {
		latest, err := r.latestChange(ctx, userID)
		return latest.seq, err
	}
	row := r.q.QueryRowContext(ctx, `SELECT coalesce(
		(SELECT seq FROM notifications WHERE id = ?2 AND recipient_id = ?1),
		(SELECT seq FROM inbox_changes WHERE id = ?2 AND recipient_id = ?1),
		max(coalesce((SELECT seq FROM notifications WHERE recipient_id = ?1 AND id <= ?2 ORDER BY seq DESC LIMIT 1), 0),
			coalesce((SELECT seq FROM inbox_changes WHERE recipient_id = ?1 AND id <= ?2 ORDER BY seq DESC LIMIT 1), 0)))`,
		userID, id)
	var seq int64
	if err := row.Scan(&seq); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("seq at id: %w", err)
	}
	return seq, nil
}

// UnreadIDs lists the IDs of the user's unread notifications, oldest
// first, only those with ID <= upTo when upTo is not 0.
func (r reader) UnreadIDs(ctx context.Context, userID, upTo int64) ([]int64, error) {
	ids, err := list(ctx, r.q, func(s scanner) (int64, error) {
		var id int64
		return id, s.Scan(&id)
	}, `SELECT id FROM notifications WHERE recipient_id = ? AND read = 0 AND id <= ? ORDER BY id`,
		userID, cmp.Or(upTo, math.MaxInt64))
	if err != nil {
		return nil, fmt.Errorf("unread ids: %w", err)
	}
	return ids, nil
}

// NotificationsCausedBy lists the notifications, of any recipient, that any
// of causes caused, in ID order.
func (r reader) NotificationsCausedBy(ctx context.Context, causes []social.Cause) ([]social.Notification, error) {
	var out []social.Notification
	for _, c := range causes {
		ns, err := list(ctx, r.q, scanNotification,
			`SELECT `+notificationColumns+` FROM notification_events e
			JOIN notifications n ON n.id BETWEEN e.first_id AND e.last_id AND n.event_id = e.id
			WHERE e.action = ? AND e.action_id = ?`,
			string(c.Action), c.ActionID)
		if err != nil {
			return nil, fmt.Errorf("notifications caused by: %w", err)
		}
		out = append(out, ns...)
	}
	slices.SortFunc(out, func(a, b social.Notification) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// UnreadCount returns the user's unread count, which its latest change
// keeps (0 for a user that does not exist).
func (r reader) UnreadCount(ctx context.Context, userID int64) (int, error) {
	latest, err := r.latestChange(ctx, userID)
	return latest.unread, err
}

// oneLatestChangeSQL is latestChangesSQL for one user, built once.
var oneLatestChangeSQL = latestChangesSQL(1)

// latestChange returns the user's latest change: none for a user without
// changes, or that does not exist.
func (r reader) latestChange(ctx context.Context, userID int64) (latestChange, error) {
	_, latest, err := scanLatestChange(r.q.QueryRowContext(ctx, oneLatestChangeSQL, userID))
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return latestChange{}, fmt.Errorf("latest change: %w", err)
	}
	return latest, nil
}

// NotificationGroups reads the groups in one read transaction, so that
// each group's totals, recent actors and newest notification come from one
// snapshot of the database, whatever commits meanwhile.
func (s *Store) NotificationGroups(ctx context.Context, userID int64, q social.NotificationQuery) ([]social.Group, error) {
	sqlTx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("notification groups: %w", err)
	}
	tq := &txQuerier{ctx: ctx, tx: sqlTx, c: s.readStmts}
	gs, err := reader{q: tq}.NotificationGroups(ctx, userID, q)
	_ = sqlTx.Rollback()
	// After the transaction: on :memory: it held the pool's only connection.
	tq.cacheMissed(ctx)
	return gs, err
}
