package graph_test

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/pulse-social/pulse/graph"
	"github.com/pulse-social/pulse/graph/model"
	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/inproc"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/sqlite"
)

// waitTimeout bounds every wait of these tests.
const waitTimeout = 10 * time.Second

// fakeStreams is a graph.Streams that records what the resolvers tell the
// transport: how often each subscription notified, and the errors it ended
// with.
type fakeStreams struct {
	mu       sync.Mutex
	notified int
	errs     []*gqlerror.Error
	wake     chan struct{} // gets a value, without blocking, on each call
}

func newFakeStreams() *fakeStreams { return &fakeStreams{wake: make(chan struct{}, 1)} }

func (s *fakeStreams) Notifier(context.Context) func() {
	return func() {
		s.mu.Lock()
		s.notified++
		s.mu.Unlock()
		s.poke()
	}
}

func (s *fakeStreams) AddError(_ context.Context, err *gqlerror.Error) bool {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
	s.poke()
	return true
}

func (*fakeStreams) Transport(context.Context) string { return metrics.GraphQL }

func (s *fakeStreams) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Errors returns the errors added so far.
func (s *fakeStreams) Errors() []*gqlerror.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*gqlerror.Error(nil), s.errs...)
}

// MustWaitNotified waits until the Notifier was called at least n times.
func (s *fakeStreams) MustWaitNotified(tb testing.TB, n int) {
	tb.Helper()
	deadline := time.After(waitTimeout)
	for {
		s.mu.Lock()
		got := s.notified
		s.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-s.wake:
		case <-deadline:
			tb.Fatalf("notified %d times, want %d", got, n)
		}
	}
}

var _ graph.Streams = (*fakeStreams)(nil)

// env is a Resolver on a Service on in-memory SQLite and the in-process
// broker, with a fakeStreams as its transport.
type env struct {
	svc     *social.Service
	store   *countingStore
	broker  *inproc.Broker
	streams *fakeStreams
	sub     graph.SubscriptionResolver
}

// countingStore counts the unread counts read, so that a test can wait
// until a stream has read the count after an event.
type countingStore struct {
	social.Store
	unreadReads atomic.Int64
}

func (s *countingStore) UnreadCount(ctx context.Context, userID int64) (int, error) {
	defer s.unreadReads.Add(1)
	return s.Store.UnreadCount(ctx, userID)
}

// mustWaitRead waits until the unread count has been read more than n
// times.
func (s *countingStore) mustWaitRead(tb testing.TB, n int64) {
	tb.Helper()
	for deadline := time.Now().Add(waitTimeout); s.unreadReads.Load() <= n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("the unread count was read %d times, want more than %d", s.unreadReads.Load(), n)
		}
	}
}

