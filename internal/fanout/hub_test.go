package fanout_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/pulse-social/pulse/internal/brokertest"
	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/social"
)

// MustSubscribe subscribes to userID's events and closes the subscription
// when the test ends.
func MustSubscribe(tb testing.TB, h *fanout.Hub, userID int64) social.Subscription {
	tb.Helper()
	sub, err := h.Subscribe(userID)
	if err != nil {
		tb.Fatalf("Subscribe(%d): %v", userID, err)
	}
	tb.Cleanup(sub.Close)
	return sub
}

// MustQueued returns the n events queued on sub, waiting for those that
// wait in its overflow to reach the channel, and fails if Events closes
// first or holds more right after them.
func MustQueued(tb testing.TB, sub social.Subscription, n int) []social.Event {
	tb.Helper()
	evs := brokertest.MustReceive(tb, sub, n)
	select {
	case ev, ok := <-sub.Events():
		tb.Fatalf("after %d events, got %+v, %v; want nothing more", n, ev, ok)
	default:
	}
	return evs
}

// MustSeqs fails unless evs are notification events with these Seqs.
func MustSeqs(tb testing.TB, evs []social.Event, want ...int64) {
	tb.Helper()
	got := make([]int64, len(evs))
	for i, ev := range evs {
		if ev.Notification == nil {
			tb.Fatalf("event %d has no Notification: %+v", i, ev)
		}
		got[i] = ev.Notification.Seq
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		tb.Fatalf("got seqs %v, want %v", got, want)
	}
}

func note(userID, seq int64) social.Event {
	return social.Event{
		Kind:         social.EventNotification,
		UserID:       userID,
		Notification: &social.Notification{RecipientID: userID, Seq: seq},
	}
}

// seqs returns 1, 2, ..., n.
func seqs(n int) []int64 {
	s := make([]int64, n)
	for i := range s {
		s[i] = int64(i + 1)
	}
	return s
}

func TestDeliver(t *testing.T) {
	t.Run("OnlyToItsUser", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		a, b := MustSubscribe(t, h, 1), MustSubscribe(t, h, 2)
		h.Deliver(note(1, 1), note(3, 1))
		MustSeqs(t, MustQueued(t, a, 1), 1)
		MustSeqs(t, MustQueued(t, b, 0))
	})
	t.Run("EverySubscriberOfTheUser", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		subs := []social.Subscription{MustSubscribe(t, h, 1), MustSubscribe(t, h, 1), MustSubscribe(t, h, 1)}
		h.Deliver(note(1, 1), note(1, 2))
		for _, sub := range subs {
			MustSeqs(t, MustQueued(t, sub, 2), 1, 2)
		}
	})
	t.Run("InOrder", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		sub := MustSubscribe(t, h, 1)
		for i := range int64(social.DefaultQueueSize) {
			h.Deliver(note(1, i+1))
		}
		MustSeqs(t, MustQueued(t, sub, social.DefaultQueueSize), seqs(social.DefaultQueueSize)...)
	})
	t.Run("SharedValues", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		a, b := MustSubscribe(t, h, 1), MustSubscribe(t, h, 1)
		ev := note(1, 1)
		ev.Encodings = new(social.Encodings)
		h.Deliver(ev)
		for _, sub := range []social.Subscription{a, b} {
			got := MustQueued(t, sub, 1)
			if len(got) != 1 || got[0].Notification != ev.Notification || got[0].Encodings != ev.Encodings {
				t.Fatalf("got %+v, want the delivered event itself, sharing its values", got)
			}
		}
	})
	t.Run("AfterSubscriptionClose", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		a, b := MustSubscribe(t, h, 1), MustSubscribe(t, h, 1)
		h.Deliver(note(1, 1))
		a.Close()
		h.Deliver(note(1, 2))
		MustSeqs(t, brokertest.MustEnd(t, a, nil), 1)
		MustSeqs(t, MustQueued(t, b, 2), 1, 2)
	})
}

