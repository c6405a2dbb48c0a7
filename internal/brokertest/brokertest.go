package brokertest

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pulse-social/pulse/internal/social"
)

const (
	// chunk is how many events the suite publishes before it waits for a
	// reading subscriber to get them: less than the smallest queue it
	// assumes (64), so that a subscriber that reads is never cut off.
	chunk = 32
	// maxEvents is how many events a subscriber that never reads may be
	// sent before it must have been cut off.
	maxEvents = 1 << 16
)

// Run runs the contract suite, one subtest per case, each on a new broker
// that newBroker returns. newBroker must close the broker with t.Cleanup;
// each subtest fails if a goroutine started during it outlives that cleanup.
func Run(t *testing.T, newBroker func(t *testing.T) social.Broker) {
	tests := []struct {
		name string
		fn   func(*testing.T, social.Broker)
	}{
		{"DeliversToTheUserOnly", testDeliversToTheUserOnly},
		{"EverySubscriberOfTheUser", testEverySubscriberOfTheUser},
		{"PublishOrder", testPublishOrder},
		{"RoundTrip", testRoundTrip},
		{"Close", testClose},
		{"CloseTwice", testCloseTwice},
		{"CloseWithQueuedEvents", testCloseWithQueuedEvents},
		{"CloseWakesReceiver", testCloseWakesReceiver},
		{"CloseConcurrently", testCloseConcurrently},
		{"SlowConsumer", testSlowConsumer},
		{"ResubscribeAfterClose", testResubscribeAfterClose},
		{"ResubscribeAfterCutOff", testResubscribeAfterCutOff},
		{"SubscribeCanceled", testSubscribeCanceled},
		{"Concurrent", testConcurrent},
		{"BrokerClose", testBrokerClose},
		{"FuncDelivery", testFuncDelivery},
		{"FuncRefused", testFuncRefused},
		{"FuncQueueSize", testFuncQueueSize},
		{"FuncBrokerClose", testFuncBrokerClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Registered first, so it runs after newBroker's cleanup.
			running := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, running) })
			tc.fn(t, newBroker(t))
		})
	}
}

// NewUsers returns n distinct random user IDs, so that brokers of several
// test packages can share one server. They are odd and above 2^53, where a
// float64 cannot hold them exactly, to catch a lossy encoding.
func NewUsers(n int) []int64 {
	base := (1<<53 + rand.Int64N(1<<60)) | 1
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = base + 2*int64(i)
	}
	return ids
}

// notice returns an EventNotification for userID with the given Seq (and
// ID).
func notice(userID, seq int64) social.Event {
	n := &social.Notification{
		ID:          seq,
		Seq:         seq,
		RecipientID: userID,
		Message:     "Oliver started following you",
		Action:      social.ActionFollowing,
		ActionID:    seq,
		ByUser:      "Oliver",
		CreatedAt:   time.Date(2026, time.November, 25, 17, 3, 0, 0, time.UTC),
	}
	c := &social.Change{ID: seq, Seq: seq, RecipientID: userID, Kind: social.ChangeAdded, Notification: n, IDs: []int64{seq}, UnreadCount: int(seq)}
	return social.Event{Kind: social.EventNotification, UserID: userID, Notification: n, Change: c, Encodings: new(social.Encodings)}
}

// notices returns notice(userID, from), notice(userID, from+1), ...: n of them.
func notices(userID, from int64, n int) []social.Event {
	evs := make([]social.Event, n)
	for i := range evs {
		evs[i] = notice(userID, from+int64(i))
	}
	return evs
}

// mustSeqsFrom fails unless evs are notifications with Seqs from, from+1, ...
func mustSeqsFrom(tb testing.TB, evs []social.Event, from int64) {
	tb.Helper()
	for i, ev := range evs {
		if ev.Notification == nil || ev.Notification.Seq != from+int64(i) {
			tb.Fatalf("event %d of %d is %s, want notification seq %d", i, len(evs), describe(ev), from+int64(i))
		}
	}
}

// mustEndNow reads what is queued on sub and fails unless Events is then
// closed, without waiting, with Err() == nil: the state after Close returns.
func mustEndNow(tb testing.TB, sub social.Subscription) []social.Event {
	tb.Helper()
	var evs []social.Event
	for {
		select {
		case ev, ok := <-sub.Events():
			if ok {
				evs = append(evs, ev)
				continue
			}
			if err := sub.Err(); err != nil {
				tb.Fatalf("Err() after Close = %v, want nil", err)
			}
			return evs
		default:
			tb.Fatalf("Events still open after Close returned (read %d queued events)", len(evs))
		}
	}
}

