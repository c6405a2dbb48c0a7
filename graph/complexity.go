package graph

import (
	"math"

	"github.com/pulse-social/pulse/internal/social"
)

// Complexity returns the cost model of the schema for gqlgen's complexity
// limit: a list field costs one plus its page size (first, or the default)
// times the cost of one item, so that a nested list multiplies as the work
// does. Other fields cost one plus their children, gqlgen's default.
func Complexity() ComplexityRoot {
	var c ComplexityRoot
	c.Post.Comments = func(child int, first *int, _ *string) int {
		return listCost(child, first, social.DefaultListPage)
	}
	c.Post.Reactions = func(child int, first *int, _ *string) int {
		return listCost(child, first, social.DefaultListPage)
	}
	c.Query.Notifications = func(child int, first *int, _ *string, _ *bool) int {
		// child counts pageInfo and unreadCount once per edge: an
		// overestimate that keeps the rule simple.
		return listCost(child, first, defaultNotificationPage)
	}
	c.Query.NotificationGroups = func(child int, first *int, _ *string, _ *bool) int {
		return listCost(child, first, defaultNotificationPage)
	}
	return c
}

// defaultNotificationPage is the schema's default of the first argument of
// Query.notifications and Query.notificationGroups.
const defaultNotificationPage = 20

// listCost is 1 + n*child, n being first or def, and saturates instead of
// overflowing: depth times a large first would overflow an int.
func listCost(child int, first *int, def int) int {
	n := def
	if first != nil {
		n = max(*first, 0)
	}
	if n != 0 && child > (math.MaxInt-1)/n {
		return math.MaxInt
	}
	return 1 + n*child
}
