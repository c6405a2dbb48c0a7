package postgres_test

import (
	"fmt"
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

// TestUpgradeGroupsNotifications: migration 11 puts every notification
// stored before it in its group; see storetest.WantMigratedGroups.
func TestUpgradeGroupsNotifications(t *testing.T) {
	u := MustSchema(t)
	conn := MustConn(t, u)
	if _, err := postgres.Migrate(t.Context(), conn, storetest.MigrationsBefore(t, postgres.Migrations, 11)); err != nil {
		t.Fatalf("migrate to the old schema: %v", err)
	}
	MustExec(t, u, `INSERT INTO users (id, username, password_hash, notification_seq, created_at) OVERRIDING SYSTEM VALUE
		VALUES (1, 'ann', '\x00', `+fmt.Sprint(len(storetest.GroupUpgrade()))+`, now()), (2, 'bob', '\x00', 0, now()), (3, 'cid', '\x00', 0, now()), (4, 'dan', '\x00', 0, now())`)
	for _, n := range storetest.GroupUpgrade() {
		_, err := conn.Exec(t.Context(), `INSERT INTO notifications (id, recipient_id, seq, message, action, action_id, by_user,
			affected, affected_id, read, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, nullif($8, ''), nullif($9, 0), false, $10)`,
			n.ID, n.RecipientID, n.Seq, n.Message, string(n.Action), n.ActionID, n.ByUser, string(n.Affected), n.AffectedID, n.CreatedAt)
		if err != nil {
			t.Fatal(err)
		}
	}
	MustExec(t, u, fmt.Sprintf(`SELECT setval('notification_ids', %d)`, len(storetest.GroupUpgrade())))
	storetest.WantMigratedGroups(t, MustOpen(t, u))
}
