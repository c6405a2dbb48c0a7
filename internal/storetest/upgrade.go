package storetest

import (
	"fmt"
	"io/fs"
	"slices"
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
// (ann; bob, cid and dan are users 2 to 4): notifications 1 to 8 of every
// kind of group, follows on both sides of a UTC midnight among them, and
// one group with two notifications by one actor.
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
		n(8, social.ActionComment, 9, "cid", social.ContentComment, 7, day),
	}
}

// WantMigratedGroups checks s, upgraded with GroupUpgrade's notifications:
// each is in the group that GroupKey names, and a notification added
// after the upgrade joins the group of those before it.
func WantMigratedGroups(t *testing.T, s social.Store) {
	t.Helper()
	// Each group's notifications, actors and unread ones (all of them).
	want := map[string]string{}
	for key, ns := range byGroupKey(GroupUpgrade()) {
		actors := map[string]bool{}
		for _, n := range ns {
			actors[n.ByUser] = true
		}
		want[key] = fmt.Sprintf("%d/%d/%d", len(ns), len(actors), len(ns))
	}
	got := map[string]string{}
	gs, err := s.NotificationGroups(t.Context(), 1, social.NotificationQuery{Limit: 100})
	must(t, err)
	for _, g := range gs {
		got[g.Key] = fmt.Sprintf("%d/%d/%d", g.NotificationCount, g.ActorCount, g.UnreadCount)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("groups after the upgrade %v, want %v", got, want)
	}
	add := GroupUpgrade()[6]
	add.ActionID, add.ByUser = 4, "bob"
	MustUpdate(t, s, func(tx social.Tx) error {
		cs, err := tx.AppendChanges(t.Context(), []social.Change{{Kind: social.ChangeAdded, Notification: &add}})
		if err == nil && (len(cs[0].Groups) != 1 || cs[0].Groups[0].NotificationCount != 3 || cs[0].Groups[0].ActorCount != 3 ||
			!slices.Equal(cs[0].Groups[0].SampleActors, []string{"bob", "dan", "cid"})) {
			t.Errorf("a reaction after the upgrade: groups %+v, want 3 reactions by bob, dan and cid", cs[0].Groups)
		}
		return err
	})
}

// InboxUpgrade is what a store's upgrade test stores with the schema of
// before each notification event was stored once (migration 12 of the
// SQLite store): users 1 to 3 (ann, bob and cid), the notifications still
// there (Read as stored), and every change, ADDED ones at their
// notification's ID and Seq. ann's first post notification is unread, her
// reaction notification read, and her comment notification removed; bob
// has one notification, cid none.
func InboxUpgrade() (ns []social.Notification, cs []social.Change) {
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	ns = []social.Notification{
		{ID: 1, Seq: 1, RecipientID: 1, Message: "bob created a new post", Action: social.ActionPost, ActionID: 5,
			ByUser: "bob", ActionContent: "hello", CreatedAt: at},
		{ID: 2, Seq: 2, RecipientID: 1, Message: "cid reacted to your post", Action: social.ActionReaction, ActionID: 3,
			ByUser: "cid", ActionContent: "wow", Affected: social.ContentPost, AffectedID: 9, Read: true, CreatedAt: at},
		{ID: 6, Seq: 1, RecipientID: 2, Message: "ann started following you", Action: social.ActionFollowing, ActionID: 4,
			ByUser: "ann", CreatedAt: at},
	}
	change := func(kind social.ChangeKind, id, recipient, seq int64, unread int, ids ...int64) social.Change {
		return social.Change{Kind: kind, ID: id, RecipientID: recipient, Seq: seq, UnreadCount: unread, IDs: ids}
	}
	cs = []social.Change{
		change(social.ChangeAdded, 1, 1, 1, 1),
		change(social.ChangeAdded, 2, 1, 2, 2),
		change(social.ChangeRead, 3, 1, 3, 1, 2),
		change(social.ChangeAdded, 4, 1, 4, 2),
		change(social.ChangeRemoved, 5, 1, 5, 1, 4),
		change(social.ChangeAdded, 6, 2, 1, 1),
	}
	return ns, cs
}

