package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

// The grouped inbox of issue 15 (docs/api.md, "Grouped notifications"),
// run through a Service on the store.

// groupsOf returns userID's groups, newest first, as "message n/actors/unread
// [sample]" strings, after checking that each change's groups are those
// that reading the group now gives for the last change that touched it.
func (in *inbox) groupsOf(tb testing.TB, userID int64) []string {
	tb.Helper()
	page, err := in.svc.NotificationGroups(tb.Context(), userID, social.MaxPageSize, 0, false)
	must(tb, err)
	var out []string
	for _, g := range page.Items {
		out = append(out, describeGroup(g))
	}
	wantLastChangeGroups(tb, in.s, userID, page.Items)
	return out
}

// commentedPost creates a post by ann and a comment on it by each of
// users, in order.
func (in *inbox) commentedPost(tb testing.TB, users ...social.User) social.Post {
	tb.Helper()
	p, err := in.svc.CreatePost(tb.Context(), in.ann, "p")
	must(tb, err)
	for _, u := range users {
		_, err := in.svc.CreateComment(tb.Context(), u, p.ID, "c", 0)
		must(tb, err)
	}
	return p
}

func describeGroup(g social.Group) string {
	return fmt.Sprintf("%s %d/%d/%d %v", g.Message, g.NotificationCount, g.ActorCount, g.UnreadCount, g.SampleActors)
}

// wantLastChangeGroups fails tb unless the last change that touched each
// group recorded it as it is now (groups: every non-empty group now), and
// each group a change emptied is not among them.
func wantLastChangeGroups(tb testing.TB, s social.Store, userID int64, groups []social.Group) {
	tb.Helper()
	cs, err := s.ChangesAfterSeq(tb.Context(), userID, 0, 1<<20)
	must(tb, err)
	last := map[string]social.Group{}
	for _, c := range cs {
		if len(c.Groups) == 0 {
			tb.Fatalf("change %+v touched no group", c)
		}
		for _, g := range c.Groups {
			last[g.Key] = g
		}
	}
	now := map[string]string{}
	for _, g := range groups {
		now[g.Key] = describeGroup(g)
	}
	for key, g := range last {
		if g.NotificationCount == 0 {
			if _, ok := now[key]; ok || g.Latest != nil {
				tb.Fatalf("group %s emptied by its last change is %q now (latest %v)", key, now[key], g.Latest)
			}
			continue
		}
		if describeGroup(g) != now[key] {
			tb.Fatalf("group %s: last change says %q, now %q", key, describeGroup(g), now[key])
		}
	}
	if len(now) > len(last) {
		tb.Fatalf("groups %v, but changes touched only %d", now, len(last))
	}
}

