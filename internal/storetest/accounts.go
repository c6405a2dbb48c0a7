package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

func testCreateUser(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		in := social.User{Username: "Oliver", CreatedAt: t0}
		var u social.User
		MustUpdate(t, s, func(tx social.Tx) error {
			var err error
			u, err = tx.CreateUser(t.Context(), in, []byte("hash"))
			return err
		})
		if u.ID == 0 {
			t.Fatalf("CreateUser returned ID 0")
		}
		in.ID = u.ID
		wantUser(t, u, in)
		got, err := s.UserByID(t.Context(), u.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		wantUser(t, got, in)
	})

	t.Run("DistinctIDs", func(t *testing.T) {
		s := open(t)
		a := MustCreateUser(t, s, "ann")
		b := MustCreateUser(t, s, "bob")
		if a.ID == b.ID {
			t.Fatalf("two users have ID %d", a.ID)
		}
	})

	t.Run("ConflictIgnoringCase", func(t *testing.T) {
		s := open(t)
		MustCreateUser(t, s, "Oliver")
		for _, name := range []string{"Oliver", "oliver", "OLIVER", "oLiVeR"} {
			err := s.Update(t.Context(), func(tx social.Tx) error {
				_, err := tx.CreateUser(t.Context(), social.User{Username: name, CreatedAt: t0}, []byte("hash"))
				return err
			})
			wantCode(t, err, social.CodeConflict)
		}
		got, err := s.UserByUsername(t.Context(), "oliver")
		if err != nil {
			t.Fatalf("UserByUsername: %v", err)
		}
		if got.Username != "Oliver" {
			t.Fatalf("username = %q after conflicting registrations, want %q", got.Username, "Oliver")
		}
	})
}

func testUserByID(t *testing.T, open opener) {
	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		_, err := s.UserByID(t.Context(), u.ID+1000)
		wantCode(t, err, social.CodeNotFound)
	})
}

func testUserByUsername(t *testing.T, open opener) {
	t.Run("KeepsCase", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "JohnDoe_42")
		for _, name := range []string{"JohnDoe_42", "johndoe_42", "JOHNDOE_42"} {
			got, err := s.UserByUsername(t.Context(), name)
			if err != nil {
				t.Fatalf("UserByUsername(%q): %v", name, err)
			}
			wantUser(t, got, u)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		MustCreateUser(t, s, "ann")
		for _, name := range []string{"bob", "an", "ann_", ""} {
			_, err := s.UserByUsername(t.Context(), name)
			wantCode(t, err, social.CodeNotFound)
		}
	})
}

func testPasswordHash(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		MustCreateUser(t, s, "ann")
		u := MustCreateUser(t, s, "bob")
		got, err := s.PasswordHash(t.Context(), u.ID)
		if err != nil {
			t.Fatalf("PasswordHash: %v", err)
		}
		if want := []byte("hash:bob"); !bytes.Equal(got, want) {
			t.Fatalf("PasswordHash = %q, want %q", got, want)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		_, err := s.PasswordHash(t.Context(), u.ID+1000)
		wantCode(t, err, social.CodeNotFound)
	})
}

