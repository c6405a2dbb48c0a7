package sqlite_test

import (
	"io/fs"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pulse-social/pulse/internal/migration"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/sqlite"
)

// TestUpgradeKeepsSessions upgrades a database whose sessions predate
// migration 10 (sessions as rows of their own): a token issued before the
// upgrade still signs its user in, an expired one does not, and a login
// after it gets a session of its own.
func TestUpgradeKeepsSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db := MustOpenRaw(t, path)
	if _, err := sqlite.Migrate(t.Context(), db, migrationsBefore(t, 10)); err != nil {
		t.Fatalf("migrate to the old schema: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond) // as the store keeps time
	live, expired := social.HashToken("live-token"), social.HashToken("expired-token")
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (id, username, password_hash, created_at) VALUES (7, 'alice', x'00', ?)`, []any{now.UnixMilli()}},
		{`INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, 7, ?, ?)`, []any{live, now.UnixMilli(), now.Add(time.Hour).UnixMilli()}},
		{`INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?, 7, ?, ?)`, []any{expired, now.Add(-2 * time.Hour).UnixMilli(), now.Add(-time.Hour).UnixMilli()}},
	} {
		if _, err := db.ExecContext(t.Context(), q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}
	db.Close()

	store := MustOpen(t, path) // applies migration 10 and any after it
	su, err := store.SessionUser(t.Context(), live, now)
	if err != nil || su.User.ID != 7 || su.User.Username != "alice" {
		t.Fatalf("the token issued before the upgrade: %+v, %v; want alice's session", su, err)
	}
	if !su.ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Errorf("its expiry is %v, want %v", su.ExpiresAt, now.Add(time.Hour))
	}
	if _, err := store.SessionUser(t.Context(), expired, now); social.ErrorCode(err) != social.CodeNotFound {
		t.Errorf("the token expired before the upgrade: %v, want NOT_FOUND", err)
	}
	fresh := social.HashToken("fresh-token")
	err = store.Update(t.Context(), func(tx social.Tx) error {
		return tx.CreateSession(t.Context(), social.Session{UserID: 7, TokenHash: fresh, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
	})
	if err != nil {
		t.Fatalf("a login after the upgrade: %v", err)
	}
	after, err := store.SessionUser(t.Context(), fresh, now)
	if err != nil || after.Session.ID == su.Session.ID {
		t.Fatalf("the new login's session: %+v, %v; want one of its own, not %d", after.Session, err, su.Session.ID)
	}
}

// migrationsBefore returns the embedded migrations older than version v.
func migrationsBefore(t *testing.T, v int) fstest.MapFS {
	t.Helper()
	files, err := migration.List(sqlite.Migrations)
	if err != nil {
		t.Fatal(err)
	}
	old := fstest.MapFS{}
	for _, f := range files {
		if f.Version >= v {
			continue
		}
		data, err := fs.ReadFile(sqlite.Migrations, f.Name)
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
