package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/pulse-social/pulse/internal/social"
)

// fullNotification returns a notification with every field set: a reply
// notification for recipient.
func fullNotification(recipient int64, i int) social.Notification {
	return social.Notification{
		RecipientID:   recipient,
		Message:       "John replied to your comment",
		Action:        social.ActionComment,
		ActionID:      int64(2000 + i),
		ByUser:        "John",
		ActionContent: "agreed, \"quoted\" and <escaped> 👍",
		Affected:      social.ContentComment,
		AffectedID:    int64(3000 + i),
		CreatedAt:     at(i),
	}
}

// seeded is a store with two users and their notifications, stored one
// per transaction in the order ann, bob, ann, ann, bob, ann, ann.
type seeded struct {
	s        social.Store
	ann, bob social.User
	// a and b are ann's and bob's notifications, oldest first, as
	// AddNotifications returned them.
	a, b []social.Notification
}

func seed(t *testing.T, open opener) *seeded {
	t.Helper()
	s := open(t)
	sd := &seeded{s: s, ann: MustCreateUser(t, s, "ann"), bob: MustCreateUser(t, s, "bob")}
	for i, r := range []int64{sd.ann.ID, sd.bob.ID, sd.ann.ID, sd.ann.ID, sd.bob.ID, sd.ann.ID, sd.ann.ID} {
		n := notification(r, i)
		if i%2 == 0 {
			n = fullNotification(r, i)
		}
		stored := MustAddNotifications(t, s, n)[0]
		if r == sd.ann.ID {
			sd.a = append(sd.a, stored)
		} else {
			sd.b = append(sd.b, stored)
		}
	}
	return sd
}

// newestFirst returns ns reversed.
func newestFirst(ns []social.Notification) []social.Notification {
	out := slices.Clone(ns)
	slices.Reverse(out)
	return out
}

// mustMarkRead marks ids of userID read and returns how many changed.
func mustMarkRead(tb testing.TB, s social.Store, userID int64, ids ...int64) int {
	tb.Helper()
	var n int
	MustUpdate(tb, s, func(tx social.Tx) error {
		var err error
		cs, err := tx.AppendChanges(tb.Context(), []social.Change{{Kind: social.ChangeRead, RecipientID: userID, IDs: ids}})
		if len(cs) > 0 {
			n = len(cs[0].IDs)
		}
		return err
	})
	return n
}

// markAllRead marks all of userID's notifications read, as the Service
// does, and returns how many changed.
func markAllRead(ctx context.Context, tx social.Tx, userID int64) (int, error) {
	ids, err := tx.UnreadIDs(ctx, userID, 0)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	cs, err := tx.AppendChanges(ctx, []social.Change{{Kind: social.ChangeRead, RecipientID: userID, IDs: ids}})
	if err != nil {
		return 0, err
	}
	return len(cs[0].IDs), nil
}

// wantPage fails tb unless the page of userID's notifications that q
// selects is want.
func wantPage(tb testing.TB, r social.Reader, userID int64, q social.NotificationQuery, want []social.Notification) {
	tb.Helper()
	got, err := r.Notifications(tb.Context(), userID, q)
	if err != nil {
		tb.Fatalf("Notifications(%d, %+v): %v", userID, q, err)
	}
	if !slices.EqualFunc(got, want, sameNotification) {
		tb.Fatalf("Notifications(%d, %+v) = IDs %v\n\t%+v\nwant IDs %v\n\t%+v", userID, q, ids(got), got, ids(want), want)
	}
}

// wantUnread fails tb unless userID has n unread notifications.
func wantUnread(tb testing.TB, r social.Reader, userID int64, n int) {
	tb.Helper()
	got, err := r.UnreadCount(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("UnreadCount: %v", err)
	}
	if got != n {
		tb.Fatalf("UnreadCount(%d) = %d, want %d", userID, got, n)
	}
}

