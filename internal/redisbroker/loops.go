package redisbroker

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-social/pulse/internal/social"
)

const (
	// pingInterval is how often the control goroutine sends PING on the
	// pub/sub connection, so that a quiet connection still carries a reply.
	pingInterval = 10 * time.Second
	// readTimeout is how long the receiving goroutine waits for anything
	// on the pub/sub connection (at least half of it per read) before it
	// takes the connection for dead and has go-redis make a new one. It is
	// well above pingInterval.
	readTimeout = 30 * time.Second
	// minBackoff and maxBackoff bound the wait before a failed command or
	// connection is tried again.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 2 * time.Second
)

// onFirst is the Hub's OnFirst: userID has its first local subscription.
// Like onLast it runs with a lock of the Hub held, so it records the change
// and wakes the control goroutine, nothing more.
func (b *Broker) onFirst(userID int64) {
	b.mu.Lock()
	u := b.users[userID]
	if u == nil {
		u = &user{ready: make(chan struct{})}
		b.users[userID] = u
	}
	u.want = true
	b.markDirty(userID, u)
	b.mu.Unlock()
	b.kick()
}

// onLast is the Hub's OnLast: userID's last local subscription has ended.
func (b *Broker) onLast(userID int64) {
	b.mu.Lock()
	u := b.users[userID]
	u.want = false
	b.markDirty(userID, u)
	b.mu.Unlock()
	b.kick()
}

// onConnect is go-redis's OnConnect hook of the pub/sub client: it runs
// when the PubSub has made a new connection and before it sends anything on
// it (in particular before it subscribes again to its channels), with the
// PubSub's lock held. Confirmations pending on the old connection are lost.
func (b *Broker) onConnect(context.Context, *redis.Conn) error {
	b.mu.Lock()
	b.gen++
	again := b.gen > 1
	b.mu.Unlock()
	if again && b.onReconnect != nil {
		b.onReconnect()
	}
	return nil
}

// markDirty queues userID for the control goroutine. The caller holds b.mu.
func (b *Broker) markDirty(userID int64, u *user) {
	if !u.dirty {
		u.dirty = true
		b.dirty = append(b.dirty, userID)
	}
}

// forgetIfIdle drops u's entry once nothing refers to it any more. The
// caller holds b.mu.
func (b *Broker) forgetIfIdle(userID int64, u *user) {
	if !u.want && !u.subscribed && !u.dirty && u.inflight(b.gen) == 0 {
		delete(b.users, userID)
	}
}

// kick wakes the control goroutine without waiting.
func (b *Broker) kick() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// control is the goroutine that writes to the pub/sub connection: it brings
// Redis's subscriptions in line with the local users and pings. While a
// command fails it tries again with growing pauses.
func (b *Broker) control() {
	defer b.wg.Done()
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	var (
		retry   <-chan time.Time // set while waiting to try again
		backoff time.Duration
	)
	for {
		wake := b.wake
		if retry != nil {
			wake = nil // wait out the pause; the changes stay queued
		}
		select {
		case <-b.ctx.Done():
			return
		case <-ping.C:
			// A failed write makes go-redis replace the connection; a
			// connection that does not answer is caught by receive.
			_ = b.ps.Ping(b.ctx)
			continue
		case <-wake:
		case <-retry:
			retry = nil
		}
		if b.sync() {
			backoff = 0
			continue
		}
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		retry = time.After(backoff)
	}
}

// sync sends the SUBSCRIBE and UNSUBSCRIBE commands that the queued changes
// call for, at most one of each. It reports false if SUBSCRIBE failed; its
// users are queued to be sent again.
func (b *Broker) sync() bool {
	subIDs, subs, unsubs := b.takeChanges()
	if len(unsubs) > 0 {
		// On failure go-redis drops the connection, and with it these
		// subscriptions: it has already forgotten the channels, so it
		// will not subscribe to them again on the next connection.
		_ = b.ps.Unsubscribe(b.ctx, unsubs...)
	}
	if len(subs) == 0 || b.ps.Subscribe(b.ctx, subs...) == nil {
		return true
	}
	// The channels are in the PubSub's set, but go-redis may have made the
	// next connection before it added them: send them again. The next
	// connection voids the pending counts.
	b.mu.Lock()
	for _, id := range subIDs {
		if u := b.users[id]; u != nil && u.want && u.subscribed {
			u.resend = true
			b.markDirty(id, u)
		}
	}
	b.mu.Unlock()
	return false
}

