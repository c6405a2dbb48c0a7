package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulse-social/pulse/internal/social"
)

// tx is a social.Tx: one READ COMMITTED transaction. Its reads run in the
// transaction too.
type tx struct {
	reader
	tx *txConn
}

// insertUnique runs an INSERT ... ON CONFLICT DO NOTHING RETURNING id and
// returns the new row's id. When a unique constraint stopped the insert
// (no row returned), it returns CodeConflict with message; any other error
// is wrapped with op.
//
// ON CONFLICT DO NOTHING rather than catching the unique violation (23505):
// an error would abort the whole transaction, while a statement that
// inserts nothing leaves it usable, as a failed statement does in SQLite;
// and the server does not log an ERROR for every username taken.
func (t *tx) insertUnique(ctx context.Context, op, message, query string, args ...any) (int64, error) {
	var id int64
	err := t.tx.QueryRow(ctx, query, args...).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, social.Errorf(social.CodeConflict, "%s", message)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return id, nil
}

// insert runs an INSERT ... RETURNING id and returns the new row's id; an
// error is wrapped with op.
func (t *tx) insert(ctx context.Context, op, query string, args ...any) (int64, error) {
	var id int64
	if err := t.tx.QueryRow(ctx, query, args...).Scan(&id); err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return id, nil
}

// exec runs a statement and returns how many rows it changed; an error is
// wrapped with op.
func (t *tx) exec(ctx context.Context, op, query string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return tag.RowsAffected(), nil
}

// CreateUser inserts a user and its password hash and returns it with its
// ID. A username taken in any case is CodeConflict.
func (t *tx) CreateUser(ctx context.Context, u social.User, passwordHash []byte) (social.User, error) {
	u.CreatedAt = stored(u.CreatedAt)
	id, err := t.insertUnique(ctx, "create user", "username is taken",
		`INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING RETURNING id`,
		u.Username, passwordHash, u.CreatedAt)
	if err != nil {
		return social.User{}, err
	}
	u.ID = id
	return u, nil
}

// CreateSession inserts a session with its first token. A token hash in
// use is CodeConflict.
func (t *tx) CreateSession(ctx context.Context, s social.Session) error {
	if s.LastUsedAt.IsZero() {
		s.LastUsedAt = s.CreatedAt
	}
	id, err := t.insert(ctx, "create session",
		`INSERT INTO sessions (user_id, created_at, last_used_at, expires_at, user_agent)
		VALUES ($1, $2, $3, $4, $5) RETURNING id`,
		s.UserID, s.CreatedAt, s.LastUsedAt, s.ExpiresAt, s.UserAgent)
	if err != nil {
		return err
	}
	_, err = t.insertUnique(ctx, "create token", "session exists",
		`INSERT INTO tokens (hash, session_id, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING RETURNING 0`, s.TokenHash, id, s.ExpiresAt)
	return err
}

// RefreshSession gives a live session a new token and moves its expiry;
// its other tokens expire at r.GraceUntil at the latest. A session that is
// not live is CodeNotFound. The session's row is updated first: a
// concurrent EndSessions either waits for this commit and deletes the new
// token too, or deletes the row first, and this finds no session.
func (t *tx) RefreshSession(ctx context.Context, r social.Refresh) error {
	n, err := t.exec(ctx, "refresh session",
		`UPDATE sessions SET expires_at = $1 WHERE id = $2 AND expires_at > $3`, r.ExpiresAt, r.SessionID, r.Now)
	if err != nil {
		return err
	}
	if n == 0 {
		return social.Errorf(social.CodeNotFound, "session not found")
	}
	_, err = t.exec(ctx, "refresh session",
		`UPDATE tokens SET expires_at = least(expires_at, $1) WHERE session_id = $2`, r.GraceUntil, r.SessionID)
	if err != nil {
		return err
	}
	_, err = t.insertUnique(ctx, "refresh session", "token exists",
		`INSERT INTO tokens (hash, session_id, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING RETURNING 0`, r.TokenHash, r.SessionID, r.ExpiresAt)
	return err
}

