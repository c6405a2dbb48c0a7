// Package storetest is the contract suite of social.Store. Every store
// implementation runs it from its own tests, so that they all behave alike:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) social.Store {
//			s, err := sqlite.Open(t.Context(), ":memory:")
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// # Times
//
// A store keeps times to at least the millisecond and returns them in UTC.
// The suite writes times with sub-millisecond digits in a zone other than
// UTC, and compares a time read back with the one written using time.Equal
// after truncating both to the millisecond (time.Truncate), so that a store
// that keeps milliseconds (SQLite) and one that keeps microseconds
// (PostgreSQL) both pass. It also checks that every time a store returns is
// in UTC.
package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

// opener returns a fresh, empty store and registers its cleanup.
type opener = func(t *testing.T) social.Store

// Run runs the contract suite on stores made by open. Every subtest calls
// open once: it must return a fresh, empty store and register its Close
// with t.Cleanup. Subtests are named for the method and the case, e.g.
// "CreateUser/ConflictIgnoringCase".
func Run(t *testing.T, open func(t *testing.T) social.Store) {
	t.Run("Ping", func(t *testing.T) { testPing(t, open) })
	t.Run("CreateUser", func(t *testing.T) { testCreateUser(t, open) })
	t.Run("UserByID", func(t *testing.T) { testUserByID(t, open) })
	t.Run("UserByUsername", func(t *testing.T) { testUserByUsername(t, open) })
	t.Run("PasswordHash", func(t *testing.T) { testPasswordHash(t, open) })
	runSessions(t, open)
	t.Run("CreateFollow", func(t *testing.T) { testCreateFollow(t, open) })
	t.Run("FollowCounts", func(t *testing.T) { testFollowCounts(t, open) })
	t.Run("FollowerIDs", func(t *testing.T) { testFollowerIDs(t, open) })
	t.Run("DeleteFollow", func(t *testing.T) { testDeleteFollow(t, open) })
	t.Run("CreatePost", func(t *testing.T) { testCreatePost(t, open) })
	t.Run("PostByID", func(t *testing.T) { testPostByID(t, open) })
	t.Run("CreateComment", func(t *testing.T) { testCreateComment(t, open) })
	t.Run("CommentByID", func(t *testing.T) { testCommentByID(t, open) })
	t.Run("CommentsByPost", func(t *testing.T) { testCommentsByPost(t, open) })
	t.Run("CreateReaction", func(t *testing.T) { testCreateReaction(t, open) })
	t.Run("Reactions", func(t *testing.T) { testReactions(t, open) })
	t.Run("ReactionOf", func(t *testing.T) { testReactionOf(t, open) })
	t.Run("SetReactionKind", func(t *testing.T) { testSetReactionKind(t, open) })
	t.Run("AddNotifications", func(t *testing.T) { testAddNotifications(t, open) })
	t.Run("Notifications", func(t *testing.T) { testNotifications(t, open) })
	t.Run("NotificationsAfterSeq", func(t *testing.T) { testNotificationsAfterSeq(t, open) })
	t.Run("SeqAtID", func(t *testing.T) { testSeqAtID(t, open) })
	t.Run("UnreadCount", func(t *testing.T) { testUnreadCount(t, open) })
	t.Run("MarkRead", func(t *testing.T) { testMarkRead(t, open) })
	t.Run("MarkAllRead", func(t *testing.T) { testMarkAllRead(t, open) })
	t.Run("EveryAction", func(t *testing.T) { testEveryAction(t, open) })
	t.Run("Update", func(t *testing.T) { testUpdate(t, open) })
	t.Run("Inbox", func(t *testing.T) { testInbox(t, open) })
	t.Run("Groups", func(t *testing.T) { testGroups(t, open) })
}

func testPing(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		if err := open(t).Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})
}

// t0 is the time the suite's data is created at: sub-millisecond digits,
// and a zone that is not UTC.
var t0 = time.Date(2026, 11, 25, 18, 3, 0, 123456789, time.FixedZone("CET", 60*60))

// at returns the time i seconds after t0.
func at(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }

// MustUpdate runs fn in one s.Update and fails tb if it returns an error.
func MustUpdate(tb testing.TB, s social.Store, fn func(tx social.Tx) error) {
	tb.Helper()
	if err := s.Update(tb.Context(), fn); err != nil {
		tb.Fatalf("Update: %v", err)
	}
}

// MustCreateUser creates a user with this username, created at t0, whose
// password hash is "hash:" followed by the username.
func MustCreateUser(tb testing.TB, s social.Store, username string) social.User {
	tb.Helper()
	var u social.User
	MustUpdate(tb, s, func(tx social.Tx) error {
		var err error
		u, err = tx.CreateUser(tb.Context(), social.User{Username: username, CreatedAt: t0}, []byte("hash:"+username))
		return err
	})
	return u
}

// MustCreatePost creates a post by authorID, created at t0.
func MustCreatePost(tb testing.TB, s social.Store, authorID int64, body string) social.Post {
	tb.Helper()
	var p social.Post
	MustUpdate(tb, s, func(tx social.Tx) error {
		var err error
		p, err = tx.CreatePost(tb.Context(), social.Post{AuthorID: authorID, Body: body, CreatedAt: t0})
		return err
	})
	return p
}

