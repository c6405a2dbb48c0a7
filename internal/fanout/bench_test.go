package fanout_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/social"
)

// BenchmarkSubscribe measures what a subscription costs: the time to make
// one, and the heap it keeps while it is open and idle (B/sub), with one
// subscription for each of 10,000 users, read through its channel (Events
// called once).
func BenchmarkSubscribe(b *testing.B) {
	const n = 10_000
	for _, size := range []int{social.DefaultQueueSize, 16} {
		b.Run(fmt.Sprintf("QueueSize=%d", size), func(b *testing.B) {
			subs := make([]social.Subscription, n)
			var retained uint64
			b.ReportAllocs()
			for range b.N {
				b.StopTimer()
				clear(subs)
				h := fanout.New(fanout.Config{QueueSize: size})
				before := heapAlloc()
				b.StartTimer()
				for i := range subs {
					var err error
					if subs[i], err = h.Subscribe(int64(i)); err != nil {
						b.Fatalf("Subscribe: %v", err)
					}
					subs[i].Events()
				}
				b.StopTimer()
				retained += heapAlloc() - before
				h.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(retained)/float64(b.N*n), "B/sub")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/sub")
		})
	}
}

// heapAlloc returns the bytes of live heap objects after a collection.
func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func BenchmarkDeliver(b *testing.B) {
	b.Run("OneSubscriber", func(b *testing.B) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		sub := MustSubscribe(b, h, 1)
		ev := note(1, 1)
		b.ReportAllocs()
		for b.Loop() {
			h.Deliver(ev)
			<-sub.Events()
		}
	})
	b.Run("NoSubscriber", func(b *testing.B) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		MustSubscribe(b, h, 1)
		ev := note(2, 1)
		b.ReportAllocs()
		for b.Loop() {
			h.Deliver(ev)
		}
	})
	// 10000Users delivers one event to each of 10,000 users with one
	// subscriber each, in one call, as a post to 10,000 followers does. The
	// subscribers' reads are not timed.
	b.Run("10000Users", func(b *testing.B) {
		const n = 10_000
		h := fanout.New(fanout.Config{})
		defer h.Close()
		subs := make([]social.Subscription, n)
		events := make([]social.Event, n)
		for i := range n {
			subs[i] = MustSubscribe(b, h, int64(i))
			events[i] = note(int64(i), 1)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			h.Deliver(events...)
			b.StopTimer()
			for _, sub := range subs {
				<-sub.Events()
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/event")
	})
}

// BenchmarkDeliverParallel delivers from GOMAXPROCS goroutines at once, each
// to its own 100 users with one subscriber each, which it reads.
func BenchmarkDeliverParallel(b *testing.B) {
	const users = 100
	h := fanout.New(fanout.Config{})
	defer h.Close()
	groups := make([][]social.Subscription, runtime.GOMAXPROCS(0))
	for g := range groups {
		groups[g] = make([]social.Subscription, users)
		for i := range users {
			groups[g][i] = MustSubscribe(b, h, int64(g*users+i))
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := next.Add(1) - 1
		subs := groups[g]
		ev := note(0, 1)
		i := 0
		for pb.Next() {
			ev.UserID = g*users + int64(i)
			h.Deliver(ev)
			<-subs[i].Events()
			i = (i + 1) % users
		}
	})
}
