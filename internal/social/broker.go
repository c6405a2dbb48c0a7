package social

import (
	"context"
	"time"
)

// Broker carries events to the subscribers of a user, in this process
// (inproc) or in every process (redis).
type Broker interface {
	// Publish sends each event to every current subscriber of its UserID. It
	// never waits for a subscriber: one whose queue is full is cut off with
	// ErrSlowConsumer. An error means the events may not have been delivered
	// (ErrBrokerClosed after the broker closed, or it is unreachable); they
	// are stored, so subscribers catch up when they resume.
	Publish(ctx context.Context, events ...Event) error

	// Subscribe returns a subscription to userID's events. It returns only
	// once the subscription is live: it receives every event published, in
	// any process, after Subscribe returns (OpenFeed relies on this to read
	// the store after subscribing). It fails with ctx's error if ctx is done,
	// and with ErrBrokerClosed after the broker closed. The caller must Close
	// the subscription when done.
	Subscribe(ctx context.Context, userID int64) (FuncSubscription, error)
}

// DefaultQueueSize is how many events a subscriber may hold, received but
// not yet written, when its broker is not configured otherwise (see
// FuncSubscription.QueueSize): a writer drains its queue in microseconds,
// and one that falls this far behind is cut off and resumes from the store.
const DefaultQueueSize = 64

// Subscription is one subscriber's stream of one user's events.
//
// The broker owns the Events channel and closes it when the subscription
// ends: after Close, when the subscriber is cut off as too slow, or when the
// broker shuts down. Err then says which.
type Subscription interface {
	// Events returns the channel of events, in the order they were published
	// in this process.
	Events() <-chan Event
	// Err returns why Events was closed: nil after Close, ErrSlowConsumer,
	// or ErrBrokerClosed. It returns nil while Events is open.
	Err() error
	// Close ends the subscription: when it returns, Events is closed (events
	// queued before may still be received). It is safe to call more than
	// once and from any goroutine.
	Close()
}

// FuncSubscription is a Subscription that can hand its events to a
// function instead of queueing them for Events: the subscriber then needs
// no goroutine waiting on a channel. Every Broker's subscriptions are one.
type FuncSubscription interface {
	Subscription
	// SetFunc makes the subscription call f with each event, in order,
	// those it holds first, and ended (if not nil) once if the broker ends
	// the subscription (Err says why). The broker then never cuts it off
	// as too slow: the subscriber keeps at most QueueSize events it has not
	// written and ends itself with ErrSlowConsumer when one more comes. It
	// returns false, and changes nothing, if Events has been called or the
	// subscription has ended. Both are called with the broker's lock held:
	// they must return quickly, must not block, and must not call the
	// broker or close a subscription. After Close returns, neither is
	// called.
	SetFunc(f func(Event), ended func()) bool
	// QueueSize is the slow-consumer limit: how many events the
	// subscription holds for Events, or its function's subscriber for its
	// writer, before it is cut off. It is the same for every subscription
	// of a broker.
	QueueSize() int
}

// EventKind says what an Event carries.
type EventKind uint8

// The kinds of events.
const (
	// EventNotification: a new notification for the user, already stored:
	// an ADDED change.
	EventNotification EventKind = iota + 1
	// EventMessage: a message one of the user's plain sockets sent to all of
	// the user's plain sockets; Message holds its text.
	EventMessage
	// EventChange: a REMOVED or READ change to the user's inbox, already
	// stored.
	EventChange
	// EventRevoke: the session SessionID ended (logout, endSession,
	// logoutAll); its sockets close.
	EventRevoke
	// EventResync: the broker may have lost events (it reconnected);
	// subscribers catch up from the store.
	EventResync
	// EventRefresh: the session SessionID got a new token; its sockets
	// now expire at ExpiresAt.
	EventRefresh
)

// Event is what a Broker carries to a user's subscribers. Subscribers share
// the pointed-to values and must not modify them.
type Event struct {
	Kind   EventKind
	UserID int64
	// Notification is set for EventNotification.
	Notification *Notification
	// Change is set for EventNotification (its Notification is the event's)
	// and EventChange.
	Change *Change
	// Message is the text of an EventMessage.
	Message string
	// SessionID is set for EventRevoke and EventRefresh.
	SessionID int64
	// ExpiresAt is set for EventRefresh.
	ExpiresAt time.Time
	// PublishedAt is when the Service published the event (its wall clock),
	// for the publish-to-write latency; zero if unknown. A broker that
	// carries events between processes should carry it too.
	PublishedAt time.Time
	// Encodings caches what transports encode of an EventNotification or
	// EventMessage, once for all of its subscribers in this process (nil:
	// each encodes its own). It is not carried between processes: a
	// broker that does gives each event it receives a new one.
	Encodings *Encodings
}