func testGroups(t *testing.T, open opener) {
	t.Run("Messages", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		dan, eve := MustCreateUser(t, in.s, "dan"), MustCreateUser(t, in.s, "eve")
		p, err := in.svc.CreatePost(ctx, in.ann, "p")
		must(t, err)
		c, err := in.svc.CreateComment(ctx, in.ann, p.ID, "mine", 0)
		must(t, err)
		for i, u := range []social.User{in.bob, in.cid, dan, eve} {
			for _, target := range []social.ContentKind{social.ContentPost, social.ContentComment} {
				if i >= 1 && target == social.ContentComment {
					continue // one actor on the comment
				}
				id := map[social.ContentKind]int64{social.ContentPost: p.ID, social.ContentComment: c.ID}[target]
				_, err := in.svc.React(ctx, u, target, id, social.ReactionLike)
				must(t, err)
			}
			if i < 2 { // two actors comment on the post, and reply
				_, err = in.svc.CreateComment(ctx, u, p.ID, "c", 0)
				must(t, err)
				_, err = in.svc.CreateComment(ctx, u, p.ID, "r", c.ID)
				must(t, err)
			}
			if i < 3 {
				_, err = in.svc.Follow(ctx, u, "ann")
				must(t, err)
			}
		}
		// bob comments again: still two actors, three comments, bob first.
		_, err = in.svc.CreateComment(ctx, in.bob, p.ID, "again", 0)
		must(t, err)
		wantGroups(t, in.groupsOf(t, in.ann.ID),
			"bob and cid commented on your post 3/2/3 [bob cid]",
			"eve and 3 others reacted to your post 4/4/4 [eve dan cid]",
			"dan and 2 others started following you 3/3/3 [dan cid bob]",
			"cid and bob replied to your comment 2/2/2 [cid bob]",
			"bob reacted to your comment 1/1/1 [bob]")
	})
	t.Run("FollowsPerUTCDay", func(t *testing.T) {
		s := open(t)
		var now atomic.Int64
		day := time.Date(2026, 11, 25, 23, 59, 0, 0, time.FixedZone("CET", 3600))
		now.Store(day.UnixNano())
		svc := social.NewService(s, nopBroker{}, social.Config{Now: func() time.Time { return time.Unix(0, now.Load()) }})
		ann := MustCreateUser(t, s, "ann")
		in := &inbox{s: s, svc: svc, ann: ann}
		for i, name := range []string{"bob", "cid", "dan"} {
			u := MustCreateUser(t, s, name)
			if i == 2 {
				now.Store(day.Add(30 * time.Minute).UnixNano()) // the 26th in CET, the 25th in UTC
			}
			_, err := svc.Follow(t.Context(), u, "ann")
			must(t, err)
			if i == 0 {
				now.Store(day.Add(-23 * time.Hour).UnixNano()) // the 24th in UTC
			}
		}
		wantGroups(t, in.groupsOf(t, ann.ID),
			"dan and bob started following you 2/2/2 [dan bob]",
			"cid started following you 1/1/1 [cid]")
	})
	t.Run("PostsAlone", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		_, err := in.svc.Follow(ctx, in.bob, "ann")
		must(t, err)
		for _, body := range []string{"one", "two"} {
			_, err := in.svc.CreatePost(ctx, in.ann, body)
			must(t, err)
		}
		wantGroups(t, in.groupsOf(t, in.bob.ID),
			"ann created a new post 1/1/1 [ann]",
			"ann created a new post 1/1/1 [ann]")
	})
	t.Run("PostRemoved", func(t *testing.T) {
		// A post notification's ADDED change keeps its group, as it was
		// then, once the post and the notification are gone.
		in := newInbox(t, open)
		ctx := t.Context()
		_, err := in.svc.Follow(ctx, in.bob, "ann")
		must(t, err)
		p, err := in.svc.CreatePost(ctx, in.ann, "gone soon")
		must(t, err)
		added := lastChange(t, in.s, in.bob.ID)
		must(t, in.svc.DeletePost(ctx, in.ann, p.ID))
		cs, err := in.s.ChangesAfterSeq(ctx, in.bob.ID, added.Seq-1, 10)
		must(t, err)
		if len(cs) != 2 || cs[0].ID != added.ID || cs[0].Notification != nil || cs[1].Kind != social.ChangeRemoved {
			t.Fatalf("bob's changes %+v, want the ADDED one without its notification, then REMOVED", cs)
		}
		if g := cs[0].Groups; len(g) != 1 || describeGroup(g[0]) != "ann created a new post 1/1/1 [ann]" ||
			g[0].Latest != nil || !g[0].UpdatedAt.Equal(added.Notification.CreatedAt) || g[0].Key != "POST:"+fmt.Sprint(p.ID) {
			t.Fatalf("the ADDED change's groups %+v, want the post alone as it was, without its latest", g)
		}
		if g := added.Groups; len(g) != 1 || g[0].Latest == nil || g[0].Latest.ID != added.ID || g[0].Latest.ActionContent != "gone soon" {
			t.Fatalf("the ADDED change's groups before the removal %+v, want the notification as latest", g)
		}
		if g := cs[1].Groups; len(g) != 1 || g[0].NotificationCount != 0 || g[0].Key != "POST:"+fmt.Sprint(p.ID) {
			t.Fatalf("the REMOVED change's groups %+v, want the post's, emptied", g)
		}
	})
	t.Run("RemovedToEmpty", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		p, err := in.svc.CreatePost(ctx, in.ann, "p")
		must(t, err)
		for _, u := range []social.User{in.bob, in.cid} {
			_, err := in.svc.React(ctx, u, social.ContentPost, p.ID, social.ReactionWow)
			must(t, err)
		}
		_, err = in.svc.Unreact(ctx, in.cid, social.ContentPost, p.ID)
		must(t, err)
		wantGroups(t, in.groupsOf(t, in.ann.ID), "bob reacted to your post 1/1/1 [bob]")
		_, err = in.svc.Unreact(ctx, in.bob, social.ContentPost, p.ID)
		must(t, err)
		wantGroups(t, in.groupsOf(t, in.ann.ID))
		last := lastChange(t, in.s, in.ann.ID)
		if len(last.Groups) != 1 || last.Groups[0].NotificationCount != 0 || last.Groups[0].Latest != nil ||
			last.Groups[0].Key != "REACTION:POST:"+fmt.Sprint(p.ID) || last.Groups[0].Action != social.ActionReaction {
			t.Fatalf("the last removal's groups %+v, want the post's reactions, empty", last.Groups)
		}
	})
	t.Run("MarkGroupRead", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		p, err := in.svc.CreatePost(ctx, in.ann, "p")
		must(t, err)
		for _, u := range []social.User{in.bob, in.cid} {
			_, err := in.svc.CreateComment(ctx, u, p.ID, "c", 0)
			must(t, err)
			_, err = in.svc.Follow(ctx, u, "ann")
			must(t, err)
		}
		page, err := in.svc.NotificationGroups(ctx, in.ann.ID, 10, 0, false)
		must(t, err)
		follows := page.Items[0]
		n, err := in.svc.MarkGroupRead(ctx, in.ann.ID, follows.Key)
		if err != nil || n != 2 {
			t.Fatalf("MarkGroupRead = %d, %v; want 2", n, err)
		}
		last := lastChange(t, in.s, in.ann.ID)
		if last.Kind != social.ChangeRead || len(last.IDs) != 2 || last.UnreadCount != 2 ||
			len(last.Groups) != 1 || last.Groups[0].Key != follows.Key || last.Groups[0].UnreadCount != 0 {
			t.Fatalf("last change %+v, want READ of the follows' group", last)
		}
		for _, key := range []string{follows.Key, "nonsense", "POST:999999"} {
			if n, err := in.svc.MarkGroupRead(ctx, in.ann.ID, key); err != nil || n != 0 {
				t.Fatalf("MarkGroupRead(%q) = %d, %v; want 0", key, n, err)
			}
		}
		if again := lastChange(t, in.s, in.ann.ID); again.Seq != last.Seq {
			t.Fatalf("a mark read that changed nothing appended %+v", again)
		}
		unread, err := in.svc.NotificationGroups(ctx, in.ann.ID, 10, 0, true)
		must(t, err)
		if len(unread.Items) != 1 || unread.Items[0].Action != social.ActionComment || unread.UnreadCount != 2 {
			t.Fatalf("unread groups %+v, want the comments only", unread)
		}
		wantGroups(t, in.groupsOf(t, in.ann.ID),
			"cid and bob started following you 2/2/0 [cid bob]",
			"cid and bob commented on your post 2/2/2 [cid bob]")
	})
	t.Run("Paging", func(t *testing.T) {
		in := newInbox(t, open)
		ctx := t.Context()
		var want []string
		for i := range 5 {
			p, err := in.svc.CreatePost(ctx, in.ann, fmt.Sprint(i))
			must(t, err)
			_, err = in.svc.React(ctx, in.bob, social.ContentPost, p.ID, social.ReactionLike)
			must(t, err)
			want = append(want, "REACTION:POST:"+fmt.Sprint(p.ID))
		}
		slices.Reverse(want)
		var got []string
		var before int64
		for {
			page, err := in.svc.NotificationGroups(ctx, in.ann.ID, 2, before, false)
			must(t, err)
			for _, g := range page.Items {
				got = append(got, g.Key)
				before = g.Latest.ID
			}
			if !page.HasNextPage {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages %v, want %v", got, want)
		}
	})
	t.Run("ConcurrentToggles", func(t *testing.T) {
		// Two users toggle reactions to one post at once: the group each
		// change records, and the group at the end, count exactly.
		in := newInbox(t, open)
		rec := &recorder{}
		in.svc = social.NewService(in.s, rec, social.Config{})
		ctx := t.Context()
		p, err := in.svc.CreatePost(ctx, in.ann, "p")
		must(t, err)
		run(t, 2, func(i int) error { return in.toggle(ctx, []social.User{in.bob, in.cid}[i], p.ID) })
		got := in.groupsOf(t, in.ann.ID)
		if len(got) != 1 || !strings.HasSuffix(got[0], " reacted to your post 2/2/2 [cid bob]") &&
			!strings.HasSuffix(got[0], " reacted to your post 2/2/2 [bob cid]") {
			t.Fatalf("groups %q, want one of two reactions by bob and cid", got)
		}
		wantReplayedGroups(t, rec.changes(in.ann.ID))
	})
	t.Run("OneActorMany", func(t *testing.T) {
		// Stores may find the recent actors among a group's newest
		// notifications first: here the 40 newest are one actor's.
		in := newInbox(t, open)
		ctx := t.Context()
		p := in.commentedPost(t, in.cid, MustCreateUser(t, in.s, "dan"))
		for range 40 {
			_, err := in.svc.CreateComment(ctx, in.bob, p.ID, "again", 0)
			must(t, err)
		}
		wantGroups(t, in.groupsOf(t, in.ann.ID), "bob and 2 others commented on your post 42/3/42 [bob dan cid]")
	})
	t.Run("OneRemovalOneActorsMany", func(t *testing.T) {
		// Deleting bob's comment takes his reply with it: one change
		// removes both of bob's notifications from ann's group, and bob
		// leaves the group.
		in := newInbox(t, open)
		ctx := t.Context()
		p := in.commentedPost(t, in.cid)
		c, err := in.svc.CreateComment(ctx, in.bob, p.ID, "first", 0)
		must(t, err)
		_, err = in.svc.CreateComment(ctx, in.bob, p.ID, "and a reply", c.ID)
		must(t, err)
		wantGroups(t, in.groupsOf(t, in.ann.ID), "bob and cid commented on your post 3/2/3 [bob cid]")
		must(t, in.svc.DeleteComment(ctx, in.bob, c.ID))
		wantGroups(t, in.groupsOf(t, in.ann.ID), "cid commented on your post 1/1/1 [cid]")
	})
	t.Run("OneRemovalPerRecipient", func(t *testing.T) {
		// Each change's groups are its own: a second REMOVED or READ change
		// for one recipient in one call is refused before anything changes.
		in := newInbox(t, open)
		ctx := t.Context()
		in.commentedPost(t, in.bob, in.cid)
		page, err := in.svc.Notifications(ctx, in.ann.ID, 2, 0, false) // cid's, bob's
		must(t, err)
		err = in.s.Update(ctx, func(tx social.Tx) error {
			_, err := tx.AppendChanges(ctx, []social.Change{
				{Kind: social.ChangeRead, RecipientID: in.ann.ID, IDs: []int64{page.Items[1].ID}},
				{Kind: social.ChangeRemoved, RecipientID: in.ann.ID, IDs: []int64{page.Items[0].ID}},
			})
			return err
		})
		if err == nil {
			t.Fatal("two changes other than ADDED for one recipient in one call: no error")
		}
		wantGroups(t, in.groupsOf(t, in.ann.ID), "cid and bob commented on your post 2/2/2 [cid bob]")
	})
	t.Run("AgreeWithNotifications", func(t *testing.T) {
		// Stores keep each group's totals and recent actors as the changes
		// go. After a few hundred actions of every kind, each group must be
		// what the user's notifications themselves say.
		in := newInbox(t, open)
		ctx := t.Context()
		users := []social.User{in.bob, in.cid, MustCreateUser(t, in.s, "dan"), MustCreateUser(t, in.s, "eve")}
		var posts []int64
		for range 2 {
			p, err := in.svc.CreatePost(ctx, in.ann, "p")
			must(t, err)
			posts = append(posts, p.ID)
		}
		mine, err := in.svc.CreateComment(ctx, in.ann, posts[0], "mine", 0)
		must(t, err)
		var comments []social.Comment // by the others, to delete
		rnd := rand.New(rand.NewPCG(15, 16))
		kinds := []social.ReactionKind{social.ReactionLike, social.ReactionLove, social.ReactionWow}
		for range 400 {
			u := users[rnd.IntN(len(users))]
			post := posts[rnd.IntN(len(posts))]
			var err error
			switch rnd.IntN(9) {
			case 0, 1:
				_, err = in.svc.React(ctx, u, social.ContentPost, post, kinds[rnd.IntN(len(kinds))])
			case 2:
				_, err = in.svc.React(ctx, u, social.ContentComment, mine.ID, kinds[rnd.IntN(len(kinds))])
			case 3:
				_, err = in.svc.Unreact(ctx, u, social.ContentPost, post)
			case 4:
				var c social.Comment
				parent := []int64{0, mine.ID}[rnd.IntN(2)]
				if c, err = in.svc.CreateComment(ctx, u, posts[0], "c", parent); err == nil {
					comments = append(comments, c)
				}
			case 5:
				if len(comments) > 0 {
					i := rnd.IntN(len(comments))
					err = in.svc.DeleteComment(ctx, in.ann, comments[i].ID) // the post's author may
					comments = slices.Delete(comments, i, i+1)
				}
			case 6:
				if _, err = in.svc.Follow(ctx, u, "ann"); social.ErrorCode(err) == social.CodeConflict {
					_, err = in.svc.Unfollow(ctx, u, "ann")
				}
			case 7:
				var page social.NotificationPage
				if page, err = in.svc.Notifications(ctx, in.ann.ID, 5, 0, false); err == nil && len(page.Items) > 0 {
					_, err = in.svc.MarkRead(ctx, in.ann.ID, nil, true, page.Items[len(page.Items)-1].ID)
				}
			case 8:
				var page social.GroupPage
				if page, err = in.svc.NotificationGroups(ctx, in.ann.ID, 3, 0, false); err == nil && len(page.Items) > 0 {
					_, err = in.svc.MarkGroupRead(ctx, in.ann.ID, page.Items[rnd.IntN(len(page.Items))].Key)
				}
			}
			if err != nil && social.ErrorCode(err) != social.CodeNotFound {
				t.Fatal(err)
			}
		}
		var ns []social.Notification
		for before := int64(0); ; {
			page, err := in.svc.Notifications(ctx, in.ann.ID, social.MaxPageSize, before, false)
			must(t, err)
			ns = append(ns, page.Items...)
			if !page.HasNextPage {
				break
			}
			before = page.Items[len(page.Items)-1].ID
		}
		byKey := byGroupKey(ns) // each newest first, as ns
		want := map[string]string{}
		var keys []string // newest group first
		for _, n := range ns {
			if key := social.GroupKey(n); want[key] == "" {
				keys = append(keys, key)
				want[key] = describeTotals(key, byKey[key])
			}
		}
		gs, err := in.s.NotificationGroups(ctx, in.ann.ID, social.NotificationQuery{Limit: len(keys) + 1})
		must(t, err)
		if len(gs) != len(keys) {
			t.Fatalf("%d groups, want %d (%q)", len(gs), len(keys), keys)
		}
		for i, g := range gs {
			latest := int64(0)
			if g.Latest != nil {
				latest = g.Latest.ID
			}
			got := fmt.Sprintf("%s %d/%d/%d %v latest %d", g.Key, g.NotificationCount, g.ActorCount, g.UnreadCount, g.SampleActors, latest)
			if got != want[keys[i]] {
				t.Errorf("group %d: %s, want %s", i, got, want[keys[i]])
			}
		}
	})
	t.Run("ReadWhileToggling", func(t *testing.T) {
		// Three users toggle reactions to one post while its owner lists
		// her groups: each group listed is whole, its actors, totals and
		// newest notification read as of one moment.
		in := newInbox(t, open)
		ctx := t.Context()
		dan := MustCreateUser(t, in.s, "dan")
		p, err := in.svc.CreatePost(ctx, in.ann, "p")
		must(t, err)
		done := make(chan error, 1)
		go func() {
			var wg sync.WaitGroup
			errs := make([]error, 3)
			for i, u := range []social.User{in.bob, in.cid, dan} {
				wg.Go(func() { errs[i] = in.toggle(ctx, u, p.ID) })
			}
			wg.Wait()
			done <- errors.Join(errs...)
		}()
		for reads := 0; ; reads++ {
			select {
			case err := <-done:
				must(t, err)
				t.Logf("%d reads", reads)
				return
			default:
			}
			gs, err := in.s.NotificationGroups(ctx, in.ann.ID, social.NotificationQuery{Limit: 10})
			must(t, err)
			for _, g := range gs {
				if g.Latest == nil || g.NotificationCount == 0 ||
					len(g.SampleActors) != min(g.ActorCount, social.MaxSampleActors) || g.UnreadCount > g.NotificationCount {
					t.Fatalf("a torn group: %s", describeGroup(g))
				}
			}
		}
	})
}