// WantUpgradedInbox checks s, upgraded with InboxUpgrade's rows: the
// notifications, unread counts, positions and change log read as before,
// an action's notifications are found by their cause, and changes go on
// from there for every user, also one created after the upgrade.
func WantUpgradedInbox(t *testing.T, s social.Store) {
	t.Helper()
	ctx := t.Context()
	ns, _ := InboxUpgrade()
	got, err := s.Notifications(ctx, 1, social.NotificationQuery{Limit: 10})
	must(t, err)
	if want := []social.Notification{ns[1], ns[0]}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ann's notifications after the upgrade\n%+v, want\n%+v", got, want)
	}
	cs, err := s.ChangesAfterSeq(ctx, 1, 0, 10)
	must(t, err)
	var log []string
	for _, c := range cs {
		log = append(log, fmt.Sprintf("%s %d@%d unread %d ids %v with notification %t", c.Kind, c.ID, c.Seq, c.UnreadCount, c.IDs, c.Notification != nil))
	}
	want := []string{"ADDED 1@1 unread 1 ids [1] with notification true", "ADDED 2@2 unread 2 ids [2] with notification true",
		"READ 3@3 unread 1 ids [2] with notification false", "ADDED 4@4 unread 2 ids [4] with notification false",
		"REMOVED 5@5 unread 1 ids [4] with notification false"}
	if !slices.Equal(log, want) {
		t.Fatalf("ann's changes after the upgrade\n%q, want\n%q", log, want)
	}
	if n := cs[1].Notification; n == nil || fmt.Sprint(*n) != fmt.Sprint(ns[1]) {
		t.Errorf("the reaction notification's change has notification %+v, want %+v", n, ns[1])
	}
	if g := cs[0].Groups; len(g) != 1 || g[0].Key != "POST:5" || g[0].Latest == nil || g[0].Latest.ID != 1 {
		t.Errorf("the post notification's change has groups %+v, want the post alone", g)
	}
	for id, want := range map[int64][2]int64{1: {5, 1}, 2: {1, 1}, 3: {0, 0}} {
		seq, err := s.SeqAtID(ctx, id, 0)
		must(t, err)
		unread, err := s.UnreadCount(ctx, id)
		must(t, err)
		if seq != want[0] || int64(unread) != want[1] {
			t.Errorf("user %d after the upgrade: latest seq %d, unread %d; want %d, %d", id, seq, unread, want[0], want[1])
		}
	}
	caused, err := s.NotificationsCausedBy(ctx, []social.Cause{{Action: social.ActionPost, ActionID: 5}})
	must(t, err)
	if len(caused) != 1 || caused[0].ID != 1 {
		t.Errorf("the notifications caused by post 5: %+v, want notification 1", caused)
	}
	dan := MustCreateUser(t, s, "dan")
	post := social.Notification{Message: "dan created a new post", Action: social.ActionPost, ActionID: 8, ByUser: "dan", CreatedAt: t0}
	var added []social.Change
	MustUpdate(t, s, func(tx social.Tx) error {
		var in []social.Change
		for _, r := range []int64{1, 2, 3, dan.ID} {
			n := post
			n.RecipientID = r
			in = append(in, social.Change{Kind: social.ChangeAdded, Notification: &n})
		}
		added, err = tx.AppendChanges(ctx, in)
		return err
	})
	log = nil
	for _, c := range added {
		log = append(log, fmt.Sprintf("%d: %d@%d unread %d", c.RecipientID, c.ID, c.Seq, c.UnreadCount))
	}
	want = []string{"1: 7@6 unread 2", "2: 8@2 unread 2", "3: 9@1 unread 1", fmt.Sprintf("%d: 10@1 unread 1", dan.ID)}
	if !slices.Equal(log, want) {
		t.Fatalf("changes after the upgrade %q, want %q", log, want)
	}
}

// byGroupKey returns ns by group key, each in the order of ns.
func byGroupKey(ns []social.Notification) map[string][]social.Notification {
	out := map[string][]social.Notification{}
	for _, n := range ns {
		out[social.GroupKey(n)] = append(out[social.GroupKey(n)], n)
	}
	return out
}
