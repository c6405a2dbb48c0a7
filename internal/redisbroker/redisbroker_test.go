package redisbroker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/pulse-social/pulse/internal/brokertest"
	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/redisbroker"
	"github.com/pulse-social/pulse/internal/social"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestBroker(t *testing.T) {
	url := MustRedisURL(t)
	brokertest.Run(t, func(t *testing.T) social.Broker {
		return MustNew(t, url, newPrefix(), fanout.Config{})
	})
}

// TestCodec round-trips events through the wire encoding, without Redis.
func TestCodec(t *testing.T) {
	full := notice(1<<62+1, 1<<53+1)
	full.Notification.Read = true
	full.Notification.CreatedAt = time.Date(2026, time.November, 25, 17, 3, 0, 1, time.FixedZone("IST", 5*3600+1800))
	full.SessionID = 1<<62 + 3
	full.ExpiresAt = time.Date(2026, time.December, 1, 8, 0, 0, 5, time.FixedZone("IST", 5*3600+1800))
	bare := social.Event{Kind: social.EventResync, UserID: -1}
	empty := notice(7, 1)
	*empty.Notification = social.Notification{}
	empty.Message, empty.PublishedAt = "", time.Time{}
	grouped := notice(7, 3)
	latest := *full.Notification
	latest.ActionContent = strings.Repeat("a comment's body ", 64)
	grouped.Change = &social.Change{ID: 3, Seq: 3, RecipientID: 7, Kind: social.ChangeAdded, Notification: grouped.Notification, IDs: []int64{3}, UnreadCount: 1}
	grouped.Change.Groups = []social.Group{
		{Key: "REACTION:COMMENT:79", Action: social.ActionReaction, Affected: social.ContentComment, AffectedID: 1 << 62,
			NotificationCount: 1 << 40, ActorCount: 3, SampleActors: []string{"John", "Sarah", "Ölaf"},
			Message: "John and 2 others reacted to your comment", Latest: &latest, UnreadCount: 1 << 40,
			UpdatedAt: time.Date(2026, time.November, 25, 17, 3, 0, 1, time.FixedZone("IST", 5*3600+1800))},
		{Key: "FOLLOWING:2026-11-25", Action: social.ActionFollowing, SampleActors: []string{}, UpdatedAt: time.Now()},
	}
	// Enough groups that an undercount per group shows past the slack of
	// the event's fixed part.
	for range 8 {
		grouped.Change.Groups = append(grouped.Change.Groups, grouped.Change.Groups[0])
	}
	for name, ev := range map[string]social.Event{"Full": full, "Bare": bare, "Empty": empty, "Groups": grouped} {
		t.Run(name, func(t *testing.T) {
			payload, err := redisbroker.AppendEvent([]byte("prefix"), &ev)
			if err != nil {
				t.Fatalf("AppendEvent: %v", err)
			}
			payload = payload[len("prefix"):]
			if size := redisbroker.EncodedSize(&ev); len(payload) > size {
				t.Fatalf("EncodedSize = %d, but the encoding has %d bytes", size, len(payload))
			}
			got, err := redisbroker.DecodeEvent(string(payload))
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			MustEqualEvent(t, got, ev)
			for _, tm := range [][2]time.Time{{got.PublishedAt, ev.PublishedAt}, {createdAt(got), createdAt(ev)}} {
				if g, w := tm[0].Format(time.RFC3339Nano), tm[1].Format(time.RFC3339Nano); g != w || tm[0].IsZero() != tm[1].IsZero() {
					t.Fatalf("time decoded as %s, want %s", g, w)
				}
			}
			for n := range len(payload) {
				if _, err := redisbroker.DecodeEvent(string(payload[:n])); err == nil {
					t.Fatalf("DecodeEvent of the first %d of %d bytes succeeded", n, len(payload))
				}
			}
		})
	}
}

