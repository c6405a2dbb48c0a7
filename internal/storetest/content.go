package storetest

import (
	"fmt"
	"testing"

	"github.com/pulse-social/pulse/internal/social"
)

func testCreatePost(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		in := social.Post{AuthorID: u.ID, Body: "héllo, wörld 👋\nsecond line", CreatedAt: at(1)}
		var p social.Post
		MustUpdate(t, s, func(tx social.Tx) error {
			var err error
			p, err = tx.CreatePost(t.Context(), in)
			if err != nil {
				return err
			}
			// Visible inside the transaction.
			got, err := tx.PostByID(t.Context(), p.ID)
			if err != nil {
				return err
			}
			wantPost(t, got, p)
			return nil
		})
		if p.ID == 0 {
			t.Fatalf("CreatePost returned ID 0")
		}
		in.ID = p.ID
		wantPost(t, p, in)
		got, err := s.PostByID(t.Context(), p.ID)
		if err != nil {
			t.Fatalf("PostByID: %v", err)
		}
		wantPost(t, got, in)
	})
}

func testPostByID(t *testing.T, open opener) {
	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		p := MustCreatePost(t, s, u.ID, "hello")
		_, err := s.PostByID(t.Context(), p.ID+1000)
		wantCode(t, err, social.CodeNotFound)
	})
}

func testCreateComment(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		p := MustCreatePost(t, s, ann.ID, "hello")
		in := social.Comment{PostID: p.ID, AuthorID: bob.ID, Body: "first!", CreatedAt: at(2)}
		var c social.Comment
		MustUpdate(t, s, func(tx social.Tx) error {
			var err error
			c, err = tx.CreateComment(t.Context(), in)
			return err
		})
		if c.ID == 0 {
			t.Fatalf("CreateComment returned ID 0")
		}
		in.ID = c.ID
		wantComment(t, c, in)
		got, err := s.CommentByID(t.Context(), c.ID)
		if err != nil {
			t.Fatalf("CommentByID: %v", err)
		}
		wantComment(t, got, in)
	})

	t.Run("Reply", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		p := MustCreatePost(t, s, ann.ID, "hello")
		parent := MustCreateComment(t, s, p.ID, 0, bob.ID, "first!")
		in := social.Comment{PostID: p.ID, ParentID: parent.ID, AuthorID: ann.ID, Body: "thanks", CreatedAt: at(3)}
		var c social.Comment
		MustUpdate(t, s, func(tx social.Tx) error {
			var err error
			c, err = tx.CreateComment(t.Context(), in)
			return err
		})
		in.ID = c.ID
		wantComment(t, c, in)
		got, err := s.CommentByID(t.Context(), c.ID)
		if err != nil {
			t.Fatalf("CommentByID: %v", err)
		}
		wantComment(t, got, in)
	})
}

func testCommentByID(t *testing.T, open opener) {
	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		p := MustCreatePost(t, s, u.ID, "hello")
		c := MustCreateComment(t, s, p.ID, 0, u.ID, "me")
		_, err := s.CommentByID(t.Context(), c.ID+1000)
		wantCode(t, err, social.CodeNotFound)
	})
}

func testCommentsByPost(t *testing.T, open opener) {
	t.Run("OldestFirstWithReplies", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		p := MustCreatePost(t, s, ann.ID, "hello")
		other := MustCreatePost(t, s, bob.ID, "other")
		c1 := MustCreateComment(t, s, p.ID, 0, bob.ID, "one")
		MustCreateComment(t, s, other.ID, 0, ann.ID, "elsewhere")
		c2 := MustCreateComment(t, s, p.ID, c1.ID, ann.ID, "reply to one")
		c3 := MustCreateComment(t, s, p.ID, 0, ann.ID, "two")
		c4 := MustCreateComment(t, s, p.ID, c2.ID, bob.ID, "reply to the reply")
		want := []social.Comment{c1, c2, c3, c4}

		wantComments(t, s, p.ID, wholeList, want...)
	})

	t.Run("Pages", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		p := MustCreatePost(t, s, ann.ID, "hello")
		other := MustCreatePost(t, s, ann.ID, "other")
		var cs []social.Comment
		for i := range 5 {
			cs = append(cs, MustCreateComment(t, s, p.ID, 0, ann.ID, "c"))
			if i == 2 {
				MustCreateComment(t, s, other.ID, 0, ann.ID, "elsewhere")
			}
		}
		wantComments(t, s, p.ID, social.ListPage{Limit: 2}, cs[0], cs[1])
		wantComments(t, s, p.ID, social.ListPage{After: cs[1].ID, Limit: 2}, cs[2], cs[3])
		wantComments(t, s, p.ID, social.ListPage{After: cs[3].ID, Limit: 2}, cs[4])
		wantComments(t, s, p.ID, social.ListPage{After: cs[4].ID, Limit: 2})
		// The cursor need not be a comment of the post.
		wantComments(t, s, p.ID, social.ListPage{After: cs[2].ID + 1, Limit: 10}, cs[3], cs[4])
	})

	t.Run("None", func(t *testing.T) {
		s := open(t)
		u := MustCreateUser(t, s, "ann")
		p := MustCreatePost(t, s, u.ID, "hello")
		wantComments(t, s, p.ID, wholeList)
	})
}