func testDeliversToTheUserOnly(t *testing.T, b social.Broker) {
	users := NewUsers(3)
	a, c := MustSubscribe(t, b, users[0]), MustSubscribe(t, b, users[1])
	MustPublish(t, b)
	evA, evC := notice(users[0], 1), notice(users[1], 1)
	MustPublish(t, b, evA, notice(users[2], 1))
	MustPublish(t, b, evC)
	mustEqualEvents(t, MustReceive(t, a, 1), []social.Event{evA})
	mustEqualEvents(t, MustReceive(t, c, 1), []social.Event{evC})
	MustNotReceive(t, a, c)
}

func testEverySubscriberOfTheUser(t *testing.T, b social.Broker) {
	users := NewUsers(2)
	subs := []social.Subscription{MustSubscribe(t, b, users[0]), MustSubscribe(t, b, users[0]), MustSubscribe(t, b, users[0])}
	other := MustSubscribe(t, b, users[1])
	evs := notices(users[0], 1, 3)
	MustPublish(t, b, evs...)
	for _, sub := range subs {
		mustEqualEvents(t, MustReceive(t, sub, len(evs)), evs)
	}
	MustNotReceive(t, append(subs, other)...)
}

func testPublishOrder(t *testing.T, b social.Broker) {
	u := NewUsers(1)[0]
	sub := MustSubscribe(t, b, u)
	for r := range 20 {
		evs := notices(u, int64(r*chunk+1), chunk)
		if r%2 == 0 {
			MustPublish(t, b, evs...)
		} else {
			for _, ev := range evs {
				MustPublish(t, b, ev)
			}
		}
		mustEqualEvents(t, MustReceive(t, sub, len(evs)), evs)
	}
	MustNotReceive(t, sub)
}

func testRoundTrip(t *testing.T, b social.Broker) {
	u := NewUsers(1)[0]
	created := time.Date(2026, time.November, 25, 17, 3, 0, 123456789, time.UTC)
	full := &social.Notification{
		ID: 5012, Seq: 7, RecipientID: u,
		Message: "John reacted to your comment", Action: social.ActionReaction, ActionID: 23,
		ByUser: "John", ActionContent: "laugh", Affected: social.ContentComment, AffectedID: 79,
		Read: true, CreatedAt: created,
	}
	bare := &social.Notification{
		ID: 1<<62 + 1, Seq: 1<<53 + 1, RecipientID: u,
		Message: "Oliver started following you", Action: social.ActionFollowing, ActionID: 1,
		ByUser:    "Oliver",
		CreatedAt: created.In(time.FixedZone("IST", 5*3600+1800)),
	}
	// About 64 KiB of text, of bytes of every kind.
	long := strings.Repeat("é\u2028<&>\"\\\n\x00", 1<<13)
	evs := []social.Event{
		{Kind: social.EventNotification, UserID: u, Notification: full},
		{Kind: social.EventNotification, UserID: u, Notification: bare},
		{Kind: social.EventMessage, UserID: u, Message: "héllo <b>\"wörld\"</b> 👋"},
		{Kind: social.EventMessage, UserID: u, Message: long},
		{Kind: social.EventNotification, UserID: u, Notification: full, Change: &social.Change{
			ID: full.ID, Seq: full.Seq, RecipientID: u, Kind: social.ChangeAdded, Notification: full, IDs: []int64{full.ID}, UnreadCount: 7,
		}},
		{Kind: social.EventChange, UserID: u, Change: &social.Change{
			ID: 1<<62 + 2, Seq: 1<<53 + 2, RecipientID: u, Kind: social.ChangeRemoved, IDs: []int64{1, 1 << 62, 5012}, UnreadCount: 3,
		}},
		{Kind: social.EventChange, UserID: u, Change: &social.Change{
			ID: 1<<62 + 3, Seq: 1<<53 + 3, RecipientID: u, Kind: social.ChangeRead, IDs: []int64{23}, UnreadCount: 0,
		}},
		{Kind: social.EventNotification, UserID: u, Notification: bare, Change: &social.Change{
			ID: bare.ID, Seq: bare.Seq, RecipientID: u, Kind: social.ChangeAdded, Notification: bare, IDs: []int64{bare.ID}, UnreadCount: 1,
			Groups: []social.Group{{
				Key: "FOLLOWING:2026-11-25", Action: social.ActionFollowing, NotificationCount: 2, ActorCount: 2,
				SampleActors: []string{"Oliver", "Sarah"}, Message: "Oliver and Sarah started following you",
				Latest: bare, UnreadCount: 1, UpdatedAt: bare.CreatedAt,
			}},
		}},
		{Kind: social.EventChange, UserID: u, Change: &social.Change{
			ID: 1<<62 + 4, Seq: 1<<53 + 4, RecipientID: u, Kind: social.ChangeRemoved, IDs: []int64{5012}, UnreadCount: 0,
			Groups: []social.Group{
				{Key: "REACTION:COMMENT:79", Action: social.ActionReaction, Affected: social.ContentComment, AffectedID: 79,
					SampleActors: []string{}, UpdatedAt: created},
				{Key: "COMMENT:POST:3", Action: social.ActionComment, Affected: social.ContentPost, AffectedID: 3,
					NotificationCount: 4, ActorCount: 3, SampleActors: []string{"John", "Sarah", "Oliver"},
					Message: "John and 2 others commented on your post", Latest: full, UnreadCount: 2, UpdatedAt: created},
			},
		}},
		{Kind: social.EventRevoke, UserID: u, SessionID: 1 << 40},
		{Kind: social.EventRefresh, UserID: u, SessionID: 7, ExpiresAt: time.Date(2026, 5, 1, 12, 0, 0, 123456789, time.UTC)},
		{Kind: social.EventResync, UserID: u},
		{Kind: social.EventNotification, UserID: u, Notification: full, Message: "every field at once", SessionID: -3,
			ExpiresAt: time.Date(2026, 5, 1, 12, 0, 0, 0, time.FixedZone("", 3600))},
	}
	sub := MustSubscribe(t, b, u)
	MustPublish(t, b, evs...)
	mustEqualEvents(t, MustReceive(t, sub, len(evs)), evs)
	for _, ev := range evs {
		MustPublish(t, b, ev)
	}
	mustEqualEvents(t, MustReceive(t, sub, len(evs)), evs)
}