// MustCreateComment creates a comment by authorID on postID, a reply to
// parentID unless it is 0, created at t0.
func MustCreateComment(tb testing.TB, s social.Store, postID, parentID, authorID int64, body string) social.Comment {
	tb.Helper()
	var c social.Comment
	MustUpdate(tb, s, func(tx social.Tx) error {
		var err error
		c, err = tx.CreateComment(tb.Context(), social.Comment{
			PostID: postID, ParentID: parentID, AuthorID: authorID, Body: body, CreatedAt: t0,
		})
		return err
	})
	return c
}

// MustAddNotifications stores ns in one Update and returns them with their
// ID and Seq set.
func MustAddNotifications(tb testing.TB, s social.Store, ns ...social.Notification) []social.Notification {
	tb.Helper()
	var out []social.Notification
	MustUpdate(tb, s, func(tx social.Tx) error {
		var err error
		out, err = AddNotifications(tb.Context(), tx, ns)
		return err
	})
	return out
}

// AddNotifications stores ns with one ADDED change each and returns them
// with their ID and Seq set, in the same order.
func AddNotifications(ctx context.Context, tx social.Tx, ns []social.Notification) ([]social.Notification, error) {
	cs := make([]social.Change, len(ns))
	for i := range ns {
		cs[i] = social.Change{Kind: social.ChangeAdded, RecipientID: ns[i].RecipientID, Notification: &ns[i]}
	}
	cs, err := tx.AppendChanges(ctx, cs)
	return social.Added(cs), err
}

// AddedAfterSeq lists the notifications that userID's changes with
// Seq > afterSeq added and that are still there, oldest first, reading at
// most limit changes.
func AddedAfterSeq(ctx context.Context, r social.Reader, userID, afterSeq int64, limit int) ([]social.Notification, error) {
	cs, err := r.ChangesAfterSeq(ctx, userID, afterSeq, limit)
	var ns []social.Notification
	for _, c := range cs {
		if c.Notification != nil {
			ns = append(ns, *c.Notification)
		}
	}
	return ns, err
}

// notification returns a FOLLOWING notification for recipient: the
// sparsest kind, with no content and nothing affected. i varies its
// ActionID and CreatedAt.
func notification(recipient int64, i int) social.Notification {
	return social.Notification{
		RecipientID: recipient,
		Message:     "Oliver started following you",
		Action:      social.ActionFollowing,
		ActionID:    int64(1000 + i),
		ByUser:      "Oliver",
		CreatedAt:   at(i),
	}
}

// wantCode fails tb unless err has the code.
func wantCode(tb testing.TB, err error, code social.Code) {
	tb.Helper()
	if got := social.ErrorCode(err); got != code {
		tb.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

// sameTime reports whether got is want to the millisecond, in UTC.
func sameTime(got, want time.Time) bool {
	return got.Location() == time.UTC && got.Truncate(time.Millisecond).Equal(want.Truncate(time.Millisecond))
}

func wantUser(tb testing.TB, got, want social.User) {
	tb.Helper()
	if got.ID != want.ID || got.Username != want.Username || !sameTime(got.CreatedAt, want.CreatedAt) {
		tb.Fatalf("user = %+v, want %+v", got, want)
	}
}

func wantPost(tb testing.TB, got, want social.Post) {
	tb.Helper()
	if got.ID != want.ID || got.AuthorID != want.AuthorID || got.Body != want.Body ||
		!sameTime(got.CreatedAt, want.CreatedAt) {
		tb.Fatalf("post = %+v, want %+v", got, want)
	}
}

func wantComment(tb testing.TB, got, want social.Comment) {
	tb.Helper()
	if got.ID != want.ID || got.PostID != want.PostID || got.ParentID != want.ParentID ||
		got.AuthorID != want.AuthorID || got.Body != want.Body || !sameTime(got.CreatedAt, want.CreatedAt) {
		tb.Fatalf("comment = %+v, want %+v", got, want)
	}
}

func wantReaction(tb testing.TB, got, want social.Reaction) {
	tb.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.Kind != want.Kind ||
		got.TargetKind != want.TargetKind || got.TargetID != want.TargetID || !sameTime(got.CreatedAt, want.CreatedAt) {
		tb.Fatalf("reaction = %+v, want %+v", got, want)
	}
}

func wantFollow(tb testing.TB, got, want social.Follow) {
	tb.Helper()
	if got.ID != want.ID || got.FollowerID != want.FollowerID || got.FolloweeID != want.FolloweeID ||
		!sameTime(got.CreatedAt, want.CreatedAt) {
		tb.Fatalf("follow = %+v, want %+v", got, want)
	}
}

func wantNotification(tb testing.TB, got, want social.Notification) {
	tb.Helper()
	if !sameNotification(got, want) {
		tb.Fatalf("notification =\n\t%+v\nwant\n\t%+v", got, want)
	}
}

func sameNotification(got, want social.Notification) bool {
	g, w := got, want
	g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
	return g == w && sameTime(got.CreatedAt, want.CreatedAt)
}

// wantNotifications fails tb unless got and want hold the same
// notifications in the same order.
func wantNotifications(tb testing.TB, got, want []social.Notification) {
	tb.Helper()
	if !slices.EqualFunc(got, want, sameNotification) {
		tb.Fatalf("notifications =\n\t%+v\nwant\n\t%+v", got, want)
	}
}

// ids returns the IDs of ns.
func ids(ns []social.Notification) []int64 {
	out := make([]int64, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}
