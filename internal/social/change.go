package social

import "maps"

// FillUnreadCounts sets the UnreadCount of each of cs, one transaction's
// changes in the order they were made, from each recipient's unread count
// after all of them (final) and by how much each changed it (delta[i]).
// Stores call it once their changes are written.
func FillUnreadCounts(cs []Change, delta []int, final map[int64]int) {
	count := maps.Clone(final)
	for i := len(cs) - 1; i >= 0; i-- {
		c := &cs[i]
		c.UnreadCount = count[c.RecipientID]
		count[c.RecipientID] -= delta[i]
	}
}

// Recipients returns the distinct recipients of cs, in order of first
// appearance.
func Recipients(cs []Change) []int64 {
	seen := make(map[int64]bool, len(cs))
	var out []int64
	for _, c := range cs {
		if !seen[c.RecipientID] {
			seen[c.RecipientID] = true
			out = append(out, c.RecipientID)
		}
	}
	return out
}