// wantGapless fails tb unless userID has exactly n notifications whose
// Seqs, in ID order, are 1 to n, and reading them by Seq gives the same
// order.
func wantGapless(tb testing.TB, r social.Reader, userID int64, n int) {
	tb.Helper()
	byID, err := r.Notifications(tb.Context(), userID, social.NotificationQuery{Limit: n + 10})
	if err != nil {
		tb.Fatalf("Notifications: %v", err)
	}
	slices.Reverse(byID)
	if len(byID) != n {
		tb.Fatalf("user %d has %d notifications, want %d", userID, len(byID), n)
	}
	for i, x := range byID {
		if x.Seq != int64(i+1) || i > 0 && x.ID <= byID[i-1].ID {
			tb.Fatalf("user %d's notifications in ID order: #%d has ID %d, Seq %d (IDs %v)", userID, i+1, x.ID, x.Seq, ids(byID))
		}
	}
	bySeq, err := AddedAfterSeq(tb.Context(), r, userID, 0, n+10)
	if err != nil {
		tb.Fatalf("NotificationsAfterSeq: %v", err)
	}
	if !slices.Equal(ids(bySeq), ids(byID)) {
		tb.Fatalf("user %d's notifications by Seq have IDs %v, by ID %v", userID, ids(bySeq), ids(byID))
	}
}

func testAddNotifications(t *testing.T, open opener) {
	t.Run("AssignsIDAndSeq", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		cid := MustCreateUser(t, s, "cid")

		// Each call returns its notifications in input order; per
		// recipient, Seqs count on from 1 without gaps and IDs increase.
		lastID := map[int64]int64{}
		lastSeq := map[int64]int64{}
		allIDs := map[int64]bool{}
		for call, recipients := range [][]int64{
			{ann.ID, bob.ID, ann.ID, cid.ID, ann.ID, bob.ID},
			{bob.ID, ann.ID, ann.ID},
			{cid.ID},
		} {
			var in []social.Notification
			for i, r := range recipients {
				in = append(in, notification(r, 10*call+i))
			}
			out := MustAddNotifications(t, s, in...)
			if len(out) != len(in) {
				t.Fatalf("call %d: AddNotifications returned %d notifications, want %d", call+1, len(out), len(in))
			}
			for i, n := range out {
				want := in[i]
				want.ID, want.Seq = n.ID, lastSeq[n.RecipientID]+1
				wantNotification(t, n, want)
				if n.ID <= lastID[n.RecipientID] {
					t.Fatalf("call %d: #%d has ID %d, not above the recipient's previous ID %d", call+1, i+1, n.ID, lastID[n.RecipientID])
				}
				if allIDs[n.ID] {
					t.Fatalf("call %d: ID %d given twice", call+1, n.ID)
				}
				allIDs[n.ID] = true
				lastID[n.RecipientID], lastSeq[n.RecipientID] = n.ID, n.Seq
			}
		}
		wantGapless(t, s, ann.ID, 5)
		wantGapless(t, s, bob.ID, 3)
		wantGapless(t, s, cid.ID, 2)
	})

	t.Run("RoundTrip", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		full := fullNotification(ann.ID, 1)
		sparse := notification(ann.ID, 2)
		// ID, Seq and Read are the store's to set.
		sparse.ID, sparse.Seq, sparse.Read = 999, 42, true
		out := MustAddNotifications(t, s, full, sparse)
		full.ID, full.Seq = out[0].ID, 1
		sparse.ID, sparse.Seq, sparse.Read = out[1].ID, 2, false
		want := []social.Notification{full, sparse}
		wantNotifications(t, out, want)

		got, err := AddedAfterSeq(t.Context(), s, ann.ID, 0, 10)
		if err != nil {
			t.Fatalf("NotificationsAfterSeq: %v", err)
		}
		wantNotifications(t, got, want)
		wantPage(t, s, ann.ID, social.NotificationQuery{Limit: 10}, newestFirst(want))
		MustUpdate(t, s, func(tx social.Tx) error {
			wantPage(t, tx, ann.ID, social.NotificationQuery{Limit: 10}, newestFirst(want))
			return nil
		})
	})

	t.Run("Empty", func(t *testing.T) {
		s := open(t)
		for _, in := range [][]social.Notification{nil, {}} {
			out := MustAddNotifications(t, s, in...)
			if len(out) != 0 {
				t.Fatalf("AddNotifications(%v) = %+v, want none", in, out)
			}
		}
	})

	t.Run("ManyRecipients", func(t *testing.T) {
		// Enough recipients to cross any batch size a store may use.
		const n = 250
		s := open(t)
		users := make([]social.User, n)
		MustUpdate(t, s, func(tx social.Tx) error {
			for i := range users {
				var err error
				users[i], err = tx.CreateUser(t.Context(), social.User{Username: fmt.Sprintf("user%03d", i), CreatedAt: t0}, []byte("hash"))
				if err != nil {
					return err
				}
			}
			return nil
		})
		// One each, then two each, interleaved.
		var in []social.Notification
		for round := range 3 {
			for i, u := range users {
				in = append(in, notification(u.ID, round*n+i))
			}
			if round == 0 {
				out := MustAddNotifications(t, s, in...)
				for i, x := range out {
					if x.RecipientID != users[i].ID || x.Seq != 1 {
						t.Fatalf("#%d: recipient %d, Seq %d; want recipient %d, Seq 1", i+1, x.RecipientID, x.Seq, users[i].ID)
					}
				}
				in = nil
			}
		}
		out := MustAddNotifications(t, s, in...)
		for i, x := range out {
			want := int64(2 + i/n)
			if x.RecipientID != users[i%n].ID || x.Seq != want {
				t.Fatalf("#%d: recipient %d, Seq %d; want recipient %d, Seq %d", i+1, x.RecipientID, x.Seq, users[i%n].ID, want)
			}
		}
		for _, u := range users {
			wantGapless(t, s, u.ID, 3)
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		const (
			recipients = 5
			writers    = 8
			updates    = 20
		)
		s := open(t)
		var users []social.User
		for i := range recipients {
			users = append(users, MustCreateUser(t, s, fmt.Sprintf("user%d", i)))
		}
		// Update i of writer w notifies recipients (w+i)%5 twice and
		// (w+i+2)%5 once: writers overlap on every recipient.
		want := make(map[int64]int)
		for w := range writers {
			for i := range updates {
				want[users[(w+i)%recipients].ID] += 2
				want[users[(w+i+2)%recipients].ID]++
			}
		}

		var writing sync.WaitGroup
		for w := range writers {
			writing.Go(func() {
				for i := range updates {
					r1, r2 := users[(w+i)%recipients].ID, users[(w+i+2)%recipients].ID
					err := s.Update(t.Context(), func(tx social.Tx) error {
						_, err := AddNotifications(t.Context(), tx, []social.Notification{
							notification(r1, i), notification(r2, i), notification(r1, i),
						})
						return err
					})
					if err != nil {
						t.Errorf("writer %d, update %d: %v", w, i, err)
						return
					}
				}
			})
		}
		// Meanwhile, a reader never sees a gap: whatever it reads is Seq
		// 1, 2, 3, ... in ID order.
		done := make(chan struct{})
		var reading sync.WaitGroup
		reading.Go(func() {
			for {
				for _, u := range users {
					ns, err := AddedAfterSeq(t.Context(), s, u.ID, 0, 10000)
					if err != nil {
						t.Errorf("NotificationsAfterSeq: %v", err)
						return
					}
					for i, n := range ns {
						if n.Seq != int64(i+1) || i > 0 && n.ID <= ns[i-1].ID {
							t.Errorf("reader: user %d's #%d has ID %d, Seq %d (IDs %v)", u.ID, i+1, n.ID, n.Seq, ids(ns))
							return
						}
					}
				}
				select {
				case <-done:
					return
				default:
				}
			}
		})
		writing.Wait()
		close(done)
		reading.Wait()
		if t.Failed() {
			t.FailNow()
		}
		for _, u := range users {
			wantGapless(t, s, u.ID, want[u.ID])
		}
	})
}

