package social

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// catchupBatch is how many stored notifications one store read returns.
const catchupBatch = 500

// Feed is one connection's gapless view of a user's inbox changes: every
// change after a starting point, each once, in order, whatever order the
// broker delivers them in. A transport that sends additions only keeps the
// ADDED changes (Added).
//
// It subscribes before it reads the store, so nothing committed in between
// is missed; it then drops live changes it already delivered (by Seq) and
// reads from the store the ones the broker has not brought yet when Seq
// jumps. Every change keeps its position in the store, so a jump is always
// filled; an ADDED change read from the store after its notification was
// removed is left out (its REMOVED change follows). One goroutine uses a
// Feed; Close may be called from any.
type Feed struct {
	store   Store
	sub     FuncSubscription
	userID  int64
	lastSeq int64
	lastID  int64
}

// OpenFeed subscribes to the user's events. With afterID nil, the feed
// starts with the next change; otherwise it starts after the change (or
// notification) with ID afterID (0: from the first one), and the caller
// reads the backlog with Catchup. The caller must Close the feed.
func (s *Service) OpenFeed(ctx context.Context, userID int64, afterID *int64) (*Feed, error) {
	sub, err := s.broker.Subscribe(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("open feed: %w", err)
	}
	f := &Feed{store: s.store, sub: sub, userID: userID}
	switch {
	case afterID == nil:
		f.lastSeq, err = s.store.SeqAtID(ctx, userID, 0)
	case *afterID > 0:
		f.lastSeq, err = s.store.SeqAtID(ctx, userID, *afterID)
		f.lastID = *afterID
	}
	if err != nil {
		sub.Close()
		return nil, fmt.Errorf("open feed: %w", err)
	}
	return f, nil
}

// Events returns the channel of the user's live events; see Subscription.
func (f *Feed) Events() <-chan Event { return f.sub.Events() }

// SetFunc makes the feed hand each live event to fn instead of Events, and
// call ended if the broker ends the subscription; see FuncSubscription,
// whose rules fn and ended follow. It fails if the subscription has ended.
func (f *Feed) SetFunc(fn func(Event), ended func()) error {
	if !f.sub.SetFunc(fn, ended) {
		return fmt.Errorf("subscription ended: %w", f.sub.Err())
	}
	return nil
}

// QueueSize is how many live events a function's subscriber may hold
// before it ends itself as too slow; see FuncSubscription.
func (f *Feed) QueueSize() int { return f.sub.QueueSize() }

// Err says why the subscription ended; see Subscription.
func (f *Feed) Err() error { return f.sub.Err() }

// Close ends the feed's subscription.
func (f *Feed) Close() { f.sub.Close() }

// LastID returns the ID of the last change the feed went past, or the
// starting point: the cursor a client resumes from.
func (f *Feed) LastID() int64 { return f.lastID }

// Cursor returns the ID of the change the feed starts after (0 for none):
// for a feed opened with afterID nil, the user's newest change then.
func (f *Feed) Cursor(ctx context.Context) (int64, error) {
	if f.lastID != 0 || f.lastSeq == 0 {
		return f.lastID, nil
	}
	cs, err := f.store.ChangesAfterSeq(ctx, f.userID, f.lastSeq-1, 1)
	if err != nil {
		return 0, fmt.Errorf("read the cursor: %w", err)
	}
	if len(cs) == 0 {
		return 0, nil
	}
	return cs[0].ID, nil
}

// Catchup returns the next stored changes after the last one the feed
// returned, oldest first, at most a few hundred at a time; it returns none
// when the feed is up to date. Call it until then after OpenFeed with an
// afterID, and on EventResync.
func (f *Feed) Catchup(ctx context.Context) ([]Change, error) {
	for {
		cs, err := f.store.ChangesAfterSeq(ctx, f.userID, f.lastSeq, catchupBatch)
		if err != nil {
			return nil, fmt.Errorf("catch up: %w", err)
		}
		f.advance(cs)
		full := len(cs) == catchupBatch
		if cs = present(cs); len(cs) > 0 || !full {
			return cs, nil
		}
	}
}