// mustCreateSession creates a session of userID for token that expires an
// hour after t0.
func mustCreateSession(tb testing.TB, s social.Store, userID int64, token string) social.Session {
	tb.Helper()
	sess := social.Session{TokenHash: social.HashToken(token), UserID: userID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	MustUpdate(tb, s, func(tx social.Tx) error { return tx.CreateSession(tb.Context(), sess) })
	return sess
}

func testSessionUser(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		mustCreateSession(t, s, ann.ID, "ann-token")
		sess := mustCreateSession(t, s, bob.ID, "bob-token")
		for _, now := range []time.Time{t0, sess.ExpiresAt.Add(-time.Second)} {
			got, expires, err := s.SessionUser(t.Context(), sess.TokenHash, now)
			if err != nil {
				t.Fatalf("SessionUser at %v: %v", now, err)
			}
			wantUser(t, got, bob)
			if !sameTime(expires, sess.ExpiresAt) {
				t.Fatalf("SessionUser's expiry = %v, want %v", expires, sess.ExpiresAt)
			}
		}
	})

	t.Run("Expired", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		sess := mustCreateSession(t, s, u.ID, "token")
		for _, now := range []time.Time{sess.ExpiresAt, sess.ExpiresAt.Add(time.Millisecond), sess.ExpiresAt.Add(time.Hour)} {
			_, _, err := s.SessionUser(t.Context(), sess.TokenHash, now)
			wantCode(t, err, social.CodeNotFound)
		}
	})

	t.Run("UnknownToken", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		mustCreateSession(t, s, u.ID, "token")
		_, _, err := s.SessionUser(t.Context(), social.HashToken("other"), t0)
		wantCode(t, err, social.CodeNotFound)
	})
}

func testDeleteSession(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		sess := mustCreateSession(t, s, u.ID, "token")
		other := mustCreateSession(t, s, u.ID, "other")
		for i, want := range []bool{true, false} {
			var deleted bool
			MustUpdate(t, s, func(tx social.Tx) error {
				var err error
				deleted, err = tx.DeleteSession(t.Context(), sess.TokenHash)
				return err
			})
			if deleted != want {
				t.Fatalf("DeleteSession #%d = %v, want %v", i+1, deleted, want)
			}
		}
		_, _, err := s.SessionUser(t.Context(), sess.TokenHash, t0)
		wantCode(t, err, social.CodeNotFound)
		if _, _, err := s.SessionUser(t.Context(), other.TokenHash, t0); err != nil {
			t.Fatalf("SessionUser of the other session: %v", err)
		}
	})
}

func testDeleteExpiredSessions(t *testing.T, open opener) {
	t.Run("InBatches", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		session := func(token string, expires time.Time) social.Session {
			sess := social.Session{TokenHash: social.HashToken(token), UserID: u.ID, CreatedAt: t0.Add(-2 * time.Hour), ExpiresAt: expires}
			MustUpdate(t, s, func(tx social.Tx) error { return tx.CreateSession(t.Context(), sess) })
			return sess
		}
		// A session that expires at now has expired, as SessionUser has it.
		expired := []social.Session{
			session("long ago", t0.Add(-time.Hour)),
			session("just now", t0.Add(-time.Millisecond)),
			session("now", t0),
		}
		live := []social.Session{
			session("soon", t0.Add(time.Millisecond)),
			session("later", t0.Add(time.Hour)),
		}
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
		// Before t0 every session was live: the deleted ones are gone.
		before := t0.Add(-90 * time.Minute)
		for _, sess := range expired {
			_, _, err := s.SessionUser(t.Context(), sess.TokenHash, before)
			wantCode(t, err, social.CodeNotFound)
		}
		for _, sess := range live {
			if _, _, err := s.SessionUser(t.Context(), sess.TokenHash, before); err != nil {
				t.Fatalf("SessionUser of a live session: %v", err)
			}
		}
	})
}

// mustFollow makes follower follow followee at t0.
func mustFollow(tb testing.TB, s social.Store, follower, followee int64) social.Follow {
	tb.Helper()
	var f social.Follow
	MustUpdate(tb, s, func(tx social.Tx) error {
		var err error
		f, err = tx.CreateFollow(tb.Context(), social.Follow{FollowerID: follower, FolloweeID: followee, CreatedAt: t0})
		return err
	})
	return f
}

// wantFollowCounts fails tb unless userID has these counts.
func wantFollowCounts(tb testing.TB, r social.Reader, userID int64, followers, following int) {
	tb.Helper()
	gotFollowers, gotFollowing, err := r.FollowCounts(tb.Context(), userID)
	if err != nil {
		tb.Fatalf("FollowCounts: %v", err)
	}
	if gotFollowers != followers || gotFollowing != following {
		tb.Fatalf("FollowCounts(%d) = %d followers, %d following; want %d, %d",
			userID, gotFollowers, gotFollowing, followers, following)
	}
}

