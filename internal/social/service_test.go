package social_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/inproc"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/sqlite"
)

// MustService returns a Service on a fresh in-memory SQLite store and an
// in-process broker, and the store.
func MustService(tb testing.TB) (*social.Service, social.Store) {
	tb.Helper()
	store, err := sqlite.Open(context.Background(), ":memory:")
	if err != nil {
		tb.Fatal(err)
	}
	broker := inproc.New(fanout.Config{})
	tb.Cleanup(func() {
		broker.Close()
		store.Close()
	})
	return social.NewService(store, broker, social.Config{PasswordCost: bcrypt.MinCost}), store
}

func MustRegister(tb testing.TB, svc *social.Service, name string) social.User {
	tb.Helper()
	u, _, err := svc.Register(context.Background(), name, "password-"+name)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// failingStore fails every AppendChanges, as a full disk or a lost
// connection would in the middle of an action.
type failingStore struct{ social.Store }

type failingTx struct{ social.Tx }

var errDiskFull = errors.New("disk full")

func (s failingStore) Update(ctx context.Context, fn func(social.Tx) error) error {
	return s.Store.Update(ctx, func(tx social.Tx) error { return fn(failingTx{tx}) })
}

func (failingTx) AppendChanges(context.Context, []social.Change) ([]social.Change, error) {
	return nil, errDiskFull
}

func TestActionWhoseNotificationsFailLeavesNothing(t *testing.T) {
	ctx := context.Background()
	svc, store := MustService(t)
	broken := social.NewService(failingStore{store}, inproc.New(fanout.Config{}), social.Config{})
	alice := MustRegister(t, svc, "alice")
	bob := MustRegister(t, svc, "bob")

	if _, err := broken.Follow(ctx, bob, "alice"); !errors.Is(err, errDiskFull) {
		t.Fatalf("follow: %v", err)
	}
	if followers, _, _ := svc.FollowCounts(ctx, alice.ID); followers != 0 {
		t.Fatalf("the failed follow was kept: %d followers", followers)
	}
	if _, err := svc.Follow(ctx, bob, "alice"); err != nil {
		t.Fatal(err)
	}

	if _, err := broken.CreatePost(ctx, alice, "lost"); !errors.Is(err, errDiskFull) {
		t.Fatalf("create post: %v", err)
	}
	if _, err := svc.Post(ctx, 1); social.ErrorCode(err) != social.CodeNotFound {
		t.Fatalf("the failed post was kept: %v", err)
	}
	post, err := svc.CreatePost(ctx, alice, "kept")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broken.CreateComment(ctx, bob, post.ID, "lost", 0); !errors.Is(err, errDiskFull) {
		t.Fatalf("create comment: %v", err)
	}
	if cs, _ := svc.Comments(ctx, post.ID, social.DefaultListPage, 0); len(cs) != 0 {
		t.Fatalf("the failed comment was kept: %+v", cs)
	}
	if _, err := broken.React(ctx, bob, social.ContentPost, post.ID, social.ReactionLike); !errors.Is(err, errDiskFull) {
		t.Fatalf("react: %v", err)
	}
	if rs, _ := svc.Reactions(ctx, social.ContentPost, post.ID, social.DefaultListPage, 0); len(rs) != 0 {
		t.Fatalf("the failed reaction was kept: %+v", rs)
	}
	page, err := svc.Notifications(ctx, alice.ID, 10, 0, false)
	if err != nil || len(page.Items) != 1 || page.Items[0].Action != social.ActionFollowing || page.Items[0].Seq != 1 {
		t.Fatalf("alice's notifications = %+v, %v; want only bob's follow, seq 1", page.Items, err)
	}
}

// TestSameReactionTwiceNotifiesOnce: the same kind again changes nothing;
// another kind replaces the notification of the old one with a new one.
func TestSameReactionTwiceNotifiesOnce(t *testing.T) {
	ctx := context.Background()
	svc, _ := MustService(t)
	alice := MustRegister(t, svc, "alice")
	bob := MustRegister(t, svc, "bob")
	post, _ := svc.CreatePost(ctx, alice, "p")
	for _, k := range []social.ReactionKind{social.ReactionLike, social.ReactionLike, social.ReactionSad, social.ReactionSad} {
		if _, err := svc.React(ctx, bob, social.ContentPost, post.ID, k); err != nil {
			t.Fatal(err)
		}
	}
	page, _ := svc.Notifications(ctx, alice.ID, 10, 0, false)
	// Seq 1 is the like's ADDED change, 2 its REMOVED one, 3 the sad's ADDED.
	if len(page.Items) != 1 || page.Items[0].ActionContent != "sad" || page.Items[0].Seq != 3 || page.UnreadCount != 1 {
		t.Fatalf("notifications = %+v (unread %d), want only sad, at seq 3, unread", page.Items, page.UnreadCount)
	}
}

// TestFeedOrdersWhateverTheBrokerDoes delivers a recipient's events to a
// feed out of order and twice: the feed returns each notification once, in
// order, reading what it has not seen yet from the store.
func TestFeedOrdersWhateverTheBrokerDoes(t *testing.T) {
	ctx := context.Background()
	zero := int64(0)
	feed, events := MustFeedAndComments(t, &zero, "1", "2", "3", "4")
	var got []string
	for _, i := range []int{2, 0, 1, 2, 3, 3} {
		ns, err := feed.Admit(ctx, events[i])
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range ns {
			got = append(got, c.Notification.ActionContent)
		}
	}
	if want := "[1 2 3 4]"; fmtSlice(got) != want {
		t.Fatalf("feed gave %v, want %s", got, want)
	}
	if feed.LastID() != events[3].Notification.ID {
		t.Fatalf("LastID %d, want %d", feed.LastID(), events[3].Notification.ID)
	}
}

// TestFeedAdmitNow: AdmitNow takes the next notification and drops one
// delivered already, without the store, and leaves a gap to Admit.
func TestFeedAdmitNow(t *testing.T) {
	ctx := context.Background()
	feed, events := MustFeedAndComments(t, nil, "1", "2", "3")
	if n, ok := feed.AdmitNow(events[1]); ok || n != nil {
		t.Fatalf("AdmitNow(2nd) = %v, %v over a gap, want nil, false", n, ok)
	}
	if n, ok := feed.AdmitNow(events[0]); !ok || n == nil || n.Notification.ActionContent != "1" {
		t.Fatalf("AdmitNow(1st) = %v, %v, want the 1st, true", n, ok)
	}
	if n, ok := feed.AdmitNow(events[0]); !ok || n != nil {
		t.Fatalf("AdmitNow(1st again) = %v, %v, want nil, true", n, ok)
	}
	if feed.LastID() != events[0].Notification.ID {
		t.Fatalf("LastID %d, want %d", feed.LastID(), events[0].Notification.ID)
	}
	ns, err := feed.Admit(ctx, events[2])
	if err != nil || len(ns) != 2 || ns[0].Notification.ActionContent != "2" || ns[1].Notification.ActionContent != "3" {
		t.Fatalf("Admit(3rd) = %+v, %v, want the 2nd and the 3rd", ns, err)
	}
}

// MustSubscribeAndFeed subscribes to the user's events and opens a feed
// of theirs from after, both closed when t ends.
func MustSubscribeAndFeed(t *testing.T, svc *social.Service, userID int64, after *int64) (social.Subscription, *social.Feed) {
	t.Helper()
	sub, err := svc.Subscribe(context.Background(), userID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	feed, err := svc.OpenFeed(context.Background(), userID, after)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(feed.Close)
	return sub, feed
}

// MustFeedAndComments opens a feed of alice's, from after, then has bob
// comment on her post once per body, and returns the feed and the events
// the comments brought a subscription of alice's, which the feed has not
// seen.
func MustFeedAndComments(t *testing.T, after *int64, bodies ...string) (*social.Feed, []social.Event) {
	t.Helper()
	ctx := context.Background()
	svc, _ := MustService(t)
	alice := MustRegister(t, svc, "alice")
	bob := MustRegister(t, svc, "bob")
	post, _ := svc.CreatePost(ctx, alice, "p")
	sub, feed := MustSubscribeAndFeed(t, svc, alice.ID, after)
	var events []social.Event
	for _, body := range bodies {
		if _, err := svc.CreateComment(ctx, bob, post.ID, body, 0); err != nil {
			t.Fatal(err)
		}
		select {
		case ev := <-sub.Events():
			events = append(events, ev)
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
	}
	return feed, events
}

func fmtSlice(s []string) string {
	out := "["
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out + "]"
}

// mustClockedService returns a Service on store, with the session cache if
// cached, whose tokens live an hour and whose clock reads *now. The test's
// cleanup closes its broker.
func mustClockedService(tb testing.TB, store social.Store, cached bool, now *time.Time) *social.Service {
	tb.Helper()
	broker := inproc.New(fanout.Config{})
	tb.Cleanup(broker.Close)
	return social.NewService(store, broker, social.Config{PasswordCost: bcrypt.MinCost, TokenTTL: time.Hour,
		Now: func() time.Time { return *now }, CacheSessions: cached})
}

// countingStore counts the store's session reads.
type countingStore struct {
	social.Store
	sessionReads atomic.Int64
}

func (s *countingStore) SessionUser(ctx context.Context, hash []byte, now time.Time) (social.SessionUser, error) {
	s.sessionReads.Add(1)
	return s.Store.SessionUser(ctx, hash, now)
}

// TestRegisterAndAuthenticate checks tokens with and without the session
// cache: a token works until it expires or is logged out, and with the
// cache the store is read once per token.
func TestRegisterAndAuthenticate(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("CacheSessions=%v", cached), func(t *testing.T) {
			testRegisterAndAuthenticate(t, cached)
		})
	}
}

func testRegisterAndAuthenticate(t *testing.T, cached bool) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sqliteStore, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer sqliteStore.Close()
	store := &countingStore{Store: sqliteStore}
	svc := mustClockedService(t, store, cached, &now)

	u, token, err := svc.Register(ctx, "Alice", "password")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		got, err := svc.Authenticate(ctx, token)
		if err != nil || got.User.ID != u.ID || got.User.Username != "Alice" || len(got.TokenHash) != 32 ||
			!got.ExpiresAt.Equal(now.Add(time.Hour)) {
			t.Fatalf("authenticate: %+v %v", got, err)
		}
	}
	if n, want := store.sessionReads.Load(), map[bool]int64{false: 3, true: 1}[cached]; n != want {
		t.Fatalf("%d session reads for three requests, want %d", n, want)
	}

	// Logout ends the token at once, cached or not; another stays.
	_, other, err := svc.Login(ctx, "alice", "password")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := svc.Authenticate(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Logout(social.WithAuth(ctx, gone)); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Authenticate(ctx, token); social.ErrorCode(err) != social.CodeUnauthenticated {
		t.Fatalf("logged-out token: %v", err)
	}
	if _, err := svc.Authenticate(ctx, other); err != nil {
		t.Fatalf("the other token: %v", err)
	}
	token = other

	now = now.Add(time.Hour + time.Second)
	if _, err := svc.Authenticate(ctx, token); social.ErrorCode(err) != social.CodeUnauthenticated {
		t.Fatalf("expired token: %v", err)
	}
	if _, _, err := svc.Register(ctx, "alice", "password"); social.ErrorCode(err) != social.CodeConflict {
		t.Fatalf("taken username: %v", err)
	}
}

