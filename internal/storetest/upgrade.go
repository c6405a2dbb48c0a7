package storetest

import (
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