// mustEnv returns an env whose broker holds queueSize events per
// subscription (0: the default). Its cleanup closes the broker and the
// store, then checks that no goroutine is left.
func mustEnv(tb testing.TB, queueSize int) *env {
	tb.Helper()
	tb.Cleanup(func() { goleak.VerifyNone(tb) })
	store, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	broker := inproc.New(fanout.Config{QueueSize: queueSize})
	tb.Cleanup(func() {
		broker.Close()
		if err := store.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	counting := &countingStore{Store: store}
	svc := social.NewService(counting, broker, social.Config{PasswordCost: bcrypt.MinCost})
	streams := newFakeStreams()
	r := &graph.Resolver{Service: svc, Logger: slog.New(slog.DiscardHandler), Streams: streams}
	return &env{svc: svc, store: counting, broker: broker, streams: streams, sub: r.Subscription()}
}

// mustNotifications starts a notifications subscription.
func (e *env) mustNotifications(tb testing.TB, ctx context.Context, after *string) <-chan *model.Notification {
	tb.Helper()
	ch, err := e.sub.Notifications(ctx, after)
	if err != nil {
		tb.Fatalf("Notifications: %v", err)
	}
	return ch
}

func (e *env) mustRegister(tb testing.TB, name string) social.User {
	tb.Helper()
	u, _, err := e.svc.Register(context.Background(), name, "password-"+name)
	if err != nil {
		tb.Fatalf("register %s: %v", name, err)
	}
	return u
}

// inbox is a user with a post that another user comments on: each comment
// is one notification for the post's author.
type inbox struct {
	e         *env
	owner     social.User
	commenter social.User
	post      social.Post
}

func (e *env) mustInbox(tb testing.TB) *inbox {
	tb.Helper()
	owner := e.mustRegister(tb, "owner")
	commenter := e.mustRegister(tb, "commenter")
	p, err := e.svc.CreatePost(context.Background(), owner, "a post")
	if err != nil {
		tb.Fatalf("create post: %v", err)
	}
	return &inbox{e: e, owner: owner, commenter: commenter, post: p}
}

// mustComment comments once and returns the comment.
func (in *inbox) mustComment(tb testing.TB) social.Comment {
	tb.Helper()
	c, err := in.e.svc.CreateComment(context.Background(), in.commenter, in.post.ID, "a comment", 0)
	if err != nil {
		tb.Fatalf("create comment: %v", err)
	}
	return c
}

// ctx returns a context of the owner's, cancelled at the end of the test.
func (in *inbox) ctx(tb testing.TB) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(social.WithAuth(context.Background(), social.Auth{User: in.owner}))
	tb.Cleanup(cancel)
	return ctx, cancel
}

// mustRecv returns the next value on ch, failing if ch is closed or nothing
// comes in time.
func mustRecv[T any](tb testing.TB, ch <-chan T) T {
	tb.Helper()
	select {
	case v, ok := <-ch:
		if !ok {
			tb.Fatalf("channel closed, want a value")
		}
		return v
	case <-time.After(waitTimeout):
		tb.Fatalf("nothing received in %v", waitTimeout)
	}
	panic("unreachable")
}

// mustDrain reads ch until it is closed and returns what it read.
func mustDrain[T any](tb testing.TB, ch <-chan T) []T {
	tb.Helper()
	var got []T
	deadline := time.After(waitTimeout)
	for {
		select {
		case v, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, v)
		case <-deadline:
			tb.Fatalf("channel still open after %v (read %d values)", waitTimeout, len(got))
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestNotificationsReplayThenLive: a subscription with after gets the
// backlog, the notifications committed while the backlog is being sent, and
// then live ones, each once, in id order.
func TestNotificationsReplayThenLive(t *testing.T) {
	e := mustEnv(t, 0)
	in := e.mustInbox(t)
	const before, during = 10, 10
	for range before {
		in.mustComment(t)
	}
	ctx, cancel := in.ctx(t)
	ch := e.mustNotifications(t, ctx, ptr("0"))
	// The replay has sent its first notification and, with nobody
	// reading, waits to send the second: commit more now.
	e.streams.MustWaitNotified(t, 1)
	for range during {
		in.mustComment(t)
	}
	var ids []int64
	for range before + during {
		ids = append(ids, mustRecv(t, ch).ID)
	}
	in.mustComment(t)
	ids = append(ids, mustRecv(t, ch).ID)
	cancel()
	for _, n := range mustDrain(t, ch) {
		ids = append(ids, n.ID)
	}
	if len(ids) != before+during+1 {
		t.Fatalf("got %d notifications %v, want %d", len(ids), ids, before+during+1)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			t.Fatalf("ids %v: not consecutive at %d (a gap, a duplicate or out of order)", ids, i)
		}
	}
	if errs := e.streams.Errors(); len(errs) != 0 {
		t.Fatalf("errors %v, want none", errs)
	}
}

// TestNotificationsSlowConsumer: a subscriber that does not read is cut off
// once more than the queue size waits, with SLOW_CONSUMER and after set to
// the last id it was given.
func TestNotificationsSlowConsumer(t *testing.T) {
	const queueSize = 4
	e := mustEnv(t, queueSize)
	in := e.mustInbox(t)
	ctx, _ := in.ctx(t)
	ch := e.mustNotifications(t, ctx, nil)
	// At most one in the channel, queueSize with the pump and queueSize
	// queued: the next one cuts the subscriber off.
	var first int64
	for i := range 2*queueSize + 2 {
		in.mustComment(t)
		if i == 0 {
			first = mustNotificationID(t, e, in)
		}
	}
	got := mustDrain(t, ch)
	if len(got) == 0 || len(got) > 2*queueSize+1 {
		t.Fatalf("got %d notifications before the cut, want 1 to %d", len(got), 2*queueSize+1)
	}
	for i, n := range got {
		if n.ID != first+int64(i) {
			t.Fatalf("notification %d has id %d, want %d", i, n.ID, first+int64(i))
		}
	}
	last := got[len(got)-1].ID
	errs := e.streams.Errors()
	if len(errs) != 1 {
		t.Fatalf("errors %v, want one", errs)
	}
	if code := errs[0].Extensions["code"]; code != string(social.CodeSlowConsumer) {
		t.Fatalf("code %v, want %s", code, social.CodeSlowConsumer)
	}
	if after := errs[0].Extensions["after"]; after != strconv.FormatInt(last, 10) {
		t.Fatalf("after %v, want %d, the last id delivered", after, last)
	}
}

// mustNotificationID returns the id of the owner's newest notification.
func mustNotificationID(tb testing.TB, e *env, in *inbox) int64 {
	tb.Helper()
	page, err := e.svc.Notifications(context.Background(), in.owner.ID, 1, 0, false)
	if err != nil || len(page.Items) == 0 {
		tb.Fatalf("notifications: %v, %d", err, len(page.Items))
	}
	return page.Items[0].ID
}

// TestNotificationsEnd: the stream closes, without an error when its
// context ends, and with UNAVAILABLE and after when the broker shuts down.
func TestNotificationsEnd(t *testing.T) {
	t.Run("Cancelled", func(t *testing.T) {
		e := mustEnv(t, 0)
		in := e.mustInbox(t)
		ctx, cancel := in.ctx(t)
		ch := e.mustNotifications(t, ctx, nil)
		in.mustComment(t)
		mustRecv(t, ch)
		cancel()
		if rest := mustDrain(t, ch); len(rest) != 0 {
			t.Fatalf("got %d more notifications after cancel, want none", len(rest))
		}
		if errs := e.streams.Errors(); len(errs) != 0 {
			t.Fatalf("errors %v, want none", errs)
		}
	})
	t.Run("BrokerClosed", func(t *testing.T) {
		e := mustEnv(t, 0)
		in := e.mustInbox(t)
		ctx, _ := in.ctx(t)
		ch := e.mustNotifications(t, ctx, nil)
		in.mustComment(t)
		n := mustRecv(t, ch)
		e.broker.Close()
		if rest := mustDrain(t, ch); len(rest) != 0 {
			t.Fatalf("got %d more notifications after the broker closed, want none", len(rest))
		}
		errs := e.streams.Errors()
		if len(errs) != 1 {
			t.Fatalf("errors %v, want one", errs)
		}
		if code := errs[0].Extensions["code"]; code != string(social.CodeUnavailable) {
			t.Fatalf("code %v, want %s", code, social.CodeUnavailable)
		}
		if after := errs[0].Extensions["after"]; after != strconv.FormatInt(n.ID, 10) {
			t.Fatalf("after %v, want %d, the last id delivered", after, n.ID)
		}
	})
}

// TestInboxChangesOrder: REMOVED and READ changes come after the ADDED ones,
// in cursor order, live and replayed; a replay leaves out the addition of a
// notification removed since.
func TestInboxChangesOrder(t *testing.T) {
	e := mustEnv(t, 0)
	in := e.mustInbox(t)
	ctx, cancel := in.ctx(t)
	live, err := e.sub.InboxChanges(ctx, nil)
	if err != nil {
		t.Fatalf("InboxChanges: %v", err)
	}
	in.mustComment(t)
	removed := in.mustComment(t)
	in.mustComment(t)
	if err := e.svc.DeleteComment(context.Background(), in.commenter, removed.ID); err != nil {
		t.Fatalf("delete comment: %v", err)
	}
	if _, err := e.svc.MarkRead(context.Background(), in.owner.ID, nil, true, 0); err != nil {
		t.Fatalf("mark read: %v", err)
	}
	check := func(t *testing.T, ch <-chan *model.InboxChange, want []model.InboxChangeKind) {
		t.Helper()
		var kinds []model.InboxChangeKind
		prev := int64(-1)
		for range want {
			c := mustRecv(t, ch)
			cur, err := strconv.ParseInt(c.Cursor, 10, 64)
			if err != nil || cur <= prev {
				t.Fatalf("cursor %q after %d: not increasing", c.Cursor, prev)
			}
			prev = cur
			kinds = append(kinds, c.Kind)
		}
		for i := range want {
			if kinds[i] != want[i] {
				t.Fatalf("kinds %v, want %v", kinds, want)
			}
		}
	}
	added, rem, read := model.InboxChangeKindAdded, model.InboxChangeKindRemoved, model.InboxChangeKindRead
	t.Run("Live", func(t *testing.T) {
		check(t, live, []model.InboxChangeKind{added, added, added, rem, read})
	})
	replay, err := e.sub.InboxChanges(ctx, ptr("0"))
	if err != nil {
		t.Fatalf("InboxChanges: %v", err)
	}
	t.Run("Replay", func(t *testing.T) {
		check(t, replay, []model.InboxChangeKind{added, added, rem, read})
	})
	cancel()
	mustDrain(t, live)
	mustDrain(t, replay)
}

// TestUnreadCount: the caller's unread count at once, then again after
// every change that moves it (an addition, a removal, a mark-read) and
// never for one that leaves it as it was; the stream closes without an
// error when its context ends, and with UNAVAILABLE when the broker shuts
// down.
func TestUnreadCount(t *testing.T) {
	bg := context.Background()
	mustCount := func(tb testing.TB, e *env, in *inbox) (context.CancelFunc, func(int)) {
		tb.Helper()
		ctx, cancel := in.ctx(tb)
		ch, err := e.sub.UnreadCount(ctx)
		if err != nil {
			tb.Fatalf("UnreadCount: %v", err)
		}
		tb.Cleanup(func() {
			cancel()
			mustDrain(tb, ch)
		})
		return cancel, func(want int) {
			tb.Helper()
			if got := mustRecv(tb, ch); got != want {
				tb.Fatalf("unread count %d, want %d", got, want)
			}
		}
	}
	must := func(tb testing.TB, what string, err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
	}

	t.Run("Changes", func(t *testing.T) {
		e := mustEnv(t, 0)
		in := e.mustInbox(t)
		in.mustComment(t)
		in.mustComment(t)
		cancel, want := mustCount(t, e, in)
		want(2)
		read := in.mustComment(t)
		want(3)
		_, err := e.svc.MarkRead(bg, in.owner.ID, nil, true, 0)
		must(t, "mark read", err)
		want(0)
		// Neither removing a read notification, nor marking read again
		// (which records nothing), nor a reaction changing kind (one
		// removal and one addition) moves the count: the stream reads the
		// count after each and sends nothing, so the next count received
		// is the one after the action that moves it.
		reads := e.store.unreadReads.Load()
		must(t, "delete comment", e.svc.DeleteComment(bg, in.commenter, read.ID))
		e.store.mustWaitRead(t, reads)
		_, err = e.svc.MarkRead(bg, in.owner.ID, nil, true, 0)
		must(t, "mark read again", err)
		_, err = e.svc.React(bg, in.commenter, social.ContentPost, in.post.ID, social.ReactionLike)
		must(t, "react", err)
		want(1)
		reads = e.store.unreadReads.Load()
		_, err = e.svc.React(bg, in.commenter, social.ContentPost, in.post.ID, social.ReactionLove)
		must(t, "change the reaction's kind", err)
		e.store.mustWaitRead(t, reads)
		in.mustComment(t)
		want(2)
		_, err = e.svc.Unreact(bg, in.commenter, social.ContentPost, in.post.ID)
		must(t, "remove the reaction", err)
		want(1)
		cancel()
		if errs := e.streams.Errors(); len(errs) != 0 {
			t.Fatalf("errors %v, want none", errs)
		}
	})
	t.Run("BrokerClosed", func(t *testing.T) {
		e := mustEnv(t, 0)
		in := e.mustInbox(t)
		_, want := mustCount(t, e, in)
		want(0)
		e.broker.Close()
		e.streams.MustWaitNotified(t, 2) // the first count, then the end
		errs := e.streams.Errors()
		if len(errs) != 1 {
			t.Fatalf("errors %v, want one", errs)
		}
		if code := errs[0].Extensions["code"]; code != string(social.CodeUnavailable) {
			t.Fatalf("code %v, want %s", code, social.CodeUnavailable)
		}
	})
}