func TestQueueSize(t *testing.T) {
	for _, tc := range []struct {
		name      string
		queueSize int
		want      int
	}{
		{"Default", 0, social.DefaultQueueSize},
		{"Negative", -1, social.DefaultQueueSize},
		{"Configured", 4, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := fanout.New(fanout.Config{QueueSize: tc.queueSize})
			defer h.Close()
			slow, reader := MustSubscribe(t, h, 1), MustSubscribe(t, h, 1)
			for i := range tc.want {
				h.Deliver(note(1, int64(i+1)))
			}
			if err := slow.Err(); err != nil {
				t.Fatalf("Err() = %v with a full queue; want nil until it overflows", err)
			}
			MustSeqs(t, MustQueued(t, reader, tc.want), seqs(tc.want)...)

			h.Deliver(note(1, int64(tc.want+1)), note(1, int64(tc.want+2)))
			// The slow subscriber keeps what was queued and gets nothing
			// after the event that did not fit; the other one gets all.
			MustSeqs(t, brokertest.MustEnd(t, slow, social.ErrSlowConsumer), seqs(tc.want)...)
			MustSeqs(t, MustQueued(t, reader, 2), int64(tc.want+1), int64(tc.want+2))
			slow.Close()
			if err := slow.Err(); err != social.ErrSlowConsumer {
				t.Fatalf("Err() after Close of a cut-off subscription = %v, want %v", err, social.ErrSlowConsumer)
			}
		})
	}
}

func TestSubscriptionClose(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		sub := MustSubscribe(t, h, 1)
		if err := sub.Err(); err != nil {
			t.Fatalf("Err() of an open subscription = %v, want nil", err)
		}
		sub.Close()
		h.Deliver(note(1, 1))
		MustSeqs(t, brokertest.MustEnd(t, sub, nil))
	})
	t.Run("Twice", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		sub := MustSubscribe(t, h, 1)
		sub.Close()
		sub.Close()
		brokertest.MustEnd(t, sub, nil)
	})
	t.Run("WakesReceiver", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		sub := MustSubscribe(t, h, 1)
		done := make(chan bool)
		go func() {
			_, ok := <-sub.Events()
			done <- ok
		}()
		sub.Close()
		if <-done {
			t.Fatalf("receiver got an event, want Events closed")
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		sub := MustSubscribe(t, h, 1)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(sub.Close)
			wg.Go(func() { h.Deliver(note(1, 1)) })
		}
		wg.Wait()
		brokertest.MustEnd(t, sub, nil)
	})
}

func TestHubClose(t *testing.T) {
	h := fanout.New(fanout.Config{})
	a, b, c := MustSubscribe(t, h, 1), MustSubscribe(t, h, 1), MustSubscribe(t, h, 2)
	h.Deliver(note(1, 1))
	c.Close()
	h.Close()
	MustSeqs(t, brokertest.MustEnd(t, a, social.ErrBrokerClosed), 1)
	MustSeqs(t, brokertest.MustEnd(t, b, social.ErrBrokerClosed), 1)
	brokertest.MustEnd(t, c, nil)

	h.Close()
	a.Close()
	h.Deliver(note(1, 2))
	h.DeliverAll(social.Event{Kind: social.EventResync})
	if sub, err := h.Subscribe(1); !errors.Is(err, social.ErrBrokerClosed) || sub != nil {
		t.Fatalf("Subscribe after Close = %v, %v; want nil, %v", sub, err, social.ErrBrokerClosed)
	}
	if err := a.Err(); err != social.ErrBrokerClosed {
		t.Fatalf("Err() after Close of an ended subscription = %v, want %v", err, social.ErrBrokerClosed)
	}
}

func TestDeliverAll(t *testing.T) {
	h := fanout.New(fanout.Config{QueueSize: 1})
	defer h.Close()
	users := []int64{1, 1, 2, 1 << 40, -3}
	subs := make([]social.Subscription, len(users))
	for i, u := range users {
		subs[i] = MustSubscribe(t, h, u)
	}
	full := MustSubscribe(t, h, 2)
	h.Deliver(note(2, 1))
	<-subs[2].Events()

	h.DeliverAll(social.Event{Kind: social.EventResync, UserID: 99})
	for i, sub := range subs {
		got := MustQueued(t, sub, 1)
		if len(got) != 1 || got[0].Kind != social.EventResync || got[0].UserID != users[i] {
			t.Fatalf("subscriber of user %d got %+v, want one EventResync with UserID %d", users[i], got, users[i])
		}
	}
	MustSeqs(t, brokertest.MustEnd(t, full, social.ErrSlowConsumer), 1)
}

// calls records OnFirst and OnLast calls and checks that they alternate for
// each user, keeping the first few errors.
type calls struct {
	mu     sync.Mutex
	log    []string
	active map[int64]bool
	errs   []string
}

func (c *calls) config(queueSize int) fanout.Config {
	c.active = make(map[int64]bool)
	return fanout.Config{
		QueueSize: queueSize,
		OnFirst:   func(u int64) { c.record(u, true) },
		OnLast:    func(u int64) { c.record(u, false) },
	}
}

func (c *calls) record(userID int64, first bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	name := "last"
	if first {
		name = "first"
	}
	if c.active[userID] == first && len(c.errs) < 10 {
		c.errs = append(c.errs, fmt.Sprintf("%s(%d) out of turn", name, userID))
	}
	c.active[userID] = first
	c.log = append(c.log, fmt.Sprintf("%s(%d)", name, userID))
}

