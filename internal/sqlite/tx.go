package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	modernc "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/pulse-social/pulse/internal/social"
)

// tx is a social.Tx: one BEGIN IMMEDIATE transaction. Its reads run in the
// transaction too.
type tx struct {
	reader
	w *writerConn
}

// newTx returns the tx of the transaction open on w.
func newTx(w *writerConn) *tx {
	return &tx{reader: reader{q: w}, w: w}
}

// conflict returns CodeConflict with message if err is (or wraps) a
// violation of a UNIQUE or PRIMARY KEY constraint, and err otherwise.
func conflict(err error, message string) error {
	var e *modernc.Error
	if errors.As(err, &e) &&
		(e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY) {
		return social.Errorf(social.CodeConflict, "%s", message)
	}
	return err
}

// insert runs an INSERT and returns the new row's id; an error is wrapped
// with op.
func (t *tx) insert(ctx context.Context, op, query string, args ...any) (int64, error) {
	res, err := t.w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return id, nil
}

// exec runs a statement and returns how many rows it changed; an error is
// wrapped with op.
func (t *tx) exec(ctx context.Context, op, query string, args ...any) (int64, error) {
	res, err := t.w.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", op, err)
	}
	return n, nil
}

// CreateUser inserts a user and its password hash and returns it with its
// ID. A username taken in any case is CodeConflict.
func (t *tx) CreateUser(ctx context.Context, u social.User, passwordHash []byte) (social.User, error) {
	u.CreatedAt = stored(u.CreatedAt)
	id, err := t.insert(ctx, "create user",
		`INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)`,
		u.Username, passwordHash, millis(u.CreatedAt))
	if err != nil {
		return social.User{}, conflict(err, "username is taken")
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
		`INSERT INTO sessions (user_id, created_at, last_used_at, expires_at, user_agent) VALUES (?, ?, ?, ?, ?)`,
		s.UserID, millis(s.CreatedAt), millis(s.LastUsedAt), millis(s.ExpiresAt), s.UserAgent)
	if err != nil {
		return err
	}
	_, err = t.insert(ctx, "create token",
		`INSERT INTO tokens (hash, session_id, expires_at) VALUES (?, ?, ?)`, s.TokenHash, id, millis(s.ExpiresAt))
	return conflict(err, "session exists")
}

// RefreshSession gives a live session a new token and moves its expiry;
// its other tokens expire at r.GraceUntil at the latest. A session that is
// not live is CodeNotFound.
func (t *tx) RefreshSession(ctx context.Context, r social.Refresh) error {
	n, err := t.exec(ctx, "refresh session",
		`UPDATE sessions SET expires_at = ? WHERE id = ? AND expires_at > ?`,
		millis(r.ExpiresAt), r.SessionID, millis(r.Now))
	if err != nil {
		return err
	}
	if n == 0 {
		return social.Errorf(social.CodeNotFound, "session not found")
	}
	_, err = t.exec(ctx, "refresh session",
		`UPDATE tokens SET expires_at = min(expires_at, ?) WHERE session_id = ?`, millis(r.GraceUntil), r.SessionID)
	if err != nil {
		return err
	}
	_, err = t.insert(ctx, "refresh session",
		`INSERT INTO tokens (hash, session_id, expires_at) VALUES (?, ?, ?)`, r.TokenHash, r.SessionID, millis(r.ExpiresAt))
	return conflict(err, "token exists")
}

// TouchSession sets the session's LastUsedAt to at if it is before stale.
func (t *tx) TouchSession(ctx context.Context, id int64, at, stale time.Time) error {
	_, err := t.exec(ctx, "touch session",
		`UPDATE sessions SET last_used_at = ? WHERE id = ? AND last_used_at < ?`, millis(at), id, millis(stale))
	return err
}

// EndSessions deletes the user's session id, or all of them if id is 0,
// and returns the ids of those live at now.
func (t *tx) EndSessions(ctx context.Context, userID, id int64, now time.Time) ([]int64, error) {
	rows, err := t.w.QueryContext(ctx,
		`DELETE FROM sessions WHERE user_id = ?1 AND (?2 = 0 OR id = ?2) RETURNING id, expires_at`, userID, id)
	if err != nil {
		return nil, fmt.Errorf("end sessions: %w", err)
	}
	defer rows.Close()
	var live []int64
	for rows.Next() {
		var sid, expires int64
		if err := rows.Scan(&sid, &expires); err != nil {
			return nil, fmt.Errorf("end sessions: %w", err)
		}
		if expires > millis(now) {
			live = append(live, sid)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("end sessions: %w", err)
	}
	return live, nil
}

// DeleteExpiredSessions deletes at most limit of the sessions that expire
// at or before now, and returns how many it deleted.
func (t *tx) DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	n, err := t.exec(ctx, "delete expired sessions",
		`DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at <= ? LIMIT ?)`,
		millis(now), limit)
	return int(n), err
}

