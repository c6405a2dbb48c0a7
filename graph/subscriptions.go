package graph

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/graph/model"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
)

type connectionStartKey struct{}

// connectionStart is the cursor of the newest inbox change of a GraphQL
// socket's user when the socket was acknowledged.
type connectionStart struct {
	id   int64
	used atomic.Bool
}

// WithConnectionStart returns a context for a GraphQL socket whose user's
// newest inbox change, at connection_init, had this cursor (0 for none).
// The socket's first notifications or inboxChanges subscription without
// `after` starts there, so that nothing committed after the client saw
// connection_ack is missed, however long the server takes to start the
// subscription. Later ones start when they are started.
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
// afterID (if given), then live notifications, without gap or duplicate.
// The returned channel is closed when ctx ends (gqlgen cancels it when the
// client stops the subscription or the socket closes) or the feed fails.
//
// It holds no goroutine of its own while nothing is due: the broker hands
// each live event to a function (see changeStream.onEvent), which
// passes the next notification straight to gqlgen when gqlgen's channel has
// room; only a backlog, a gap in the sequence or a client still busy with
// earlier notifications start a goroutine (pump), which ends when it has
// caught up.
func (r *Resolver) streamNotifications(ctx context.Context, userID int64, afterID *int64) (<-chan *model.Notification, error) {
	return streamChanges(r, ctx, userID, afterID, func(c *social.Change) (*model.Notification, bool) {
		if c.Kind != social.ChangeAdded {
			return nil, false
		}
		return toNotification(c.Notification), true
	})
}

// streamInboxChanges feeds an inboxChanges subscription as
// streamNotifications feeds a notifications one, with every change.
func (r *Resolver) streamInboxChanges(ctx context.Context, userID int64, afterID *int64) (<-chan *model.InboxChange, error) {
	return streamChanges(r, ctx, userID, afterID, func(c *social.Change) (*model.InboxChange, bool) {
		return toInboxChange(c), true
	})
}

// streamChanges feeds a subscription with what convert makes of each
// change it keeps (ok), after afterID if given, then live.
//
//nolint:revive // the resolver first, as in its methods
func streamChanges[T any](r *Resolver, ctx context.Context, userID int64, afterID *int64, convert func(*social.Change) (T, bool)) (<-chan T, error) {
	feed, err := r.Service.OpenFeed(ctx, userID, afterID)
	if err != nil {
		return nil, err
	}
	st := &changeStream[T]{
		r:        r,
		ctx:      ctx,
		feed:     feed,
		convert:  convert,
		notify:   r.notifier(ctx),
		label:    r.transport(ctx),
		out:      make(chan T, 1),
		maxQueue: feed.QueueSize(),
		catchup:  afterID != nil,
		pumping:  afterID != nil,
	}
	if err := feed.SetFunc(st.onEvent, st.onFeedEnded); err != nil {
		feed.Close()
		// With a Notifier, the subscription has to end through its
		// channel.
		r.endWithError(ctx, err, feed.LastID())
		close(st.out)
		st.notify()
		return st.out, nil
	}
	if st.catchup {
		go st.pump()
	}
	context.AfterFunc(ctx, st.onDone)
	return st.out, nil
}

// changeStream is one notifications or inboxChanges subscription. Whoever holds
// "pumping" owns the feed and sends on out: the broker's function, under
// mu, while no pump runs; else the one pump goroutine. The owner that sees
// ended closes the feed and then out.
type changeStream[T any] struct {
	r        *Resolver
	ctx      context.Context
	feed     *social.Feed
	convert  func(*social.Change) (T, bool) // what to send of a change, if anything
	notify   func()                         // called after each send on out, and after its close
	label    string                         // its transport, for the metrics
	out      chan T
	maxQueue int
	catchup  bool // the pump is to send the backlog first

	mu          sync.Mutex
	queue       []social.Event // live events for the pump
	pumping     bool           // a pump goroutine runs, or the stream is finishing
	ended       bool           // take no more events; the owner finishes
	slow        bool           // ended for a full queue
	brokerEnded bool           // ended by the broker (feed.Err says why)
	failure     error          // ended by a failure of the store or of the send
}

// onEvent is the feed's function, called with the broker's lock held: it
// must not block. A live notification that is next in sequence goes to
// gqlgen at once if its channel has room; anything else is queued for the
// pump, which it starts if none runs.
func (st *changeStream[T]) onEvent(ev social.Event) {
	if ev.Kind != social.EventNotification && ev.Kind != social.EventChange && ev.Kind != social.EventResync {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return
	}
	// Without a pump, only this function sends on out, under mu: room now
	// means the send cannot block.
	if !st.pumping && len(st.out) < cap(st.out) && ev.Kind != social.EventResync {
		if c, ok := st.feed.AdmitNow(ev); ok {
			if c == nil {
				return
			}
			if v, keep := st.convert(c); keep {
				st.out <- v
				st.notify()
				st.r.Metrics.Delivered(st.label, ev.PublishedAt)
			}
			return
		}
	}
	if len(st.queue) >= st.maxQueue {
		st.ended, st.slow = true, true
	} else {
		st.queue = append(st.queue, ev)
	}
	st.wakeLocked()
}