// TestCodecKnowsEveryField fails when social.Event, social.Notification,
// social.Change or social.Group gains a field: the wire encoding must carry
// it too.
func TestCodecKnowsEveryField(t *testing.T) {
	for typ, known := range map[reflect.Type][]string{
		reflect.TypeFor[social.Event]():  {"Kind", "UserID", "Notification", "Change", "Message", "SessionID", "ExpiresAt", "PublishedAt", "Encodings"},
		reflect.TypeFor[social.Change](): {"ID", "Seq", "RecipientID", "Kind", "Notification", "IDs", "UnreadCount", "Groups"},
		reflect.TypeFor[social.Group](): {"Key", "Action", "Affected", "AffectedID", "NotificationCount", "ActorCount",
			"SampleActors", "Message", "Latest", "UnreadCount", "UpdatedAt"},
		reflect.TypeFor[social.Notification](): {"ID", "Seq", "RecipientID", "Message", "Action", "ActionID",
			"ByUser", "ActionContent", "Affected", "AffectedID", "Read", "CreatedAt"},
	} {
		var fields []string
		for f := range typ.Fields() {
			fields = append(fields, f.Name)
		}
		if !slices.Equal(fields, known) {
			t.Errorf("%s has fields %q; the encoding (codec.go) knows %q", typ, fields, known)
		}
	}
}

// createdAt returns the CreatedAt of ev's notification, or zero.
func createdAt(ev social.Event) time.Time {
	if ev.Notification == nil {
		return time.Time{}
	}
	return ev.Notification.CreatedAt
}

// TestAcrossProcesses runs two Brokers on one Redis, as two server processes
// would: what one publishes reaches the subscribers of the user on both, and
// a process listens only to the users subscribed on it.
func TestAcrossProcesses(t *testing.T) {
	url, prefix := MustRedisURL(t), newPrefix()
	admin := MustAdmin(t, url)
	p1, p2 := MustNew(t, url, prefix, fanout.Config{}), MustNew(t, url, prefix, fanout.Config{})
	users := brokertest.NewUsers(3)
	both, only1 := users[0], users[1] // users[2] has no subscriber anywhere
	sub1, sub2 := brokertest.MustSubscribe(t, p1, both), brokertest.MustSubscribe(t, p2, both)
	other := brokertest.MustSubscribe(t, p1, only1)

	for ch, want := range map[string]int64{
		prefix + strconv.FormatInt(both, 10):     2,
		prefix + strconv.FormatInt(only1, 10):    1,
		prefix + strconv.FormatInt(users[2], 10): 0,
	} {
		if got := MustNumSub(t, admin, ch); got != want {
			t.Fatalf("NUMSUB %s = %d, want %d", ch, got, want)
		}
	}

	ev := notice(both, 1)
	brokertest.MustPublish(t, p2, ev, notice(users[2], 1))
	MustEqualEvent(t, brokertest.MustReceive(t, sub1, 1)[0], ev)
	MustEqualEvent(t, brokertest.MustReceive(t, sub2, 1)[0], ev)
	brokertest.MustNotReceive(t, sub1, sub2, other)

	msg := social.Event{Kind: social.EventMessage, UserID: only1, Message: "hi"}
	brokertest.MustPublish(t, p2, msg)
	MustEqualEvent(t, brokertest.MustReceive(t, other, 1)[0], msg)
	brokertest.MustNotReceive(t, sub1, sub2, other)
}

