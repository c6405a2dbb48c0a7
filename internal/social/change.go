package social

import "maps"

// FillUnreadCounts sets the UnreadCount of each of cs, one transaction's
// changes in the order they were made, from each recipient's unread count
// after all of them (final) and by how much each changed it (delta[i]), for
// a store that reads the recipients' final counts rather than each change's.
func FillUnreadCounts(cs []Change, delta []int, final map[int64]int) {
	count := maps.Clone(final)
	for i := len(cs) - 1; i >= 0; i-- {
		c := &cs[i]
		c.UnreadCount = count[c.RecipientID]
		count[c.RecipientID] -= delta[i]
	}
}
