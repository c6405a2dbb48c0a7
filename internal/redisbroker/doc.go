// Package redisbroker is the social.Broker for several server processes
// that share users: events travel through Redis pub/sub, and each process
// delivers them to its own subscribers through a fanout.Hub.
//
// # Channels
//
// Each user's events go to a channel of that user, the channel prefix
// followed by the user ID ("pulse:user:42"; see WithChannelPrefix). A process
// listens to a user's channel only while it has subscribers of that user:
// it sends SUBSCRIBE when the user's first local subscription opens and
// UNSUBSCRIBE when the last one ends, so it receives only the events of
// users connected to it. Token revocations and plain socket messages are
// events like any other, so a logout on one process closes the user's
// sockets on every process.
//
// All subscriptions of a process share one pub/sub connection. A message is
// decoded once and the same social.Event is delivered to every local
// subscriber of its user. Publish encodes each event once, in a compact
// binary form that carries every field of the Event (codec.go describes it),
// and sends all PUBLISH commands of one call in one round trip, on the
// client's pool of connections.
//
// # Who owns what
//
// New checks that Redis answers and starts no goroutines. Start starts two,
// owned by the Broker: the receiving goroutine is the only reader of the
// pub/sub connection and the only one to hand received events to the Hub;
// the control goroutine is the only one to send SUBSCRIBE, UNSUBSCRIBE and
// PING on it. Whoever calls New must call Close, which ends every
// subscription with social.ErrBrokerClosed, stops both goroutines and waits
// for them, and then closes the connections.
//
// A server process uses it like this:
//
//	b, err := redisbroker.New(ctx, "redis://127.0.0.1:6379/0", fanout.Config{})
//	if err != nil {
//		return err
//	}
//	b.Start()
//	defer b.Close()
//
// The Broker owns every subscription's Events channel and closes it when the
// subscription ends: after Subscription.Close (Err nil), when the subscriber
// is cut off as too slow (social.ErrSlowConsumer), or when the Broker closes
// (social.ErrBrokerClosed). The caller of Subscribe must Close the
// subscription.
//
// # Subscribe waits for Redis
//
// Subscribe returns only once Redis has confirmed the SUBSCRIBE for the
// user's channel (at once if the channel is live already), so that every
// event published after Subscribe returns reaches the subscription. The
// receiving goroutine completes the waiting Subscribe calls when it reads
// the confirmation. SUBSCRIBEs of many users that arrive at once share one
// command.
//
// # Lost events
//
// Redis pub/sub delivers at most once. go-redis replaces a broken pub/sub
// connection by itself and subscribes again to every channel, but what was
// published in between is lost. The Broker therefore delivers
// social.EventResync to a user's subscribers whenever that user's channel is
// confirmed again after its first confirmation, that is after every
// reconnection, once the channel is live again: subscribers then read what
// they missed from the store. A message that cannot be decoded is replaced by
// EventResync too. The receiving goroutine reads with a deadline and the
// control goroutine pings, so a connection that silently stops answering is
// replaced as well.
//
// Publish waits for Redis, never for a subscriber, and fails when Redis
// cannot be reached; the events are stored, and subscribers catch up when
// they resume.
package redisbroker
