package storetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

// runSessions runs the cases of sessions, their tokens and their socket
// tickets.
func runSessions(t *testing.T, open opener) {
	t.Run("SessionUser", func(t *testing.T) { testSessionUser(t, open) })
	t.Run("UserSessions", func(t *testing.T) { testUserSessions(t, open) })
	t.Run("RefreshSession", func(t *testing.T) { testRefreshSession(t, open) })
	t.Run("TouchSession", func(t *testing.T) { testTouchSession(t, open) })
	t.Run("EndSessions", func(t *testing.T) { testEndSessions(t, open) })
	t.Run("DeleteExpiredSessions", func(t *testing.T) { testDeleteExpiredSessions(t, open) })
	t.Run("DeleteExpiredCredentials", func(t *testing.T) { testDeleteExpiredCredentials(t, open) })
	t.Run("ConsumeTicket", func(t *testing.T) { testConsumeTicket(t, open) })
}

// mustCreateSession creates a session of userID at t0 for token, expiring
// at expires, and returns it as SessionUser finds it.
func mustCreateSession(tb testing.TB, s social.Store, userID int64, token string, expires time.Time) social.SessionUser {
	tb.Helper()
	sess := social.Session{TokenHash: social.HashToken(token), UserID: userID, CreatedAt: t0, ExpiresAt: expires, UserAgent: "agent " + token}
	MustUpdate(tb, s, func(tx social.Tx) error { return tx.CreateSession(tb.Context(), sess) })
	su, err := s.SessionUser(tb.Context(), sess.TokenHash, t0)
	if err != nil {
		tb.Fatalf("SessionUser of a new session: %v", err)
	}
	return su
}

// wantToken fails unless token proves session id at now (id 0: proves
// none).
func wantToken(tb testing.TB, s social.Store, token string, now time.Time, id int64) {
	tb.Helper()
	su, err := s.SessionUser(tb.Context(), social.HashToken(token), now)
	if id == 0 {
		if social.ErrorCode(err) != social.CodeNotFound {
			tb.Fatalf("token %q at %v: session %d, %v; want CodeNotFound", token, now, su.Session.ID, err)
		}
		return
	}
	if err != nil || su.Session.ID != id {
		tb.Fatalf("token %q at %v: session %d, %v; want session %d", token, now, su.Session.ID, err, id)
	}
}

func testSessionUser(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		mustCreateSession(t, s, ann.ID, "ann-token", t0.Add(time.Hour))
		want := mustCreateSession(t, s, bob.ID, "bob-token", t0.Add(time.Hour))
		for _, now := range []time.Time{t0, t0.Add(time.Hour - time.Second)} {
			got, err := s.SessionUser(t.Context(), social.HashToken("bob-token"), now)
			if err != nil {
				t.Fatalf("SessionUser at %v: %v", now, err)
			}
			wantUser(t, got.User, bob)
			g := got.Session
			if g.ID == 0 || g.ID != want.Session.ID || g.UserID != bob.ID || g.UserAgent != "agent bob-token" ||
				!sameTime(g.CreatedAt, t0) || !sameTime(g.LastUsedAt, t0) || !sameTime(g.ExpiresAt, t0.Add(time.Hour)) ||
				!sameTime(got.ExpiresAt, t0.Add(time.Hour)) {
				t.Fatalf("SessionUser = %+v", got)
			}
		}
	})

	t.Run("Expired", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		expires := t0.Add(time.Hour)
		mustCreateSession(t, s, u.ID, "token", expires)
		for _, now := range []time.Time{expires, expires.Add(time.Millisecond), expires.Add(time.Hour)} {
			wantToken(t, s, "token", now, 0)
		}
	})

	t.Run("UnknownToken", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		mustCreateSession(t, s, u.ID, "token", t0.Add(time.Hour))
		wantToken(t, s, "other", t0, 0)
	})

	t.Run("TokenConflict", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		mustCreateSession(t, s, u.ID, "token", t0.Add(time.Hour))
		err := s.Update(t.Context(), func(tx social.Tx) error {
			return tx.CreateSession(t.Context(), social.Session{TokenHash: social.HashToken("token"), UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
		})
		wantCode(t, err, social.CodeConflict)
	})
}