// TouchSession sets the session's LastUsedAt to at if it is before stale.
func (t *tx) TouchSession(ctx context.Context, id int64, at, stale time.Time) error {
	_, err := t.exec(ctx, "touch session",
		`UPDATE sessions SET last_used_at = $1 WHERE id = $2 AND last_used_at < $3`, at, id, stale)
	return err
}

// EndSessions deletes the user's session id, or all of them if id is 0,
// and returns the ids of those live at now.
func (t *tx) EndSessions(ctx context.Context, userID, id int64, now time.Time) ([]int64, error) {
	rows, err := t.tx.Query(ctx,
		`DELETE FROM sessions WHERE user_id = $1 AND ($2 = 0 OR id = $2) RETURNING id, expires_at > $3`,
		userID, id, now)
	if err != nil {
		return nil, fmt.Errorf("end sessions: %w", err)
	}
	type ended struct {
		id   int64
		live bool
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (ended, error) {
		var e ended
		err := row.Scan(&e.id, &e.live)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("end sessions: %w", err)
	}
	var live []int64
	for _, e := range all {
		if e.live {
			live = append(live, e.id)
		}
	}
	return live, nil
}

// DeleteExpiredSessions deletes at most limit of the sessions that expire
// at or before now, and returns how many it deleted. Sessions another
// process is deleting meanwhile are skipped, not waited for.
func (t *tx) DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	n, err := t.exec(ctx, "delete expired sessions",
		`DELETE FROM sessions WHERE id IN (
			SELECT id FROM sessions WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
		now, limit)
	return int(n), err
}

// DeleteExpiredCredentials deletes at most limit tokens and tickets, in
// all, that expire at or before now, and returns how many it deleted.
// Rows another process is deleting meanwhile are skipped, not waited for.
func (t *tx) DeleteExpiredCredentials(ctx context.Context, now time.Time, limit int) (int, error) {
	total := 0
	for _, table := range []string{"tokens", "socket_tickets"} {
		n, err := t.exec(ctx, "delete expired credentials",
			`DELETE FROM `+table+` WHERE hash IN (
				SELECT hash FROM `+table+` WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
			now, limit-total)
		if err != nil {
			return total, err
		}
		if total += int(n); total >= limit {
			break
		}
	}
	return total, nil
}

// CreateTicket inserts a socket ticket. A hash in use is CodeConflict.
func (t *tx) CreateTicket(ctx context.Context, tk social.Ticket) error {
	_, err := t.insertUnique(ctx, "create ticket", "ticket exists",
		`INSERT INTO socket_tickets (hash, session_id, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING RETURNING 0`, tk.Hash, tk.SessionID, tk.ExpiresAt)
	return err
}

// ConsumeTicket deletes the ticket and returns its session and user if
// both were live at now, or CodeNotFound. Of transactions that delete the
// same ticket at once, the later ones wait for the first and then find no
// row.
func (t *tx) ConsumeTicket(ctx context.Context, hash []byte, now time.Time) (social.SessionUser, error) {
	var sessionID int64
	var live bool
	err := t.tx.QueryRow(ctx,
		`DELETE FROM socket_tickets WHERE hash = $1 RETURNING session_id, expires_at > $2`, hash, now).Scan(&sessionID, &live)
	if err != nil {
		return social.SessionUser{}, rowErr(err, "consume ticket", "ticket")
	}
	if !live {
		return social.SessionUser{}, social.Errorf(social.CodeNotFound, "ticket not found")
	}
	su, err := sessionUser(t.tx.QueryRow(ctx, `
		SELECT `+sessionColumns+`, u.username, u.created_at, s.expires_at
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = $1 AND s.expires_at > $2`, sessionID, now))
	if err != nil {
		return social.SessionUser{}, rowErr(err, "consume ticket", "session")
	}
	return su, nil
}

