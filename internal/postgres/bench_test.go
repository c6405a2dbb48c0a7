package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/postgres"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/storetest"
)

// MustUsers creates n users in one transaction.
func MustUsers(tb testing.TB, s *postgres.Store, n int) []social.User {
	tb.Helper()
	users := make([]social.User, n)
	storetest.MustUpdate(tb, s, func(tx social.Tx) error {
		for i := range users {
			var err error
			users[i], err = tx.CreateUser(tb.Context(), social.User{Username: fmt.Sprintf("user%05d", i), CreatedAt: time.Now()}, []byte("hash"))
			if err != nil {
				return err
			}
		}
		return nil
	})
	return users
}

// BenchmarkAddNotifications10k measures one Update that stores a post's
// notifications for 10,000 followers.
func BenchmarkAddNotifications10k(b *testing.B) {
	s := MustOpen(b, MustSchema(b))
	users := MustUsers(b, s, 10_000)
	ns := make([]social.Notification, len(users))
	for i, u := range users {
		ns[i] = social.Notification{
			RecipientID: u.ID, Message: "Oliver created a new post", Action: social.ActionPost,
			ActionID: 1, ByUser: "Oliver", ActionContent: "hello, world", CreatedAt: time.Now(),
		}
	}
	for b.Loop() {
		err := s.Update(b.Context(), func(tx social.Tx) error {
			_, err := tx.AddNotifications(b.Context(), ns)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ns)), "ns/notification")
}

// BenchmarkCreatePost measures a small Update, what creating a post by a
// user with one follower takes: insert the post, list the followers, store
// one notification.
func BenchmarkCreatePost(b *testing.B) {
	s := MustOpen(b, MustSchema(b))
	users := MustUsers(b, s, 2)
	author, follower := users[0], users[1]
	storetest.MustUpdate(b, s, func(tx social.Tx) error {
		_, err := tx.CreateFollow(b.Context(), social.Follow{FollowerID: follower.ID, FolloweeID: author.ID, CreatedAt: time.Now()})
		return err
	})
	for b.Loop() {
		err := s.Update(b.Context(), func(tx social.Tx) error {
			ctx := b.Context()
			p, err := tx.CreatePost(ctx, social.Post{AuthorID: author.ID, Body: "hello, world", CreatedAt: time.Now()})
			if err != nil {
				return err
			}
			followers, err := tx.FollowerIDs(ctx, author.ID)
			if err != nil {
				return err
			}
			_, err = tx.AddNotifications(ctx, social.PostNotifications(author, p, followers))
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