func testClose(t *testing.T, b social.Broker) {
	u := NewUsers(1)[0]
	sub, other := MustSubscribe(t, b, u), MustSubscribe(t, b, u)
	sub.Close()
	if evs := mustEndNow(t, sub); len(evs) != 0 {
		t.Fatalf("got %s after Close with nothing published", describe(evs[0]))
	}
	ev := notice(u, 1)
	MustPublish(t, b, ev)
	mustEqualEvents(t, MustReceive(t, other, 1), []social.Event{ev})
	if evs := mustEndNow(t, sub); len(evs) != 0 {
		t.Fatalf("got %s published after Close", describe(evs[0]))
	}
}

func testCloseTwice(t *testing.T, b social.Broker) {
	sub := MustSubscribe(t, b, NewUsers(1)[0])
	sub.Close()
	sub.Close()
	mustEndNow(t, sub)
}

func testCloseWithQueuedEvents(t *testing.T, b social.Broker) {
	u := NewUsers(1)[0]
	sub, other := MustSubscribe(t, b, u), MustSubscribe(t, b, u)
	evs := notices(u, 1, 3)
	MustPublish(t, b, evs...)
	MustReceive(t, other, len(evs))
	sub.Close()
	// What arrived before Close may still be read, in order.
	got := mustEndNow(t, sub)
	if len(got) > len(evs) {
		t.Fatalf("got %d events, published %d", len(got), len(evs))
	}
	mustEqualEvents(t, got, evs[:len(got)])
}

func testCloseWakesReceiver(t *testing.T, b social.Broker) {
	sub := MustSubscribe(t, b, NewUsers(1)[0])
	got := make(chan bool, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop)
	wg.Go(func() {
		select {
		case _, ok := <-sub.Events():
			got <- ok
		case <-stop:
		}
	})
	sub.Close()
	select {
	case ok := <-got:
		if ok {
			t.Fatalf("a blocked receiver got an event, want Events closed")
		}
	case <-time.After(Timeout):
		t.Fatalf("a receiver blocked on Events was not woken by Close within %v", Timeout)
	}
}

func testCloseConcurrently(t *testing.T, b social.Broker) {
	u := NewUsers(1)[0]
	sub := MustSubscribe(t, b, u)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(sub.Close)
		wg.Go(func() {
			if err := b.Publish(context.Background(), notice(u, int64(i+1))); err != nil {
				t.Errorf("Publish: %v", err)
			}
		})
	}
	wg.Wait()
	mustEndNow(t, sub)
}

