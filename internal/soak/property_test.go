package soak

import (
	"path/filepath"
	"testing"
	"time"
)

// TestProperty runs random actions, undo and deletes included, in 4 worlds
// of 8 users, each user with two plain sockets that drop and resume at
// random and, for every third user, a GraphQL subscription: every socket
// must receive every notification the rules give its user and that is
// still there, nothing that was never added, and each inbox must end as
// the model's. PULSE_PROPERTY_ACTIONS sets the
// number of actions (default 1,500).
func TestProperty(t *testing.T) {
	s := MustStart(t, filepath.Join(t.TempDir(), "pulse.db"), append(noLimits, "--log-level", "warn")...)
	sc := scenario{
		worlds:        4,
		usersPerWorld: 8,
		actions:       envInt("PULSE_PROPERTY_ACTIONS", 1500),
		plainPerUser:  2,
		graphqlEvery:  3,
		churn:         300 * time.Millisecond,
		timeout:       4 * time.Minute,
		seed:          uint64(envInt("PULSE_PROPERTY_SEED", 1)),
	}
	o := sc.run(t, s)
	t.Logf("property: %d actions by %d users in %v; %d sockets (%d plain, %d GraphQL) received %d notifications; %d resumes",
		o.actions, o.users, o.actDuration.Round(time.Millisecond), o.plainSockets+o.graphqlSockets, o.plainSockets, o.graphqlSockets, o.received, o.resumes)
}