// onFeedEnded is called, under the broker's lock, when the broker ends the
// subscription.
func (st *changeStream[T]) onFeedEnded() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.ended {
		st.ended, st.brokerEnded = true, true
	}
	st.wakeLocked()
}

// onDone runs when ctx ends: the stream ends quietly.
func (st *changeStream[T]) onDone() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ended = true
	st.wakeLocked()
}

// wakeLocked starts a pump unless one runs; the caller holds mu.
func (st *changeStream[T]) wakeLocked() {
	if !st.pumping {
		st.pumping = true
		go st.pump()
	}
}

// pump sends the backlog (the first pump of a subscription with after),
// then the queued events, each through the feed's reader (social.Feed.Read),
// until the queue is empty; or finishes the stream once it has ended.
func (st *changeStream[T]) pump() {
	if st.catchup {
		st.catchup = false
		if err := st.feed.Read(st.ctx, nil, st); err != nil {
			st.fail(err)
		}
	}
	for {
		st.mu.Lock()
		if st.ended {
			st.mu.Unlock()
			st.finish()
			return
		}
		events := st.queue
		st.queue = nil
		if len(events) == 0 {
			st.pumping = false
			st.mu.Unlock()
			return
		}
		st.mu.Unlock()
		for i := range events {
			if err := st.feed.Read(st.ctx, &events[i], st); err != nil {
				st.fail(err)
				break
			}
		}
	}
}

// WriteChange hands what convert makes of c to gqlgen, which writes it in
// order (see social.ChangeWriter); the live event's own change is counted
// with its publish-to-write latency.
func (st *changeStream[T]) WriteChange(c *social.Change, live *social.Event) error {
	v, keep := st.convert(c)
	if !keep {
		return nil
	}
	select {
	case st.out <- v:
		st.notify()
	case <-st.ctx.Done():
		return st.ctx.Err()
	}
	st.r.Metrics.Delivered(st.label, live.Published())
	return nil
}

// fail ends the stream for err, which the pump reports when it finishes.
func (st *changeStream[T]) fail(err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.ended {
		st.ended = true
		st.failure = err
	}
}

// finish is the owner's last act: it closes the feed (after which the
// broker calls none of the functions), reports why the stream ended (read
// first: a closed feed's Err is nil), and closes out.
func (st *changeStream[T]) finish() {
	st.mu.Lock()
	err := st.failure
	switch {
	case st.slow:
		err = social.ErrSlowConsumer
	case st.brokerEnded && err == nil:
		err = st.feed.Err()
	}
	st.mu.Unlock()
	st.feed.Close()
	st.r.endWithError(st.ctx, err, st.feed.LastID())
	close(st.out)
	st.notify()
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
	notify := r.notifier(ctx)
	out := make(chan int, 1)
	out <- count
	notify()
	go func() {
		defer notify()
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
				if ev.Kind != social.EventNotification && ev.Kind != social.EventChange && ev.Kind != social.EventResync {
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
					notify()
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// notifier returns the function that tells the transport of a
// subscription's context that its channel has something (see
// Streams.Notifier), or one that does nothing when gqlgen reads it.
func (r *Resolver) notifier(ctx context.Context) func() {
	if r.Streams != nil {
		if f := r.Streams.Notifier(ctx); f != nil {
			return f
		}
	}
	return func() {}
}

// transport returns the transport label of ctx's subscription.
func (r *Resolver) transport(ctx context.Context) string {
	if r.Streams != nil {
		return r.Streams.Transport(ctx)
	}
	return metrics.GraphQL
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
		r.Metrics.SlowCutoff(r.transport(ctx))
		gerr.Message = "too slow to keep up: subscribe again with after set to the last id received"
		gerr.Extensions = map[string]any{"code": string(social.CodeSlowConsumer), "after": strconv.FormatInt(lastID, 10)}
	case errors.Is(err, social.ErrBrokerClosed):
		gerr.Message = "server shutting down: subscribe again with after set to the last id received"
		gerr.Extensions = map[string]any{"code": string(social.CodeUnavailable), "after": strconv.FormatInt(lastID, 10)}
	default:
		r.Logger.ErrorContext(ctx, "subscription failed", "err", err)
	}
	if r.Streams != nil {
		r.Streams.AddError(ctx, gerr)
	}
}