// TestRevokeAcrossProcesses checks that a session's end and refresh
// published by one process reach the user's subscribers on another,
// session and expiry intact.
func TestRevokeAcrossProcesses(t *testing.T) {
	url, prefix := MustRedisURL(t), newPrefix()
	p1, p2 := MustNew(t, url, prefix, fanout.Config{}), MustNew(t, url, prefix, fanout.Config{})
	u := brokertest.NewUsers(1)[0]
	sub := brokertest.MustSubscribe(t, p2, u)
	refresh := social.Event{Kind: social.EventRefresh, UserID: u, SessionID: 42, ExpiresAt: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	revoke := social.Event{Kind: social.EventRevoke, UserID: u, SessionID: 42}
	brokertest.MustPublish(t, p1, refresh, revoke)
	got := brokertest.MustReceive(t, sub, 2)
	MustEqualEvent(t, got[0], refresh)
	MustEqualEvent(t, got[1], revoke)
}

// TestUnsubscribe checks that a process listens to a user's channel exactly
// while it has subscribers of the user.
func TestUnsubscribe(t *testing.T) {
	url, prefix := MustRedisURL(t), newPrefix()
	admin := MustAdmin(t, url)
	b := MustNew(t, url, prefix, fanout.Config{})
	u := brokertest.NewUsers(1)[0]
	ch := prefix + strconv.FormatInt(u, 10)

	first, second := brokertest.MustSubscribe(t, b, u), brokertest.MustSubscribe(t, b, u)
	if got := MustChannels(t, admin, prefix); !slices.Equal(got, []string{ch}) {
		t.Fatalf("PUBSUB CHANNELS %s* = %q, want [%s]", prefix, got, ch)
	}
	first.Close()
	time.Sleep(brokertest.Quiet)
	if got := MustNumSub(t, admin, ch); got != 1 {
		t.Fatalf("NUMSUB after the first of two subscribers closed = %d, want 1", got)
	}
	second.Close()
	MustEventually(t, "no subscriber of the channel after the last subscription closed", func() bool {
		return MustNumSub(t, admin, ch) == 0
	})
	if got := MustChannels(t, admin, prefix); len(got) != 0 {
		t.Fatalf("PUBSUB CHANNELS %s* = %q, want none", prefix, got)
	}

	again := brokertest.MustSubscribe(t, b, u)
	if got := MustNumSub(t, admin, ch); got != 1 {
		t.Fatalf("NUMSUB after subscribing again = %d, want 1", got)
	}
	ev := notice(u, 1)
	brokertest.MustPublish(t, b, ev)
	MustEqualEvent(t, brokertest.MustReceive(t, again, 1)[0], ev)
}

// TestManyUsersAtOnce subscribes many users concurrently, so that their
// SUBSCRIBEs share commands, and checks that each is live when Subscribe
// returns.
func TestManyUsersAtOnce(t *testing.T) {
	url := MustRedisURL(t)
	b := MustNew(t, url, newPrefix(), fanout.Config{})
	users := brokertest.NewUsers(500)
	subs := make([]social.Subscription, len(users))
	var wg sync.WaitGroup
	for i, u := range users {
		wg.Go(func() { subs[i] = brokertest.MustSubscribe(t, b, u) })
	}
	wg.Wait()
	evs := make([]social.Event, len(users))
	for i, u := range users {
		evs[i] = notice(u, 1)
	}
	brokertest.MustPublish(t, b, evs...)
	for i, sub := range subs {
		MustEqualEvent(t, brokertest.MustReceive(t, sub, 1)[0], evs[i])
	}
}

// TestSubscribeWaitsForConfirmation holds back Redis's replies to check that
// Subscribe waits for the confirmation of its own SUBSCRIBE, not of an
// earlier one: it subscribes, gives up and subscribes again, so that
// SUBSCRIBE, UNSUBSCRIBE and SUBSCRIBE are in flight together.
func TestSubscribeWaitsForConfirmation(t *testing.T) {
	url, prefix := MustRedisURL(t), newPrefix()
	admin := MustAdmin(t, url)
	proxy := MustProxy(t, url)
	b := MustNew(t, proxy.url, prefix, fanout.Config{})
	users := brokertest.NewUsers(2)
	u := users[0]
	ch := prefix + strconv.FormatInt(u, 10)
	// The pub/sub connection is made by now: only replies are held back.
	brokertest.MustSubscribe(t, b, users[1])

	proxy.hold()
	defer proxy.release()
	MustGiveUp(t, b, admin, u, ch)
	type result struct {
		sub social.Subscription
		err error
	}
	done := make(chan result, 1)
	go func() {
		sub, err := b.Subscribe(MustTimeout(t, brokertest.Timeout), u)
		done <- result{sub, err}
	}()
	MustEventually(t, "SUBSCRIBE again", func() bool { return MustNumSub(t, admin, ch) == 1 })
	select {
	case r := <-done:
		t.Fatalf("Subscribe returned (%v) with the confirmation held back", r.err)
	case <-time.After(brokertest.Quiet):
	}
	proxy.release()
	r := <-done
	if r.err != nil {
		t.Fatalf("Subscribe: %v", r.err)
	}
	defer r.sub.Close()
	ev := notice(u, 1)
	brokertest.MustPublish(t, b, ev)
	MustEqualEvent(t, brokertest.MustReceive(t, r.sub, 1)[0], ev)
	brokertest.MustNotReceive(t, r.sub) // no EventResync either
}

// TestReconnectWithRepliesInFlight loses the pub/sub connection while
// Redis's replies to a SUBSCRIBE and an UNSUBSCRIBE of a user are on their
// way: the next Subscribe of the user must not wait for them.
func TestReconnectWithRepliesInFlight(t *testing.T) {
	url, prefix := MustRedisURL(t), newPrefix()
	admin := MustAdmin(t, url)
	proxy := MustProxy(t, url)
	b := MustNew(t, proxy.url, prefix, fanout.Config{})
	users := brokertest.NewUsers(2)
	u := users[0]
	other := brokertest.MustSubscribe(t, b, users[1])

	proxy.hold()
	MustGiveUp(t, b, admin, u, prefix+strconv.FormatInt(u, 10))
	proxy.cut()
	proxy.restore(t)
	if ev := brokertest.MustReceive(t, other, 1)[0]; ev.Kind != social.EventResync {
		t.Fatalf("got event kind %d after the reconnect, want EventResync", ev.Kind)
	}
	sub := brokertest.MustSubscribe(t, b, u)
	ev := notice(u, 1)
	brokertest.MustPublish(t, b, ev)
	MustEqualEvent(t, brokertest.MustReceive(t, sub, 1)[0], ev)
}

// MustGiveUp calls Subscribe for userID with a context that ends before
// Redis's replies, held back, can confirm it, and waits until Redis has
// processed the UNSUBSCRIBE that follows, so that the replies to both are
// in flight.
func MustGiveUp(tb testing.TB, b *redisbroker.Broker, admin *redis.Client, userID int64, channel string) {
	tb.Helper()
	if sub, err := b.Subscribe(MustTimeout(tb, 200*time.Millisecond), userID); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			sub.Close()
		}
		tb.Fatalf("Subscribe with the confirmation held back: %v, want %v", err, context.DeadlineExceeded)
	}
	MustEventually(tb, "UNSUBSCRIBE after Subscribe gave up", func() bool { return MustNumSub(tb, admin, channel) == 0 })
}

