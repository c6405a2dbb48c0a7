package storetest

import (
	"fmt"
	"io/fs"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pulse-social/pulse/internal/migration"
	"github.com/pulse-social/pulse/internal/social"
)

// Upgrade is what a store's upgrade test wrote with the schema of before
// sessions were rows of their own (migration 10 of both stores): user
// UserID has a session with the token Live, which expires at LiveUntil,
// and another with Expired, which has expired by Now.
type Upgrade struct {
	UserID         int64
	Live, Expired  []byte // token hashes
	Now, LiveUntil time.Time
}

// CheckUpgrade checks s, opened on the upgraded database: the live token
// still signs its user in until its expiry, the expired one does not, and
// a login after the upgrade gets a session of its own.
func CheckUpgrade(t *testing.T, s social.Store, u Upgrade) {
	t.Helper()
	su, err := s.SessionUser(t.Context(), u.Live, u.Now)
	if err != nil || su.User.ID != u.UserID || !su.ExpiresAt.Equal(u.LiveUntil) {
		t.Fatalf("the token issued before the upgrade: %+v, %v; want user %d's session, until %v", su, err, u.UserID, u.LiveUntil)
	}
	if _, err := s.SessionUser(t.Context(), u.Expired, u.Now); social.ErrorCode(err) != social.CodeNotFound {
		t.Errorf("the token expired before the upgrade: %v, want NOT_FOUND", err)
	}
	fresh := social.HashToken("a login after the upgrade")
	MustUpdate(t, s, func(tx social.Tx) error {
		return tx.CreateSession(t.Context(), social.Session{UserID: u.UserID, TokenHash: fresh, CreatedAt: u.Now, ExpiresAt: u.LiveUntil})
	})
	after, err := s.SessionUser(t.Context(), fresh, u.Now)
	if err != nil || after.Session.ID == su.Session.ID {
		t.Fatalf("the new login's session: %+v, %v; want one of its own, not %d", after.Session, err, su.Session.ID)
	}
}

// MigrationsBefore returns the migrations of fsys older than version v,
// to make a database as it was before that version.
func MigrationsBefore(t *testing.T, fsys fs.FS, v int) fstest.MapFS {
	t.Helper()
	files, err := migration.List(fsys)
	if err != nil {
		t.Fatal(err)
	}
	old := fstest.MapFS{}
	for _, f := range files {
		if f.Version >= v {
			continue
		}
		data, err := fs.ReadFile(fsys, f.Name)
		if err != nil {
			t.Fatal(err)
		}
		old[f.Name] = &fstest.MapFile{Data: data}
	}
	if len(old) == 0 {
		t.Fatalf("no migrations before version %d", v)
	}
	return old
}

// GroupUpgrade lists what a store's upgrade test stores, with the schema of
// before notification groups (migration 11 of both stores), for user 1
// (ann; bob, cid and dan are users 2 to 4): notifications 1 to 7 of every
// kind of group, follows on both sides of a UTC midnight among them.
func GroupUpgrade() []social.Notification {
	day := time.Date(2026, 11, 25, 23, 30, 0, 0, time.UTC)
	n := func(id int64, action social.Action, actionID int64, by string, affected social.ContentKind, affectedID int64, at time.Time) social.Notification {
		return social.Notification{ID: id, Seq: id, RecipientID: 1, Action: action, ActionID: actionID, ByUser: by,
			Message: by + " did something", Affected: affected, AffectedID: affectedID, CreatedAt: at}
	}
	return []social.Notification{
		n(1, social.ActionFollowing, 1, "bob", "", 0, day),
		n(2, social.ActionFollowing, 2, "cid", "", 0, day.Add(time.Hour)),
		n(3, social.ActionPost, 5, "bob", "", 0, day),
		n(4, social.ActionReaction, 1, "bob", social.ContentPost, 5, day),
		n(5, social.ActionComment, 8, "cid", social.ContentComment, 7, day),
		n(6, social.ActionReaction, 2, "cid", social.ContentComment, 7, day),
		n(7, social.ActionReaction, 3, "dan", social.ContentComment, 7, day),
	}
}

// WantMigratedGroups checks s, upgraded with GroupUpgrade's notifications:
// each is in the group that GroupKey names, and a notification added
// after the upgrade joins the group of those before it.
func WantMigratedGroups(t *testing.T, s social.Store) {
	t.Helper()
	want := map[string]int{}
	for _, n := range GroupUpgrade() {
		want[social.GroupKey(n)]++
	}
	got := map[string]int{}
	gs, err := s.NotificationGroups(t.Context(), 1, social.NotificationQuery{Limit: 100})
	must(t, err)
	for _, g := range gs {
		got[g.Key] = g.NotificationCount
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("groups after the upgrade %v, want %v", got, want)
	}
	add := GroupUpgrade()[6]
	add.ActionID, add.ByUser = 4, "bob"
	MustUpdate(t, s, func(tx social.Tx) error {
		cs, err := tx.AppendChanges(t.Context(), []social.Change{{Kind: social.ChangeAdded, Notification: &add}})
		if err == nil && (len(cs[0].Groups) != 1 || cs[0].Groups[0].NotificationCount != 3 || cs[0].Groups[0].ActorCount != 3) {
			t.Errorf("a reaction after the upgrade: groups %+v, want 3 reactions by 3 actors", cs[0].Groups)
		}
		return err
	})
}
