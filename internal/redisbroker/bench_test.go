package redisbroker_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/pulse-social/pulse/internal/brokertest"
	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/redisbroker"
	"github.com/pulse-social/pulse/internal/social"
)

// BenchmarkPublish measures one Publish of one event, a round trip to Redis,
// while a subscriber of the user on another Broker reads everything.
func BenchmarkPublish(b *testing.B) {
	url, prefix := MustRedisURL(b), newPrefix()
	pub, recv := MustNew(b, url, prefix, fanout.Config{}), MustNew(b, url, prefix, fanout.Config{})
	u := brokertest.NewUsers(1)[0]
	sub := brokertest.MustSubscribe(b, recv, u)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer sub.Close()
	wg.Go(func() {
		for range sub.Events() {
		}
	})
	ev := notice(u, 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := pub.Publish(ctx, ev); err != nil {
			b.Fatalf("Publish: %v", err)
		}
	}
}

// BenchmarkPublishBatch publishes 10,000 events, one for each of 10,000
// users, in one Publish call, to another Broker (another process) where each
// user has a subscriber; an operation ends when every subscriber has its
// event: the time to the last delivery.
func BenchmarkPublishBatch(b *testing.B) {
	const n = 10_000
	url, prefix := MustRedisURL(b), newPrefix()
	pub, recv := MustNew(b, url, prefix, fanout.Config{}), MustNew(b, url, prefix, fanout.Config{})
	users := brokertest.NewUsers(n)
	subs := make([]social.Subscription, n)
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < n; i += 64 {
				subs[i] = brokertest.MustSubscribe(b, recv, users[i])
			}
		})
	}
	wg.Wait()
	evs := make([]social.Event, n)
	for i, u := range users {
		evs[i] = notice(u, 1)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := pub.Publish(ctx, evs...); err != nil {
			b.Fatalf("Publish: %v", err)
		}
		for i, sub := range subs {
			if ev, ok := <-sub.Events(); !ok || ev.UserID != users[i] {
				b.Fatalf("subscriber %d: got %+v (open: %v, Err: %v)", i, ev, ok, sub.Err())
			}
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkCodec encodes and decodes one notification event with its frame,
// in the Broker's encoding and, for comparison, in JSON.
func BenchmarkCodec(b *testing.B) {
	ev := notice(brokertest.NewUsers(1)[0], 5012)
	payload, err := redisbroker.AppendEvent(nil, &ev)
	if err != nil {
		b.Fatalf("AppendEvent: %v", err)
	}
	js, err := json.Marshal(ev)
	if err != nil {
		b.Fatalf("json.Marshal: %v", err)
	}
	b.Run("Encode", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			if _, err := redisbroker.AppendEvent(buf[:0], &ev); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(payload)), "bytes")
	})
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		s := string(payload)
		for b.Loop() {
			if _, err := redisbroker.DecodeEvent(s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EncodeJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(ev); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(js)), "bytes")
	})
	b.Run("DecodeJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got social.Event
			if err := json.Unmarshal(js, &got); err != nil {
				b.Fatal(err)
			}
		}
	})
}
