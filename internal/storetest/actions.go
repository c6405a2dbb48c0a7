package storetest

import (
	"testing"

	"github.com/pulse-social/pulse/internal/social"
)

// testEveryAction stores a notification of every action and reads it
// back: a store whose schema constrains the action (a CHECK) must know a
// new one (docs/adding-an-action.md).
func testEveryAction(t *testing.T, open opener) {
	s := open(t)
	u := MustCreateUser(t, s, "alice")
	var ns []social.Notification
	for i, a := range social.Actions() {
		n := notification(u.ID, i)
		n.Action = a
		ns = append(ns, n)
	}
	stored := MustAddNotifications(t, s, ns...)
	got, err := AddedAfterSeq(t.Context(), s, u.ID, 0, len(ns)+1)
	if err != nil {
		t.Fatalf("NotificationsAfterSeq: %v", err)
	}
	wantNotifications(t, got, stored)
}