// CreatePost inserts a post and returns it with its ID.
func (t *tx) CreatePost(ctx context.Context, p social.Post) (social.Post, error) {
	p.CreatedAt = stored(p.CreatedAt)
	id, err := t.insert(ctx, "create post",
		`INSERT INTO posts (author_id, body, created_at) VALUES ($1, $2, $3) RETURNING id`,
		p.AuthorID, p.Body, p.CreatedAt)
	if err != nil {
		return social.Post{}, err
	}
	p.ID = id
	return p, nil
}

// CreateComment inserts a comment and returns it with its ID.
func (t *tx) CreateComment(ctx context.Context, c social.Comment) (social.Comment, error) {
	c.CreatedAt = stored(c.CreatedAt)
	id, err := t.insert(ctx, "create comment",
		`INSERT INTO comments (post_id, parent_id, author_id, body, created_at)
		VALUES ($1, nullif($2::bigint, 0), $3, $4, $5) RETURNING id`,
		c.PostID, c.ParentID, c.AuthorID, c.Body, c.CreatedAt)
	if err != nil {
		return social.Comment{}, err
	}
	c.ID = id
	return c, nil
}

// CreateReaction inserts a reaction and returns it with its ID. A second
// reaction by the same user to the same target is CodeConflict.
func (t *tx) CreateReaction(ctx context.Context, r social.Reaction) (social.Reaction, error) {
	r.CreatedAt = stored(r.CreatedAt)
	id, err := t.insertUnique(ctx, "create reaction", "you already reacted to this "+strings.ToLower(string(r.TargetKind)),
		`INSERT INTO reactions (user_id, kind, target_kind, target_id, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT DO NOTHING RETURNING id`,
		r.UserID, string(r.Kind), string(r.TargetKind), r.TargetID, r.CreatedAt)
	if err != nil {
		return social.Reaction{}, err
	}
	r.ID = id
	return r, nil
}

// SetReactionKind changes the kind of an existing reaction; an unknown id
// is CodeNotFound.
func (t *tx) SetReactionKind(ctx context.Context, id int64, kind social.ReactionKind) error {
	n, err := t.exec(ctx, "set reaction kind", `UPDATE reactions SET kind = $1 WHERE id = $2`, string(kind), id)
	if err == nil && n == 0 {
		return social.Errorf(social.CodeNotFound, "reaction not found")
	}
	return err
}

// CreateFollow inserts a follow and returns it with its ID. Following a
// user already followed is CodeConflict.
func (t *tx) CreateFollow(ctx context.Context, f social.Follow) (social.Follow, error) {
	f.CreatedAt = stored(f.CreatedAt)
	id, err := t.insertUnique(ctx, "create follow", "you already follow this user",
		`INSERT INTO follows (follower_id, followee_id, created_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING RETURNING id`,
		f.FollowerID, f.FolloweeID, f.CreatedAt)
	if err != nil {
		return social.Follow{}, err
	}
	f.ID = id
	return f, nil
}

// DeleteFollow deletes the follow of followeeID by followerID and returns
// its ID, or 0 if there was none.
func (t *tx) DeleteFollow(ctx context.Context, followerID, followeeID int64) (int64, error) {
	var id int64
	err := t.tx.QueryRow(ctx, `DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2 RETURNING id`,
		followerID, followeeID).Scan(&id)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("delete follow: %w", err)
	}
	return id, nil
}