// testSlowConsumer publishes to a user with two subscribers, one that never
// reads and one that reads everything, in chunks that the reader acknowledges,
// until the first is cut off. Publishing happens on its own goroutine and
// must finish within Timeout: Publish must not wait for the subscriber that
// never reads.
func testSlowConsumer(t *testing.T, b social.Broker) {
	u := NewUsers(1)[0]
	slow, reader := MustSubscribe(t, b, u), MustSubscribe(t, b, u)

	type outcome struct {
		published int64
		err       error
	}
	read := make(chan struct{}) // the reader got the last chunk
	done := make(chan outcome, 1)
	stop := make(chan struct{})
	finished := make(chan struct{})
	defer func() {
		close(stop)
		select {
		case <-finished:
		case <-time.After(Timeout):
			t.Errorf("the publishing goroutine is still blocked in Publish")
		}
	}()
	go func() {
		defer close(finished)
		ctx := context.Background()
		var seq int64
		for seq < maxEvents && slow.Err() == nil {
			evs := notices(u, seq+1, chunk)
			seq += chunk
			if seq/chunk%2 == 0 {
				if err := b.Publish(ctx, evs...); err != nil {
					done <- outcome{seq, err}
					return
				}
			} else {
				for _, ev := range evs {
					if err := b.Publish(ctx, ev); err != nil {
						done <- outcome{seq, err}
						return
					}
				}
			}
			select {
			case <-read:
			case <-stop:
				return
			}
		}
		done <- outcome{seq, nil}
	}()

	timeout := time.NewTimer(Timeout)
	defer timeout.Stop()
	var next int64 = 1
read:
	for {
		select {
		case ev, ok := <-reader.Events():
			if !ok {
				t.Fatalf("the subscriber that reads was closed too (Err: %v) after %d events", reader.Err(), next-1)
			}
			if ev.Notification == nil || ev.Notification.Seq != next {
				t.Fatalf("the subscriber that reads got %s, want notification seq %d", describe(ev), next)
			}
			if next%chunk == 0 {
				select {
				case read <- struct{}{}:
				case <-timeout.C:
					t.Fatalf("the publisher did not go on after %d events within %v: is it blocked in Publish?", next, Timeout)
				}
			}
			next++
		case o := <-done:
			if o.err != nil {
				t.Fatalf("Publish after %d events: %v", o.published, o.err)
			}
			if next-1 != o.published {
				t.Fatalf("the subscriber that reads got %d of %d events", next-1, o.published)
			}
			break read
		case <-timeout.C:
			t.Fatalf("publishing did not finish within %v (the reader got %d events): does Publish wait for the subscriber that does not read?", Timeout, next-1)
		}
	}
	if slow.Err() == nil {
		t.Fatalf("a subscriber that never reads was not cut off after %d events", next-1)
	}
	got := MustEnd(t, slow, social.ErrSlowConsumer)
	mustSeqsFrom(t, got, 1)
	if int64(len(got)) >= next-1 {
		t.Fatalf("the cut-off subscriber holds all %d events", len(got))
	}
	MustNotReceive(t, reader)
}

func testResubscribeAfterClose(t *testing.T, b social.Broker) {
	u := NewUsers(1)[0]
	for i := range int64(3) {
		sub := MustSubscribe(t, b, u)
		ev := notice(u, i+1)
		MustPublish(t, b, ev)
		mustEqualEvents(t, MustReceive(t, sub, 1), []social.Event{ev})
		sub.Close()
	}
}

// testResubscribeAfterCutOff checks that a user whose only subscriber was
// cut off can subscribe again: a networked broker that stops listening to a
// user when its last subscriber ends must listen again.
func testResubscribeAfterCutOff(t *testing.T, b social.Broker) {
	u := NewUsers(1)[0]
	mustCutOff(t, b, u, MustSubscribe(t, b, u))

	// Notices published before the cut-off may still be on their way (a
	// networked broker's publishes are asynchronous), more of them than a
	// queue holds: the new subscription skips them in a function, which
	// the broker never cuts off, and waits for the marker.
	again := MustSubscribe(t, b, u)
	marker := social.Event{Kind: social.EventMessage, UserID: u, Message: "marker"}
	got := make(chan social.Event, 1)
	if !again.SetFunc(func(ev social.Event) {
		if ev.Kind == social.EventMessage {
			select {
			case got <- ev:
			default:
			}
		}
	}, nil) {
		t.Fatal("SetFunc on a new subscription returned false")
	}
	MustPublish(t, b, marker)
	select {
	case ev := <-got:
		mustEqualEvents(t, []social.Event{ev}, []social.Event{marker})
	case <-time.After(Timeout):
		t.Fatalf("the marker did not arrive within %v (Err: %v)", Timeout, again.Err())
	}
}