// wholeList is a page that holds every item of the suite's short lists.
var wholeList = social.ListPage{Limit: social.MaxListPage}

// wantComments fails tb unless this page of the post's comments is want,
// in order.
func wantComments(tb testing.TB, s social.Store, postID int64, page social.ListPage, want ...social.Comment) {
	tb.Helper()
	got, err := s.CommentsByPost(tb.Context(), postID, page)
	if err != nil {
		tb.Fatalf("CommentsByPost: %v", err)
	}
	if len(got) != len(want) {
		tb.Fatalf("CommentsByPost(%d, %+v) = %+v, want %+v", postID, page, got, want)
	}
	for i := range want {
		wantComment(tb, got[i], want[i])
	}
}

// mustReact creates a reaction at t0.
func mustReact(tb testing.TB, s social.Store, userID int64, kind social.ReactionKind, target social.ContentKind, targetID int64) social.Reaction {
	tb.Helper()
	var r social.Reaction
	MustUpdate(tb, s, func(tx social.Tx) error {
		var err error
		r, err = tx.CreateReaction(tb.Context(), social.Reaction{
			UserID: userID, Kind: kind, TargetKind: target, TargetID: targetID, CreatedAt: t0,
		})
		return err
	})
	return r
}

// wantReactions fails tb unless the target's reactions are want, in order.
func wantReactions(tb testing.TB, s social.Store, target social.ContentKind, targetID int64, want ...social.Reaction) {
	tb.Helper()
	wantReactionPage(tb, s, target, targetID, wholeList, want...)
}

// wantReactionPage fails tb unless this page of the target's reactions is
// want, in order.
func wantReactionPage(tb testing.TB, s social.Store, target social.ContentKind, targetID int64, page social.ListPage, want ...social.Reaction) {
	tb.Helper()
	got, err := s.Reactions(tb.Context(), target, targetID, page)
	if err != nil {
		tb.Fatalf("Reactions: %v", err)
	}
	if len(got) != len(want) {
		tb.Fatalf("Reactions(%s %d, %+v) = %+v, want %+v", target, targetID, page, got, want)
	}
	for i := range want {
		wantReaction(tb, got[i], want[i])
	}
}

func testCreateReaction(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		p := MustCreatePost(t, s, ann.ID, "hello")
		in := social.Reaction{UserID: bob.ID, Kind: social.ReactionLaugh, TargetKind: social.ContentPost, TargetID: p.ID, CreatedAt: at(4)}
		var r social.Reaction
		MustUpdate(t, s, func(tx social.Tx) error {
			var err error
			r, err = tx.CreateReaction(t.Context(), in)
			return err
		})
		if r.ID == 0 {
			t.Fatalf("CreateReaction returned ID 0")
		}
		in.ID = r.ID
		wantReaction(t, r, in)
		got, err := s.ReactionOf(t.Context(), bob.ID, social.ContentPost, p.ID)
		if err != nil {
			t.Fatalf("ReactionOf: %v", err)
		}
		wantReaction(t, got, in)
		wantReactions(t, s, social.ContentPost, p.ID, in)
	})

	t.Run("ConflictSameTarget", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		p := MustCreatePost(t, s, ann.ID, "hello")
		first := mustReact(t, s, bob.ID, social.ReactionLike, social.ContentPost, p.ID)
		for _, kind := range []social.ReactionKind{social.ReactionLike, social.ReactionSad} {
			err := s.Update(t.Context(), func(tx social.Tx) error {
				_, err := tx.CreateReaction(t.Context(), social.Reaction{
					UserID: bob.ID, Kind: kind, TargetKind: social.ContentPost, TargetID: p.ID, CreatedAt: t0,
				})
				return err
			})
			wantCode(t, err, social.CodeConflict)
		}
		wantReactions(t, s, social.ContentPost, p.ID, first)
		// The conflict leaves the transaction usable: what follows it in
		// the same transaction commits.
		MustUpdate(t, s, func(tx social.Tx) error {
			_, err := tx.CreateReaction(t.Context(), social.Reaction{
				UserID: bob.ID, Kind: social.ReactionSad, TargetKind: social.ContentPost, TargetID: p.ID, CreatedAt: t0,
			})
			if social.ErrorCode(err) != social.CodeConflict {
				return fmt.Errorf("a second reaction: %v, want a conflict", err)
			}
			return tx.SetReactionKind(t.Context(), first.ID, social.ReactionSad)
		})
		first.Kind = social.ReactionSad
		wantReactions(t, s, social.ContentPost, p.ID, first)
	})

	t.Run("OnePerUserPerTarget", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		p := MustCreatePost(t, s, ann.ID, "hello")
		p2 := MustCreatePost(t, s, ann.ID, "again")
		c := MustCreateComment(t, s, p.ID, 0, ann.ID, "me")
		// Other users, other posts, and comments are other targets.
		onPost := mustReact(t, s, bob.ID, social.ReactionLike, social.ContentPost, p.ID)
		annOnPost := mustReact(t, s, ann.ID, social.ReactionLove, social.ContentPost, p.ID)
		onPost2 := mustReact(t, s, bob.ID, social.ReactionWow, social.ContentPost, p2.ID)
		onComment := mustReact(t, s, bob.ID, social.ReactionAngry, social.ContentComment, c.ID)
		wantReactions(t, s, social.ContentPost, p.ID, onPost, annOnPost)
		wantReactions(t, s, social.ContentPost, p2.ID, onPost2)
		wantReactions(t, s, social.ContentComment, c.ID, onComment)
		got, err := s.ReactionOf(t.Context(), bob.ID, social.ContentComment, c.ID)
		if err != nil {
			t.Fatalf("ReactionOf: %v", err)
		}
		wantReaction(t, got, onComment)
	})

	t.Run("SameIDOtherKind", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		p := MustCreatePost(t, s, ann.ID, "hello")
		c := MustCreateComment(t, s, p.ID, 0, ann.ID, "me")
		if c.ID != p.ID {
			t.Skipf("the first post and comment have different IDs (%d, %d)", p.ID, c.ID)
		}
		// A post and a comment with the same ID are different targets.
		onPost := mustReact(t, s, ann.ID, social.ReactionLike, social.ContentPost, p.ID)
		onComment := mustReact(t, s, ann.ID, social.ReactionSad, social.ContentComment, c.ID)
		wantReactions(t, s, social.ContentPost, p.ID, onPost)
		wantReactions(t, s, social.ContentComment, c.ID, onComment)
	})
}

