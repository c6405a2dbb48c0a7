package social

import "context"

// GroupPage is a page of a user's notification groups, the one with the
// newest notification first.
type GroupPage struct {
	Items       []Group
	HasNextPage bool
	UnreadCount int
}

// NotificationGroups returns up to first of the user's non-empty groups
// whose newest notification is older than beforeID (from the newest when it
// is 0), the one with the newest notification first.
func (s *Service) NotificationGroups(ctx context.Context, userID int64, first int, beforeID int64, unreadOnly bool) (GroupPage, error) {
	if first < 0 || first > MaxPageSize {
		return GroupPage{}, InputError("first", "first must be 0 to %d", MaxPageSize)
	}
	items, err := s.store.NotificationGroups(ctx, userID, NotificationQuery{BeforeID: beforeID, Limit: first + 1, UnreadOnly: unreadOnly})
	if err != nil {
		return GroupPage{}, err
	}
	unread, err := s.store.UnreadCount(ctx, userID)
	if err != nil {
		return GroupPage{}, err
	}
	page := GroupPage{Items: items, UnreadCount: unread}
	if len(items) > first {
		page.Items, page.HasNextPage = items[:first], true
	}
	return page, nil
}

// MarkGroupRead marks the user's unread notifications in the group with
// this key read and returns how many changed. A key that is not one of the
// user's groups changes nothing. A call that changed anything appends one
// READ change.
func (s *Service) MarkGroupRead(ctx context.Context, userID int64, key string) (int, error) {
	if !ValidGroupKey(key) {
		return 0, nil
	}
	return s.markRead(ctx, userID, func(tx Tx) ([]int64, error) {
		return tx.GroupUnreadIDs(ctx, userID, key)
	})
}
