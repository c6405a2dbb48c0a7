package inproc

import (
	"context"
	"sync/atomic"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/social"
)

var _ social.Broker = (*Broker)(nil)

// Broker delivers events to the subscribers of this process. Its methods are
// safe for concurrent use. Create one with New.
type Broker struct {
	hub    *fanout.Hub
	closed atomic.Bool
}

// New returns a Broker; cfg tunes its subscriptions (see fanout.Config). It
// starts no goroutines.
func New(cfg fanout.Config) *Broker {
	return &Broker{hub: fanout.New(cfg)}
}

// Publish delivers each event to every current subscriber of its UserID,
// without waiting: a subscriber whose queue is full is cut off with
// social.ErrSlowConsumer. It fails only after Close, with
// social.ErrBrokerClosed. ctx is not used, since Publish never waits.
func (b *Broker) Publish(_ context.Context, events ...social.Event) error {
	if b.closed.Load() {
		return social.ErrBrokerClosed
	}
	b.hub.Deliver(events...)
	return nil
}

// Subscribe returns a subscription to userID's events that receives every
// event published after Subscribe returns. It fails with ctx's error if ctx
// is done, and with social.ErrBrokerClosed after Close. The caller must Close
// the subscription.
func (b *Broker) Subscribe(ctx context.Context, userID int64) (social.FuncSubscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return b.hub.Subscribe(userID)
}

// Close ends every subscription with social.ErrBrokerClosed; Publish and
// Subscribe fail from then on. It is safe to call more than once.
func (b *Broker) Close() {
	b.closed.Store(true)
	b.hub.Close()
}