func testNotifications(t *testing.T, open opener) {
	t.Run("NewestFirst", func(t *testing.T) {
		sd := seed(t, open)
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{Limit: 10}, newestFirst(sd.a))
		wantPage(t, sd.s, sd.bob.ID, social.NotificationQuery{Limit: 10}, newestFirst(sd.b))
	})

	t.Run("Limit", func(t *testing.T) {
		sd := seed(t, open)
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{Limit: 2}, newestFirst(sd.a[3:]))
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{Limit: 5}, newestFirst(sd.a))
	})

	t.Run("BeforeID", func(t *testing.T) {
		sd := seed(t, open)
		a := sd.a
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{BeforeID: a[3].ID, Limit: 10}, newestFirst(a[:3]))
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{BeforeID: a[3].ID, Limit: 2}, newestFirst(a[1:3]))
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{BeforeID: a[0].ID, Limit: 10}, nil)
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{BeforeID: a[4].ID + 1, Limit: 10}, newestFirst(a))
		// Any ID is a cursor: another user's, or none at all.
		for _, n := range sd.b {
			for _, before := range []int64{n.ID - 1, n.ID, n.ID + 1} {
				var want []social.Notification
				for _, m := range a {
					if m.ID < before {
						want = append(want, m)
					}
				}
				wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{BeforeID: before, Limit: 10}, newestFirst(want))
			}
		}
	})

	t.Run("UnreadOnly", func(t *testing.T) {
		sd := seed(t, open)
		a := sd.a
		if n := mustMarkRead(t, sd.s, sd.ann.ID, a[1].ID, a[3].ID); n != 2 {
			t.Fatalf("MarkRead = %d, want 2", n)
		}
		a[1].Read, a[3].Read = true, true
		unread := []social.Notification{a[4], a[2], a[0]}
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{Limit: 10}, newestFirst(a))
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{Limit: 10, UnreadOnly: true}, unread)
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{Limit: 2, UnreadOnly: true}, unread[:2])
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{BeforeID: a[4].ID, Limit: 1, UnreadOnly: true}, unread[1:2])
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{BeforeID: a[3].ID, Limit: 10, UnreadOnly: true}, unread[1:])
		wantPage(t, sd.s, sd.bob.ID, social.NotificationQuery{Limit: 10, UnreadOnly: true}, newestFirst(sd.b))
	})

	t.Run("None", func(t *testing.T) {
		sd := seed(t, open)
		cid := MustCreateUser(t, sd.s, "cid")
		wantPage(t, sd.s, cid.ID, social.NotificationQuery{Limit: 10}, nil)
		wantPage(t, sd.s, cid.ID, social.NotificationQuery{Limit: 10, UnreadOnly: true}, nil)
	})
}

