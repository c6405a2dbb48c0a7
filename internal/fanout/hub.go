package fanout

import (
	"sync"
	"sync/atomic"

	"github.com/pulse-social/pulse/internal/social"
)

// DefaultQueueSize is the per-subscription queue size used when
// Config.QueueSize is 0 or less. A channel's buffer is allocated whole, so
// this is a per-socket cost (about 8 KiB at 64 events); a writer drains its
// queue in microseconds, and one that falls 64 events behind is cut off and
// resumes from the store.
const DefaultQueueSize = 64

// numShards is how many independently locked parts the Hub's map of users is
// split into, so that publishers to different users rarely contend.
const numShards = 64

// Config tunes a Hub. The zero value is ready to use.
type Config struct {
	// QueueSize is how many events a subscription holds before its
	// subscriber is cut off as too slow; 0 or less means DefaultQueueSize.
	// The queue is allocated when the subscription is made, so it is most
	// of the memory a subscription costs: the size of a social.Event (72
	// bytes today) per slot, about 19 KB per subscription by default.
	QueueSize int

	// OnFirst, if not nil, is called when userID gets its first
	// subscription; OnLast, if not nil, when its last subscription ends
	// (closed, cut off as too slow, or ended by Hub.Close).
	//
	// For any one user the calls alternate, OnFirst first, and after
	// Hub.Close every OnFirst has had its OnLast. OnFirst is called by
	// Subscribe after the subscription is registered and before Subscribe
	// returns; OnLast by whichever of Subscription.Close, Deliver,
	// DeliverAll or Hub.Close ends the last subscription.
	//
	// Both are called with the lock of the user's shard held, which is what
	// keeps them in order. They must therefore return quickly, must not
	// block (record the change and wake a goroutine of your own instead)
	// and must not call the Hub or close a subscription. Calls for users in
	// different shards may run at the same time.
	OnFirst func(userID int64)
	OnLast  func(userID int64)
}

// Hub keeps this process's subscriptions per user and delivers events to
// them. Its methods are safe for concurrent use. Create one with New.
type Hub struct {
	queueSize int
	onFirst   func(userID int64)
	onLast    func(userID int64)
	shards    [numShards]shard
}

// shard holds the subscriptions of the users that hash to it. A
// subscription is in users exactly while it is open: mu guards that, and
// every send on and close of a subscription's channel happens under mu.
type shard struct {
	mu     sync.Mutex
	closed bool
	// users maps a user to the head of its list of subscriptions (linked by
	// subscription.next); a user without subscriptions has no entry.
	users map[int64]*subscription
	// Keeps the hot fields of neighbouring shards on different cache lines.
	_ [64]byte
}

// New returns an empty Hub. It starts no goroutines.
func New(cfg Config) *Hub {
	h := &Hub{queueSize: cfg.QueueSize, onFirst: cfg.OnFirst, onLast: cfg.OnLast}
	if h.queueSize <= 0 {
		h.queueSize = DefaultQueueSize
	}
	return h
}

func (h *Hub) shard(userID int64) *shard {
	// Fibonacci hashing: the top bits of the product spread sequential IDs.
	return &h.shards[(uint64(userID)*0x9E3779B97F4A7C15)>>58]
}

// Subscribe returns a new subscription to userID's events: it receives every
// event delivered for userID after Subscribe returns. After Close it returns
// social.ErrBrokerClosed. The caller must Close the subscription when done.
func (h *Hub) Subscribe(userID int64) (social.Subscription, error) {
	s := &subscription{hub: h, userID: userID, ch: make(chan social.Event, h.queueSize)}
	sh := h.shard(userID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return nil, social.ErrBrokerClosed
	}
	if sh.users == nil {
		sh.users = make(map[int64]*subscription)
	}
	s.next = sh.users[userID]
	sh.users[userID] = s
	if s.next == nil && h.onFirst != nil {
		h.onFirst(userID)
	}
	return s, nil
}