func testUserSessions(t *testing.T, open opener) {
	t.Run("LiveNewestFirst", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		var want []int64
		for i, tok := range []string{"a", "b", "c"} {
			sess := social.Session{TokenHash: social.HashToken(tok), UserID: ann.ID, CreatedAt: at(i), ExpiresAt: t0.Add(time.Hour)}
			MustUpdate(t, s, func(tx social.Tx) error { return tx.CreateSession(t.Context(), sess) })
			su, err := s.SessionUser(t.Context(), sess.TokenHash, t0)
			if err != nil {
				t.Fatal(err)
			}
			want = append([]int64{su.Session.ID}, want...)
		}
		mustCreateSession(t, s, ann.ID, "expired", at(30))
		mustCreateSession(t, s, bob.ID, "bob's", t0.Add(time.Hour))
		got, err := s.UserSessions(t.Context(), ann.ID, at(30))
		if err != nil {
			t.Fatalf("UserSessions: %v", err)
		}
		var ids []int64
		for _, g := range got {
			ids = append(ids, g.ID)
			if g.UserID != ann.ID || g.CreatedAt.Location() != time.UTC {
				t.Fatalf("UserSessions returned %+v", g)
			}
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("UserSessions = %v, want %v (newest first, live only)", ids, want)
		}
	})
}

func testRefreshSession(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		old := mustCreateSession(t, s, u.ID, "old", t0.Add(time.Hour))
		other := mustCreateSession(t, s, u.ID, "other", t0.Add(time.Hour))
		r := social.Refresh{SessionID: old.Session.ID, TokenHash: social.HashToken("new"),
			ExpiresAt: t0.Add(3 * time.Hour), GraceUntil: at(60), Now: at(1)}
		MustUpdate(t, s, func(tx social.Tx) error { return tx.RefreshSession(t.Context(), r) })

		got, err := s.SessionUser(t.Context(), social.HashToken("new"), at(1))
		if err != nil || got.Session.ID != old.Session.ID || !sameTime(got.ExpiresAt, r.ExpiresAt) || !sameTime(got.Session.ExpiresAt, r.ExpiresAt) {
			t.Fatalf("SessionUser of the new token = %+v, %v", got, err)
		}
		got, err = s.SessionUser(t.Context(), social.HashToken("old"), at(59))
		if err != nil || got.Session.ID != old.Session.ID || !sameTime(got.ExpiresAt, r.GraceUntil) {
			t.Fatalf("SessionUser of the old token in its grace = %+v, %v", got, err)
		}
		wantToken(t, s, "old", at(60), 0)
		wantToken(t, s, "new", t0.Add(2*time.Hour), old.Session.ID)
		// The other session is untouched.
		wantToken(t, s, "other", at(60), other.Session.ID)
		wantToken(t, s, "other", t0.Add(time.Hour), 0)
	})

	t.Run("GraceDoesNotExtend", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		sess := mustCreateSession(t, s, u.ID, "old", at(30))
		r := social.Refresh{SessionID: sess.Session.ID, TokenHash: social.HashToken("new"),
			ExpiresAt: t0.Add(time.Hour), GraceUntil: at(60), Now: at(1)}
		MustUpdate(t, s, func(tx social.Tx) error { return tx.RefreshSession(t.Context(), r) })
		wantToken(t, s, "old", at(30), 0)
	})

	t.Run("NotLive", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		sess := mustCreateSession(t, s, u.ID, "old", at(30))
		for _, r := range []social.Refresh{
			{SessionID: sess.Session.ID, TokenHash: social.HashToken("new"), ExpiresAt: t0.Add(time.Hour), GraceUntil: at(90), Now: at(30)},
			{SessionID: sess.Session.ID + 100, TokenHash: social.HashToken("new"), ExpiresAt: t0.Add(time.Hour), GraceUntil: at(60), Now: at(1)},
		} {
			err := s.Update(t.Context(), func(tx social.Tx) error { return tx.RefreshSession(t.Context(), r) })
			wantCode(t, err, social.CodeNotFound)
		}
		wantToken(t, s, "new", at(1), 0)
	})

	// RacingEnd refreshes a session while it ends: whichever commits first,
	// no token of the session works after both.
	t.Run("RacingEnd", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		for i := range 20 {
			old, fresh := "old"+string(rune('a'+i)), "new"+string(rune('a'+i))
			sess := mustCreateSession(t, s, u.ID, old, t0.Add(time.Hour))
			var wg sync.WaitGroup
			var refreshErr, endErr error
			var ended []int64
			wg.Add(2)
			go func() {
				defer wg.Done()
				r := social.Refresh{SessionID: sess.Session.ID, TokenHash: social.HashToken(fresh),
					ExpiresAt: t0.Add(2 * time.Hour), GraceUntil: at(60), Now: t0}
				refreshErr = s.Update(t.Context(), func(tx social.Tx) error { return tx.RefreshSession(t.Context(), r) })
			}()
			go func() {
				defer wg.Done()
				endErr = s.Update(t.Context(), func(tx social.Tx) error {
					var err error
					ended, err = tx.EndSessions(t.Context(), u.ID, sess.Session.ID, t0)
					return err
				})
			}()
			wg.Wait()
			if endErr != nil || !slices.Equal(ended, []int64{sess.Session.ID}) {
				t.Fatalf("EndSessions = %v, %v; want [%d]", ended, endErr, sess.Session.ID)
			}
			if refreshErr != nil && social.ErrorCode(refreshErr) != social.CodeNotFound {
				t.Fatalf("RefreshSession: %v", refreshErr)
			}
			wantToken(t, s, old, t0, 0)
			wantToken(t, s, fresh, t0, 0)
		}
	})
}