// TestObserverHooks checks that the Service tells its observers how many
// notifications it stored and published, and stamps events with their
// publish time.
func TestObserverHooks(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	broker := inproc.New(fanout.Config{})
	defer store.Close()
	defer broker.Close()
	var stored, published int
	svc := social.NewService(store, broker, social.Config{
		PasswordCost: bcrypt.MinCost,
		OnStored:     func(n int) { stored += n },
		OnPublished:  func(n int) { published += n },
	})
	alice, bob, carol := MustRegister(t, svc, "alice"), MustRegister(t, svc, "bob"), MustRegister(t, svc, "carol")
	sub, err := svc.Subscribe(ctx, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for _, f := range []social.User{bob, carol} {
		if _, err := svc.Follow(ctx, f, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now()
	if _, err := svc.CreatePost(ctx, alice, "hello"); err != nil {
		t.Fatal(err)
	}
	if stored != 4 || published != 4 {
		t.Fatalf("stored %d, published %d; want 4 and 4 (2 follows, 1 post to 2 followers)", stored, published)
	}
	for {
		ev := <-sub.Events()
		if ev.Kind == social.EventNotification && ev.Notification.Action == social.ActionPost {
			if ev.PublishedAt.Before(before) || time.Since(ev.PublishedAt) > time.Minute {
				t.Fatalf("PublishedAt = %v, want about now", ev.PublishedAt)
			}
			break
		}
	}
}

// TestSweepSessions checks that SweepSessions deletes the expired sessions
// from the store, and not the live ones, with and without the cache.
func TestSweepSessions(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(fmt.Sprintf("CacheSessions=%v", cached), func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			store, err := sqlite.Open(ctx, ":memory:")
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			svc := mustClockedService(t, store, cached, &now)

			_, old, err := svc.Register(ctx, "alice", "password")
			if err != nil {
				t.Fatal(err)
			}
			now = now.Add(30 * time.Minute)
			_, live, err := svc.Login(ctx, "alice", "password")
			if err != nil {
				t.Fatal(err)
			}
			for _, tok := range []string{old, live} {
				if _, err := svc.Authenticate(ctx, tok); err != nil {
					t.Fatal(err)
				}
			}
			now = now.Add(31 * time.Minute)
			if n, err := svc.SweepSessions(ctx); err != nil || n != 1 {
				t.Fatalf("SweepSessions = %d, %v; want 1", n, err)
			}
			if _, err := store.SessionUser(ctx, social.HashToken(old), now.Add(-time.Hour)); social.ErrorCode(err) != social.CodeNotFound {
				t.Fatalf("the expired session is still stored: %v", err)
			}
			if _, err := svc.Authenticate(ctx, live); err != nil {
				t.Fatalf("the live session: %v", err)
			}
			if n, err := svc.SweepSessions(ctx); err != nil || n != 0 {
				t.Fatalf("SweepSessions again = %d, %v; want 0", n, err)
			}
		})
	}
}

// TestFeedCountsEveryChange: positions taken by REMOVED and READ changes
// are in the sequence the feed checks. A feed handed a later change reads
// the ones before it from the store, leaving out an ADDED change whose
// notification has been removed since; Catchup does the same.
func TestFeedCountsEveryChange(t *testing.T) {
	ctx := context.Background()
	svc, _ := MustService(t)
	alice := MustRegister(t, svc, "alice")
	bob := MustRegister(t, svc, "bob")
	post, _ := svc.CreatePost(ctx, alice, "p")
	zero := int64(0)
	sub, feed := MustSubscribeAndFeed(t, svc, alice.ID, &zero)
	if _, err := svc.React(ctx, bob, social.ContentPost, post.ID, social.ReactionLike); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.React(ctx, bob, social.ContentPost, post.ID, social.ReactionSad); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.MarkRead(ctx, alice.ID, nil, true, 0); err != nil {
		t.Fatal(err)
	}
	var events []social.Event
	for range 4 { // ADDED like, REMOVED like, ADDED sad, READ sad
		select {
		case ev := <-sub.Events():
			events = append(events, ev)
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
	}
	describe := func(cs []social.Change) string {
		var out []string
		for _, c := range cs {
			s := string(c.Kind)
			if c.Notification != nil {
				s += " " + c.Notification.ActionContent
			}
			out = append(out, fmt.Sprintf("%s@%d", s, c.Seq))
		}
		return fmtSlice(out)
	}
	cs, err := feed.Admit(ctx, events[3])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := describe(cs), "[REMOVED@2 ADDED sad@3 READ@4]"; got != want {
		t.Fatalf("Admit(READ) = %s, want %s", got, want)
	}
	if cs, _ := feed.Admit(ctx, events[2]); len(cs) != 0 {
		t.Fatalf("Admit of a change delivered already = %s", describe(cs))
	}
	if feed.LastID() != events[3].Change.ID {
		t.Fatalf("LastID %d, want the READ's %d", feed.LastID(), events[3].Change.ID)
	}
	_, again := MustSubscribeAndFeed(t, svc, alice.ID, &zero)
	cs, err = again.Catchup(ctx)
	if err != nil || describe(cs) != "[REMOVED@2 ADDED sad@3 READ@4]" {
		t.Fatalf("Catchup = %s, %v", describe(cs), err)
	}
	if notes := social.Added(cs); len(notes) != 1 || notes[0].ActionContent != "sad" {
		t.Fatalf("Added = %+v, want the sad one", notes)
	}
}
