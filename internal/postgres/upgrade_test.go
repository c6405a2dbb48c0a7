package postgres_test

import (
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/postgres"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/storetest"
)

// TestUpgradeKeepsSessions upgrades a database whose sessions predate
// migration 10 (sessions as rows of their own); see storetest.CheckUpgrade.
func TestUpgradeKeepsSessions(t *testing.T) {
	url := MustSchema(t)
	conn := MustConn(t, url)
	if _, err := postgres.Migrate(t.Context(), conn, storetest.MigrationsBefore(t, postgres.Migrations, 10)); err != nil {
		t.Fatalf("migrate to the old schema: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond) // as PostgreSQL keeps time
	var id int64
	if err := conn.QueryRow(t.Context(), `INSERT INTO users (username, password_hash, created_at) VALUES ('alice', '\x00', $1) RETURNING id`, now).Scan(&id); err != nil {
		t.Fatalf("insert the user: %v", err)
	}
	u := storetest.Upgrade{UserID: id, Live: social.HashToken("live"), Expired: social.HashToken("expired"),
		Now: now, LiveUntil: now.Add(time.Hour)}
	for _, s := range [][]any{{u.Live, now, u.LiveUntil}, {u.Expired, now.Add(-2 * time.Hour), now.Add(-time.Hour)}} {
		if _, err := conn.Exec(t.Context(), `INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)`,
			s[0], id, s[1], s[2]); err != nil {
			t.Fatalf("insert a session: %v", err)
		}
	}
	storetest.CheckUpgrade(t, MustOpen(t, url), u) // Open applies migration 10 and any after it
}
