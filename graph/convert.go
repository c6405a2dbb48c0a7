package graph

import (
	"strconv"
	"strings"

	"github.com/pulse-social/pulse/graph/model"
	"github.com/pulse-social/pulse/internal/social"
)

// parseID reads a client-given ID. Ids are decimal numbers; anything else
// names nothing, so it becomes 0, which every lookup reports as not found.
func parseID(s string) int64 {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 {
		return 0
	}
	return id
}

// parseCursor reads a cursor of the notifications or notificationGroups
// connection, a subscription's after or markNotificationsRead's upTo: a
// notification or change id. A malformed one is CodeBadUserInput on the
// named argument.
func parseCursor(field, s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 0 {
		return 0, social.InputError(field, "%s must be a notification id", field)
	}
	return id, nil
}

// inboxPageArgs reads the first and after arguments of the notifications
// and notificationGroups connections: a null first is the default page; a
// malformed after is CodeBadUserInput.
func inboxPageArgs(first *int, after *string) (int, int64, error) {
	n := defaultNotificationPage
	if first != nil {
		n = *first
	}
	if after == nil {
		return n, 0, nil
	}
	before, err := parseCursor("after", *after)
	return n, before, err
}

// pageArgs reads the first and after arguments of a paged list of
// comments or reactions (what): a null first is the default page, after is
// an id of what. A malformed after is CodeBadUserInput.
func pageArgs(first *int, after *string, what string) (int, int64, error) {
	n := social.DefaultListPage
	if first != nil {
		n = *first
	}
	if after == nil {
		return n, 0, nil
	}
	id, err := strconv.ParseInt(*after, 10, 64)
	if err != nil || id < 0 {
		return 0, 0, social.InputError("after", "after must be a %s id", what)
	}
	return n, id, nil
}

func toUser(u social.User) *model.User {
	return &model.User{ID: u.ID, Username: u.Username}
}

func toPost(p social.Post) *model.Post {
	return &model.Post{ID: p.ID, AuthorID: p.AuthorID, Body: p.Body, CreatedAt: p.CreatedAt}
}

func toComment(c social.Comment) *model.Comment {
	return &model.Comment{ID: c.ID, PostID: c.PostID, ParentID: c.ParentID, AuthorID: c.AuthorID, Body: c.Body, CreatedAt: c.CreatedAt}
}

func toReaction(r social.Reaction) *model.Reaction {
	return &model.Reaction{
		ID:         r.ID,
		UserID:     r.UserID,
		Kind:       model.ReactionKind(r.Kind),
		TargetKind: model.ContentKind(r.TargetKind),
		TargetID:   r.TargetID,
	}
}

func toNotification(n *social.Notification) *model.Notification {
	m := &model.Notification{
		ID:        n.ID,
		Message:   n.Message,
		Action:    model.NotificationAction(n.Action),
		ActionID:  n.ActionID,
		ByUser:    n.ByUser,
		Read:      n.Read,
		CreatedAt: n.CreatedAt,
	}
	if n.ActionContent != "" {
		content := n.ActionContent
		m.ActionContent = &content
	}
	if n.Affected != "" {
		affected, id := model.ContentKind(n.Affected), n.AffectedID
		m.Affected, m.AffectedID = &affected, &id
	}
	return m
}

func toInboxChange(c *social.Change) *model.InboxChange {
	ids := make([]string, len(c.IDs))
	for i, id := range c.IDs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	out := &model.InboxChange{
		Cursor:          strconv.FormatInt(c.ID, 10),
		Kind:            model.InboxChangeKind(c.Kind),
		NotificationIds: ids,
		UnreadCount:     c.UnreadCount,
	}
	if c.Kind == social.ChangeAdded {
		out.Notification = toNotification(c.Notification)
	}
	out.Groups = make([]*model.NotificationGroup, len(c.Groups))
	for i := range c.Groups {
		out.Groups[i] = toNotificationGroup(&c.Groups[i])
	}
	return out
}

func toNotificationGroup(g *social.Group) *model.NotificationGroup {
	m := &model.NotificationGroup{
		Key:               g.Key,
		Action:            model.NotificationAction(g.Action),
		NotificationCount: g.NotificationCount,
		ActorCount:        g.ActorCount,
		SampleActors:      g.SampleActors,
		Message:           g.Message,
		UnreadCount:       g.UnreadCount,
		UpdatedAt:         g.UpdatedAt,
	}
	if m.SampleActors == nil {
		m.SampleActors = []string{}
	}
	if g.Affected != "" {
		affected, id := model.ContentKind(g.Affected), g.AffectedID
		m.Affected, m.AffectedID = &affected, &id
	}
	if g.Latest != nil {
		m.Latest = toNotification(g.Latest)
	}
	return m
}

func toReactionKind(k model.ReactionKind) social.ReactionKind {
	return social.ReactionKind(strings.ToUpper(string(k)))
}

// toSessions converts the caller's sessions; current is the caller's own.
func toSessions(ss []social.Session, current int64) []*model.Session {
	out := make([]*model.Session, len(ss))
	for i, s := range ss {
		out[i] = &model.Session{
			ID: s.ID, Current: s.ID == current, CreatedAt: s.CreatedAt,
			LastUsedAt: s.LastUsedAt, ExpiresAt: s.ExpiresAt,
		}
		if s.UserAgent != "" {
			out[i].UserAgent = &s.UserAgent
		}
	}
	return out
}
