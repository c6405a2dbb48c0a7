package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/pulse-social/pulse/internal/social"
)

// The inbox rules of issue 15 (docs/api.md, "Undo and delete" and "The
// inbox change stream"), run through a Service on the store: a
// notification lives exactly as long as its cause, and every change to an
// inbox is recorded at the next position of its user's sequence with the
// unread count after it.

// nopBroker takes every event and delivers none: these tests read the store.
type nopBroker struct{}

func (nopBroker) Publish(context.Context, ...social.Event) error { return nil }

func (nopBroker) Subscribe(context.Context, int64) (social.FuncSubscription, error) {
	return nil, social.ErrBrokerClosed
}

// inbox is a Service on a fresh store, with ann, bob and cid registered.
type inbox struct {
	s             social.Store
	svc           *social.Service
	ann, bob, cid social.User
}

func newInbox(t *testing.T, open opener) *inbox {
	t.Helper()
	s := open(t)
	svc := social.NewService(s, nopBroker{}, social.Config{})
	in := &inbox{s: s, svc: svc}
	in.ann, in.bob, in.cid = MustCreateUser(t, s, "ann"), MustCreateUser(t, s, "bob"), MustCreateUser(t, s, "cid")
	return in
}

// must fails t if err is not nil.
func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// inboxOf returns userID's notifications (oldest first) as "action
// content" strings, after checking the user's change log.
func (in *inbox) inboxOf(tb testing.TB, userID int64) []string {
	tb.Helper()
	WantChangeLog(tb, in.s, userID)
	ns, err := in.s.Notifications(tb.Context(), userID, social.NotificationQuery{Limit: 1000})
	must(tb, err)
	var out []string
	for _, n := range slices.Backward(ns) {
		out = append(out, fmt.Sprintf("%s %s", n.Action, n.ActionContent))
	}
	return out
}

func wantInbox(tb testing.TB, got []string, want ...string) {
	tb.Helper()
	if !slices.Equal(got, want) {
		tb.Fatalf("inbox = %q, want %q", got, want)
	}
}

// WantChangeLog fails tb unless userID's change log is consistent with its
// inbox: Seqs 1, 2, 3, ... with increasing IDs; every ADDED change adds a
// notification not there yet, every REMOVED and READ one changes only
// notifications there (READ: unread ones); each change's UnreadCount is the
// count that replaying the log up to it gives; and replaying all of it
// gives exactly the stored notifications and unread count.
func WantChangeLog(tb testing.TB, s social.Store, userID int64) {
	tb.Helper()
	ctx := tb.Context()
	cs, err := s.ChangesAfterSeq(ctx, userID, 0, 1<<20)
	must(tb, err)
	read := map[int64]bool{} // the notifications there, and whether read
	unread := 0
	for i, c := range cs {
		if c.Seq != int64(i+1) || i > 0 && c.ID <= cs[i-1].ID || c.RecipientID != userID {
			tb.Fatalf("user %d's change #%d: %+v (previous ID %d)", userID, i+1, c, cs[max(i-1, 0)].ID)
		}
		switch c.Kind {
		case social.ChangeAdded:
			if _, ok := read[c.ID]; ok || !slices.Equal(c.IDs, []int64{c.ID}) {
				tb.Fatalf("change %+v adds a notification there already", c)
			}
			if c.Notification != nil && (c.Notification.ID != c.ID || c.Notification.Seq != c.Seq) {
				tb.Fatalf("change %+v has notification %+v", c, *c.Notification)
			}
			read[c.ID] = false
			unread++
		case social.ChangeRemoved, social.ChangeRead:
			if len(c.IDs) == 0 {
				tb.Fatalf("change %+v changes nothing", c)
			}
			for _, id := range c.IDs {
				r, ok := read[id]
				if !ok || c.Kind == social.ChangeRead && r {
					tb.Fatalf("change %+v: notification %d is not there (or read already)", c, id)
				}
				if !r {
					unread--
				}
				if c.Kind == social.ChangeRemoved {
					delete(read, id)
				} else {
					read[id] = true
				}
			}
		default:
			tb.Fatalf("change %+v of unknown kind", c)
		}
		if c.UnreadCount != unread {
			tb.Fatalf("change %+v: unread count %d, replaying gives %d", c, c.UnreadCount, unread)
		}
	}
	ns, err := s.Notifications(ctx, userID, social.NotificationQuery{Limit: 1 << 20})
	must(tb, err)
	stored := map[int64]bool{}
	for _, n := range ns {
		stored[n.ID] = n.Read
	}
	if fmt.Sprint(stored) != fmt.Sprint(read) {
		tb.Fatalf("user %d's notifications (id: read) %v, replaying the log gives %v", userID, stored, read)
	}
	n, err := s.UnreadCount(ctx, userID)
	must(tb, err)
	if n != unread {
		tb.Fatalf("user %d's unread count %d, replaying the log gives %d", userID, n, unread)
	}
}

