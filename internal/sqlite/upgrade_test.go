package sqlite_test

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/inproc"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/sqlite"
	"github.com/pulse-social/pulse/internal/storetest"
)

// TestUpgradeKeepsSessions upgrades a database whose sessions predate
// migration 10 (sessions as rows of their own); see storetest.CheckUpgrade.
func TestUpgradeKeepsSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db := MustOpenRaw(t, path)
	if _, err := sqlite.Migrate(t.Context(), db, storetest.MigrationsBefore(t, sqlite.Migrations, 10)); err != nil {
		t.Fatalf("migrate to the old schema: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond) // as the store keeps time
	u := storetest.Upgrade{UserID: 7, Live: social.HashToken("live"), Expired: social.HashToken("expired"),
		Now: now, LiveUntil: now.Add(time.Hour)}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (id, username, password_hash, created_at) VALUES (?, 'alice', x'00', ?)`, []any{u.UserID, now.UnixMilli()}},
		{`INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`, []any{u.Live, u.UserID, now.UnixMilli(), u.LiveUntil.UnixMilli()}},
		{`INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`, []any{u.Expired, u.UserID, now.Add(-2 * time.Hour).UnixMilli(), now.Add(-time.Hour).UnixMilli()}},
	} {
		if _, err := db.ExecContext(t.Context(), q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	db.Close()
	storetest.CheckUpgrade(t, MustOpen(t, path), u) // Open applies migration 10 and any after it
}

// TestUpgradeGroupsNotifications: migration 11 puts every notification
// stored before it in its group; see storetest.WantMigratedGroups.
func TestUpgradeGroupsNotifications(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db := MustOpenRaw(t, path)
	if _, err := sqlite.Migrate(t.Context(), db, storetest.MigrationsBefore(t, sqlite.Migrations, 11)); err != nil {
		t.Fatalf("migrate to the old schema: %v", err)
	}
	if _, err := db.ExecContext(t.Context(), `INSERT INTO users (id, username, password_hash, created_at)
		VALUES (1, 'ann', x'00', 0), (2, 'bob', x'00', 0), (3, 'cid', x'00', 0), (4, 'dan', x'00', 0)`); err != nil {
		t.Fatal(err)
	}
	for _, n := range storetest.GroupUpgrade() {
		_, err := db.ExecContext(t.Context(), `INSERT INTO notifications (id, recipient_id, seq, message, action,
			action_id, by_user, affected, affected_id, read, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, nullif(?, ''), nullif(?, 0), 0, ?)`,
			n.ID, n.RecipientID, n.Seq, n.Message, string(n.Action), n.ActionID, n.ByUser, string(n.Affected), n.AffectedID, n.CreatedAt.UnixMilli())
		if err == nil {
			_, err = db.ExecContext(t.Context(), `INSERT INTO inbox_changes (id, recipient_id, seq, kind, unread_count)
				VALUES (?, ?, ?, 'ADDED', ?)`, n.ID, n.RecipientID, n.Seq, n.Seq)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	storetest.WantMigratedGroups(t, MustOpen(t, path))
}

// TestUpgradeStoresEventsOnce: migration 12 turns every notification into
// an event of its own and a recipient's row, and every user keeps its Seqs
// and unread count through it and the migrations after it (since 14 read
// from its latest change); see storetest.WantUpgradedInbox.
func TestUpgradeStoresEventsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db := MustOpenRaw(t, path)
	if _, err := sqlite.Migrate(t.Context(), db, storetest.MigrationsBefore(t, sqlite.Migrations, 12)); err != nil {
		t.Fatalf("migrate to the old schema: %v", err)
	}
	exec := func(query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(t.Context(), query, args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	exec(`INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'ann', x'00', 0), (2, 'bob', x'00', 0), (3, 'cid', x'00', 0)`)
	ns, cs := storetest.InboxUpgrade()
	for _, n := range ns {
		exec(`INSERT INTO notifications (id, recipient_id, seq, message, action, action_id, by_user, action_content,
			affected, affected_id, read, created_at, group_key) VALUES (?, ?, ?, ?, ?, ?, ?, nullif(?, ''), nullif(?, ''), nullif(?, 0), ?, ?, ?)`,
			n.ID, n.RecipientID, n.Seq, n.Message, string(n.Action), n.ActionID, n.ByUser, n.ActionContent,
			string(n.Affected), n.AffectedID, n.Read, n.CreatedAt.UnixMilli(), social.GroupKey(n))
	}
	for _, c := range cs {
		var ids any
		if c.Kind != social.ChangeAdded {
			ids = fmt.Sprint(c.IDs[0])
		}
		exec(`INSERT INTO inbox_changes (id, recipient_id, seq, kind, ids, unread_count) VALUES (?, ?, ?, ?, ?, ?)`,
			c.ID, c.RecipientID, c.Seq, string(c.Kind), ids, c.UnreadCount)
	}
	db.Close()
	storetest.WantUpgradedInbox(t, MustOpen(t, path))
}

// TestUpgradeCountsGroups: migration 13 counts the groups of the
// notifications stored before it into the rows that every change keeps up
// to date since; the groups read the same from the rows it made as from
// rows kept by the changes themselves.
func TestUpgradeCountsGroups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "groups.db")
	s := MustOpen(t, path)
	ctx := t.Context()
	svc := social.NewService(s, inproc.New(fanout.Config{}), social.Config{})
	users := storetest.MustUsers(t, s, 5)
	post, err := svc.CreatePost(ctx, users[0], "p")
	if err != nil {
		t.Fatal(err)
	}
	comment, err := svc.CreateComment(ctx, users[0], post.ID, "c", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users[1:] {
		steps := []func() error{
			func() error {
				_, err := svc.React(ctx, u, social.ContentPost, post.ID, social.ReactionLike)
				return err
			},
			func() error { _, err := svc.CreateComment(ctx, u, post.ID, "on the post", 0); return err },
			func() error { _, err := svc.CreateComment(ctx, u, post.ID, "and again", comment.ID); return err },
			func() error { _, err := svc.Follow(ctx, u, users[0].Username); return err },
		}
		if i%2 == 1 { // a removal and a change of kind
			steps = append(steps,
				func() error { _, err := svc.Unreact(ctx, u, social.ContentPost, post.ID); return err },
				func() error {
					_, err := svc.React(ctx, u, social.ContentPost, post.ID, social.ReactionLove)
					return err
				})
		}
		for _, step := range steps {
			if err := step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	ids, err := s.UnreadIDs(ctx, users[0].ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.MarkRead(ctx, users[0].ID, nil, true, ids[len(ids)/2]); err != nil {
		t.Fatal(err)
	}
	groups := func(s *sqlite.Store) []social.Group {
		t.Helper()
		gs, err := s.NotificationGroups(ctx, users[0].ID, social.NotificationQuery{Limit: social.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		return gs
	}
	want := groups(s)
	if len(want) != 4 {
		t.Fatalf("%d groups, want 4 (the post's reactions, comments, the replies, the follows)", len(want))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db := MustOpenRaw(t, path)
	for _, q := range []string{`DROP TABLE inbox_groups`, `DELETE FROM schema_migrations WHERE version = 13`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	if got := groups(MustOpen(t, path)); !reflect.DeepEqual(got, want) {
		t.Fatalf("groups after the migration:\n%+v\nwant as kept by the changes:\n%+v", got, want)
	}
}