// MustCalls fails unless the calls since the last MustCalls are want, and
// alternated.
func (c *calls) MustCalls(tb testing.TB, want ...string) {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		tb.Fatalf("callbacks out of order: %v", c.errs)
	}
	if fmt.Sprint(c.log) != fmt.Sprint(want) {
		tb.Fatalf("callbacks %v, want %v", c.log, want)
	}
	c.log = nil
}

func TestCallbacks(t *testing.T) {
	t.Run("Close", func(t *testing.T) {
		var c calls
		h := fanout.New(c.config(0))
		defer h.Close()
		a := MustSubscribe(t, h, 1)
		c.MustCalls(t, "first(1)")
		b := MustSubscribe(t, h, 1)
		c.MustCalls(t)
		a.Close()
		a.Close()
		c.MustCalls(t)
		b.Close()
		c.MustCalls(t, "last(1)")
		MustSubscribe(t, h, 1).Close()
		c.MustCalls(t, "first(1)", "last(1)")
	})
	t.Run("SlowConsumer", func(t *testing.T) {
		var c calls
		h := fanout.New(c.config(1))
		defer h.Close()
		MustSubscribe(t, h, 1)
		MustSubscribe(t, h, 2)
		h.Deliver(note(1, 1), note(1, 2), note(2, 1))
		c.MustCalls(t, "first(1)", "first(2)", "last(1)")
		h.DeliverAll(social.Event{Kind: social.EventResync})
		c.MustCalls(t, "last(2)")
	})
	t.Run("HubClose", func(t *testing.T) {
		var c calls
		h := fanout.New(c.config(0))
		MustSubscribe(t, h, 1)
		MustSubscribe(t, h, 1)
		c.MustCalls(t, "first(1)")
		h.Close()
		h.Close()
		c.MustCalls(t, "last(1)")
	})
}

// TestConcurrent delivers, subscribes and closes from many goroutines at
// once; run it with -race. Each subscriber checks that the events of each
// publisher arrive in order, and the callbacks must alternate throughout.
func TestConcurrent(t *testing.T) {
	const (
		users       = 8
		publishers  = 4
		perPub      = 2000
		subscribers = 8
		rounds      = 50
	)
	var c calls
	h := fanout.New(c.config(16))
	var pubs, subs sync.WaitGroup
	for p := range publishers {
		pubs.Go(func() {
			for i := range perPub {
				ev := note(int64(i%users), int64(i+1))
				ev.Notification.ActionID = int64(p)
				if i%500 == 0 {
					h.DeliverAll(social.Event{Kind: social.EventResync})
				}
				h.Deliver(ev)
			}
		})
	}
	published := make(chan struct{})
	for s := range subscribers {
		subs.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(s), 1))
			for range rounds {
				sub, err := h.Subscribe(rng.Int64N(users))
				if err != nil {
					t.Errorf("Subscribe: %v", err)
					return
				}
				last := make(map[int64]int64)
				read := 1 + rng.IntN(40)
			events:
				for {
					select {
					case ev, ok := <-sub.Events():
						if !ok {
							break events
						}
						if read--; read == 0 {
							sub.Close()
						}
						if ev.Kind != social.EventNotification {
							continue
						}
						n := ev.Notification
						if n.Seq <= last[n.ActionID] {
							t.Errorf("publisher %d: seq %d after %d", n.ActionID, n.Seq, last[n.ActionID])
						}
						last[n.ActionID] = n.Seq
					case <-published:
						sub.Close()
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
	h.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) > 0 {
		t.Fatalf("callbacks out of order: %v", c.errs)
	}
	for u, active := range c.active {
		if active {
			t.Fatalf("user %d: OnFirst without OnLast after Close", u)
		}
	}
}

// TestOverflow checks the queue beyond the channel: events that do not fit
// in the channel wait in the overflow, in order, and count towards the
// queue size until they are received.
func TestOverflow(t *testing.T) {
	t.Run("InOrderWhileReading", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		sub := MustSubscribe(t, h, 1)
		for i := range int64(social.DefaultQueueSize) {
			h.Deliver(note(1, i+1))
		}
		MustSeqs(t, brokertest.MustReceive(t, sub, 10), seqs(10)...)
		// Reading made room for ten more; deliver nine, since for a moment
		// the event the pusher has just sent on counts twice.
		for i := range int64(9) {
			h.Deliver(note(1, social.DefaultQueueSize+i+1))
		}
		if err := sub.Err(); err != nil {
			t.Fatalf("Err() = %v after the subscriber made room; want nil", err)
		}
		got := MustQueued(t, sub, social.DefaultQueueSize-1)
		MustSeqs(t, got, seqs(social.DefaultQueueSize + 9)[10:]...)
	})
	t.Run("BeforeEvents", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		sub, err := h.Subscribe(1)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		// Events delivered before the first Events call are kept.
		for i := range int64(social.DefaultQueueSize) {
			h.Deliver(note(1, i+1))
		}
		MustSeqs(t, MustQueued(t, sub, social.DefaultQueueSize), seqs(social.DefaultQueueSize)...)
	})
	t.Run("CloseDropsOverflow", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		sub := MustSubscribe(t, h, 1)
		sub.Events()
		for i := range int64(social.DefaultQueueSize) {
			h.Deliver(note(1, i+1))
		}
		sub.Close()
		// Closed when Close returns: what the channel holds, then the end.
		got := make([]social.Event, 0)
		for {
			select {
			case ev, ok := <-sub.Events():
				if ok {
					got = append(got, ev)
					continue
				}
			default:
				t.Fatalf("Events still open after Close returned")
			}
			break
		}
		if len(got) == 0 || len(got) >= social.DefaultQueueSize {
			t.Fatalf("got %d events after Close, want those of the channel only", len(got))
		}
		MustSeqs(t, got, seqs(len(got))...)
	})
	t.Run("CutOffKeepsOverflow", func(t *testing.T) {
		h := fanout.New(fanout.Config{QueueSize: 16})
		defer h.Close()
		sub := MustSubscribe(t, h, 1)
		sub.Events()
		for i := range int64(17) {
			h.Deliver(note(1, i+1))
		}
		MustSeqs(t, brokertest.MustEnd(t, sub, social.ErrSlowConsumer), seqs(16)...)
	})
	t.Run("HubCloseKeepsOverflow", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		sub := MustSubscribe(t, h, 1)
		sub.Events()
		for i := range int64(20) {
			h.Deliver(note(1, i+1))
		}
		h.Close()
		MustSeqs(t, brokertest.MustEnd(t, sub, social.ErrBrokerClosed), seqs(20)...)
	})
}

