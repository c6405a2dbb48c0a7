package soak

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/testbin"
)

// property is TestProperty's scenario: random actions, undo, deletes and
// mark-reads included, in 4 worlds of 8 users. Each user has a plain
// socket of notifications and one of the change stream (?changes=1); every
// third user a GraphQL notifications subscription, every second an
// inboxChanges one; every socket drops and resumes at random. Every
// socket must receive its user's notifications (or changes, in the
// model's order, with the model's unread counts and groups), and each
// inbox, unread count and group must end as the model's.
// PULSE_PROPERTY_ACTIONS sets the number of actions (default 300; `make
// soak`: 10,000).
func property() scenario {
	return scenario{
		worlds:            4,
		usersPerWorld:     8,
		actions:           envInt("PULSE_PROPERTY_ACTIONS", 300),
		plainPerUser:      1,
		changesPerUser:    1,
		graphqlEvery:      3,
		inboxChangesEvery: 2,
		churn:             300 * time.Millisecond,
		churnGraphQL:      true,
		timeout:           15 * time.Minute,
		seed:              uint64(envInt("PULSE_PROPERTY_SEED", 1)),
	}
}

// TestProperty runs the property scenario on one server and SQLite.
func TestProperty(t *testing.T) {
	s := MustStart(t, filepath.Join(t.TempDir(), "pulse.db"), append(noLimits, "--log-level", "warn")...)
	logOutcome(t, property().run(t, s))
}

// TestPropertyCluster runs the property scenario on three servers sharing
// one PostgreSQL database and one Redis: each action goes through one of
// them at random, and each socket moves to the next at every resume.
func TestPropertyCluster(t *testing.T) {
	testbin.RequireServices(t)
	db, redis := testbin.MustDatabase(t), testbin.MustRedis(t)
	args := append(noLimits, "--log-level", "warn", "--broker", redis.URL())
	a := MustStart(t, db, args...)
	b, c := MustStart(t, db, args...), MustStart(t, db, args...)
	logOutcome(t, property().run(t, a, b, c))
}

func logOutcome(t *testing.T, o outcome) {
	t.Logf("property: %d actions by %d users in %v; %d sockets (%d plain, %d GraphQL; %d of them on the change stream) received %d notifications and %d changes; %d resumes; %v in all",
		o.actions, o.users, o.actDuration.Round(time.Millisecond), o.plainSockets+o.graphqlSockets, o.plainSockets, o.graphqlSockets,
		o.changeSockets, o.received, o.changes, o.resumes, o.total.Round(time.Millisecond))
}
