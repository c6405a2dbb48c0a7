package social

import "time"

// User is an account. Usernames are unique ignoring case and keep the case
// they were registered with.
type User struct {
	ID        int64
	Username  string
	CreatedAt time.Time
}

// Session is a login. The access tokens that prove it (a refresh adds one)
// and the socket tickets issued for it are stored as SHA-256 hashes, never
// themselves.
type Session struct {
	ID     int64
	UserID int64
	// TokenHash is the hash of the session's first token, for
	// CreateSession; the store does not return it.
	TokenHash  []byte
	CreatedAt  time.Time
	LastUsedAt time.Time // to the minute or so: see Service.Authenticate
	ExpiresAt  time.Time // its newest token's expiry
	UserAgent  string    // of the login request, at most UserAgentMaxLen bytes
}

// SessionUser is a live session found by one of its credentials, and its
// user.
type SessionUser struct {
	User    User
	Session Session
	// ExpiresAt is the credential's own expiry: a token replaced by a
	// refresh expires before its session.
	ExpiresAt time.Time
}

// Ticket is a one-time credential for opening one socket of a session.
type Ticket struct {
	Hash      []byte
	SessionID int64
	ExpiresAt time.Time
}

// Refresh is a new token for a live session (see Tx.RefreshSession).
type Refresh struct {
	SessionID int64
	TokenHash []byte
	// ExpiresAt is the new token's, and so the session's, expiry.
	ExpiresAt time.Time
	// GraceUntil is when the session's other tokens stop working, unless
	// they expire before.
	GraceUntil time.Time
	Now        time.Time
}

// Post is a user's post.
type Post struct {
	ID        int64
	AuthorID  int64
	Body      string
	CreatedAt time.Time
}

// Comment is a comment on a post, optionally a reply to another comment of
// the same post.
type Comment struct {
	ID       int64
	PostID   int64
	ParentID int64 // 0 when the comment replies to no other comment
	AuthorID int64
	Body     string
	// CreatedAt orders a post's comments, oldest first.
	CreatedAt time.Time
}

// ContentKind is what a reaction or notification is about.
type ContentKind string

// The kinds of content.
const (
	ContentPost    ContentKind = "POST"
	ContentComment ContentKind = "COMMENT"
)

// ReactionKind is the emoji of a reaction.
type ReactionKind string

// The reaction kinds.
const (
	ReactionLike  ReactionKind = "LIKE"
	ReactionLove  ReactionKind = "LOVE"
	ReactionLaugh ReactionKind = "LAUGH"
	ReactionWow   ReactionKind = "WOW"
	ReactionSad   ReactionKind = "SAD"
	ReactionAngry ReactionKind = "ANGRY"
)

// Valid reports whether k is one of the reaction kinds.
func (k ReactionKind) Valid() bool {
	switch k {
	case ReactionLike, ReactionLove, ReactionLaugh, ReactionWow, ReactionSad, ReactionAngry:
		return true
	}
	return false
}

// Reaction is one user's reaction to one post or comment. A user has at most
// one reaction per target; reacting again with another kind changes it.
type Reaction struct {
	ID         int64
	UserID     int64
	Kind       ReactionKind
	TargetKind ContentKind
	TargetID   int64
	CreatedAt  time.Time
}

// Follow says that FollowerID follows FolloweeID.
type Follow struct {
	ID         int64
	FollowerID int64
	FolloweeID int64
	CreatedAt  time.Time
}

// Action is what caused a notification.
type Action string

// The actions that notify. Adding one touches a dozen places, listed in
// docs/adding-an-action.md; the tests that range over Actions point at
// those you miss.
const (
	ActionPost      Action = "POST"
	ActionComment   Action = "COMMENT"
	ActionReaction  Action = "REACTION"
	ActionFollowing Action = "FOLLOWING"
)

// Actions returns every Action, in the order the API lists them.
func Actions() []Action {
	return []Action{ActionPost, ActionComment, ActionReaction, ActionFollowing}
}

// Notification tells one user (the recipient) about another user's action.
//
// ID is unique across all users. For any one recipient both ID and Seq
// increase in the order that recipient's notifications were committed, and
// Seq has no gaps (1, 2, 3, ...): a subscriber that sees Seq jump knows that
// it missed something and reads it from the store. Clients only see ID, and
// "every notification after ID x" is a complete answer.
type Notification struct {
	ID          int64
	Seq         int64
	RecipientID int64

	Message  string
	Action   Action
	ActionID int64
	// ByUser is the username of the actor.
	ByUser string
	// ActionContent is the post or comment body, or the reaction kind in lower
	// case; "" when there is none (FOLLOWING).
	ActionContent string
	// Affected and AffectedID name what was acted on; "" and 0 for POST and
	// FOLLOWING.
	Affected   ContentKind
	AffectedID int64

	Read      bool
	CreatedAt time.Time
}

// ChangeKind says how a Change changed an inbox.
type ChangeKind string

// The kinds of changes.
const (
	ChangeAdded   ChangeKind = "ADDED"
	ChangeRemoved ChangeKind = "REMOVED"
	ChangeRead    ChangeKind = "READ"
)

// Change is one change to a user's inbox, at one position of that user's
// sequence.
//
// Changes and notifications share one sequence: an ADDED change's ID and Seq
// are its notification's. For any one recipient both ID and Seq increase in
// commit order, and Seq has no gaps (1, 2, 3, ...) over all the recipient's
// changes, so a subscriber that sees Seq jump knows it missed a change.
// Clients see ID as the cursor.
type Change struct {
	ID          int64
	Seq         int64
	RecipientID int64
	Kind        ChangeKind
	// Notification is the added notification for ADDED; nil for the other
	// kinds, and for an ADDED change read from the store after its
	// notification was removed.
	Notification *Notification
	// IDs are the notifications the change concerns: ADDED: the one added;
	// REMOVED: those removed; READ: those marked read.
	IDs []int64
	// UnreadCount is the recipient's unread count right after the change.
	UnreadCount int
	// Groups are the groups the change touched, each as it was right after
	// the change, in the order of their keys.
	Groups []Group
}

// Cause names what caused notifications: an action and the id of its post,
// comment, reaction or follow (Notification.Action and ActionID).
type Cause struct {
	Action   Action
	ActionID int64
}

// Deleted lists what deleting a post or comment took with it.
type Deleted struct {
	// CommentIDs are the comments deleted: the comment and every reply below
	// it, or every comment of the post.
	CommentIDs []int64
	// ReactionIDs are the reactions to the post or to any of those comments.
	ReactionIDs []int64
}