// TestChurn subscribes to one user and closes again from several goroutines
// at once, so that the user's channel is subscribed to and unsubscribed
// from over and over, with confirmations still on their way: each
// subscription must be live when Subscribe returns.
func TestChurn(t *testing.T) {
	const (
		workers = 8
		rounds  = 40
	)
	url := MustRedisURL(t)
	b := MustNew(t, url, newPrefix(), fanout.Config{})
	u := brokertest.NewUsers(1)[0]
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				// Every other Subscribe gives up before Redis can confirm
				// it, so that SUBSCRIBE, UNSUBSCRIBE and SUBSCRIBE of the
				// user are in flight at once.
				quick, cancel := context.WithTimeout(ctx, time.Duration(rand.IntN(200))*time.Microsecond)
				if sub, err := b.Subscribe(quick, u); err == nil {
					sub.Close()
				} else if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Subscribe: %v, want nil or %v", err, context.DeadlineExceeded)
				}
				cancel()
				sub, err := b.Subscribe(ctx, u)
				if err != nil {
					t.Errorf("Subscribe: %v", err)
					return
				}
				marker := fmt.Sprintf("worker %d round %d", w, r)
				if err := b.Publish(ctx, social.Event{Kind: social.EventMessage, UserID: u, Message: marker}); err != nil {
					t.Errorf("Publish: %v", err)
				}
				if err := receivesMessage(sub, marker); err != nil {
					t.Errorf("worker %d round %d: %v", w, r, err)
				}
				sub.Close()
			}
		})
	}
	wg.Wait()
}

// receivesMessage reads sub until an event with text arrives. It fails on an
// EventResync, which nothing here calls for, and if Events closes or
// brokertest.Timeout passes first.
func receivesMessage(sub social.Subscription, text string) error {
	timeout := time.After(brokertest.Timeout)
	for {
		select {
		case ev, ok := <-sub.Events():
			switch {
			case !ok:
				return fmt.Errorf("Events closed (Err: %v)", sub.Err())
			case ev.Kind == social.EventResync:
				return errors.New("got EventResync without a reconnect")
			case ev.Message == text:
				return nil
			}
		case <-timeout:
			return fmt.Errorf("the event published after Subscribe returned did not arrive within %v", brokertest.Timeout)
		}
	}
}

