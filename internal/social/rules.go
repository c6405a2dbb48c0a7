package social

import "strings"

// The notification rules: who is told of an action, and what they read.
// Each function returns the notifications an action causes, without ID, Seq
// and CreatedAt, which the store and the Service set; nobody is ever notified
// of their own action.

// PostNotifications tells every follower of the author about a new post.
func PostNotifications(author User, p Post, followerIDs []int64) []Notification {
	ns := make([]Notification, 0, len(followerIDs))
	for _, id := range followerIDs {
		if id == author.ID {
			continue
		}
		ns = append(ns, Notification{
			RecipientID:   id,
			Message:       author.Username + " created a new post",
			Action:        ActionPost,
			ActionID:      p.ID,
			ByUser:        author.Username,
			ActionContent: p.Body,
		})
	}
	return ns
}

// CommentNotifications tells the post's author about a comment and, for a
// reply, the parent comment's author. parent is nil for a top-level comment.
// A post author who also wrote the parent comment is told once, of the reply.
func CommentNotifications(actor User, c Comment, post Post, parent *Comment) []Notification {
	var ns []Notification
	base := Notification{
		Action:        ActionComment,
		ActionID:      c.ID,
		ByUser:        actor.Username,
		ActionContent: c.Body,
	}
	if parent != nil && parent.AuthorID != actor.ID {
		n := base
		n.RecipientID = parent.AuthorID
		n.Message = actor.Username + " replied to your comment"
		n.Affected, n.AffectedID = ContentComment, parent.ID
		ns = append(ns, n)
	}
	if post.AuthorID != actor.ID && (parent == nil || parent.AuthorID != post.AuthorID) {
		n := base
		n.RecipientID = post.AuthorID
		n.Message = actor.Username + " commented on your post"
		n.Affected, n.AffectedID = ContentPost, post.ID
		ns = append(ns, n)
	}
	return ns
}

// ReactionNotifications tells the author of the post or comment reacted to.
func ReactionNotifications(actor User, r Reaction, targetAuthorID int64) []Notification {
	if targetAuthorID == actor.ID {
		return nil
	}
	what := "post"
	if r.TargetKind == ContentComment {
		what = "comment"
	}
	return []Notification{{
		RecipientID:   targetAuthorID,
		Message:       actor.Username + " reacted to your " + what,
		Action:        ActionReaction,
		ActionID:      r.ID,
		ByUser:        actor.Username,
		ActionContent: strings.ToLower(string(r.Kind)),
		Affected:      r.TargetKind,
		AffectedID:    r.TargetID,
	}}
}

// FollowNotifications tells the followed user.
func FollowNotifications(follower User, f Follow) []Notification {
	if f.FolloweeID == follower.ID {
		return nil
	}
	return []Notification{{
		RecipientID: f.FolloweeID,
		Message:     follower.Username + " started following you",
		Action:      ActionFollowing,
		ActionID:    f.ID,
		ByUser:      follower.Username,
	}}
}
