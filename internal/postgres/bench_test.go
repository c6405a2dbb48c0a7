package postgres_test

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/inproc"
	"github.com/pulse-social/pulse/internal/procstat"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/storetest"
)

// The store's benchmarks, each on a fresh schema; see storetest.

func BenchmarkAddNotifications10k(b *testing.B) {
	storetest.BenchmarkAddNotifications10k(b, MustOpen(b, MustSchema(b)))
}

func BenchmarkCreatePost(b *testing.B) {
	storetest.BenchmarkCreatePost(b, MustOpen(b, MustSchema(b)))
}

func BenchmarkCreatePostParallel(b *testing.B) {
	storetest.BenchmarkCreatePostParallel(b, MustOpen(b, MustSchema(b)))
}

// BenchmarkReact measures the action of the bench tool's W3 through the
// service: a user reacts to another's post, which stores the reaction and
// one notification and appends its change. With 1,000 posts consecutive
// actions go to the posts of 1,000 users in turn, and groups stay small;
// with one post every reaction joins its group, which grows to 999
// actors. The store has one connection, and besides cpu-ns/op (this
// process) the benchmark reports pg-cpu-ns/op, the CPU time of that
// connection's PostgreSQL backend per action, read from /proc: the
// database's own cost, which load on the machine hardly moves.
func BenchmarkReact(b *testing.B) {
	for _, posts := range []int{1000, 1} {
		b.Run(fmt.Sprintf("posts=%d", posts), func(b *testing.B) { benchmarkReact(b, posts) })
	}
}

func benchmarkReact(b *testing.B, nposts int) {
	schema := MustSchema(b)
	u, err := url.Parse(schema)
	if err != nil {
		b.Fatal(err)
	}
	app := "pulse_bench_" + strings.ToLower(rand.Text())
	q := u.Query()
	q.Set("pool_max_conns", "1")
	q.Set("application_name", app)
	u.RawQuery = q.Encode()
	s := MustOpen(b, u.String())
	broker := inproc.New(fanout.Config{})
	b.Cleanup(broker.Close)
	svc := social.NewService(s, broker, social.Config{})
	users := storetest.MustUsers(b, s, 1000)
	posts := make([]social.Post, nposts)
	storetest.MustUpdate(b, s, func(tx social.Tx) error {
		for i := range posts {
			if posts[i], err = tx.CreatePost(b.Context(), social.Post{AuthorID: users[i].ID, Body: "hello", CreatedAt: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	pids := MustQuery[int32](b, MustConn(b, schema), `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app)
	if len(pids) != 1 {
		b.Fatalf("backends of %s: %v, want one", app, pids)
	}
	kinds := []social.ReactionKind{social.ReactionLike, social.ReactionLove}
	startPG, pgErr := procstat.CPUTicks(int(pids[0]))
	i := 0
	for b.Loop() {
		// Reactor round+i+1 reacts to post i%nposts (round = i/nposts):
		// a new pair each time while there are reactors left, then a
		// change of kind. The owner of post 0 never reacts to it.
		n, round := len(users), i/nposts
		reactor := users[(round%(n-1)+i%nposts+1)%n]
		kind := kinds[(round/(n-1))%len(kinds)]
		if _, err := svc.React(b.Context(), reactor, social.ContentPost, posts[i%nposts].ID, kind); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if end, err := procstat.CPUTicks(int(pids[0])); err == nil && pgErr == nil {
		b.ReportMetric(float64(end-startPG)*float64(time.Second/procstat.ClockTicks)/float64(b.N), "pg-cpu-ns/op")
	}
}