// TestResyncAfterReconnect kills the Broker's pub/sub connection from the
// server side, as a Redis restart or a network failure would: every local
// subscriber gets social.EventResync once the Broker listens again, and
// then every event published afterwards.
func TestResyncAfterReconnect(t *testing.T) {
	url := MustRedisURL(t)
	name := fmt.Sprintf("pulsetest-%x", rand.Uint64())
	admin := MustAdmin(t, url)
	prefix := newPrefix()
	pub := MustNew(t, url, prefix, fanout.Config{})
	var reconnects atomic.Int64
	b := MustNew(t, withClientName(url, name), prefix, fanout.Config{}, redisbroker.WithReconnectHook(func() { reconnects.Add(1) }))
	users := brokertest.NewUsers(2)
	subs := []social.Subscription{
		brokertest.MustSubscribe(t, b, users[0]),
		brokertest.MustSubscribe(t, b, users[0]),
		brokertest.MustSubscribe(t, b, users[1]),
	}
	owner := []int64{users[0], users[0], users[1]}

	var seq int64
	for round := range 3 {
		old := MustKillPubSub(t, admin, name)
		for i, sub := range subs {
			ev := brokertest.MustReceive(t, sub, 1)[0]
			if ev.Kind != social.EventResync || ev.UserID != owner[i] {
				t.Fatalf("round %d, subscriber %d: got event kind %d of user %d, want EventResync of user %d", round, i, ev.Kind, ev.UserID, owner[i])
			}
		}
		if id := MustPubSubID(t, admin, name); id == old {
			t.Fatalf("round %d: the pub/sub connection %s is still there", round, id)
		}
		seq++
		ev0, ev1 := notice(users[0], seq), notice(users[1], seq)
		brokertest.MustPublish(t, pub, ev0, ev1)
		for i, sub := range subs {
			want := ev0
			if owner[i] == users[1] {
				want = ev1
			}
			MustEqualEvent(t, brokertest.MustReceive(t, sub, 1)[0], want)
		}
		brokertest.MustNotReceive(t, subs...)
	}

	if n := reconnects.Load(); n != 3 {
		t.Fatalf("the reconnect hook ran %d times, want 3", n)
	}

	// A user subscribed after the reconnects is live as usual.
	late := brokertest.NewUsers(1)[0]
	sub := brokertest.MustSubscribe(t, b, late)
	ev := notice(late, 1)
	brokertest.MustPublish(t, pub, ev)
	MustEqualEvent(t, brokertest.MustReceive(t, sub, 1)[0], ev)
}

// TestOutage cuts the Broker off from Redis altogether for a while: Publish
// fails, Subscribe waits for its context, and when Redis is back the
// subscribers get EventResync and then live events again.
func TestOutage(t *testing.T) {
	url := MustRedisURL(t)
	prefix := newPrefix()
	pub := MustNew(t, url, prefix, fanout.Config{})
	proxy := MustProxy(t, url)
	b := MustNew(t, proxy.url, prefix, fanout.Config{})
	u := brokertest.NewUsers(1)[0]
	sub := brokertest.MustSubscribe(t, b, u)

	proxy.cut()
	if err := b.Publish(MustTimeout(t, 300*time.Millisecond), notice(u, 1)); err == nil {
		t.Fatalf("Publish with Redis unreachable succeeded")
	}
	if err := b.Ping(MustTimeout(t, 300*time.Millisecond)); err == nil {
		t.Fatalf("Ping with Redis unreachable succeeded")
	}
	if s, err := b.Subscribe(MustTimeout(t, 300*time.Millisecond), brokertest.NewUsers(1)[0]); !errors.Is(err, context.DeadlineExceeded) {
		if err == nil {
			s.Close()
		}
		t.Fatalf("Subscribe with Redis unreachable: %v, want %v", err, context.DeadlineExceeded)
	}
	brokertest.MustPublish(t, pub, notice(u, 2)) // lost: b does not listen
	brokertest.MustNotReceive(t, sub)

	proxy.restore(t)
	ev := brokertest.MustReceive(t, sub, 1)[0]
	if ev.Kind != social.EventResync || ev.UserID != u {
		t.Fatalf("got event kind %d of user %d after the outage, want EventResync of user %d", ev.Kind, ev.UserID, u)
	}
	want := notice(u, 3)
	brokertest.MustPublish(t, pub, want)
	MustEqualEvent(t, brokertest.MustReceive(t, sub, 1)[0], want)
	if err := b.Ping(context.Background()); err != nil {
		t.Fatalf("Ping after the outage: %v", err)
	}
}

