// Package fanout is the local half of every broker: a Hub keeps this
// process's subscriptions, per user, and delivers events to them. The
// in-process broker hands every published event to a Hub; a networked broker
// hands it the events it receives from the network.
//
// # Who closes what
//
// The Hub owns the Events channel of every subscription it returns and is
// its only closer: each channel is closed exactly once, by Subscription.Close,
// by Deliver or DeliverAll when the subscriber is too slow, or by Hub.Close,
// whichever comes first. Err then says which: nil, social.ErrSlowConsumer or
// social.ErrBrokerClosed. Events already queued stay readable before the
// channel reports closed. Nothing is ever sent on a closed channel: sends and
// closes of a subscription's channel happen under the same lock.
//
// # Delivery
//
// Deliver never blocks. It does one non-blocking send per subscription; a
// subscription whose bounded queue (Config.QueueSize) is full is cut off at
// once rather than waited for. Events that one goroutine delivers reach each
// subscriber in that order; events delivered by different goroutines at the
// same time may interleave.
//
// # Membership callbacks
//
// Config.OnFirst and Config.OnLast tell a networked broker when a user gets
// its first local subscription and when its last one ends, so that it can
// listen to that user's channel only while someone here cares. They are
// called with a lock held; see Config for the rules.
//
// The Hub starts no goroutines.
package fanout