func testInbox(t *testing.T, open opener) {
	t.Run("Scenario", func(t *testing.T) {
		// Follow, unfollow, follow, then LIKE, LOVE, LAUGH, LIKE: two
		// notifications, not six, one group each.
		in := newInbox(t, open)
		ctx := t.Context()
		_, err := in.svc.Follow(ctx, in.bob, "ann")
		must(t, err)
		_, err = in.svc.Unfollow(ctx, in.bob, "ann")
		must(t, err)
		_, err = in.svc.Follow(ctx, in.bob, "ann")
		must(t, err)
		p, err := in.svc.CreatePost(ctx, in.ann, "hello")
		must(t, err)
		for _, k := range []social.ReactionKind{social.ReactionLike, social.ReactionLove, social.ReactionLaugh, social.ReactionLike} {
			_, err := in.svc.React(ctx, in.bob, social.ContentPost, p.ID, k)
			must(t, err)
		}
		wantInbox(t, in.inboxOf(t, in.ann.ID), "FOLLOWING ", "REACTION like")
		wantGroups(t, in.groupsOf(t, in.ann.ID),
			"bob reacted to your post 1/1/1 [bob]",
			"bob started following you 1/1/1 [bob]")
		page, err := in.svc.Notifications(ctx, in.ann.ID, 20, 0, false)
		must(t, err)
		if page.UnreadCount != 2 {
			t.Fatalf("unread count %d, want 2", page.UnreadCount)
		}
		// follow, removed, follow, like, (removed, love), (removed, laugh), (removed, like)
		cs, err := in.s.ChangesAfterSeq(ctx, in.ann.ID, 0, 100)
		must(t, err)
		var kinds []social.ChangeKind
		for _, c := range cs {
			kinds = append(kinds, c.Kind)
		}
		want := []social.ChangeKind{"ADDED", "REMOVED", "ADDED", "ADDED", "REMOVED", "ADDED", "REMOVED", "ADDED", "REMOVED", "ADDED"}
		if !slices.Equal(kinds, want) {
			t.Fatalf("changes %v, want %v", kinds, want)
		}
	})
	t.Run("Unreact", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		p, err := in.svc.CreatePost(ctx, in.ann, "p")
		must(t, err)
		c, err := in.svc.CreateComment(ctx, in.ann, p.ID, "c", 0)
		must(t, err)
		_, err = in.svc.React(ctx, in.bob, social.ContentPost, p.ID, social.ReactionWow)
		must(t, err)
		_, err = in.svc.React(ctx, in.bob, social.ContentComment, c.ID, social.ReactionSad)
		must(t, err)
		wantInbox(t, in.inboxOf(t, in.ann.ID), "REACTION wow", "REACTION sad")
		for i, want := range []bool{true, false} {
			had, err := in.svc.Unreact(ctx, in.bob, social.ContentPost, p.ID)
			if err != nil || had != want {
				t.Fatalf("Unreact #%d = %v, %v; want %v", i+1, had, err, want)
			}
		}
		wantInbox(t, in.inboxOf(t, in.ann.ID), "REACTION sad")
		had, err := in.svc.Unreact(ctx, in.bob, social.ContentComment, c.ID)
		if err != nil || !had {
			t.Fatalf("Unreact comment = %v, %v", had, err)
		}
		wantInbox(t, in.inboxOf(t, in.ann.ID))
		if rs, _ := in.svc.Reactions(ctx, social.ContentPost, p.ID, 10, 0); len(rs) != 0 {
			t.Fatalf("reactions left: %+v", rs)
		}
		_, err = in.svc.Unreact(ctx, in.bob, social.ContentPost, p.ID+100)
		wantCode(t, err, social.CodeNotFound)
		_, err = in.svc.Unreact(ctx, in.bob, social.ContentComment, c.ID+100)
		wantCode(t, err, social.CodeNotFound)
	})
	t.Run("Unfollow", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		_, err := in.svc.Follow(ctx, in.bob, "ann")
		must(t, err)
		_, err = in.svc.Follow(ctx, in.cid, "ann")
		must(t, err)
		_, err = in.svc.Unfollow(ctx, in.bob, "ann")
		must(t, err)
		ns, err := in.s.Notifications(ctx, in.ann.ID, social.NotificationQuery{Limit: 10})
		must(t, err)
		if len(ns) != 1 || ns[0].ByUser != "cid" {
			t.Fatalf("ann's notifications %+v, want cid's follow only", ns)
		}
		WantChangeLog(t, in.s, in.ann.ID)
	})
	t.Run("DeleteComment", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		p, err := in.svc.CreatePost(ctx, in.ann, "p")
		must(t, err)
		top, err := in.svc.CreateComment(ctx, in.bob, p.ID, "top", 0)
		must(t, err)
		reply, err := in.svc.CreateComment(ctx, in.cid, p.ID, "reply", top.ID)
		must(t, err)
		_, err = in.svc.CreateComment(ctx, in.ann, p.ID, "deeper", reply.ID)
		must(t, err)
		other, err := in.svc.CreateComment(ctx, in.cid, p.ID, "other", 0)
		must(t, err)
		_, err = in.svc.React(ctx, in.ann, social.ContentComment, reply.ID, social.ReactionLove)
		must(t, err)
		_, err = in.svc.React(ctx, in.ann, social.ContentComment, other.ID, social.ReactionLove)
		must(t, err)
		wantInbox(t, in.inboxOf(t, in.ann.ID), "COMMENT top", "COMMENT reply", "COMMENT other")
		wantInbox(t, in.inboxOf(t, in.bob.ID), "COMMENT reply")
		wantInbox(t, in.inboxOf(t, in.cid.ID), "COMMENT deeper", "REACTION love", "REACTION love")

		wantCode(t, in.svc.DeleteComment(ctx, in.cid, top.ID), social.CodeForbidden)
		wantCode(t, in.svc.DeleteComment(ctx, in.bob, top.ID+100), social.CodeNotFound)
		// The post's author may delete another's comment; it takes the
		// replies below it and the reactions to them.
		must(t, in.svc.DeleteComment(ctx, in.ann, top.ID))
		wantInbox(t, in.inboxOf(t, in.ann.ID), "COMMENT other")
		wantInbox(t, in.inboxOf(t, in.bob.ID))
		wantInbox(t, in.inboxOf(t, in.cid.ID), "REACTION love")
		cs, err := in.svc.Comments(ctx, p.ID, 100, 0)
		must(t, err)
		if len(cs) != 1 || cs[0].ID != other.ID {
			t.Fatalf("comments left %+v, want the other one", cs)
		}
		if rs, _ := in.svc.Reactions(ctx, social.ContentComment, reply.ID, 10, 0); len(rs) != 0 {
			t.Fatalf("reactions to a deleted reply left: %+v", rs)
		}
		// Its own author may too.
		must(t, in.svc.DeleteComment(ctx, in.cid, other.ID))
		wantInbox(t, in.inboxOf(t, in.ann.ID))
		wantInbox(t, in.inboxOf(t, in.cid.ID))
	})
	t.Run("DeletePost", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		for _, u := range []social.User{in.bob, in.cid} {
			_, err := in.svc.Follow(ctx, u, "ann")
			must(t, err)
		}
		p, err := in.svc.CreatePost(ctx, in.ann, "doomed")
		must(t, err)
		kept, err := in.svc.CreatePost(ctx, in.ann, "kept")
		must(t, err)
		c, err := in.svc.CreateComment(ctx, in.bob, p.ID, "c", 0)
		must(t, err)
		_, err = in.svc.CreateComment(ctx, in.cid, p.ID, "r", c.ID)
		must(t, err)
		_, err = in.svc.React(ctx, in.cid, social.ContentPost, p.ID, social.ReactionAngry)
		must(t, err)
		_, err = in.svc.React(ctx, in.ann, social.ContentComment, c.ID, social.ReactionLike)
		must(t, err)
		_, err = in.svc.React(ctx, in.bob, social.ContentPost, kept.ID, social.ReactionLike)
		must(t, err)

		wantCode(t, in.svc.DeletePost(ctx, in.bob, p.ID), social.CodeForbidden)
		wantCode(t, in.svc.DeletePost(ctx, in.ann, kept.ID+100), social.CodeNotFound)
		must(t, in.svc.DeletePost(ctx, in.ann, p.ID))
		_, err = in.svc.Post(ctx, p.ID)
		wantCode(t, err, social.CodeNotFound)
		_, err = in.svc.Comment(ctx, c.ID)
		wantCode(t, err, social.CodeNotFound)
		if cs, _ := in.svc.Comments(ctx, p.ID, 100, 0); len(cs) != 0 {
			t.Fatalf("comments of a deleted post: %+v", cs)
		}
		if rs, _ := in.svc.Reactions(ctx, social.ContentPost, p.ID, 10, 0); len(rs) != 0 {
			t.Fatalf("reactions to a deleted post: %+v", rs)
		}
		wantInbox(t, in.inboxOf(t, in.ann.ID), "FOLLOWING ", "FOLLOWING ", "REACTION like")
		wantInbox(t, in.inboxOf(t, in.bob.ID), "POST kept")
		wantInbox(t, in.inboxOf(t, in.cid.ID), "POST kept")
		wantCode(t, in.svc.DeletePost(ctx, in.ann, p.ID), social.CodeNotFound)
	})
	t.Run("MarkRead", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		for _, u := range []social.User{in.bob, in.cid} {
			_, err := in.svc.Follow(ctx, u, "ann")
			must(t, err)
		}
		p, err := in.svc.CreatePost(ctx, in.ann, "p")
		must(t, err)
		_, err = in.svc.CreateComment(ctx, in.bob, p.ID, "c", 0)
		must(t, err)
		ns, err := in.s.Notifications(ctx, in.ann.ID, social.NotificationQuery{Limit: 10})
		must(t, err)
		slices.Reverse(ns) // follow, follow, comment
		// all up to the second: the comment, newer, stays unread.
		n, err := in.svc.MarkRead(ctx, in.ann.ID, nil, true, ns[1].ID)
		if err != nil || n != 2 {
			t.Fatalf("MarkRead(all, upTo) = %d, %v; want 2", n, err)
		}
		last := lastChange(t, in.s, in.ann.ID)
		if last.Kind != social.ChangeRead || !slices.Equal(last.IDs, []int64{ns[0].ID, ns[1].ID}) || last.UnreadCount != 1 {
			t.Fatalf("last change %+v, want READ of the two follows, 1 unread", last)
		}
		// Nothing changes: nothing is appended. Other users' ids count
		// for nothing.
		n, err = in.svc.MarkRead(ctx, in.ann.ID, []int64{ns[0].ID, 99999}, false, 0)
		if err != nil || n != 0 {
			t.Fatalf("MarkRead(read ones) = %d, %v; want 0", n, err)
		}
		if again := lastChange(t, in.s, in.ann.ID); again.Seq != last.Seq {
			t.Fatalf("a mark read that changed nothing appended %+v", again)
		}
		n, err = in.svc.MarkRead(ctx, in.ann.ID, nil, true, 0)
		if err != nil || n != 1 {
			t.Fatalf("MarkRead(all) = %d, %v; want 1", n, err)
		}
		WantChangeLog(t, in.s, in.ann.ID)
	})
	t.Run("Concurrent", func(t *testing.T) { testInboxConcurrent(t, open) })
}

