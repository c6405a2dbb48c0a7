package storetest

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

// The benchmarks every store runs on itself, e.g.
//
//	func BenchmarkCreatePost(b *testing.B) { storetest.BenchmarkCreatePost(b, open(b)) }
//
// Besides ns/op they report cpu-ns/op, the process's CPU time per
// operation, which hardly moves when other processes load the machine (a
// database server's own CPU is not in it).

// MustUsers creates n users in one transaction.
func MustUsers(tb testing.TB, s social.Store, n int) []social.User {
	tb.Helper()
	users := make([]social.User, n)
	MustUpdate(tb, s, func(tx social.Tx) error {
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
func BenchmarkAddNotifications10k(b *testing.B, s social.Store) {
	users := MustUsers(b, s, 10_000)
	ns := make([]social.Notification, len(users))
	for i, u := range users {
		ns[i] = social.Notification{
			RecipientID: u.ID, Message: "Oliver created a new post", Action: social.ActionPost,
			ActionID: 1, ByUser: "Oliver", ActionContent: "hello, world", CreatedAt: time.Now(),
		}
	}
	start := CPUTime(b)
	for b.Loop() {
		err := s.Update(b.Context(), func(tx social.Tx) error {
			_, err := AddNotifications(b.Context(), tx, ns)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	ReportCPU(b, start)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(ns)), "ns/notification")
}

// BenchmarkCreatePost measures a small Update, what creating a post by a
// user with one follower takes: insert the post, list the followers, store
// one notification. One caller at a time.
func BenchmarkCreatePost(b *testing.B, s social.Store) {
	author := createPostFixture(b, s)
	start := CPUTime(b)
	for b.Loop() {
		createPost(b, s, author)
	}
	ReportCPU(b, start)
}

// BenchmarkCreatePostParallel is BenchmarkCreatePost with 64 callers at
// once, as under load.
func BenchmarkCreatePostParallel(b *testing.B, s social.Store) {
	author := createPostFixture(b, s)
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	start := CPUTime(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			createPost(b, s, author)
		}
	})
	ReportCPU(b, start)
}

// createPostFixture creates an author with one follower and returns the
// author.
func createPostFixture(b *testing.B, s social.Store) social.User {
	users := MustUsers(b, s, 2)
	author, follower := users[0], users[1]
	MustUpdate(b, s, func(tx social.Tx) error {
		_, err := tx.CreateFollow(b.Context(), social.Follow{FollowerID: follower.ID, FolloweeID: author.ID, CreatedAt: time.Now()})
		return err
	})
	return author
}

func createPost(b *testing.B, s social.Store, author social.User) {
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
		_, err = AddNotifications(ctx, tx, social.PostNotifications(author, p, followers))
		return err
	})
	if err != nil {
		b.Error(err)
	}
}

// CPUTime returns the CPU time the process has used, user and system.
func CPUTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ReportCPU reports the process's CPU time per operation since start.
func ReportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(CPUTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// ReactLoad makes W3's action through a Service on a store, one reaction
// at a time: a user reacts to another user's post, which stores the
// reaction and one notification and joins the post's group of reactions.
// With many posts consecutive reactions go to different users and groups
// stay small; with one post every reaction joins its group, which grows to
// every user but the owner (999 actors), and then each reaction changes a
// kind (a removal and an addition).
type ReactLoad struct {
	svc   *social.Service
	users []social.User
	posts []social.Post
	i     int
}

// NewReactLoad creates 1,000 users and a post by each of the first nposts.
func NewReactLoad(tb testing.TB, s social.Store, nposts int) *ReactLoad {
	l := &ReactLoad{svc: social.NewService(s, nopBroker{}, social.Config{}), users: MustUsers(tb, s, 1000),
		posts: make([]social.Post, nposts)}
	MustUpdate(tb, s, func(tx social.Tx) error {
		for i := range l.posts {
			var err error
			l.posts[i], err = tx.CreatePost(tb.Context(), social.Post{AuthorID: l.users[i].ID, Body: "hello", CreatedAt: time.Now()})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return l
}

// React makes the next reaction: reactor round+i+1 reacts to post
// i%nposts (round = i/nposts), a new pair each time while there are
// reactors left, then a change of kind. A post's owner never reacts to it.
func (l *ReactLoad) React(ctx context.Context) error {
	kinds := []social.ReactionKind{social.ReactionLike, social.ReactionLove}
	n, nposts := len(l.users), len(l.posts)
	round := l.i / nposts
	reactor := l.users[(round%(n-1)+l.i%nposts+1)%n]
	kind := kinds[(round/(n-1))%len(kinds)]
	l.i++
	_, err := l.svc.React(ctx, reactor, social.ContentPost, l.posts[(l.i-1)%nposts].ID, kind)
	return err
}