// DeleteExpiredCredentials deletes at most limit tokens and tickets, in
// all, that expire at or before now, and returns how many it deleted.
func (t *tx) DeleteExpiredCredentials(ctx context.Context, now time.Time, limit int) (int, error) {
	total := 0
	for _, table := range []string{"tokens", "socket_tickets"} {
		n, err := t.exec(ctx, "delete expired credentials",
			`DELETE FROM `+table+` WHERE hash IN (SELECT hash FROM `+table+` WHERE expires_at <= ? LIMIT ?)`,
			millis(now), limit-total)
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
	_, err := t.insert(ctx, "create ticket",
		`INSERT INTO socket_tickets (hash, session_id, expires_at) VALUES (?, ?, ?)`,
		tk.Hash, tk.SessionID, millis(tk.ExpiresAt))
	return conflict(err, "ticket exists")
}

// ConsumeTicket deletes the ticket and returns its session and user if
// both were live at now, or CodeNotFound. Transactions write one at a
// time, so one at most finds the ticket.
func (t *tx) ConsumeTicket(ctx context.Context, hash []byte, now time.Time) (social.SessionUser, error) {
	var sessionID, expires int64
	err := t.w.QueryRowContext(ctx,
		`DELETE FROM socket_tickets WHERE hash = ? RETURNING session_id, expires_at`, hash).Scan(&sessionID, &expires)
	if err != nil {
		return social.SessionUser{}, rowErr(err, "consume ticket", "ticket")
	}
	if expires <= millis(now) {
		return social.SessionUser{}, social.Errorf(social.CodeNotFound, "ticket not found")
	}
	su, err := sessionUser(t.w.QueryRowContext(ctx, `
		SELECT `+sessionColumns+`, u.username, u.created_at, s.expires_at
		FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE s.id = ? AND s.expires_at > ?`, sessionID, millis(now)))
	if err != nil {
		return social.SessionUser{}, rowErr(err, "consume ticket", "session")
	}
	return su, nil
}

// CreatePost inserts a post and returns it with its ID.
func (t *tx) CreatePost(ctx context.Context, p social.Post) (social.Post, error) {
	p.CreatedAt = stored(p.CreatedAt)
	id, err := t.insert(ctx, "create post",
		`INSERT INTO posts (author_id, body, created_at) VALUES (?, ?, ?)`,
		p.AuthorID, p.Body, millis(p.CreatedAt))
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
		`INSERT INTO comments (post_id, parent_id, author_id, body, created_at) VALUES (?, ?, ?, ?, ?)`,
		c.PostID, nullInt(c.ParentID), c.AuthorID, c.Body, millis(c.CreatedAt))
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
	id, err := t.insert(ctx, "create reaction",
		`INSERT INTO reactions (user_id, kind, target_kind, target_id, created_at) VALUES (?, ?, ?, ?, ?)`,
		r.UserID, r.Kind, r.TargetKind, r.TargetID, millis(r.CreatedAt))
	if err != nil {
		return social.Reaction{}, conflict(err, "you already reacted to this "+strings.ToLower(string(r.TargetKind)))
	}
	r.ID = id
	return r, nil
}

// SetReactionKind changes the kind of an existing reaction; an unknown id
// is CodeNotFound.
func (t *tx) SetReactionKind(ctx context.Context, id int64, kind social.ReactionKind) error {
	n, err := t.exec(ctx, "set reaction kind", `UPDATE reactions SET kind = ? WHERE id = ?`, kind, id)
	if err == nil && n == 0 {
		return social.Errorf(social.CodeNotFound, "reaction not found")
	}
	return err
}

// CreateFollow inserts a follow and returns it with its ID. Following a
// user already followed is CodeConflict.
func (t *tx) CreateFollow(ctx context.Context, f social.Follow) (social.Follow, error) {
	f.CreatedAt = stored(f.CreatedAt)
	id, err := t.insert(ctx, "create follow",
		`INSERT INTO follows (follower_id, followee_id, created_at) VALUES (?, ?, ?)`,
		f.FollowerID, f.FolloweeID, millis(f.CreatedAt))
	if err != nil {
		return social.Follow{}, conflict(err, "you already follow this user")
	}
	f.ID = id
	return f, nil
}