// mustCutOff publishes notices to u, one at a time, until sub, a
// subscription of u's that is never read, is cut off as too slow; it
// returns what sub held, which must be the first of them, in order.
func mustCutOff(tb testing.TB, b social.Broker, u int64, sub social.Subscription) []social.Event {
	tb.Helper()
	deadline := time.Now().Add(Timeout)
	var seq int64
	for sub.Err() == nil {
		if seq == maxEvents || time.Now().After(deadline) {
			tb.Fatalf("a subscriber that never reads was not cut off after %d events", seq)
		}
		seq++
		MustPublish(tb, b, notice(u, seq))
	}
	held := MustEnd(tb, sub, social.ErrSlowConsumer)
	mustSeqsFrom(tb, held, 1)
	return held
}

func testSubscribeCanceled(t *testing.T, b social.Broker) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sub, err := b.Subscribe(ctx, NewUsers(1)[0])
	if err == nil {
		sub.Close()
		t.Fatalf("Subscribe with a canceled context succeeded")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe with a canceled context: %v, want %v", err, context.Canceled)
	}
}

// testConcurrent publishes from several goroutines while others subscribe,
// read a few events and close at random; run it with -race. Each subscriber
// checks that each publisher's events arrive in order.
func testConcurrent(t *testing.T, b social.Broker) {
	const (
		publishers   = 4
		perPublisher = 500
		subscribers  = 8
		rounds       = 20
	)
	users := NewUsers(4)
	ctx := context.Background()
	var pubs, subs sync.WaitGroup
	for p := range publishers {
		pubs.Go(func() {
			for i := range perPublisher {
				ev := notice(users[i%len(users)], int64(i+1))
				ev.Notification.ActionID = int64(p)
				if err := b.Publish(ctx, ev); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	published := make(chan struct{})
	for s := range subscribers {
		subs.Go(func() {
			rng := rand.New(rand.NewPCG(rand.Uint64(), uint64(s)))
			for range rounds {
				sub, err := b.Subscribe(ctx, users[rng.IntN(len(users))])
				if err != nil {
					t.Errorf("Subscribe: %v", err)
					return
				}
				last := make(map[int64]int64)
				check := func(ev social.Event) {
					n := ev.Notification
					if n.Seq <= last[n.ActionID] {
						t.Errorf("publisher %d: seq %d after %d", n.ActionID, n.Seq, last[n.ActionID])
					}
					last[n.ActionID] = n.Seq
				}
			read:
				for n := 1 + rng.IntN(2*chunk); n > 0; n-- {
					select {
					case ev, ok := <-sub.Events():
						if !ok {
							break read
						}
						check(ev)
					case <-published:
						break read
					}
				}
				sub.Close()
				// Events is closed when Close returns: read what is queued.
			drain:
				for {
					select {
					case ev, ok := <-sub.Events():
						if !ok {
							break drain
						}
						check(ev)
					default:
						t.Errorf("Events still open after Close returned")
						return
					}
				}
				if err := sub.Err(); err != nil && err != social.ErrSlowConsumer {
					t.Errorf("Err() = %v, want nil or %v", err, social.ErrSlowConsumer)
				}
			}
		})
	}
	pubs.Wait()
	close(published)
	subs.Wait()
}

// brokerCloser returns b's Close method, or skips the test if it has none.
func brokerCloser(t *testing.T, b social.Broker) func() error {
	switch c := b.(type) {
	case interface{ Close() error }:
		return c.Close
	case interface{ Close() }:
		return func() error { c.Close(); return nil }
	}
	t.Skip("the broker has no Close method")
	return nil
}

// testBrokerClose runs if the broker has a Close method.
func testBrokerClose(t *testing.T, b social.Broker) {
	closeBroker := brokerCloser(t, b)
	u := NewUsers(1)[0]
	open, closed := MustSubscribe(t, b, u), MustSubscribe(t, b, u)
	closed.Close()
	if err := closeBroker(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	MustEnd(t, open, social.ErrBrokerClosed)
	if err := closed.Err(); err != nil {
		t.Fatalf("Err() of a subscription closed before the broker = %v, want nil", err)
	}
	_ = closeBroker() // again: must not panic; its error does not matter.
	open.Close()
	if err := open.Err(); err != social.ErrBrokerClosed {
		t.Fatalf("Err() after Close of an ended subscription = %v, want %v", err, social.ErrBrokerClosed)
	}

	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if sub, err := b.Subscribe(ctx, u); !errors.Is(err, social.ErrBrokerClosed) {
		if err == nil {
			sub.Close()
		}
		t.Fatalf("Subscribe after Close: %v, want %v", err, social.ErrBrokerClosed)
	}
	if err := b.Publish(ctx, notice(u, 1)); !errors.Is(err, social.ErrBrokerClosed) {
		t.Fatalf("Publish after Close: %v, want %v", err, social.ErrBrokerClosed)
	}
}