func lastChange(tb testing.TB, s social.Store, userID int64) social.Change {
	tb.Helper()
	seq, err := s.SeqAtID(tb.Context(), userID, 0)
	must(tb, err)
	cs, err := s.ChangesAfterSeq(tb.Context(), userID, seq-1, 1)
	must(tb, err)
	if len(cs) != 1 {
		tb.Fatalf("user %d has no change", userID)
	}
	return cs[0]
}

// testInboxConcurrent races actions that change one inbox: every change
// log stays consistent, and nothing of deleted content is left.
func testInboxConcurrent(t *testing.T, open opener) {
	t.Run("TogglingReactions", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		p, err := in.svc.CreatePost(ctx, in.ann, "p")
		must(t, err)
		run(t, 2, func(i int) error { return in.toggle(ctx, []social.User{in.bob, in.cid}[i], p.ID) })
		// Each ends with a LOVE: the last round (j = 15) reacts and keeps it.
		wantInbox(t, in.inboxOf(t, in.ann.ID), "REACTION love", "REACTION love")
	})
	t.Run("DeleteRacingReaction", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		for range 10 {
			p, err := in.svc.CreatePost(ctx, in.ann, "p")
			must(t, err)
			run(t, 3, func(i int) error {
				var err error
				switch i {
				case 0:
					err = in.svc.DeletePost(ctx, in.ann, p.ID)
				case 1:
					_, err = in.svc.React(ctx, in.bob, social.ContentPost, p.ID, social.ReactionLike)
				case 2:
					_, err = in.svc.CreateComment(ctx, in.cid, p.ID, "c", 0)
				}
				if social.ErrorCode(err) == social.CodeNotFound {
					return nil // the delete came first
				}
				return err
			})
			if rs, _ := in.svc.Reactions(ctx, social.ContentPost, p.ID, 10, 0); len(rs) != 0 {
				t.Fatalf("reactions to a deleted post: %+v", rs)
			}
		}
		wantInbox(t, in.inboxOf(t, in.ann.ID))
	})
	t.Run("MarkReadRacingNotification", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		p, err := in.svc.CreatePost(ctx, in.ann, "p")
		must(t, err)
		run(t, 2, func(i int) error {
			for j := range 20 {
				var err error
				if i == 0 {
					_, err = in.svc.CreateComment(ctx, in.bob, p.ID, fmt.Sprint(j), 0)
				} else {
					_, err = in.svc.MarkRead(ctx, in.ann.ID, nil, true, 0)
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		WantChangeLog(t, in.s, in.ann.ID)
	})
}

// toggle has u react to the post 16 times, LIKE and LOVE in turn, and
// remove the reaction after every third; it ends with a LOVE.
func (in *inbox) toggle(ctx context.Context, u social.User, postID int64) error {
	for j := range 16 {
		kind := []social.ReactionKind{social.ReactionLike, social.ReactionLove}[j%2]
		if _, err := in.svc.React(ctx, u, social.ContentPost, postID, kind); err != nil {
			return err
		}
		if j%3 == 2 {
			if _, err := in.svc.Unreact(ctx, u, social.ContentPost, postID); err != nil {
				return err
			}
		}
	}
	return nil
}

// run runs fn(0), ..., fn(n-1) at once and fails t with any error.
func run(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = fn(i) })
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
}

