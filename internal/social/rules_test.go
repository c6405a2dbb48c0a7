package social_test

import (
	"reflect"
	"testing"

	"github.com/pulse-social/pulse/internal/social"
)

func TestNotificationRules(t *testing.T) {
	oliver := social.User{ID: 1, Username: "Oliver"}
	john := social.User{ID: 2, Username: "John"}
	ann := social.User{ID: 3, Username: "Ann"}

	post := social.Post{ID: 10, AuthorID: oliver.ID, Body: "hello"}
	comment := social.Comment{ID: 20, PostID: post.ID, AuthorID: ann.ID, Body: "first"}

	tests := []struct {
		name string
		got  []social.Notification
		want []social.Notification
	}{{
		name: "createPost notifies every follower",
		got:  social.PostNotifications(oliver, post, []int64{john.ID, ann.ID}),
		want: []social.Notification{
			{RecipientID: john.ID, Message: "Oliver created a new post", Action: social.ActionPost, ActionID: 10, ByUser: "Oliver", ActionContent: "hello"},
			{RecipientID: ann.ID, Message: "Oliver created a new post", Action: social.ActionPost, ActionID: 10, ByUser: "Oliver", ActionContent: "hello"},
		},
	}, {
		name: "createPost without followers notifies nobody",
		got:  social.PostNotifications(oliver, post, nil),
		want: []social.Notification{},
	}, {
		name: "createComment notifies the post's author",
		got:  social.CommentNotifications(john, social.Comment{ID: 21, PostID: 10, AuthorID: john.ID, Body: "nice"}, post, nil),
		want: []social.Notification{
			{RecipientID: oliver.ID, Message: "John commented on your post", Action: social.ActionComment, ActionID: 21, ByUser: "John", ActionContent: "nice", Affected: social.ContentPost, AffectedID: 10},
		},
	}, {
		name: "commenting on one's own post notifies nobody",
		got:  social.CommentNotifications(oliver, social.Comment{ID: 21, PostID: 10, AuthorID: oliver.ID, Body: "me"}, post, nil),
		want: nil,
	}, {
		name: "a reply notifies the parent's author and the post's author",
		got:  social.CommentNotifications(john, social.Comment{ID: 22, PostID: 10, ParentID: 20, AuthorID: john.ID, Body: "agreed"}, post, &comment),
		want: []social.Notification{
			{RecipientID: ann.ID, Message: "John replied to your comment", Action: social.ActionComment, ActionID: 22, ByUser: "John", ActionContent: "agreed", Affected: social.ContentComment, AffectedID: 20},
			{RecipientID: oliver.ID, Message: "John commented on your post", Action: social.ActionComment, ActionID: 22, ByUser: "John", ActionContent: "agreed", Affected: social.ContentPost, AffectedID: 10},
		},
	}, {
		name: "a reply whose parent and post share an author notifies them once, of the reply",
		got: social.CommentNotifications(john, social.Comment{ID: 23, PostID: 10, ParentID: 24, AuthorID: john.ID, Body: "yes"}, post,
			&social.Comment{ID: 24, PostID: 10, AuthorID: oliver.ID}),
		want: []social.Notification{
			{RecipientID: oliver.ID, Message: "John replied to your comment", Action: social.ActionComment, ActionID: 23, ByUser: "John", ActionContent: "yes", Affected: social.ContentComment, AffectedID: 24},
		},
	}, {
		name: "replying to one's own comment notifies only the post's author",
		got:  social.CommentNotifications(ann, social.Comment{ID: 25, PostID: 10, ParentID: 20, AuthorID: ann.ID, Body: "also"}, post, &comment),
		want: []social.Notification{
			{RecipientID: oliver.ID, Message: "Ann commented on your post", Action: social.ActionComment, ActionID: 25, ByUser: "Ann", ActionContent: "also", Affected: social.ContentPost, AffectedID: 10},
		},
	}, {
		name: "the post's author replying on their own post notifies the parent's author only",
		got:  social.CommentNotifications(oliver, social.Comment{ID: 26, PostID: 10, ParentID: 20, AuthorID: oliver.ID, Body: "thanks"}, post, &comment),
		want: []social.Notification{
			{RecipientID: ann.ID, Message: "Oliver replied to your comment", Action: social.ActionComment, ActionID: 26, ByUser: "Oliver", ActionContent: "thanks", Affected: social.ContentComment, AffectedID: 20},
		},
	}, {
		name: "reactToPost notifies the post's author with the kind in lower case",
		got:  social.ReactionNotifications(john, social.Reaction{ID: 30, UserID: john.ID, Kind: social.ReactionLaugh, TargetKind: social.ContentPost, TargetID: 10}, oliver.ID),
		want: []social.Notification{
			{RecipientID: oliver.ID, Message: "John reacted to your post", Action: social.ActionReaction, ActionID: 30, ByUser: "John", ActionContent: "laugh", Affected: social.ContentPost, AffectedID: 10},
		},
	}, {
		name: "reactToComment notifies the comment's author",
		got:  social.ReactionNotifications(john, social.Reaction{ID: 31, UserID: john.ID, Kind: social.ReactionLove, TargetKind: social.ContentComment, TargetID: 20}, ann.ID),
		want: []social.Notification{
			{RecipientID: ann.ID, Message: "John reacted to your comment", Action: social.ActionReaction, ActionID: 31, ByUser: "John", ActionContent: "love", Affected: social.ContentComment, AffectedID: 20},
		},
	}, {
		name: "reacting to one's own content notifies nobody",
		got:  social.ReactionNotifications(ann, social.Reaction{ID: 32, UserID: ann.ID, Kind: social.ReactionWow, TargetKind: social.ContentComment, TargetID: 20}, ann.ID),
		want: nil,
	}, {
		name: "follow notifies the followed user",
		got:  social.FollowNotifications(oliver, social.Follow{ID: 40, FollowerID: oliver.ID, FolloweeID: john.ID}),
		want: []social.Notification{
			{RecipientID: john.ID, Message: "Oliver started following you", Action: social.ActionFollowing, ActionID: 40, ByUser: "Oliver"},
		},
	}}
	covered := map[social.Action]bool{}
	for _, tt := range tests {
		for _, n := range tt.want {
			covered[n.Action] = true
		}
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", tt.got, tt.want)
			}
		})
	}
	// A new action needs its rule here (docs/adding-an-action.md).
	for _, a := range social.Actions() {
		if !covered[a] {
			t.Errorf("no case of this table notifies of %s", a)
		}
	}
}

func TestPostNotificationsSkipsTheAuthor(t *testing.T) {
	author := social.User{ID: 1, Username: "Oliver"}
	ns := social.PostNotifications(author, social.Post{ID: 5, AuthorID: 1, Body: "x"}, []int64{1, 2})
	if len(ns) != 1 || ns[0].RecipientID != 2 {
		t.Fatalf("got %+v, want one notification for user 2", ns)
	}
}
