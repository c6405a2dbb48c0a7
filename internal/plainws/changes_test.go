package plainws_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/pulse-social/pulse/internal/social"
)

// checkAddedFrame checks that frame is n's ADDED frame of ?changes=1:
// today's keys with today's values, plus "type", "cursor" (its id) and
// "unread_count".
func checkAddedFrame(tb testing.TB, frame map[string]any, n social.Notification, unread int) {
	tb.Helper()
	if frame["type"] != "notification" || frame["cursor"] != id(n.ID) || frame["unread_count"] != float64(unread) {
		tb.Fatalf("frame %v: want type notification, cursor %d, unread_count %d", frame, n.ID, unread)
	}
	rest := maps.Clone(frame)
	delete(rest, "type")
	delete(rest, "cursor")
	delete(rest, "unread_count")
	checkFrame(tb, rest, n)
}

// checkChangeFrame checks a REMOVED or READ frame, exactly.
func checkChangeFrame(tb testing.TB, frame map[string]any, typ string, cursor int64, ids []int64, unread int) {
	tb.Helper()
	want := map[string]any{"type": typ, "cursor": id(cursor), "unread_count": float64(unread)}
	var wantIDs []any
	for _, x := range ids {
		wantIDs = append(wantIDs, id(x))
	}
	got, _ := frame["ids"].([]any)
	if len(frame) != 4 || !slices.Equal(got, wantIDs) {
		tb.Fatalf("frame %v, want %v with ids %v", frame, want, wantIDs)
	}
	for k, v := range want {
		if frame[k] != v {
			tb.Fatalf("frame %v, want %v with ids %v", frame, want, wantIDs)
		}
	}
}

// TestChanges: ?changes=1 sends every change, replayed and live, in the
// frames of docs/api.md; without it the same socket sends additions only,
// and a notification removed before it was sent is not sent at all.
func TestChanges(t *testing.T) {
	env := MustEnv(t, EnvOptions{})
	alice, bob := env.MustRegister(t, "alice"), env.MustRegister(t, "bob")
	post := env.MustPost(t, alice, "hello")
	comment := env.MustComment(t, bob, post.ID, "first", 0)
	if _, err := env.Svc.React(ctx, bob.User, social.ContentPost, post.ID, social.ReactionLike); err != nil {
		t.Fatal(err)
	}
	// LIKE becomes LOVE: REMOVED of the like's, ADDED of the love's.
	if _, err := env.Svc.React(ctx, bob.User, social.ContentPost, post.ID, social.ReactionLove); err != nil {
		t.Fatal(err)
	}
	stored := env.MustNotifications(t, alice) // the comment, the love
	if len(stored) != 2 {
		t.Fatalf("alice has %d notifications, want 2", len(stored))
	}
	cs, err := env.Store.ChangesAfterSeq(ctx, alice.ID, 0, 10)
	if err != nil || len(cs) != 4 {
		t.Fatalf("alice's changes %+v, %v; want 4", cs, err)
	}
	likeID, removedAt := cs[1].ID, cs[2].ID

	t.Run("Replay", func(t *testing.T) {
		c, backlog := env.MustConnect(t, alice, "?changes=1&after=0")
		// The like's ADDED is left out: it was removed since.
		if len(backlog) != 3 {
			t.Fatalf("backlog %v, want 3 frames", backlog)
		}
		checkAddedFrame(t, backlog[0], stored[0], 1)
		checkChangeFrame(t, backlog[1], "removed", removedAt, []int64{likeID}, 1)
		checkAddedFrame(t, backlog[2], stored[1], 2)

		// Live: a read, then a removal.
		if n, err := env.Svc.MarkRead(ctx, alice.ID, nil, true, stored[0].ID); err != nil || n != 1 {
			t.Fatalf("mark read: %d, %v", n, err)
		}
		read := MustReadJSON(t, c)
		checkChangeFrame(t, read, "read", int64(mustCursor(t, read)), []int64{stored[0].ID}, 1)
		if ok, err := env.Svc.Unreact(ctx, bob.User, social.ContentPost, post.ID); err != nil || !ok {
			t.Fatalf("unreact: %v, %v", ok, err)
		}
		removed := MustReadJSON(t, c)
		checkChangeFrame(t, removed, "removed", int64(mustCursor(t, removed)), []int64{stored[1].ID}, 0)
		if mustCursor(t, removed) <= mustCursor(t, read) {
			t.Fatalf("cursors %v then %v, want increasing", read["cursor"], removed["cursor"])
		}
		MustPong(t, c)

		// Resuming after the read sends the removal only.
		_, backlog = env.MustConnect(t, alice, "?changes=1&after="+read["cursor"].(string))
		if len(backlog) != 1 {
			t.Fatalf("backlog after the read: %v, want the removal", backlog)
		}
		checkChangeFrame(t, backlog[0], "removed", int64(mustCursor(t, removed)), []int64{stored[1].ID}, 0)
	})
	t.Run("WithoutChanges", func(t *testing.T) {
		// Today's frames only: the comment, which is still there, and no
		// frame for the removed like and love, the read or the removals.
		c, backlog := env.MustConnect(t, alice, "?after=0")
		if len(backlog) != 1 {
			t.Fatalf("backlog %v, want the comment's frame only", backlog)
		}
		checkFrame(t, backlog[0], stored[0])
		// A live removal sends nothing; the next addition comes as today.
		if err := env.Svc.DeleteComment(ctx, alice.User, comment.ID); err != nil {
			t.Fatal(err)
		}
		env.MustComment(t, bob, post.ID, "second", 0)
		all := env.MustNotifications(t, alice)
		if len(all) != 1 {
			t.Fatalf("alice has %v, want the second comment's notification only", all)
		}
		checkFrame(t, MustReadJSON(t, c), all[0])
		MustPong(t, c)
	})
}

func mustCursor(tb testing.TB, frame map[string]any) int {
	tb.Helper()
	s, _ := frame["cursor"].(string)
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			tb.Fatalf("cursor %q is not a number", s)
		}
		n = 10*n + int(r-'0')
	}
	if s == "" {
		tb.Fatalf("frame %v has no cursor", frame)
	}
	return n
}