// followerIDs returns the sorted FollowerIDs of userID.
func followerIDs(tb testing.TB, s social.Store, userID int64) []int64 {
	tb.Helper()
	var ids []int64
	MustUpdate(tb, s, func(tx social.Tx) error {
		var err error
		ids, err = tx.FollowerIDs(tb.Context(), userID)
		return err
	})
	slices.Sort(ids)
	return ids
}

func testCreateFollow(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		in := social.Follow{FollowerID: ann.ID, FolloweeID: bob.ID, CreatedAt: t0}
		f := mustFollow(t, s, ann.ID, bob.ID)
		if f.ID == 0 {
			t.Fatalf("CreateFollow returned ID 0")
		}
		in.ID = f.ID
		wantFollow(t, f, in)
	})

	t.Run("Conflict", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		mustFollow(t, s, ann.ID, bob.ID)
		err := s.Update(t.Context(), func(tx social.Tx) error {
			_, err := tx.CreateFollow(t.Context(), social.Follow{FollowerID: ann.ID, FolloweeID: bob.ID, CreatedAt: t0})
			return err
		})
		wantCode(t, err, social.CodeConflict)
		// The other direction is another follow.
		mustFollow(t, s, bob.ID, ann.ID)
	})
}

func testFollowCounts(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		cid := MustCreateUser(t, s, "cid")
		dan := MustCreateUser(t, s, "dan")
		mustFollow(t, s, bob.ID, ann.ID)
		mustFollow(t, s, cid.ID, ann.ID)
		mustFollow(t, s, ann.ID, bob.ID)
		mustFollow(t, s, cid.ID, bob.ID)
		wantFollowCounts(t, s, ann.ID, 2, 1)
		wantFollowCounts(t, s, bob.ID, 2, 1)
		wantFollowCounts(t, s, cid.ID, 0, 2)
		wantFollowCounts(t, s, dan.ID, 0, 0)
		MustUpdate(t, s, func(tx social.Tx) error {
			wantFollowCounts(t, tx, ann.ID, 2, 1)
			return nil
		})
	})
}

func testFollowerIDs(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		cid := MustCreateUser(t, s, "cid")
		dan := MustCreateUser(t, s, "dan")
		mustFollow(t, s, dan.ID, ann.ID)
		mustFollow(t, s, bob.ID, ann.ID)
		mustFollow(t, s, ann.ID, cid.ID)
		want := []int64{bob.ID, dan.ID}
		slices.Sort(want)
		if got := followerIDs(t, s, ann.ID); !slices.Equal(got, want) {
			t.Fatalf("FollowerIDs(ann) = %v, want %v", got, want)
		}
		if got := followerIDs(t, s, bob.ID); len(got) != 0 {
			t.Fatalf("FollowerIDs(bob) = %v, want none", got)
		}
	})
}

func testDeleteFollow(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		mustFollow(t, s, ann.ID, bob.ID)
		mustFollow(t, s, bob.ID, ann.ID)
		for i, want := range []bool{true, false} {
			var deleted int64
			MustUpdate(t, s, func(tx social.Tx) error {
				var err error
				deleted, err = tx.DeleteFollow(t.Context(), ann.ID, bob.ID)
				return err
			})
			if (deleted != 0) != want {
				t.Fatalf("DeleteFollow #%d = %v, want %v", i+1, deleted, want)
			}
		}
		wantFollowCounts(t, s, bob.ID, 0, 1)
		wantFollowCounts(t, s, ann.ID, 1, 0)
		// Following again after an unfollow is allowed.
		mustFollow(t, s, ann.ID, bob.ID)
		wantFollowCounts(t, s, bob.ID, 1, 1)
	})
}