// FollowerIDs lists the IDs of the users who follow userID, in ID order.
func (t *tx) FollowerIDs(ctx context.Context, userID int64) ([]int64, error) {
	rows, err := t.tx.Query(ctx, `SELECT follower_id FROM follows WHERE followee_id = $1 ORDER BY follower_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("follower ids: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("follower ids: %w", err)
	}
	return ids, nil
}

// DeleteReaction deletes a reaction; an unknown id is CodeNotFound.
func (t *tx) DeleteReaction(ctx context.Context, id int64) error {
	n, err := t.exec(ctx, "delete reaction", `DELETE FROM reactions WHERE id = $1`, id)
	if err == nil && n == 0 {
		return social.Errorf(social.CodeNotFound, "reaction not found")
	}
	return err
}

// DeletePost deletes a post, its comments and every reaction to any of
// them; an unknown id is CodeNotFound.
func (t *tx) DeletePost(ctx context.Context, id int64) (social.Deleted, error) {
	if _, err := t.PostByID(ctx, id); err != nil {
		return social.Deleted{}, err
	}
	return t.deleteContent(ctx, id, `SELECT id FROM comments WHERE post_id = $1`)
}

// DeleteComment deletes a comment, every reply below it and every reaction
// to any of them; an unknown id is CodeNotFound.
func (t *tx) DeleteComment(ctx context.Context, id int64) (social.Deleted, error) {
	if _, err := t.CommentByID(ctx, id); err != nil {
		return social.Deleted{}, err
	}
	return t.deleteContent(ctx, 0, `WITH RECURSIVE tree (id) AS (
			SELECT $1::bigint
			UNION ALL
			SELECT c.id FROM comments c JOIN tree ON c.parent_id = tree.id)
		SELECT id FROM tree`, id)
}

// deleteContent deletes the comments that query lists (with args), the
// reactions to them and, when postID is not 0, the reactions to that post
// and the post.
//
// It first locks the post and the comments FOR UPDATE: an action that adds
// a comment or reaction to any of them holds one of them (FOR KEY SHARE,
// or the foreign key's lock) until it commits, so it either committed
// before the lock was granted, and is seen by the deletes that follow, or
// finds its target gone. A reply committed while the comments' locks were
// awaited is listed, and locked, on the next round.
func (t *tx) deleteContent(ctx context.Context, postID int64, query string, args ...any) (social.Deleted, error) {
	var d social.Deleted
	if postID != 0 {
		args = []any{postID}
		if _, err := t.tx.Exec(ctx, `SELECT FROM posts WHERE id = $1 FOR UPDATE`, postID); err != nil {
			return d, fmt.Errorf("delete post: lock: %w", err)
		}
	}
	for {
		rows, err := t.tx.Query(ctx, query, args...)
		if err != nil {
			return d, fmt.Errorf("delete content: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return d, fmt.Errorf("delete content: %w", err)
		}
		slices.Sort(ids)
		if slices.Equal(ids, d.CommentIDs) && ids != nil {
			break
		}
		d.CommentIDs = ids
		if len(ids) == 0 {
			break
		}
		if _, err := t.tx.Exec(ctx, `SELECT FROM comments WHERE id = ANY($1) ORDER BY id FOR UPDATE`, ids); err != nil {
			return d, fmt.Errorf("delete comments: lock: %w", err)
		}
	}
	rows, err := t.tx.Query(ctx, `DELETE FROM reactions
		WHERE (target_kind = 'COMMENT' AND target_id = ANY($1)) OR (target_kind = 'POST' AND target_id = $2)
		RETURNING id`, d.CommentIDs, postID)
	if err != nil {
		return d, fmt.Errorf("delete reactions: %w", err)
	}
	if d.ReactionIDs, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return d, fmt.Errorf("delete reactions: %w", err)
	}
	slices.Sort(d.ReactionIDs)
	if _, err := t.tx.Exec(ctx, `DELETE FROM comments WHERE id = ANY($1)`, d.CommentIDs); err != nil {
		return d, fmt.Errorf("delete comments: %w", err)
	}
	if postID != 0 {
		if _, err := t.tx.Exec(ctx, `DELETE FROM posts WHERE id = $1`, postID); err != nil {
			return d, fmt.Errorf("delete post: %w", err)
		}
	}
	return d, nil
}
