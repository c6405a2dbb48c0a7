// Package inproc is the in-process social.Broker, the default when no
// networked broker is configured: Publish hands events straight to a
// fanout.Hub, which delivers them to this process's subscribers.
//
// # Who closes what
//
// The Broker owns every subscription's Events channel and closes it when the
// subscription ends: after Subscription.Close (Err nil), when the subscriber
// is cut off as too slow (social.ErrSlowConsumer), or when the Broker closes
// (social.ErrBrokerClosed). The caller of Subscribe must Close the
// subscription; whoever created the Broker must Close it.
//
// Subscribe returns a live subscription: it receives every event published
// after Subscribe returns. Publish never blocks.
//
// The Broker starts no goroutines.
package inproc