// ChangeWriter is a transport's side of Feed.Read: it encodes and writes
// one change.
type ChangeWriter interface {
	// WriteChange writes c. live is the event that brought it, for the
	// event's own change (its PublishedAt gives the publish-to-write
	// latency, and a transport may reuse what it cached of the event's
	// encoding), and nil for a change read from the store.
	WriteChange(c *Change, live *Event) error
}

// Published returns when live was published, or the zero time for nil (a
// change read from the store): where the publish-to-write latency starts.
func (live *Event) Published() time.Time {
	if live == nil {
		return time.Time{}
	}
	return live.PublishedAt
}

// Read hands w, in order, what ev brings: for an EventNotification or
// EventChange, what Admit returns; for EventResync or nil (the backlog
// after OpenFeed with an afterID), what Catchup returns until it returns
// none; for any other kind, nothing. It returns w's first error, at once,
// or else the store's, after writing what came before it. It is the one
// catch-up loop of every transport.
func (f *Feed) Read(ctx context.Context, ev *Event, w ChangeWriter) error {
	var kind EventKind
	if ev != nil {
		kind = ev.Kind
	}
	switch kind {
	case EventNotification, EventChange:
		cs, err := f.Admit(ctx, *ev)
		for i := range cs {
			var live *Event
			if cs[i].ID == ev.Change.ID {
				live = ev
			}
			if werr := w.WriteChange(&cs[i], live); werr != nil {
				return werr
			}
		}
		return err
	case 0, EventResync:
		for {
			cs, err := f.Catchup(ctx)
			if err != nil || len(cs) == 0 {
				return err
			}
			for i := range cs {
				if err := w.WriteChange(&cs[i], nil); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Admit takes a live EventNotification or EventChange and returns what to
// deliver now, in order: nothing if it was delivered already, the event's
// change if it is the next one, or else the missed ones from the store up
// to and including it. Call Catchup until it returns nothing before the
// first Admit.
func (f *Feed) Admit(ctx context.Context, ev Event) ([]Change, error) {
	c := ev.Change
	switch {
	case c.Seq <= f.lastSeq:
		return nil, nil
	case c.Seq == f.lastSeq+1:
		f.advance([]Change{*c})
		return []Change{*c}, nil
	}
	var out []Change
	for f.lastSeq < c.Seq {
		limit := min(int(c.Seq-f.lastSeq), catchupBatch)
		cs, err := f.store.ChangesAfterSeq(ctx, f.userID, f.lastSeq, limit)
		if err != nil {
			return out, fmt.Errorf("fill gap: %w", err)
		}
		if len(cs) == 0 {
			// The store does not have what the broker announced: it cannot
			// be committed yet. Deliver nothing out of order.
			return out, fmt.Errorf("fill gap: change seq %d of user %d not in the store", c.Seq, f.userID)
		}
		f.advance(cs)
		out = append(out, present(cs)...)
	}
	return out, nil
}

// AdmitNow is Admit for a live event it can take without the store: it
// returns the event's own change (shared with the event's other readers: do
// not change it) if it is the next one, or nil if it was delivered already,
// and true. It returns false, changing nothing, when changes are missing
// before it: only Admit reads those. It never blocks, so a
// FuncSubscription's function may call it.
func (f *Feed) AdmitNow(ev Event) (*Change, bool) {
	c := ev.Change
	switch {
	case c.Seq <= f.lastSeq:
		return nil, true
	case c.Seq == f.lastSeq+1:
		f.lastSeq, f.lastID = c.Seq, c.ID
		return c, true
	}
	return nil, false
}

func (f *Feed) advance(cs []Change) {
	if len(cs) > 0 {
		last := cs[len(cs)-1]
		f.lastSeq, f.lastID = last.Seq, last.ID
	}
}

// present drops, in place, the ADDED changes whose notification has been
// removed since.
func present(cs []Change) []Change {
	return slices.DeleteFunc(cs, func(c Change) bool { return c.Kind == ChangeAdded && c.Notification == nil })
}

// Added returns the notifications that the ADDED changes among cs added, in
// order: what a transport that sends additions only delivers.
func Added(cs []Change) []Notification {
	var ns []Notification
	for _, c := range cs {
		if c.Kind == ChangeAdded {
			ns = append(ns, *c.Notification)
		}
	}
	return ns
}
