package fanout

import (
	"sync"
	"sync/atomic"

	"github.com/pulse-social/pulse/internal/social"
)

// chanSize is the capacity of a subscription's channel, or the queue size
// if smaller. A channel's buffer is allocated whole and kept for the
// subscription's life, so it is small; the events that do not fit wait in
// the subscription's overflow, allocated only while it holds any, for a
// goroutine that sends them on (see pusher).
const chanSize = 4

// numShards is how many independently locked parts the Hub's map of users is
// split into, so that publishers to different users rarely contend.
const numShards = 64

// Config tunes a Hub. The zero value is ready to use.
type Config struct {
	// QueueSize is how many events a subscription holds before its
	// subscriber is cut off as too slow, the one slow-consumer limit (see
	// social.FuncSubscription.QueueSize); 0 or less means
	// social.DefaultQueueSize. An idle subscription holds a channel of a few events (chanSize) and
	// nothing more: the rest of the queue is allocated when events fill
	// the channel, and freed when they have been received.
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
		h.queueSize = social.DefaultQueueSize
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
func (h *Hub) Subscribe(userID int64) (social.FuncSubscription, error) {
	s := &subscription{hub: h, userID: userID}
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

// send queues ev on s without blocking, or cuts s off if its queue is full,
// or hands it to s's function. The caller holds sh.mu and s is open.
func (h *Hub) send(sh *shard, s *subscription, ev *social.Event) {
	if s.fn != nil {
		s.fn(*ev)
		return
	}
	if s.ch != nil && len(s.spill) == s.head {
		select {
		case s.ch <- *ev:
			return
		default:
		}
	}
	if s.queued() >= h.queueSize {
		h.end(sh, s, stateSlow)
		return
	}
	s.spill = append(s.spill, *ev)
	if s.ch != nil && s.stop == nil {
		s.push()
	}
}

// end removes the open subscription s from sh and records why it ended.
// Its channel is closed now, or by its pusher once the overflow is sent on
// (at once if the subscriber closed it). The caller holds sh.mu.
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
	s.finish(why)
}

// Close ends every subscription with social.ErrBrokerClosed; Subscribe then
// fails and Deliver drops everything. It is safe to call more than once.
// Events queued before stay readable.
func (h *Hub) Close() {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		sh.closed = true
		for userID, head := range sh.users {
			for s := head; s != nil; {
				next := s.next
				s.next = nil
				s.finish(stateBrokerClosed)
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
//
// Its queue is the channel, made by the first Events call, then the
// overflow (spill[head:]), oldest first: events go to the overflow while
// the channel is full or not made yet, or the overflow holds any. While the
// channel is made and the overflow holds events, a pusher goroutine sends
// them on to the channel, one at a time, with a blocking send made without
// the shard's lock: the channel's only sender then is the pusher, and it
// closes the channel if the subscription has ended when it is done.
// Otherwise sends and the close happen under the shard's lock.
type subscription struct {
	hub    *Hub
	userID int64
	// next links the subscriptions of one user; guarded by the shard's mu.
	next *subscription
	// state is written under the shard's mu, before ch is closed, and read
	// without it by Err.
	state atomic.Uint32
	// events points at ch once it is made, for Events to read without the
	// lock; ch is never changed after.
	events atomic.Pointer[chan social.Event]

	// Guarded by the shard's mu.
	ch    chan social.Event
	spill []social.Event // the overflow is spill[head:]
	head  int
	fn    func(social.Event) // set by SetFunc
	ended func()             // set by SetFunc; called when the Hub ends s
	stop  chan struct{}      // non-nil while a pusher runs: closed to stop it
	done  chan struct{}      // closed by the running pusher when it returns
}

// queued is how many events s holds. The caller holds the shard's mu. The
// event the pusher is sending on stays in the overflow until the pusher has
// the lock again, so for that moment it counts twice: the queue is full one
// event early rather than one late.
func (s *subscription) queued() int {
	return len(s.ch) + len(s.spill) - s.head
}

// push starts the pusher. The caller holds the shard's mu, s.ch is made,
// the overflow holds events and no pusher runs.
func (s *subscription) push() {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.pusher(s.hub.shard(s.userID), s.stop, s.done)
}

// pusher sends the overflow on to the channel, oldest first, until it is
// empty or the subscriber closed the subscription; then, if the
// subscription has ended, it closes the channel. The subscription owns it:
// Close stops it and waits for it.
func (s *subscription) pusher(sh *shard, stop, done chan struct{}) {
	defer close(done)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for s.head < len(s.spill) {
		ev := s.spill[s.head]
		sh.mu.Unlock()
		select {
		case s.ch <- ev:
		case <-stop:
		}
		sh.mu.Lock()
		if s.head == len(s.spill) {
			break // Close dropped the overflow (and closed stop)
		}
		// ev was sent: since, Deliver can only have appended to the
		// overflow.
		s.spill[s.head] = social.Event{}
		if s.head++; s.head == len(s.spill) {
			s.dropSpill()
		}
	}
	s.stop, s.done = nil, nil
	if s.state.Load() != stateOpen {
		close(s.ch)
	}
}

func (s *subscription) dropSpill() {
	s.spill, s.head = nil, 0
}

// finish records why the open subscription s ended and closes its channel,
// or leaves that to its pusher, or, when the channel is not made yet, to
// Events. The caller holds the shard's mu.
func (s *subscription) finish(why uint32) {
	s.state.Store(why)
	if s.ended != nil && why != stateClosed {
		s.ended()
	}
	s.fn, s.ended = nil, nil
	if s.ch != nil && s.stop == nil {
		close(s.ch)
	}
}

// Events returns the channel of the user's events; see social.Subscription.
// The first call makes the channel.
func (s *subscription) Events() <-chan social.Event {
	if p := s.events.Load(); p != nil {
		return *p
	}
	sh := s.hub.shard(s.userID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan social.Event, min(chanSize, s.hub.queueSize))
		for s.head < len(s.spill) && len(s.ch) < cap(s.ch) {
			s.ch <- s.spill[s.head]
			s.head++
		}
		switch {
		case s.head < len(s.spill):
			s.push()
		case s.state.Load() != stateOpen:
			s.dropSpill()
			close(s.ch)
		default:
			s.dropSpill()
		}
		s.events.Store(&s.ch)
	}
	return s.ch
}

// SetFunc implements social.FuncSubscription: it makes the subscription
// hand each event to f instead of queueing it, in order, the events it
// holds first, and call ended (if not nil) when the Hub ends it (Hub.Close;
// such a subscription is never cut off as too slow). It returns false, and
// changes nothing, if Events has been called or the subscription has ended.
// Both are called with a lock held: like Config.OnFirst, they must return
// quickly, must not block and must not call the Hub or close a
// subscription. After Close returns, neither is called.
func (s *subscription) SetFunc(f func(social.Event), ended func()) bool {
	sh := s.hub.shard(s.userID)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if s.ch != nil || s.state.Load() != stateOpen {
		return false
	}
	for _, ev := range s.spill[s.head:] {
		f(ev)
	}
	s.dropSpill()
	s.fn, s.ended = f, ended
	return true
}

// QueueSize returns the Hub's queue size; see
// social.FuncSubscription.QueueSize.
func (s *subscription) QueueSize() int { return s.hub.queueSize }

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

// Close ends the subscription, unless it has ended already, and closes
// Events. The events in the channel stay readable; those in the overflow
// are dropped. It is safe to call more than once and from any goroutine.
func (s *subscription) Close() {
	sh := s.hub.shard(s.userID)
	sh.mu.Lock()
	if s.state.Load() == stateOpen {
		s.hub.end(sh, s, stateClosed)
	}
	if s.ch != nil {
		s.dropSpill()
	} else if n := min(chanSize, s.hub.queueSize); len(s.spill)-s.head > n {
		// What the channel will hold when Events makes it.
		s.spill = s.spill[:s.head+n]
	}
	stop, done := s.stop, s.done
	if stop != nil {
		select {
		case <-stop:
		default:
			close(stop)
		}
	}
	sh.mu.Unlock()
	if done != nil {
		<-done
	}
}