func testTouchSession(t *testing.T, open opener) {
	t.Run("OnlyWhenStale", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		sess := mustCreateSession(t, s, u.ID, "token", t0.Add(time.Hour))
		touch := func(at, stale time.Time) {
			MustUpdate(t, s, func(tx social.Tx) error { return tx.TouchSession(t.Context(), sess.Session.ID, at, stale) })
		}
		lastUsed := func() time.Time {
			got, err := s.LiveSession(t.Context(), sess.Session.ID, t0)
			if err != nil {
				t.Fatalf("LiveSession: %v", err)
			}
			return got.LastUsedAt
		}
		touch(at(30), at(-30)) // used at t0, not before at(-30): fresh
		if got := lastUsed(); !sameTime(got, t0) {
			t.Fatalf("LastUsedAt = %v after a touch of a fresh session, want %v", got, t0)
		}
		touch(at(90), at(30)) // t0 is before at(30): stale
		if got := lastUsed(); !sameTime(got, at(90)) {
			t.Fatalf("LastUsedAt = %v, want %v", got, at(90))
		}
	})
}

// mustEnd ends userID's session id (0: all) at now.
func mustEnd(tb testing.TB, s social.Store, userID, id int64, now time.Time) []int64 {
	tb.Helper()
	var ended []int64
	MustUpdate(tb, s, func(tx social.Tx) error {
		var err error
		ended, err = tx.EndSessions(tb.Context(), userID, id, now)
		return err
	})
	return ended
}

// mustTicket creates a ticket of session id that expires at expires.
func mustTicket(tb testing.TB, s social.Store, ticket string, id int64, expires time.Time) {
	tb.Helper()
	MustUpdate(tb, s, func(tx social.Tx) error {
		return tx.CreateTicket(tb.Context(), social.Ticket{Hash: social.HashToken(ticket), SessionID: id, ExpiresAt: expires})
	})
}

// consume consumes a ticket at now.
func consume(tb testing.TB, s social.Store, ticket string, now time.Time) (social.SessionUser, error) {
	var su social.SessionUser
	err := s.Update(tb.Context(), func(tx social.Tx) error {
		var err error
		su, err = tx.ConsumeTicket(tb.Context(), social.HashToken(ticket), now)
		return err
	})
	return su, err
}