// DeleteFollow deletes the follow of followeeID by followerID and returns
// its ID, or 0 if there was none.
func (t *tx) DeleteFollow(ctx context.Context, followerID, followeeID int64) (int64, error) {
	var id int64
	err := t.w.QueryRowContext(ctx,
		`DELETE FROM follows WHERE follower_id = ? AND followee_id = ? RETURNING id`, followerID, followeeID).Scan(&id)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("delete follow: %w", err)
	}
	return id, nil
}

// FollowerIDs lists the IDs of the users who follow userID, in ID order.
func (t *tx) FollowerIDs(ctx context.Context, userID int64) ([]int64, error) {
	ids, err := list(ctx, t.q, func(s scanner) (int64, error) {
		var id int64
		return id, s.Scan(&id)
	}, `SELECT follower_id FROM follows WHERE followee_id = ? ORDER BY follower_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("follower ids: %w", err)
	}
	return ids, nil
}

// DeleteReaction deletes a reaction; an unknown id is CodeNotFound.
func (t *tx) DeleteReaction(ctx context.Context, id int64) error {
	n, err := t.exec(ctx, "delete reaction", `DELETE FROM reactions WHERE id = ?`, id)
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
	d, err := t.deleteContent(ctx, `SELECT id FROM comments WHERE post_id = ?`, id)
	if err != nil {
		return social.Deleted{}, err
	}
	rs, err := t.deleteReactions(ctx, social.ContentPost, []int64{id})
	if err != nil {
		return social.Deleted{}, err
	}
	d.ReactionIDs = append(d.ReactionIDs, rs...)
	if _, err := t.exec(ctx, "delete post", `DELETE FROM posts WHERE id = ?`, id); err != nil {
		return social.Deleted{}, err
	}
	return d, nil
}

// DeleteComment deletes a comment, every reply below it and every reaction
// to any of them; an unknown id is CodeNotFound.
func (t *tx) DeleteComment(ctx context.Context, id int64) (social.Deleted, error) {
	if _, err := t.CommentByID(ctx, id); err != nil {
		return social.Deleted{}, err
	}
	return t.deleteContent(ctx, `WITH RECURSIVE tree (id) AS (
			SELECT ?
			UNION ALL
			SELECT c.id FROM comments c JOIN tree ON c.parent_id = tree.id)
		SELECT id FROM tree`, id)
}

// deleteContent deletes the comments that query lists and the reactions to
// them. Replies go before their parents, for the foreign key.
func (t *tx) deleteContent(ctx context.Context, query string, arg int64) (social.Deleted, error) {
	ids, err := list(ctx, t.q, func(s scanner) (int64, error) {
		var id int64
		return id, s.Scan(&id)
	}, query, arg)
	if err != nil {
		return social.Deleted{}, fmt.Errorf("delete comments: %w", err)
	}
	slices.Sort(ids)
	rs, err := t.deleteReactions(ctx, social.ContentComment, ids)
	if err != nil {
		return social.Deleted{}, err
	}
	// Ids increase, and a reply is newer than its parent.
	for _, id := range slices.Backward(ids) {
		if _, err := t.exec(ctx, "delete comment", `DELETE FROM comments WHERE id = ?`, id); err != nil {
			return social.Deleted{}, err
		}
	}
	return social.Deleted{CommentIDs: ids, ReactionIDs: rs}, nil
}

// deleteReactions deletes the reactions to the targets and returns their ids.
func (t *tx) deleteReactions(ctx context.Context, target social.ContentKind, ids []int64) ([]int64, error) {
	var deleted []int64
	err := inBatches(t.w, len(ids), func(rows int) string {
		return `DELETE FROM reactions WHERE target_kind = ? AND target_id IN (` + placeholders(rows) + `) RETURNING id`
	}, func(ctx context.Context, stmt *sql.Stmt, lo, hi int) error {
		args := []any{string(target)}
		for _, id := range ids[lo:hi] {
			args = append(args, id)
		}
		return eachRow(ctx, stmt, args, func(row scanner) error {
			var id int64
			err := row.Scan(&id)
			deleted = append(deleted, id)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("delete reactions: %w", err)
	}
	slices.Sort(deleted)
	return deleted, nil
}
