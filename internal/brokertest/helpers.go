package brokertest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

const (
	// Timeout bounds every wait for something that must happen: an event to
	// arrive, Publish to return, a channel to close. It is generous: it
	// catches deadlocks, it does not measure speed.
	Timeout = 10 * time.Second
	// Quiet is how long the suite waits to conclude that something does not
	// happen, such as an event arriving.
	Quiet = 100 * time.Millisecond
)

// MustSubscribe subscribes to userID's events and closes the subscription
// when the test ends.
func MustSubscribe(tb testing.TB, b social.Broker, userID int64) social.FuncSubscription {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	sub, err := b.Subscribe(ctx, userID)
	if err != nil {
		tb.Fatalf("Subscribe(%d): %v", userID, err)
	}
	tb.Cleanup(sub.Close)
	return sub
}

// MustPublish publishes events.
func MustPublish(tb testing.TB, b social.Broker, events ...social.Event) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := b.Publish(ctx, events...); err != nil {
		tb.Fatalf("Publish(%d events): %v", len(events), err)
	}
}

// MustReceive waits for the next n events of sub and returns them. It fails
// if they do not arrive within Timeout or Events closes first.
func MustReceive(tb testing.TB, sub social.Subscription, n int) []social.Event {
	tb.Helper()
	timeout := time.NewTimer(Timeout)
	defer timeout.Stop()
	evs := make([]social.Event, 0, n)
	for len(evs) < n {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				tb.Fatalf("Events closed (Err: %v) after %d of %d events", sub.Err(), len(evs), n)
			}
			evs = append(evs, ev)
		case <-timeout.C:
			tb.Fatalf("got %d of %d events within %v", len(evs), n, Timeout)
		}
	}
	return evs
}

// MustNotReceive waits for Quiet and fails if any of subs has received an
// event or has been closed by then.
func MustNotReceive(tb testing.TB, subs ...social.Subscription) {
	tb.Helper()
	time.Sleep(Quiet)
	for i, sub := range subs {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				tb.Fatalf("subscription %d: Events closed (Err: %v), want it open and quiet", i, sub.Err())
			}
			tb.Fatalf("subscription %d: got %s, want no event", i, describe(ev))
		default:
		}
	}
}

// MustEnd reads sub until Events closes, within Timeout, and fails unless
// Err then returns want. It returns the events read.
func MustEnd(tb testing.TB, sub social.Subscription, want error) []social.Event {
	tb.Helper()
	timeout := time.NewTimer(Timeout)
	defer timeout.Stop()
	var evs []social.Event
	for {
		select {
		case ev, ok := <-sub.Events():
			if ok {
				evs = append(evs, ev)
				continue
			}
			if err := sub.Err(); err != want {
				tb.Fatalf("Events closed with Err() = %v, want %v", err, want)
			}
			return evs
		case <-timeout.C:
			tb.Fatalf("Events not closed within %v (read %d events); want it closed with %v", Timeout, len(evs), want)
		}
	}
}

// mustEqualEvents fails unless got and want have the same contents.
func mustEqualEvents(tb testing.TB, got, want []social.Event) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if d := diff(got[i], want[i]); d != "" {
			tb.Fatalf("event %d (%s): %s", i, describe(want[i]), d)
		}
	}
}

// diff describes how got differs from want, comparing contents rather than
// pointers; "" means no difference.
func diff(got, want social.Event) string {
	switch {
	case got.Kind != want.Kind:
		return fmt.Sprintf("Kind = %d, want %d", got.Kind, want.Kind)
	case got.UserID != want.UserID:
		return fmt.Sprintf("UserID = %d, want %d", got.UserID, want.UserID)
	case got.Message != want.Message:
		return fmt.Sprintf("Message = %s, want %s", short(got.Message), short(want.Message))
	case got.SessionID != want.SessionID:
		return fmt.Sprintf("SessionID = %d, want %d", got.SessionID, want.SessionID)
	case !got.ExpiresAt.Equal(want.ExpiresAt):
		return fmt.Sprintf("ExpiresAt = %v, want %v", got.ExpiresAt, want.ExpiresAt)
	case (got.Change == nil) != (want.Change == nil):
		return fmt.Sprintf("Change = %v, want %v", got.Change, want.Change)
	case got.Change != nil && !SameChange(*got.Change, *want.Change):
		return fmt.Sprintf("Change = %+v, want %+v", *got.Change, *want.Change)
	case got.Change != nil && got.Change.Notification != got.Notification:
		return "Change.Notification is not the event's Notification"
	case got.Notification == nil && want.Notification == nil:
		return ""
	case got.Notification == nil || want.Notification == nil:
		return fmt.Sprintf("Notification = %v, want %v", got.Notification, want.Notification)
	}
	if g, w := *got.Notification, *want.Notification; !sameNotification(g, w) {
		return fmt.Sprintf("Notification = %+v, want %+v", g, w)
	}
	return ""
}

// describe names an event in failure messages.
func describe(ev social.Event) string {
	if n := ev.Notification; n != nil {
		return fmt.Sprintf("event kind %d of user %d, notification id %d seq %d", ev.Kind, ev.UserID, n.ID, n.Seq)
	}
	return fmt.Sprintf("event kind %d of user %d, frame %s", ev.Kind, ev.UserID, short(ev.Message))
}

// short quotes b, or its start and length when it is long.
func short(b string) string {
	if len(b) > 64 {
		return fmt.Sprintf("%q... (%d bytes)", b[:64], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// SameChange reports whether two changes have the same contents but for
// their Notification, which a caller compares as its event's.
func SameChange(a, b social.Change) bool {
	return a.ID == b.ID && a.Seq == b.Seq && a.RecipientID == b.RecipientID && a.Kind == b.Kind &&
		slices.Equal(a.IDs, b.IDs) && a.UnreadCount == b.UnreadCount &&
		slices.EqualFunc(a.Groups, b.Groups, sameGroup)
}

// sameGroup compares two groups by content: instants with Equal, Latest by
// what it points to.
func sameGroup(a, b social.Group) bool {
	if (a.Latest == nil) != (b.Latest == nil) || a.Latest != nil && !sameNotification(*a.Latest, *b.Latest) {
		return false
	}
	return a.Key == b.Key && a.Action == b.Action && a.Affected == b.Affected && a.AffectedID == b.AffectedID &&
		a.NotificationCount == b.NotificationCount && a.ActorCount == b.ActorCount &&
		slices.Equal(a.SampleActors, b.SampleActors) && a.Message == b.Message &&
		a.UnreadCount == b.UnreadCount && a.UpdatedAt.Equal(b.UpdatedAt)
}

// sameNotification compares two notifications, CreatedAt with Equal.
func sameNotification(a, b social.Notification) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return false
	}
	a.CreatedAt, b.CreatedAt = time.Time{}, time.Time{}
	return a == b
}