// TestMalformedMessage publishes payloads that are not the Broker's
// encoding to a user's channel: each is replaced by EventResync.
func TestMalformedMessage(t *testing.T) {
	url, prefix := MustRedisURL(t), newPrefix()
	admin := MustAdmin(t, url)
	b := MustNew(t, url, prefix, fanout.Config{})
	users := brokertest.NewUsers(2)
	u := users[0]
	sub := brokertest.MustSubscribe(t, b, u)

	valid, err := redisbroker.AppendEvent(nil, new(notice(u, 1)))
	if err != nil {
		t.Fatalf("AppendEvent: %v", err)
	}
	otherUser, _ := redisbroker.AppendEvent(nil, new(notice(users[1], 1)))
	payloads := [][]byte{
		nil,
		[]byte("not an event"),
		append([]byte{9}, valid[1:]...), // unknown version
		append(slices.Clip(valid), 0),   // trailing byte
		otherUser,                       // on the wrong channel
	}
	for n := 1; n < len(valid); n++ {
		payloads = append(payloads, valid[:n])
	}
	ch := prefix + strconv.FormatInt(u, 10)
	ctx := context.Background()
	for i, p := range payloads {
		if err := admin.Publish(ctx, ch, p).Err(); err != nil {
			t.Fatalf("PUBLISH: %v", err)
		}
		ev := brokertest.MustReceive(t, sub, 1)[0]
		if ev.Kind != social.EventResync || ev.UserID != u {
			t.Fatalf("payload %d (%q): got event kind %d of user %d, want EventResync of user %d", i, p, ev.Kind, ev.UserID, u)
		}
	}
	if err := admin.Publish(ctx, ch, valid).Err(); err != nil {
		t.Fatalf("PUBLISH: %v", err)
	}
	MustEqualEvent(t, brokertest.MustReceive(t, sub, 1)[0], notice(u, 1))
}

// TestLifecycle checks what happens before Start and after Close, and that
// Close stops every goroutine.
func TestLifecycle(t *testing.T) {
	url := MustRedisURL(t)
	running := goleak.IgnoreCurrent()
	ctx := context.Background()

	if _, err := redisbroker.New(ctx, "http://127.0.0.1:6379", fanout.Config{}); err == nil {
		t.Fatalf("New with an http:// URL succeeded")
	}
	if _, err := redisbroker.New(MustTimeout(t, 300*time.Millisecond), "redis://127.0.0.1:1/0", fanout.Config{}); err == nil {
		t.Fatalf("New with nothing listening succeeded")
	}

	b, err := redisbroker.New(ctx, url, fanout.Config{}, redisbroker.WithChannelPrefix(newPrefix()))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if sub, err := b.Subscribe(ctx, 1); err == nil {
		sub.Close()
		t.Fatalf("Subscribe before Start succeeded")
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	b.Start()
	b.Start()
	users := brokertest.NewUsers(3)
	for _, u := range users {
		sub := brokertest.MustSubscribe(t, b, u)
		brokertest.MustPublish(t, b, notice(u, 1))
		brokertest.MustReceive(t, sub, 1)
	}
	b.Close()
	goleak.VerifyNone(t, running)

	b.Start() // after Close: does nothing
	if err := b.Ping(ctx); !errors.Is(err, social.ErrBrokerClosed) {
		t.Fatalf("Ping after Close: %v, want %v", err, social.ErrBrokerClosed)
	}
	b.Close()
	goleak.VerifyNone(t, running)
}

// redisCheck is whether the Redis of PULSE_TEST_REDIS answers, checked
// once for all tests.
var redisCheck struct {
	once sync.Once
	url  string
	addr string
	err  error
}

// MustRedisURL returns the URL of the Redis server to test against, from
// PULSE_TEST_REDIS (default redis://127.0.0.1:6379/0). If it does not
// answer, the test fails when CI is set and is skipped otherwise.
func MustRedisURL(tb testing.TB) string {
	tb.Helper()
	rc := &redisCheck
	rc.once.Do(func() {
		rc.url = os.Getenv("PULSE_TEST_REDIS")
		if rc.url == "" {
			rc.url = "redis://127.0.0.1:6379/0"
		}
		opt, err := redis.ParseURL(rc.url)
		if err != nil {
			rc.err = fmt.Errorf("PULSE_TEST_REDIS=%q: %w", rc.url, err)
			return
		}
		rc.addr = opt.Addr
		opt.MaxRetries, opt.DialerRetries = -1, 1
		c := redis.NewClient(opt)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		rc.err = c.Ping(ctx).Err()
	})
	switch {
	case rc.err == nil:
		return rc.url
	case os.Getenv("CI") != "" || rc.addr == "":
		tb.Fatalf("Redis at %s: %v", rc.url, rc.err)
	}
	tb.Skipf("no Redis at %s (%v): run redis-server there, or set PULSE_TEST_REDIS=redis://host:port/db; with CI set this fails", rc.addr, rc.err)
	return ""
}

// MustNew returns a started Broker on url with the given channel prefix,
// closed when the test ends.
func MustNew(tb testing.TB, url, prefix string, cfg fanout.Config, opts ...redisbroker.Option) *redisbroker.Broker {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), brokertest.Timeout)
	defer cancel()
	b, err := redisbroker.New(ctx, url, cfg, append([]redisbroker.Option{redisbroker.WithChannelPrefix(prefix)}, opts...)...)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(b.Close)
	b.Start()
	return b
}