func testReactions(t *testing.T, open opener) {
	t.Run("Pages", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		p := MustCreatePost(t, s, ann.ID, "hello")
		c := MustCreateComment(t, s, p.ID, 0, ann.ID, "me")
		var rs []social.Reaction
		for _, name := range []string{"bob", "cat", "dan"} {
			u := MustCreateUser(t, s, name)
			rs = append(rs, mustReact(t, s, u.ID, social.ReactionLike, social.ContentPost, p.ID))
			mustReact(t, s, u.ID, social.ReactionSad, social.ContentComment, c.ID)
		}
		wantReactionPage(t, s, social.ContentPost, p.ID, social.ListPage{Limit: 2}, rs[0], rs[1])
		wantReactionPage(t, s, social.ContentPost, p.ID, social.ListPage{After: rs[1].ID, Limit: 2}, rs[2])
		wantReactionPage(t, s, social.ContentPost, p.ID, social.ListPage{After: rs[2].ID, Limit: 2})
	})
}

func testReactionOf(t *testing.T, open opener) {
	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		p := MustCreatePost(t, s, ann.ID, "hello")
		mustReact(t, s, ann.ID, social.ReactionLike, social.ContentPost, p.ID)
		_, err := s.ReactionOf(t.Context(), bob.ID, social.ContentPost, p.ID)
		wantCode(t, err, social.CodeNotFound)
		_, err = s.ReactionOf(t.Context(), ann.ID, social.ContentComment, p.ID)
		wantCode(t, err, social.CodeNotFound)
	})
}

func testSetReactionKind(t *testing.T, open opener) {
	t.Run("OK", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		bob := MustCreateUser(t, s, "bob")
		p := MustCreatePost(t, s, ann.ID, "hello")
		r := mustReact(t, s, bob.ID, social.ReactionLike, social.ContentPost, p.ID)
		other := mustReact(t, s, ann.ID, social.ReactionLike, social.ContentPost, p.ID)
		MustUpdate(t, s, func(tx social.Tx) error { return tx.SetReactionKind(t.Context(), r.ID, social.ReactionLaugh) })
		r.Kind = social.ReactionLaugh
		got, err := s.ReactionOf(t.Context(), bob.ID, social.ContentPost, p.ID)
		if err != nil {
			t.Fatalf("ReactionOf: %v", err)
		}
		wantReaction(t, got, r)
		wantReactions(t, s, social.ContentPost, p.ID, r, other)
	})

	t.Run("NotFound", func(t *testing.T) {
		s := open(t)
		ann := MustCreateUser(t, s, "ann")
		p := MustCreatePost(t, s, ann.ID, "hello")
		r := mustReact(t, s, ann.ID, social.ReactionLike, social.ContentPost, p.ID)
		err := s.Update(t.Context(), func(tx social.Tx) error {
			return tx.SetReactionKind(t.Context(), r.ID+1000, social.ReactionLaugh)
		})
		wantCode(t, err, social.CodeNotFound)
	})
}
