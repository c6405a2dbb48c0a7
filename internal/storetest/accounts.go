package storetest

import (
	"bytes"
	"slices"
	"testing"

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