// MustAdmin returns a plain client of the Redis at url, closed when the test
// ends.
func MustAdmin(tb testing.TB, url string) *redis.Client {
	tb.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("ParseURL: %v", err)
	}
	c := redis.NewClient(opt)
	tb.Cleanup(func() { c.Close() })
	return c
}

// MustNumSub returns how many connections listen to channel.
func MustNumSub(tb testing.TB, admin *redis.Client, channel string) int64 {
	tb.Helper()
	n, err := admin.PubSubNumSub(context.Background(), channel).Result()
	if err != nil {
		tb.Fatalf("PUBSUB NUMSUB: %v", err)
	}
	return n[channel]
}

// MustChannels returns the channels with listeners whose names start with
// prefix.
func MustChannels(tb testing.TB, admin *redis.Client, prefix string) []string {
	tb.Helper()
	chs, err := admin.PubSubChannels(context.Background(), prefix+"*").Result()
	if err != nil {
		tb.Fatalf("PUBSUB CHANNELS: %v", err)
	}
	slices.Sort(chs)
	return chs
}

// MustPubSubID returns the ID of the connection named name that listens to
// channels, waiting for it to exist.
func MustPubSubID(tb testing.TB, admin *redis.Client, name string) string {
	tb.Helper()
	var id string
	MustEventually(tb, "a pub/sub connection named "+name, func() bool {
		// Not CLIENT LIST TYPE pubsub: Redis counts a RESP3 subscriber
		// as a normal client.
		list, err := admin.ClientList(context.Background()).Result()
		if err != nil {
			tb.Fatalf("CLIENT LIST: %v", err)
		}
		for line := range strings.Lines(list) {
			fields := strings.Fields(line)
			if slices.Contains(fields, "name="+name) && !slices.Contains(fields, "sub=0") {
				id = strings.TrimPrefix(fields[0], "id=")
				return true
			}
		}
		return false
	})
	return id
}

// MustKillPubSub closes the pub/sub connection named name from the server
// side and returns its ID.
func MustKillPubSub(tb testing.TB, admin *redis.Client, name string) string {
	tb.Helper()
	id := MustPubSubID(tb, admin, name)
	if err := admin.Do(context.Background(), "CLIENT", "KILL", "ID", id).Err(); err != nil {
		tb.Fatalf("CLIENT KILL ID %s: %v", id, err)
	}
	return id
}

// MustTimeout returns a context that is done after d or when the test ends.
func MustTimeout(tb testing.TB, d time.Duration) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	tb.Cleanup(cancel)
	return ctx
}

