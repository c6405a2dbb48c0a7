package graph

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/graph/model"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
)

// CodeSlowConsumer is the extensions.code of the error that ends a
// subscription whose client could not keep up; extensions.after holds the id
// to resubscribe from.
const CodeSlowConsumer = "SLOW_CONSUMER"

type connectionStartKey struct{}

// connectionStart is the newest notification id of a GraphQL socket's user
// when the socket was acknowledged.
type connectionStart struct {
	id   int64
	used atomic.Bool
}

// WithConnectionStart returns a context for a GraphQL socket whose user's
// newest notification, at connection_init, had this id (0 for none). The
// socket's first notifications subscription without `after` starts there,
// so that nothing committed after the client saw connection_ack is missed,
// however long the server takes to start the subscription. Later ones
// start when they are started.
func WithConnectionStart(ctx context.Context, id int64) context.Context {
	cs := &connectionStart{id: id}
	return context.WithValue(ctx, connectionStartKey{}, cs)
}

// firstSubscriptionStart returns the connection's start, once.
func firstSubscriptionStart(ctx context.Context) (int64, bool) {
	cs, _ := ctx.Value(connectionStartKey{}).(*connectionStart)
	if cs == nil || !cs.used.CompareAndSwap(false, true) {
		return 0, false
	}
	return cs.id, true
}

// streamNotifications feeds a notifications subscription: the backlog after
// afterID (if given), then live notifications, without gap or duplicate. The
// goroutine it starts ends when ctx ends (gqlgen cancels it when the client
// stops the subscription or the socket closes) or the feed fails; it closes
// the returned channel.
func (r *Resolver) streamNotifications(ctx context.Context, userID int64, afterID *int64) (<-chan *model.Notification, error) {
	feed, err := r.Service.OpenFeed(ctx, userID, afterID)
	if err != nil {
		return nil, err
	}
	out := make(chan *model.Notification, 1)
	go func() {
		defer close(out)
		defer feed.Close()
		// send hands ns to gqlgen, which writes them in order; live is the
		// event that brought them (its own notification is counted with its
		// publish-to-write latency), or the zero Event for a replay.
		send := func(ns []social.Notification, live social.Event) bool {
			for i := range ns {
				select {
				case out <- toNotification(&ns[i]):
				case <-ctx.Done():
					return false
				}
				var publishedAt time.Time
				if live.Notification != nil && live.Notification.ID == ns[i].ID {
					publishedAt = live.PublishedAt
				}
				r.Metrics.Delivered(metrics.GraphQL, publishedAt)
			}
			return true
		}
		catchup := func() bool {
			for {
				ns, err := feed.Catchup(ctx)
				if err != nil {
					r.endWithError(ctx, err, feed.LastID())
					return false
				}
				if len(ns) == 0 {
					return true
				}
				if !send(ns, social.Event{}) {
					return false
				}
			}
		}
		if afterID != nil && !catchup() {
			return
		}
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-feed.Events():
				if !ok {
					r.endWithError(ctx, feed.Err(), feed.LastID())
					return
				}
				switch ev.Kind {
				case social.EventNotification:
					ns, err := feed.Admit(ctx, ev)
					if !send(ns, ev) {
						return
					}
					if err != nil {
						r.endWithError(ctx, err, feed.LastID())
						return
					}
				case social.EventResync:
					if !catchup() {
						return
					}
				}
			}
		}
	}()
	return out, nil
}

// streamUnreadCount feeds an unreadCount subscription: the count at once,
// then the new count whenever it changes.
func (r *Resolver) streamUnreadCount(ctx context.Context, userID int64) (<-chan int, error) {
	sub, err := r.Service.Subscribe(ctx, userID)
	if err != nil {
		return nil, err
	}
	count, err := r.Service.UnreadCount(ctx, userID)
	if err != nil {
		sub.Close()
		return nil, err
	}
	out := make(chan int, 1)
	out <- count
	go func() {
		defer close(out)
		defer sub.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-sub.Events():
				if !ok {
					r.endWithError(ctx, sub.Err(), 0)
					return
				}
				if ev.Kind != social.EventNotification && ev.Kind != social.EventUnreadChanged && ev.Kind != social.EventResync {
					continue
				}
				// Count once for a burst of changes, not once per event.
				drain(sub.Events())
				n, err := r.Service.UnreadCount(ctx, userID)
				if err != nil {
					r.endWithError(ctx, err, 0)
					return
				}
				if n == count {
					continue
				}
				count = n
				select {
				case out <- n:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// drain takes whatever is queued on ch without waiting.
func drain(ch <-chan social.Event) {
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// endWithError ends a subscription with an error the client can act on. A
// subscription cut off as too slow says where to resubscribe from; one ended
// because the connection or server is closing ends quietly; an unexpected
// failure is logged and shown as "internal error".
func (r *Resolver) endWithError(ctx context.Context, err error, lastID int64) {
	if err == nil || ctx.Err() != nil {
		return
	}
	gerr := &gqlerror.Error{Message: "internal error", Extensions: map[string]any{"code": string(social.CodeInternal)}}
	switch {
	case errors.Is(err, social.ErrSlowConsumer):
		r.Metrics.SlowCutoff(metrics.GraphQL)
		gerr.Message = "too slow to keep up: subscribe again with after set to the last id received"
		gerr.Extensions = map[string]any{"code": CodeSlowConsumer, "after": strconv.FormatInt(lastID, 10)}
	case errors.Is(err, social.ErrBrokerClosed):
		gerr.Message = "server shutting down: subscribe again with after set to the last id received"
		gerr.Extensions = map[string]any{"code": "UNAVAILABLE", "after": strconv.FormatInt(lastID, 10)}
	default:
		r.Logger.ErrorContext(ctx, "subscription failed", "err", err)
	}
	transport.AddSubscriptionError(ctx, gerr)
}