// describeTotals describes the group with this key of a user whose
// notifications in it are ns, newest first, as AgreeWithNotifications
// compares groups.
func describeTotals(key string, ns []social.Notification) string {
	var actors []string
	unread := 0
	for _, n := range ns {
		if !slices.Contains(actors, n.ByUser) {
			actors = append(actors, n.ByUser)
		}
		if !n.Read {
			unread++
		}
	}
	return fmt.Sprintf("%s %d/%d/%d %v latest %d", key, len(ns), len(actors), unread,
		actors[:min(len(actors), social.MaxSampleActors)], ns[0].ID)
}

// recorder is a broker that keeps every change published and delivers
// nothing.
type recorder struct {
	nopBroker
	mu sync.Mutex
	cs []social.Change
}

func (r *recorder) Publish(_ context.Context, evs ...social.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range evs {
		if ev.Change != nil {
			r.cs = append(r.cs, *ev.Change)
		}
	}
	return nil
}

// changes returns the user's changes published, in Seq order.
func (r *recorder) changes(userID int64) []social.Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []social.Change
	for _, c := range r.cs {
		if c.RecipientID == userID {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b social.Change) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// wantReplayedGroups fails tb unless replaying one user's changes, as
// published (ADDED ones with their notification), gives at every change
// the groups it carries: counts of notifications, actors and unread ones.
func wantReplayedGroups(tb testing.TB, cs []social.Change) {
	tb.Helper()
	for i, c := range cs {
		if c.Seq != int64(i+1) {
			tb.Fatalf("published changes: #%d has seq %d", i+1, c.Seq)
		}
	}
	type entry struct {
		key, actor string
		read       bool
	}
	live := map[int64]*entry{}
	for _, c := range cs {
		switch c.Kind {
		case social.ChangeAdded:
			if c.Notification == nil {
				tb.Fatalf("replay needs every notification; change %d's was removed", c.ID)
			}
			live[c.ID] = &entry{key: social.GroupKey(*c.Notification), actor: c.Notification.ByUser}
		case social.ChangeRemoved:
			for _, id := range c.IDs {
				delete(live, id)
			}
		case social.ChangeRead:
			for _, id := range c.IDs {
				live[id].read = true
			}
		}
		for _, g := range c.Groups {
			n, unread, actors := 0, 0, map[string]bool{}
			for _, e := range live {
				if e.key == g.Key {
					n++
					actors[e.actor] = true
					if !e.read {
						unread++
					}
				}
			}
			if g.NotificationCount != n || g.UnreadCount != unread || g.ActorCount != len(actors) {
				tb.Fatalf("change %d (%s) records group %s as %d/%d/%d; replaying gives %d/%d/%d",
					c.ID, c.Kind, g.Key, g.NotificationCount, g.ActorCount, g.UnreadCount, n, len(actors), unread)
			}
		}
	}
}

func wantGroups(tb testing.TB, got []string, want ...string) {
	tb.Helper()
	if !slices.Equal(got, want) {
		tb.Fatalf("groups =\n%q\nwant\n%q", got, want)
	}
}