// MustEventually polls cond until it holds, failing after
// brokertest.Timeout.
func MustEventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(brokertest.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %v: %s", brokertest.Timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// withClientName returns url with client_name=name, which names every
// connection the Broker makes.
func withClientName(url, name string) string {
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "client_name=" + name
}

// proxy forwards TCP connections to Redis until cut, and again after
// restore, on the same address. While held it forwards nothing from Redis.
type proxy struct {
	url    string
	addr   string
	target string

	mu    sync.Mutex
	held  bool
	freed *sync.Cond // broadcast when held turns false
	ln    net.Listener
	conns []net.Conn
	wg    sync.WaitGroup
}

// MustProxy starts a proxy to the Redis of url, stopped when the test ends.
// Its url field is url with the proxy's address.
func MustProxy(tb testing.TB, url string) *proxy {
	tb.Helper()
	opt, err := redis.ParseURL(url)
	if err != nil {
		tb.Fatalf("ParseURL: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	p := &proxy{addr: ln.Addr().String(), target: opt.Addr}
	p.freed = sync.NewCond(&p.mu)
	p.url = strings.Replace(url, opt.Addr, p.addr, 1)
	if p.url == url {
		tb.Fatalf("cannot put the proxy's address into %q", url)
	}
	p.serve(ln)
	tb.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(s, c); s.Close() })
			p.wg.Go(func() { io.Copy(heldWriter{c, p}, s); c.Close() })
		}
	})
}

// cut closes the listener and every connection, dropping what hold kept
// back, and waits for the proxy's goroutines.
func (p *proxy) cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.held = false
	p.freed.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}

// hold stops forwarding from Redis to the clients until release or cut.
func (p *proxy) hold() {
	p.mu.Lock()
	p.held = true
	p.mu.Unlock()
}

// release forwards what hold kept back, and everything after it.
func (p *proxy) release() {
	p.mu.Lock()
	p.held = false
	p.freed.Broadcast()
	p.mu.Unlock()
}

// heldWriter writes to w once p is not held.
type heldWriter struct {
	w io.Writer
	p *proxy
}

func (h heldWriter) Write(b []byte) (int, error) {
	h.p.mu.Lock()
	for h.p.held {
		h.p.freed.Wait()
	}
	h.p.mu.Unlock()
	return h.w.Write(b)
}

// restore listens again on the proxy's address.
func (p *proxy) restore(tb testing.TB) {
	tb.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		tb.Fatalf("listen again on %s: %v", p.addr, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.serve(ln)
}

// newPrefix returns a channel prefix that no other test uses.
func newPrefix() string {
	return fmt.Sprintf("pulsetest:%x:user:", rand.Uint64())
}

// notice returns an EventNotification for userID with the given Seq (and
// ID).
func notice(userID, seq int64) social.Event {
	n := &social.Notification{
		ID:          seq,
		Seq:         seq,
		RecipientID: userID,
		Message:     "John reacted to your comment",
		Action:      social.ActionReaction,
		ActionID:    23,
		ByUser:      "John",

		ActionContent: "laugh",
		Affected:      social.ContentComment,
		AffectedID:    79,
		CreatedAt:     time.Date(2026, time.November, 25, 17, 3, 0, 0, time.UTC),
	}
	return social.Event{
		Kind: social.EventNotification, UserID: userID, Notification: n,
		PublishedAt: time.Date(2026, time.November, 25, 17, 3, 0, 123456789, time.FixedZone("CET", 3600)),
	}
}

// MustEqualEvent fails unless got has the contents of want.
func MustEqualEvent(tb testing.TB, got, want social.Event) {
	tb.Helper()
	same := got.Kind == want.Kind && got.UserID == want.UserID &&
		got.Message == want.Message && got.SessionID == want.SessionID && got.ExpiresAt.Equal(want.ExpiresAt) &&
		got.PublishedAt.Equal(want.PublishedAt) && (got.Notification == nil) == (want.Notification == nil) &&
		(got.Change == nil) == (want.Change == nil) && (got.Change == nil || brokertest.SameChange(*got.Change, *want.Change))
	if same && got.Notification != nil {
		g, w := *got.Notification, *want.Notification
		same = g.CreatedAt.Equal(w.CreatedAt)
		g.CreatedAt, w.CreatedAt = time.Time{}, time.Time{}
		same = same && g == w
	}
	if !same {
		tb.Fatalf("got event %+v (notification %+v, change %+v), want %+v (notification %+v, change %+v)",
			got, got.Notification, got.Change, want, want.Notification, want.Change)
	}
}
