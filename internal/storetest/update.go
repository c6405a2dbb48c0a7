package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

func testUpdate(t *testing.T, open opener) {
	t.Run("ReadsOwnWrites", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		ctx := t.Context()
		// Every Reader method, inside the transaction that wrote what it
		// reads.
		MustUpdate(t, s, func(tx social.Tx) error {
			bob, err := tx.CreateUser(ctx, social.User{Username: "Bob", CreatedAt: t0}, []byte("bob's hash"))
			if err != nil {
				return err
			}
			if got, err := tx.UserByID(ctx, bob.ID); err != nil || got.Username != "Bob" {
				t.Fatalf("UserByID = %+v, %v", got, err)
			}
			if got, err := tx.UserByUsername(ctx, "bob"); err != nil || got.ID != bob.ID {
				t.Fatalf("UserByUsername = %+v, %v", got, err)
			}
			if got, err := tx.PasswordHash(ctx, bob.ID); err != nil || !bytes.Equal(got, []byte("bob's hash")) {
				t.Fatalf("PasswordHash = %q, %v", got, err)
			}
			hash := social.HashToken("token")
			err = tx.CreateSession(ctx, social.Session{TokenHash: hash, UserID: bob.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
			if err != nil {
				return err
			}
			if got, err := tx.SessionUser(ctx, hash, t0); err != nil || got.User.ID != bob.ID {
				t.Fatalf("SessionUser = %+v, %v", got, err)
			}
			if _, err := tx.CreateFollow(ctx, social.Follow{FollowerID: bob.ID, FolloweeID: ann.ID, CreatedAt: t0}); err != nil {
				return err
			}
			wantFollowCounts(t, tx, ann.ID, 1, 0)
			if got, err := tx.FollowerIDs(ctx, ann.ID); err != nil || !slices.Equal(got, []int64{bob.ID}) {
				t.Fatalf("FollowerIDs = %v, %v", got, err)
			}
			p, err := tx.CreatePost(ctx, social.Post{AuthorID: ann.ID, Body: "hello", CreatedAt: t0})
			if err != nil {
				return err
			}
			if got, err := tx.PostByID(ctx, p.ID); err != nil || got.Body != "hello" {
				t.Fatalf("PostByID = %+v, %v", got, err)
			}
			c, err := tx.CreateComment(ctx, social.Comment{PostID: p.ID, AuthorID: bob.ID, Body: "hi", CreatedAt: t0})
			if err != nil {
				return err
			}
			if got, err := tx.CommentByID(ctx, c.ID); err != nil || got.Body != "hi" {
				t.Fatalf("CommentByID = %+v, %v", got, err)
			}
			if got, err := tx.CommentsByPost(ctx, p.ID, wholeList); err != nil || len(got) != 1 || got[0].ID != c.ID {
				t.Fatalf("CommentsByPost = %+v, %v", got, err)
			}
			r, err := tx.CreateReaction(ctx, social.Reaction{UserID: bob.ID, Kind: social.ReactionWow, TargetKind: social.ContentPost, TargetID: p.ID, CreatedAt: t0})
			if err != nil {
				return err
			}
			if got, err := tx.ReactionOf(ctx, bob.ID, social.ContentPost, p.ID); err != nil || got.ID != r.ID {
				t.Fatalf("ReactionOf = %+v, %v", got, err)
			}
			if got, err := tx.Reactions(ctx, social.ContentPost, p.ID, wholeList); err != nil || len(got) != 1 || got[0].ID != r.ID {
				t.Fatalf("Reactions = %+v, %v", got, err)
			}
			ns, err := AddNotifications(ctx, tx, []social.Notification{notification(ann.ID, 1), fullNotification(ann.ID, 2)})
			if err != nil {
				return err
			}
			wantPage(t, tx, ann.ID, social.NotificationQuery{Limit: 10}, newestFirst(ns))
			if got, err := AddedAfterSeq(ctx, tx, ann.ID, 1, 10); err != nil || !slices.Equal(ids(got), ids(ns[1:])) {
				t.Fatalf("NotificationsAfterSeq = %+v, %v", got, err)
			}
			if got, err := tx.SeqAtID(ctx, ann.ID, 0); err != nil || got != 2 {
				t.Fatalf("SeqAtID = %d, %v", got, err)
			}
			wantUnread(t, tx, ann.ID, 2)
			return nil
		})
	})

	t.Run("RollsBackOnError", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		kept := MustAddNotifications(t, s, notification(ann.ID, 1))
		errFail := errors.New("fail")
		var post social.Post
		err := s.Update(t.Context(), func(tx social.Tx) error {
			ctx := t.Context()
			bob, err := tx.CreateUser(ctx, social.User{Username: "bob", CreatedAt: t0}, []byte("hash"))
			if err != nil {
				return err
			}
			if post, err = tx.CreatePost(ctx, social.Post{AuthorID: bob.ID, Body: "gone", CreatedAt: t0}); err != nil {
				return err
			}
			err = tx.CreateSession(ctx, social.Session{TokenHash: social.HashToken("t"), UserID: bob.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
			if err != nil {
				return err
			}
			if _, err := tx.CreateFollow(ctx, social.Follow{FollowerID: bob.ID, FolloweeID: ann.ID, CreatedAt: t0}); err != nil {
				return err
			}
			if _, err := AddNotifications(ctx, tx, []social.Notification{notification(ann.ID, 2), notification(ann.ID, 3)}); err != nil {
				return err
			}
			if _, err := markAllRead(ctx, tx, ann.ID); err != nil {
				return err
			}
			return errFail
		})
		if !errors.Is(err, errFail) {
			t.Fatalf("Update = %v, want fn's error %v", err, errFail)
		}
		_, err = s.UserByUsername(t.Context(), "bob")
		wantCode(t, err, social.CodeNotFound)
		_, err = s.PostByID(t.Context(), post.ID)
		wantCode(t, err, social.CodeNotFound)
		_, err = s.SessionUser(t.Context(), social.HashToken("t"), t0)
		wantCode(t, err, social.CodeNotFound)
		wantFollowCounts(t, s, ann.ID, 0, 0)
		wantPage(t, s, ann.ID, social.NotificationQuery{Limit: 10}, kept)
		wantUnread(t, s, ann.ID, 1)
		if got, err := s.SeqAtID(t.Context(), ann.ID, 0); err != nil || got != 1 {
			t.Fatalf("SeqAtID = %d, %v; want 1", got, err)
		}
		// The rolled back Seqs are given again: no gap.
		MustAddNotifications(t, s, notification(ann.ID, 4), notification(ann.ID, 5))
		wantGapless(t, s, ann.ID, 3)
	})

	// A caller whose context ends while its function runs gets all of its
	// work or none of it: nil and everything kept, or an error and nothing
	// kept (a store may run the rest of the function or stop it). Ended
	// before a last statement, or just before the commit.
	for _, last := range []bool{true, false} {
		t.Run(fmt.Sprintf("CancelledMidway/lastStatement=%v", last), func(t *testing.T) {
			s := open(t)
			ann := MustCreateUser(t, s, "ann")
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var posts []int64
			post := func(tx social.Tx, body string) error {
				p, err := tx.CreatePost(ctx, social.Post{AuthorID: ann.ID, Body: body, CreatedAt: t0})
				if err == nil {
					posts = append(posts, p.ID)
				}
				return err
			}
			err := s.Update(ctx, func(tx social.Tx) error {
				posts = nil
				if err := post(tx, "before"); err != nil {
					return err
				}
				if _, err := AddNotifications(ctx, tx, []social.Notification{notification(ann.ID, 1)}); err != nil {
					return err
				}
				cancel()
				if last {
					return post(tx, "after")
				}
				return nil
			})
			kept := 0
			for _, id := range posts {
				if _, err := s.PostByID(t.Context(), id); err == nil {
					kept++
				}
			}
			unread, uerr := s.UnreadCount(t.Context(), ann.ID)
			if uerr != nil {
				t.Fatal(uerr)
			}
			switch {
			case err == nil && (kept != len(posts) || kept == 0 || unread != 1):
				t.Fatalf("Update = nil, but %d of the posts %v and %d notifications were kept", kept, posts, unread)
			case err != nil && (kept != 0 || unread != 0):
				t.Fatalf("Update = %v, but %d of the posts %v and %d notifications were kept", err, kept, posts, unread)
			}
			// Nothing half done: the next notification takes the next Seq.
			MustAddNotifications(t, s, notification(ann.ID, 2))
			wantGapless(t, s, ann.ID, unread+1)
		})
	}
	t.Run("RollsBackOnStoreError", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		err := s.Update(t.Context(), func(tx social.Tx) error {
			ctx := t.Context()
			if _, err := tx.CreatePost(ctx, social.Post{AuthorID: ann.ID, Body: "gone", CreatedAt: t0}); err != nil {
				return err
			}
			if _, err := AddNotifications(ctx, tx, []social.Notification{notification(ann.ID, 1)}); err != nil {
				return err
			}
			_, err := tx.CreateUser(ctx, social.User{Username: "ANN", CreatedAt: t0}, []byte("hash"))
			return err
		})
		wantCode(t, err, social.CodeConflict)
		wantPage(t, s, ann.ID, social.NotificationQuery{Limit: 10}, nil)
		out := MustAddNotifications(t, s, notification(ann.ID, 2))
		if out[0].Seq != 1 {
			t.Fatalf("Seq after a rolled back transaction = %d, want 1", out[0].Seq)
		}
	})
}
