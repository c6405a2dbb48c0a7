package postgres_test

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/procstat"
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

// BenchmarkReact measures W3's action through the service
// (storetest.ReactLoad): with 1,000 posts groups stay small; with one post
// every reaction joins its group, which grows to 999 actors. The store has
// one connection, and besides cpu-ns/op (this process) the benchmark
// reports pg-cpu-ns/op, the CPU time of that connection's PostgreSQL
// backend per action, read from /proc: the database's own cost, which load
// on the machine hardly moves.
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
	load := storetest.NewReactLoad(b, MustOpen(b, u.String()), nposts)
	pids := MustQuery[int32](b, MustConn(b, schema), `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app)
	if len(pids) != 1 {
		b.Fatalf("backends of %s: %v, want one", app, pids)
	}
	startPG, pgErr := procstat.CPUTicks(int(pids[0]))
	for b.Loop() {
		if err := load.React(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	if end, err := procstat.CPUTicks(int(pids[0])); err == nil && pgErr == nil {
		b.ReportMetric(float64(end-startPG)*float64(time.Second/procstat.ClockTicks)/float64(b.N), "pg-cpu-ns/op")
	}
}
