package social

import (
	"context"
	"time"
)

// Store keeps users, content and notifications. The sqlite and postgres
// packages implement it; both pass the same contract suite (storetest).
//
// Methods return *Error values with CodeNotFound or CodeConflict where their
// docs say so, and wrapped driver errors for anything else. Times come back
// in UTC, kept to at least the millisecond.
type Store interface {
	Reader

	// Update runs fn in one read-write transaction and commits it if fn
	// returns nil; otherwise nothing fn wrote is kept and Update returns fn's
	// error. fn reads and writes through its Tx only, never through the
	// Store (a single-connection store would deadlock), and the Tx must not
	// be used after fn returns. fn may run more than once if the store
	// retries a transaction that lost a race. If ctx ends while fn runs,
	// the store either runs it to the end and commits (Update returns nil)
	// or stops it and keeps nothing (an error): never part of fn's work.
	Update(ctx context.Context, fn func(Tx) error) error

	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// ListPage picks a page of a list ordered oldest first by ID: at most Limit
// (at least 1) items whose ID is greater than After (0: from the start).
type ListPage struct {
	After int64
	Limit int
}

// Reader is the read side of the store, inside or outside a transaction.
type Reader interface {
	// UserByID returns the user, or CodeNotFound.
	UserByID(ctx context.Context, id int64) (User, error)
	// UserByUsername finds a user ignoring case, or returns CodeNotFound.
	UserByUsername(ctx context.Context, username string) (User, error)
	// PasswordHash returns the user's password hash, or CodeNotFound.
	PasswordHash(ctx context.Context, userID int64) ([]byte, error)
	// SessionUser returns the session, live at now, of the token with this
	// hash (itself live at now), and its user; or CodeNotFound.
	SessionUser(ctx context.Context, tokenHash []byte, now time.Time) (SessionUser, error)
	// LiveSession returns the session if it is live at now, or
	// CodeNotFound.
	LiveSession(ctx context.Context, id int64, now time.Time) (Session, error)
	// UserSessions lists the user's sessions live at now, newest first.
	UserSessions(ctx context.Context, userID int64, now time.Time) ([]Session, error)
	// FollowCounts returns how many users follow userID and how many it follows.
	FollowCounts(ctx context.Context, userID int64) (followers, following int, err error)

	// PostByID returns the post, or CodeNotFound.
	PostByID(ctx context.Context, id int64) (Post, error)
	// CommentByID returns the comment, or CodeNotFound.
	CommentByID(ctx context.Context, id int64) (Comment, error)
	// CommentsByPost lists a page of a post's comments, replies included,
	// oldest first (by ID).
	CommentsByPost(ctx context.Context, postID int64, page ListPage) ([]Comment, error)
	// Reactions lists a page of the reactions to one post or comment,
	// oldest first (by ID).
	Reactions(ctx context.Context, target ContentKind, targetID int64, page ListPage) ([]Reaction, error)
	// ReactionOf returns userID's reaction to the target, or CodeNotFound.
	ReactionOf(ctx context.Context, userID int64, target ContentKind, targetID int64) (Reaction, error)

	// Notifications lists a user's notifications newest first (by ID
	// descending): at most q.Limit (at least 1) of them, only those with ID < q.BeforeID
	// when it is not 0, only unread ones when q.UnreadOnly.
	Notifications(ctx context.Context, userID int64, q NotificationQuery) ([]Notification, error)
	// ChangesAfterSeq lists a user's inbox changes with Seq > afterSeq,
	// oldest first, at most limit of them, with the Groups they were
	// recorded with. An ADDED change comes with its Notification, or with
	// none once that was removed; a group's Latest is nil once its
	// notification was removed.
	ChangesAfterSeq(ctx context.Context, userID, afterSeq int64, limit int) ([]Change, error)
	// SeqAtID returns the greatest Seq among the user's changes with
	// ID <= id (0 if there is none). With id <= 0 it returns the greatest Seq
	// of all the user's changes.
	SeqAtID(ctx context.Context, userID, id int64) (int64, error)
	// UnreadIDs lists the IDs of the user's unread notifications, oldest
	// first, only those with ID <= upTo when upTo is not 0.
	UnreadIDs(ctx context.Context, userID, upTo int64) ([]int64, error)
	// NotificationsCausedBy lists the notifications, of any recipient, that
	// any of causes caused, in ID order.
	NotificationsCausedBy(ctx context.Context, causes []Cause) ([]Notification, error)
	// UnreadCount counts the user's unread notifications.
	UnreadCount(ctx context.Context, userID int64) (int, error)

	// NotificationGroups lists a user's non-empty groups (see Group), the
	// one with the newest notification first: at most q.Limit (at least 1)
	// of them, only those whose newest notification's ID is < q.BeforeID
	// when it is not 0, only those with unread notifications when
	// q.UnreadOnly.
	NotificationGroups(ctx context.Context, userID int64, q NotificationQuery) ([]Group, error)
	// GroupUnreadIDs lists the IDs of the user's unread notifications in
	// the group with this key, oldest first.
	GroupUnreadIDs(ctx context.Context, userID int64, key string) ([]int64, error)
}

// NotificationQuery selects a page of notifications, newest first.
type NotificationQuery struct {
	BeforeID   int64 // 0: from the newest
	Limit      int
	UnreadOnly bool
}

// Tx is one read-write transaction of a Store.
type Tx interface {
	Reader

	// CreateUser inserts a user and its password hash and returns it with its
	// ID. A username taken in any case is CodeConflict.
	CreateUser(ctx context.Context, u User, passwordHash []byte) (User, error)
	// CreateSession inserts a session (ID is ignored; a zero LastUsedAt is
	// CreatedAt) with its first token, s.TokenHash, which expires with it.
	// A token hash already in use is CodeConflict.
	CreateSession(ctx context.Context, s Session) error
	// RefreshSession gives a session live at r.Now a new token and moves
	// its expiry to the token's; its other tokens then expire at
	// r.GraceUntil at the latest. A session that is not live is
	// CodeNotFound, and nothing changes.
	RefreshSession(ctx context.Context, r Refresh) error
	// TouchSession sets the session's LastUsedAt to at if it is before
	// stale; otherwise it changes nothing.
	TouchSession(ctx context.Context, id int64, at, stale time.Time) error
	// EndSessions deletes the user's session with this id, or every
	// session of the user when id is 0, with their tokens and tickets, and
	// returns the ids of those that were live at now.
	EndSessions(ctx context.Context, userID, id int64, now time.Time) ([]int64, error)
	// DeleteExpiredSessions deletes at most limit (at least 1) of the
	// sessions that expire at or before now, with their tokens and tickets,
	// and returns how many it deleted.
	DeleteExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error)
	// DeleteExpiredCredentials deletes at most limit (at least 1) tokens and
	// tickets, in all, that expire at or before now, and returns how many
	// it deleted.
	DeleteExpiredCredentials(ctx context.Context, now time.Time, limit int) (int, error)

	// CreateTicket inserts a socket ticket. A hash already in use is
	// CodeConflict.
	CreateTicket(ctx context.Context, t Ticket) error
	// ConsumeTicket deletes the ticket with this hash and returns its
	// session and user if both were live at now; otherwise (no such
	// ticket, used, expired, or its session ended) CodeNotFound. Of
	// transactions that consume the same ticket at once, one at most gets
	// it.
	ConsumeTicket(ctx context.Context, hash []byte, now time.Time) (SessionUser, error)

	// CreatePost inserts a post and returns it with its ID.
	CreatePost(ctx context.Context, p Post) (Post, error)
	// CreateComment inserts a comment and returns it with its ID.
	CreateComment(ctx context.Context, c Comment) (Comment, error)
	// CreateReaction inserts a reaction and returns it with its ID. A second
	// reaction by the same user to the same target is CodeConflict, and
	// leaves the transaction usable (React goes on with it).
	CreateReaction(ctx context.Context, r Reaction) (Reaction, error)
	// DeleteReaction deletes a reaction; an unknown id is CodeNotFound.
	DeleteReaction(ctx context.Context, id int64) error
	// DeletePost deletes a post, its comments and every reaction to any of
	// them, and lists what it took; an unknown id is CodeNotFound.
	DeletePost(ctx context.Context, id int64) (Deleted, error)
	// DeleteComment deletes a comment, every reply below it and every
	// reaction to any of them, and lists what it took; an unknown id is
	// CodeNotFound.
	DeleteComment(ctx context.Context, id int64) (Deleted, error)
	// SetReactionKind changes the kind of an existing reaction; an unknown
	// id is CodeNotFound.
	SetReactionKind(ctx context.Context, id int64, kind ReactionKind) error

	// CreateFollow inserts a follow and returns it with its ID. Following a
	// user already followed is CodeConflict.
	CreateFollow(ctx context.Context, f Follow) (Follow, error)
	// DeleteFollow deletes the follow of followeeID by followerID and
	// returns its ID, or 0 if there was none.
	DeleteFollow(ctx context.Context, followerID, followeeID int64) (int64, error)
	// FollowerIDs lists the IDs of the users who follow userID.
	FollowerIDs(ctx context.Context, userID int64) ([]int64, error)

	// AppendChanges changes inboxes and records each change at the next
	// position of its recipient's sequence, in input order; it returns the
	// changes it recorded, in input order. ADDED stores c.Notification (its
	// ID, Seq and Read are ignored); REMOVED deletes those of c.IDs that are
	// the recipient's notifications; READ marks those of c.IDs that are the
	// recipient's unread notifications read. A REMOVED or READ change that
	// changes nothing is not recorded; the others come back with IDs
	// narrowed to the notifications they changed. Every change returned has
	// ID, Seq, UnreadCount and Groups set (each group as of the
	// notifications with IDs up to the change's, which is the state right
	// after it when a transaction's REMOVED changes come before its ADDED
	// ones); an ADDED change's ID and Seq are those of its Notification,
	// which comes back stored. For each recipient,
	// IDs and Seqs increase in commit order even when transactions for the
	// same recipient run concurrently. A recipient that is not a user is
	// CodeNotFound. cs holds at most one REMOVED or READ change per
	// recipient (CheckChanges), so that each change's groups are its own.
	AppendChanges(ctx context.Context, cs []Change) ([]Change, error)
}
