package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

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
// an event of its own and a recipient's row, and every user's inbox into an
// inbox_state row; see storetest.WantUpgradedInbox.
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
