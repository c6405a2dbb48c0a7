package graph_test

import (
	"slices"
	"testing"

	"github.com/pulse-social/pulse/graph/model"
	"github.com/pulse-social/pulse/internal/social"
)

// TestNotificationActions: the schema's NotificationAction enum has the
// domain's actions, no more and no fewer, since toNotification converts
// one to the other by value (docs/adding-an-action.md).
func TestNotificationActions(t *testing.T) {
	var got []string
	for _, a := range social.Actions() {
		got = append(got, string(a))
	}
	var want []string
	for _, a := range model.AllNotificationAction {
		want = append(want, string(a))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("social.Actions() = %v, the schema's NotificationAction = %v", got, want)
	}
}
