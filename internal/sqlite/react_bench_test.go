package sqlite_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/inproc"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/storetest"
)

// BenchmarkReact measures one reaction through the Service, one caller at
// a time, as W3 makes them: each notifies the post's owner and joins the
// post's group of reactions. With 1,000 posts the groups stay small; with
// one post every reaction joins the one group, which grows to b.N.
//
//	go test -run '^$' -bench React -benchtime 2000x ./internal/sqlite/
func BenchmarkReact(b *testing.B) {
	for _, posts := range []int{1000, 1} {
		b.Run(fmt.Sprintf("posts=%d", posts), func(b *testing.B) {
			s := openBench(b)
			broker := inproc.New(fanout.Config{})
			b.Cleanup(broker.Close)
			svc := social.NewService(s, broker, social.Config{})
			users := storetest.MustUsers(b, s, 1000)
			ps := make([]social.Post, posts)
			storetest.MustUpdate(b, s, func(tx social.Tx) error {
				for i := range ps {
					var err error
					if ps[i], err = tx.CreatePost(b.Context(), social.Post{AuthorID: users[i].ID, Body: "hello", CreatedAt: time.Now()}); err != nil {
						return err
					}
				}
				return nil
			})
			kinds := []social.ReactionKind{social.ReactionLike, social.ReactionLove}
			i := 0
			start := storetest.CPUTime(b)
			for b.Loop() {
				// Reactor i/posts+i+1 reacts to post i%posts: a new pair
				// each time while there are reactors left, then a change
				// of kind.
				round := i / posts
				reactor := users[(round+i+1)%len(users)]
				kind := kinds[(round/len(users))%len(kinds)]
				if _, err := svc.React(b.Context(), reactor, social.ContentPost, ps[i%posts].ID, kind); err != nil {
					b.Fatal(err)
				}
				i++
			}
			storetest.ReportCPU(b, start)
		})
	}
}