func testNotificationsAfterSeq(t *testing.T, open opener) {
	t.Run("OldestFirst", func(t *testing.T) {
		sd := seed(t, open)
		for _, tc := range []struct {
			user     int64
			afterSeq int64
			limit    int
			want     []social.Notification
		}{
			{sd.ann.ID, 0, 10, sd.a},
			{sd.ann.ID, 0, 2, sd.a[:2]},
			{sd.ann.ID, 2, 2, sd.a[2:4]},
			{sd.ann.ID, 4, 10, sd.a[4:]},
			{sd.ann.ID, 5, 10, nil},
			{sd.bob.ID, 0, 10, sd.b},
			{sd.bob.ID, 1, 10, sd.b[1:]},
		} {
			got, err := AddedAfterSeq(t.Context(), sd.s, tc.user, tc.afterSeq, tc.limit)
			if err != nil {
				t.Fatalf("NotificationsAfterSeq: %v", err)
			}
			if !slices.EqualFunc(got, tc.want, sameNotification) {
				t.Fatalf("NotificationsAfterSeq(%d, %d, %d) = IDs %v, want IDs %v",
					tc.user, tc.afterSeq, tc.limit, ids(got), ids(tc.want))
			}
		}
	})
}

func testSeqAtID(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		sd := seed(t, open)
		// What SeqAtID must say, from the notifications' own IDs and Seqs.
		seqAt := func(ns []social.Notification, id int64) int64 {
			var seq int64
			for _, n := range ns {
				if id <= 0 || n.ID <= id {
					seq = max(seq, n.Seq)
				}
			}
			return seq
		}
		var probes []int64
		for _, n := range append(slices.Clone(sd.a), sd.b...) {
			probes = append(probes, n.ID-1, n.ID, n.ID+1)
		}
		probes = append(probes, 0, -1)
		for _, u := range []struct {
			id int64
			ns []social.Notification
		}{{sd.ann.ID, sd.a}, {sd.bob.ID, sd.b}} {
			for _, id := range probes {
				got, err := sd.s.SeqAtID(t.Context(), u.id, id)
				if err != nil {
					t.Fatalf("SeqAtID: %v", err)
				}
				if want := seqAt(u.ns, id); got != want {
					t.Fatalf("SeqAtID(%d, %d) = %d, want %d", u.id, id, got, want)
				}
			}
		}
		if got, err := sd.s.SeqAtID(t.Context(), sd.ann.ID, 0); err != nil || got != 5 {
			t.Fatalf("SeqAtID(ann, 0) = %d, %v; want 5", got, err)
		}
	})

	t.Run("None", func(t *testing.T) {
		sd := seed(t, open)
		cid := MustCreateUser(t, sd.s, "cid")
		for _, id := range []int64{-1, 0, 1, sd.a[4].ID} {
			got, err := sd.s.SeqAtID(t.Context(), cid.ID, id)
			if err != nil || got != 0 {
				t.Fatalf("SeqAtID(cid, %d) = %d, %v; want 0", id, got, err)
			}
		}
	})
}