// Deliver sends each event, in order, to every subscription of its UserID.
// It never blocks: a subscription whose queue is full is cut off (its
// channel is closed and its Err is social.ErrSlowConsumer). Events for users
// without subscriptions, and all events after Close, are dropped.
// Subscribers share the events' pointed-to values.
func (h *Hub) Deliver(events ...social.Event) {
	for i := range events {
		ev := &events[i]
		sh := h.shard(ev.UserID)
		sh.mu.Lock()
		for s := sh.users[ev.UserID]; s != nil; {
			next := s.next
			h.send(sh, s, ev)
			s = next
		}
		sh.mu.Unlock()
	}
}

// DeliverAll sends ev to every subscription of every user, with UserID set
// to the subscription's user, under the same rules as Deliver. A networked
// broker uses it to send social.EventResync after it may have lost events.
func (h *Hub) DeliverAll(ev social.Event) {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for userID, head := range sh.users {
			ev.UserID = userID
			for s := head; s != nil; {
				next := s.next
				h.send(sh, s, &ev)
				s = next
			}
		}
		sh.mu.Unlock()
	}
}

// send queues ev on s without blocking, or cuts s off if its queue is full.
// The caller holds sh.mu and s is open.
func (h *Hub) send(sh *shard, s *subscription, ev *social.Event) {
	select {
	case s.ch <- *ev:
	default:
		h.end(sh, s, stateSlow)
	}
}

// end removes the open subscription s from sh, records why it ended and
// closes its channel. The caller holds sh.mu.
func (h *Hub) end(sh *shard, s *subscription, why uint32) {
	head := sh.users[s.userID]
	switch {
	case head == s && s.next == nil:
		delete(sh.users, s.userID)
		if h.onLast != nil {
			h.onLast(s.userID)
		}
	case head == s:
		sh.users[s.userID] = s.next
	default:
		p := head
		for p.next != s {
			p = p.next
		}
		p.next = s.next
	}
	s.next = nil
	s.state.Store(why)
	close(s.ch)
}

// Close ends every subscription with social.ErrBrokerClosed; Subscribe then
// fails and Deliver drops everything. It is safe to call more than once.
func (h *Hub) Close() {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		sh.closed = true
		for userID, head := range sh.users {
			for s := head; s != nil; {
				next := s.next
				s.next = nil
				s.state.Store(stateBrokerClosed)
				close(s.ch)
				s = next
			}
			if h.onLast != nil {
				h.onLast(userID)
			}
		}
		sh.users = nil
		sh.mu.Unlock()
	}
}

// The states of a subscription: open, or why it ended.
const (
	stateOpen uint32 = iota
	stateClosed
	stateSlow
	stateBrokerClosed
)

// subscription is one subscriber's queue. It is kept small: the Hub holds
// one per open socket.
type subscription struct {
	hub    *Hub
	ch     chan social.Event
	userID int64
	// next links the subscriptions of one user; guarded by the shard's mu.
	next *subscription
	// state is written under the shard's mu, before ch is closed, and read
	// without it by Err.
	state atomic.Uint32
}

// Events returns the channel of the user's events; see social.Subscription.
func (s *subscription) Events() <-chan social.Event { return s.ch }

// Err returns why Events was closed; see social.Subscription.
func (s *subscription) Err() error {
	switch s.state.Load() {
	case stateSlow:
		return social.ErrSlowConsumer
	case stateBrokerClosed:
		return social.ErrBrokerClosed
	}
	return nil
}

// Close ends the subscription and closes Events, unless it has ended
// already. It is safe to call more than once and from any goroutine.
func (s *subscription) Close() {
	sh := s.hub.shard(s.userID)
	sh.mu.Lock()
	if s.state.Load() == stateOpen {
		s.hub.end(sh, s, stateClosed)
	}
	sh.mu.Unlock()
}