func testEndSessions(t *testing.T, open opener) {
	t.Run("One", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		a1 := mustCreateSession(t, s, ann.ID, "a1", t0.Add(time.Hour))
		a2 := mustCreateSession(t, s, ann.ID, "a2", t0.Add(time.Hour))
		b1 := mustCreateSession(t, s, bob.ID, "b1", t0.Add(time.Hour))
		mustTicket(t, s, "ticket", a1.Session.ID, at(60))
		if got := mustEnd(t, s, bob.ID, a1.Session.ID, t0); len(got) != 0 {
			t.Fatalf("bob ended ann's session: %v", got)
		}
		if got := mustEnd(t, s, ann.ID, a1.Session.ID, t0); !slices.Equal(got, []int64{a1.Session.ID}) {
			t.Fatalf("EndSessions = %v, want [%d]", got, a1.Session.ID)
		}
		if got := mustEnd(t, s, ann.ID, a1.Session.ID, t0); len(got) != 0 {
			t.Fatalf("EndSessions again = %v, want none", got)
		}
		wantToken(t, s, "a1", t0, 0)
		wantToken(t, s, "a2", t0, a2.Session.ID)
		wantToken(t, s, "b1", t0, b1.Session.ID)
		_, err := consume(t, s, "ticket", t0)
		wantCode(t, err, social.CodeNotFound)
	})

	t.Run("All", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		a1 := mustCreateSession(t, s, ann.ID, "a1", t0.Add(time.Hour))
		a2 := mustCreateSession(t, s, ann.ID, "a2", t0.Add(time.Hour))
		mustCreateSession(t, s, ann.ID, "expired", at(10))
		b1 := mustCreateSession(t, s, bob.ID, "b1", t0.Add(time.Hour))
		got := mustEnd(t, s, ann.ID, 0, at(10))
		slices.Sort(got)
		if want := []int64{a1.Session.ID, a2.Session.ID}; !slices.Equal(got, want) {
			t.Fatalf("EndSessions = %v, want the live ones %v", got, want)
		}
		for _, tok := range []string{"a1", "a2", "expired"} {
			wantToken(t, s, tok, t0, 0)
		}
		wantToken(t, s, "b1", t0, b1.Session.ID)
		if ss, err := s.UserSessions(t.Context(), ann.ID, t0); err != nil || len(ss) != 0 {
			t.Fatalf("UserSessions after ending all = %v, %v", ss, err)
		}
	})
}

func testDeleteExpiredSessions(t *testing.T, open opener) {
	t.Run("InBatches", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		// Created at t0 - 2h, so that all are live before t0 - 1h.
		session := func(token string, expires time.Time) {
			sess := social.Session{TokenHash: social.HashToken(token), UserID: u.ID, CreatedAt: t0.Add(-2 * time.Hour), ExpiresAt: expires}
			MustUpdate(t, s, func(tx social.Tx) error { return tx.CreateSession(t.Context(), sess) })
		}
		// A session that expires at now has expired, as SessionUser has it.
		expired := []string{"long ago", "just now", "now"}
		session("long ago", t0.Add(-time.Hour))
		session("just now", t0.Add(-time.Millisecond))
		session("now", t0)
		live := []string{"soon", "later"}
		session("soon", t0.Add(time.Millisecond))
		session("later", t0.Add(time.Hour))
		for i, want := range []int{2, 1, 0} {
			var n int
			MustUpdate(t, s, func(tx social.Tx) error {
				var err error
				n, err = tx.DeleteExpiredSessions(t.Context(), t0, 2)
				return err
			})
			if n != want {
				t.Fatalf("DeleteExpiredSessions #%d = %d, want %d", i+1, n, want)
			}
		}
		before := t0.Add(-90 * time.Minute)
		for _, tok := range expired {
			wantToken(t, s, tok, before, 0)
		}
		for _, tok := range live {
			if _, err := s.SessionUser(t.Context(), social.HashToken(tok), before); err != nil {
				t.Fatalf("SessionUser of a live session: %v", err)
			}
		}
	})
}

