package sqlite_test

import (
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