// takeChanges empties the queue of changed users and returns the channels to
// subscribe to (and their users) and the channels to unsubscribe from,
// recording them as sent.
func (b *Broker) takeChanges() (subIDs []int64, subs, unsubs []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range b.dirty {
		u := b.users[id]
		if u == nil || !u.dirty {
			continue // dropped and made again: queued twice
		}
		u.dirty = false
		switch {
		case u.want && (!u.subscribed || u.resend):
			u.subscribed, u.resend = true, false
			if u.gen != b.gen {
				u.gen, u.pending = b.gen, 0
			}
			u.pending++
			subIDs = append(subIDs, id)
			subs = append(subs, b.channel(id))
		case !u.want && u.subscribed:
			u.subscribed, u.resend = false, false
			if u.confirmed {
				u.confirmed = false
				u.ready = make(chan struct{})
			}
			unsubs = append(unsubs, b.channel(id))
		}
		b.forgetIfIdle(id, u)
	}
	b.dirty = b.dirty[:0]
	return subIDs, subs, unsubs
}

// receive is the goroutine that reads the pub/sub connection: it hands each
// message to the Hub and each subscription confirmation to confirm. go-redis
// reconnects on a read error; receive pauses between failures in a row.
func (b *Broker) receive() {
	defer b.wg.Done()
	rc := readContext{parent: b.ctx}
	defer rc.stop()
	failures := 0
	for {
		msg, err := b.ps.Receive(rc.next())
		if err != nil {
			if b.ctx.Err() != nil {
				return
			}
			if failures++; failures > 1 {
				select {
				case <-b.ctx.Done():
					return
				case <-time.After(min(minBackoff<<(failures-2), maxBackoff)):
				}
			}
			continue
		}
		failures = 0
		switch msg := msg.(type) {
		case *redis.Message:
			b.deliver(msg)
		case *redis.Subscription:
			if msg.Kind == "subscribe" {
				b.confirm(msg.Channel)
			}
		}
	}
}

// readContext gives the receiving goroutine's reads their deadline: a read
// that times out makes go-redis drop the connection. One context serves many
// reads until it has less than half of readTimeout left, so that a busy
// connection does not pay for a timer per message.
type readContext struct {
	parent   context.Context
	ctx      context.Context
	cancel   context.CancelFunc
	deadline time.Time
}

// next returns the context for the next read.
func (rc *readContext) next() context.Context {
	if time.Until(rc.deadline) < readTimeout/2 {
		rc.stop()
		rc.deadline = time.Now().Add(readTimeout)
		rc.ctx, rc.cancel = context.WithDeadline(rc.parent, rc.deadline)
	}
	return rc.ctx
}

// stop releases the current context.
func (rc *readContext) stop() {
	if rc.cancel != nil {
		rc.cancel()
	}
}

// deliver decodes a message once and delivers it to every local subscriber
// of its user. A message that cannot be decoded, or that names another user
// than its channel, is lost: the user's subscribers get social.EventResync
// instead.
func (b *Broker) deliver(msg *redis.Message) {
	userID, ok := b.userOf(msg.Channel)
	if !ok {
		return
	}
	ev, err := decodeEvent(msg.Payload)
	if err != nil || ev.UserID != userID {
		ev = social.Event{Kind: social.EventResync, UserID: userID}
	}
	b.hub.Deliver(ev)
}

// confirm handles Redis's confirmation that the connection now listens to
// channel. The first confirmation of a subscription completes the waiting
// Subscribe calls. Any later one means that the channel was subscribed to
// again, on a new connection after the old one broke, and events published
// in between are lost: the user's subscribers get social.EventResync, after
// the channel is live again, so that what they read from the store next
// covers the gap.
func (b *Broker) confirm(channel string) {
	userID, ok := b.userOf(channel)
	if !ok {
		return
	}
	b.mu.Lock()
	u := b.users[userID]
	if u == nil {
		b.mu.Unlock()
		return
	}
	if u.inflight(b.gen) > 0 {
		u.pending--
	}
	resync := false
	switch {
	case u.confirmed:
		resync = true
	case u.subscribed && u.inflight(b.gen) == 0:
		u.confirmed = true
		close(u.ready)
	}
	b.forgetIfIdle(userID, u)
	b.mu.Unlock()
	if resync {
		b.hub.Deliver(social.Event{Kind: social.EventResync, UserID: userID})
	}
}
