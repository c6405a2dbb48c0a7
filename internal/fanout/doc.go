// Package fanout is the local half of every broker: a Hub keeps this
// process's subscriptions, per user, and delivers events to them. The
// in-process broker hands every published event to a Hub; a networked broker
// hands it the events it receives from the network.
//
// # Who closes what
//
// The Hub owns the Events channel of every subscription it returns and is
// its only closer: each channel is closed exactly once, after
// Subscription.Close, Deliver or DeliverAll when the subscriber is too slow,
// or Hub.Close, whichever comes first. Err then says which: nil,
// social.ErrSlowConsumer or social.ErrBrokerClosed. Events already queued
// stay readable before the channel reports closed, except those in the
// overflow when the subscriber closes the subscription itself. Nothing is
// ever sent on a closed channel: sends and closes of a subscription's
// channel happen under the lock of its user, except while its pusher (see
// Queues) runs, which is then the channel's only sender and its closer.
//
// # Queues
//
// A subscription's queue (Config.QueueSize events) is a channel of a few
// events, made by the first Events call, and an overflow behind it,
// allocated while it holds events, so that an idle subscription costs a few
// hundred bytes whatever the queue size. While the overflow holds events, a
// goroutine of the subscription's (its pusher) sends them on to the
// channel, in order; it returns when the overflow is empty, and
// Subscription.Close stops it and waits for it.
//
// A subscription that is never read through Events can instead hand each
// event to a function (it is a social.FuncSubscription), called under the
// lock: it costs no queue and no goroutine, and the Hub never cuts it off,
// since its subscriber holds the events and keeps the same limit
// (Subscription.QueueSize); a second function learns when the Hub closes.
//
// # Delivery
//
// Deliver never blocks. It does one non-blocking send per subscription, or
// appends to its overflow; a subscription whose bounded queue
// (Config.QueueSize) is full is cut off at once rather than waited for.
// Events that one goroutine delivers reach each subscriber in that order;
// events delivered by different goroutines at the same time may
// interleave.
//
// # Membership callbacks
//
// Config.OnFirst and Config.OnLast tell a networked broker when a user gets
// its first local subscription and when its last one ends, so that it can
// listen to that user's channel only while someone here cares. They are
// called with a lock held; see Config for the rules.
//
// # Lock order
//
// A shard's lock is the first of a chain: the functions a shard calls with
// it held take their own locks inside it, never the other way round.
//
//	fanout shard.mu
//	├─ redisbroker Broker.mu            (Config.OnFirst, OnLast)
//	├─ plainws socket.mu                (its SetFunc functions)
//	└─ graph notificationStream.mu      (its SetFunc functions)
//	   └─ gqlws socket.mu               (the stream's Notifier)
//
// Nothing holding a lock further down calls the Hub or a subscription: a
// subscriber closes its feed from a goroutine of its own, with its lock let
// go.
//
// # Goroutines
//
// New starts none. Deliver and DeliverAll start a subscription's pusher
// when its overflow first holds events (see Queues); the subscription owns
// it: it returns when the overflow is empty, and Subscription.Close stops
// it and waits for it.
package fanout