// TestSetFunc checks a subscription that hands its events to a function.
func TestSetFunc(t *testing.T) {
	type setFuncer interface {
		SetFunc(func(social.Event), func()) bool
	}
	t.Run("OK", func(t *testing.T) {
		h := fanout.New(fanout.Config{QueueSize: 2})
		defer h.Close()
		sub := MustSubscribe(t, h, 1)
		h.Deliver(note(1, 1))
		var mu sync.Mutex
		var got []social.Event
		if !sub.(setFuncer).SetFunc(func(ev social.Event) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, ev)
		}, func() { t.Errorf("ended called after Close") }) {
			t.Fatalf("SetFunc = false on a new subscription")
		}
		// Never too slow: nothing waits in a queue.
		for i := range int64(9) {
			h.Deliver(note(1, i+2))
		}
		sub.Close()
		h.Deliver(note(1, 11))
		mu.Lock()
		MustSeqs(t, got, seqs(10)...)
		mu.Unlock()
		if err := sub.Err(); err != nil {
			t.Fatalf("Err() = %v, want nil", err)
		}
	})
	t.Run("HubClosed", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		sub := MustSubscribe(t, h, 1)
		var ended int
		if !sub.(setFuncer).SetFunc(func(social.Event) {}, func() { ended++ }) {
			t.Fatalf("SetFunc = false on a new subscription")
		}
		h.Close()
		h.Close()
		sub.Close()
		if ended != 1 {
			t.Fatalf("ended called %d times, want 1", ended)
		}
		if err := sub.Err(); !errors.Is(err, social.ErrBrokerClosed) {
			t.Fatalf("Err() = %v, want %v", err, social.ErrBrokerClosed)
		}
	})
	t.Run("AfterEvents", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		sub := MustSubscribe(t, h, 1)
		sub.Events()
		if sub.(setFuncer).SetFunc(func(social.Event) {}, nil) {
			t.Fatalf("SetFunc = true after Events")
		}
		h.Deliver(note(1, 1))
		MustSeqs(t, MustQueued(t, sub, 1), 1)
	})
	t.Run("AfterClose", func(t *testing.T) {
		h := fanout.New(fanout.Config{})
		defer h.Close()
		sub := MustSubscribe(t, h, 1)
		sub.Close()
		if sub.(setFuncer).SetFunc(func(social.Event) {}, nil) {
			t.Fatalf("SetFunc = true after Close")
		}
	})
}