func testUnreadCount(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		sd := seed(t, open)
		cid := MustCreateUser(t, sd.s, "cid")
		wantUnread(t, sd.s, sd.ann.ID, 5)
		wantUnread(t, sd.s, sd.bob.ID, 2)
		wantUnread(t, sd.s, cid.ID, 0)
		mustMarkRead(t, sd.s, sd.ann.ID, sd.a[0].ID, sd.a[2].ID)
		wantUnread(t, sd.s, sd.ann.ID, 3)
		wantUnread(t, sd.s, sd.bob.ID, 2)
	})
}

func testMarkRead(t *testing.T, open opener) {
	t.Run("IgnoresOtherUsersIDs", func(t *testing.T) {
		sd := seed(t, open)
		a, b := sd.a, sd.b
		// a[0] twice, bob's, and an id nobody has: only a[0] and a[1] change.
		if n := mustMarkRead(t, sd.s, sd.ann.ID, a[0].ID, a[0].ID, a[1].ID, b[0].ID, b[1].ID+1000); n != 2 {
			t.Fatalf("MarkRead = %d, want 2", n)
		}
		a[0].Read, a[1].Read = true, true
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{Limit: 10}, newestFirst(a))
		wantPage(t, sd.s, sd.bob.ID, social.NotificationQuery{Limit: 10}, newestFirst(b))
		wantUnread(t, sd.s, sd.bob.ID, 2)
	})

	t.Run("AlreadyRead", func(t *testing.T) {
		sd := seed(t, open)
		a := sd.a
		mustMarkRead(t, sd.s, sd.ann.ID, a[0].ID)
		if n := mustMarkRead(t, sd.s, sd.ann.ID, a[0].ID, a[2].ID); n != 1 {
			t.Fatalf("MarkRead = %d, want 1", n)
		}
		if n := mustMarkRead(t, sd.s, sd.ann.ID, a[0].ID, a[2].ID); n != 0 {
			t.Fatalf("MarkRead again = %d, want 0", n)
		}
		wantUnread(t, sd.s, sd.ann.ID, 3)
	})

	t.Run("NoIDs", func(t *testing.T) {
		sd := seed(t, open)
		if n := mustMarkRead(t, sd.s, sd.ann.ID); n != 0 {
			t.Fatalf("MarkRead() = %d, want 0", n)
		}
		wantUnread(t, sd.s, sd.ann.ID, 5)
	})

	t.Run("Many", func(t *testing.T) {
		const n = 250
		sd := seed(t, open)
		in := make([]social.Notification, n)
		for i := range in {
			in[i] = notification(sd.ann.ID, i)
		}
		all := append(ids(sd.a), ids(MustAddNotifications(t, sd.s, in...))...)
		all = append(all, ids(sd.b)...)
		if got := mustMarkRead(t, sd.s, sd.ann.ID, all...); got != n+len(sd.a) {
			t.Fatalf("MarkRead = %d, want %d", got, n+len(sd.a))
		}
		wantUnread(t, sd.s, sd.ann.ID, 0)
		wantUnread(t, sd.s, sd.bob.ID, 2)
	})
}

func testMarkAllRead(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		sd := seed(t, open)
		mustMarkRead(t, sd.s, sd.ann.ID, sd.a[1].ID)
		for i, want := range []int{4, 0} {
			var n int
			MustUpdate(t, sd.s, func(tx social.Tx) error {
				var err error
				n, err = markAllRead(t.Context(), tx, sd.ann.ID)
				return err
			})
			if n != want {
				t.Fatalf("MarkAllRead #%d = %d, want %d", i+1, n, want)
			}
		}
		wantUnread(t, sd.s, sd.ann.ID, 0)
		wantUnread(t, sd.s, sd.bob.ID, 2)
		wantPage(t, sd.s, sd.ann.ID, social.NotificationQuery{Limit: 10, UnreadOnly: true}, nil)
	})
}