func testDeleteExpiredCredentials(t *testing.T, open opener) {
	t.Run("TokensAndTickets", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		sess := mustCreateSession(t, s, u.ID, "old", t0.Add(time.Hour))
		r := social.Refresh{SessionID: sess.Session.ID, TokenHash: social.HashToken("new"),
			ExpiresAt: t0.Add(2 * time.Hour), GraceUntil: at(60), Now: t0}
		MustUpdate(t, s, func(tx social.Tx) error { return tx.RefreshSession(t.Context(), r) })
		mustTicket(t, s, "expired 1", sess.Session.ID, at(10))
		mustTicket(t, s, "expired 2", sess.Session.ID, at(20))
		mustTicket(t, s, "live", sess.Session.ID, at(200))
		for i, want := range []int{2, 1, 0} {
			var n int
			MustUpdate(t, s, func(tx social.Tx) error {
				var err error
				n, err = tx.DeleteExpiredCredentials(t.Context(), at(100), 2)
				return err
			})
			if n != want {
				t.Fatalf("DeleteExpiredCredentials #%d = %d, want %d", i+1, n, want)
			}
		}
		// Before at(10) every credential was live: the deleted ones are
		// gone, the others are not.
		wantToken(t, s, "old", at(1), 0)
		wantToken(t, s, "new", at(1), sess.Session.ID)
		for _, tk := range []string{"expired 1", "expired 2"} {
			_, err := consume(t, s, tk, at(1))
			wantCode(t, err, social.CodeNotFound)
		}
		if _, err := consume(t, s, "live", at(1)); err != nil {
			t.Fatalf("ConsumeTicket of a live ticket: %v", err)
		}
	})
}

func testConsumeTicket(t *testing.T, open opener) {
	t.Run("Once", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		sess := mustCreateSession(t, s, u.ID, "token", t0.Add(time.Hour))
		mustTicket(t, s, "ticket", sess.Session.ID, at(60))
		got, err := consume(t, s, "ticket", at(59))
		if err != nil {
			t.Fatalf("ConsumeTicket: %v", err)
		}
		wantUser(t, got.User, u)
		if got.Session.ID != sess.Session.ID || !sameTime(got.ExpiresAt, t0.Add(time.Hour)) {
			t.Fatalf("ConsumeTicket = %+v, want session %d expiring with it", got, sess.Session.ID)
		}
		_, err = consume(t, s, "ticket", at(1))
		wantCode(t, err, social.CodeNotFound)
	})

	t.Run("Refused", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		sess := mustCreateSession(t, s, u.ID, "token", t0.Add(time.Hour))
		mustTicket(t, s, "expired", sess.Session.ID, at(60))
		_, err := consume(t, s, "expired", at(60))
		wantCode(t, err, social.CodeNotFound)
		_, err = consume(t, s, "unknown", t0)
		wantCode(t, err, social.CodeNotFound)
		short := mustCreateSession(t, s, u.ID, "short", at(30))
		mustTicket(t, s, "outlives its session", short.Session.ID, at(60))
		_, err = consume(t, s, "outlives its session", at(30))
		wantCode(t, err, social.CodeNotFound)
		err = s.Update(t.Context(), func(tx social.Tx) error {
			return tx.CreateTicket(t.Context(), social.Ticket{Hash: social.HashToken("dup"), SessionID: sess.Session.ID, ExpiresAt: at(60)})
		})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Update(t.Context(), func(tx social.Tx) error {
			return tx.CreateTicket(t.Context(), social.Ticket{Hash: social.HashToken("dup"), SessionID: sess.Session.ID, ExpiresAt: at(60)})
		})
		wantCode(t, err, social.CodeConflict)
	})

	// Racing has several transactions consume each ticket at once: exactly
	// one gets it.
	t.Run("Racing", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		sess := mustCreateSession(t, s, u.ID, "token", t0.Add(time.Hour))
		const racers = 4
		for i := range 10 {
			ticket := "ticket " + string(rune('a'+i))
			mustTicket(t, s, ticket, sess.Session.ID, at(60))
			var wg sync.WaitGroup
			errs := make([]error, racers)
			start := make(chan struct{})
			for r := range racers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, errs[r] = consume(t, s, ticket, t0)
				}()
			}
			close(start)
			wg.Wait()
			won := 0
			for _, err := range errs {
				switch {
				case err == nil:
					won++
				case social.ErrorCode(err) != social.CodeNotFound:
					t.Fatalf("ConsumeTicket: %v", err)
				}
			}
			if won != 1 {
				t.Fatalf("%d of %d transactions consumed the same ticket, want exactly 1", won, racers)
			}
		}
	})
}