// WantMigratedChanges checks a store that the migration adding inbox
// changes ran on, when user 1 had notifications 1, 3 (read) and 4, with
// Seqs 1 to 3, and user 2 had notification 2: each has an ADDED change at
// its id and Seq, with unread counts rebuilt from today's read flags, and
// the sequence goes on from there. (The rebuilt history has no READ
// changes, so WantChangeLog does not hold for it.)
func WantMigratedChanges(tb testing.TB, s social.Store) {
	tb.Helper()
	cs, err := s.ChangesAfterSeq(tb.Context(), 1, 0, 10)
	must(tb, err)
	var got []string
	for _, c := range cs {
		got = append(got, fmt.Sprintf("%s %d@%d unread %d", c.Kind, c.ID, c.Seq, c.UnreadCount))
	}
	if want := []string{"ADDED 1@1 unread 1", "ADDED 3@2 unread 1", "ADDED 4@3 unread 2"}; !slices.Equal(got, want) {
		tb.Fatalf("user 1's changes %q, want %q", got, want)
	}
	var removed []social.Change
	MustUpdate(tb, s, func(tx social.Tx) error {
		removed, err = tx.AppendChanges(tb.Context(), []social.Change{{Kind: social.ChangeRemoved, RecipientID: 1, IDs: []int64{4}}})
		return err
	})
	if len(removed) != 1 || removed[0].ID != 5 || removed[0].Seq != 4 || removed[0].UnreadCount != 1 {
		tb.Fatalf("the next change %+v, want id 5, seq 4, unread 1", removed)
	}
}
