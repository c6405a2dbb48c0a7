package httpapi_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

type notificationGroup struct {
	Key               string
	Action            string
	Affected          *string
	AffectedID        *string
	NotificationCount int
	ActorCount        int
	SampleActors      []string
	Message           string
	Latest            *struct{ ID, ByUser string }
	UnreadCount       int
	UpdatedAt         time.Time
}

const groupFields = `key action affected affectedId notificationCount actorCount sampleActors message latest{id byUser} unreadCount updatedAt`

// String is a group in one line: "<key> <count>/<actors> [<sample>] <message>
// unread <n> latest <byUser>", the latest part "-" when there is none.
func (g notificationGroup) String() string {
	latest := "-"
	if g.Latest != nil {
		latest = g.Latest.ByUser
	}
	return fmt.Sprintf("%s %d/%d [%s] %q unread %d latest %s", g.Key, g.NotificationCount, g.ActorCount,
		strings.Join(g.SampleActors, " "), g.Message, g.UnreadCount, latest)
}

type groupPage struct {
	Edges []struct {
		Cursor string
		Node   notificationGroup
	}
	PageInfo    struct{ HasNextPage bool }
	UnreadCount int
}

// lines returns the String of each group of the page.
func (p groupPage) lines() []string {
	out := make([]string, len(p.Edges))
	for i, e := range p.Edges {
		out[i] = e.Node.String()
	}
	return out
}

// mustGroups returns the page of token's user's groups that args select
// (GraphQL arguments without their parentheses).
func (s *testServer) mustGroups(tb testing.TB, token, args string) groupPage {
	tb.Helper()
	var p groupPage
	q := fmt.Sprintf(`{notificationGroups(%s){edges{cursor node{%s}} pageInfo{hasNextPage} unreadCount}}`, args, groupFields)
	s.MustDo(tb, token, q, nil, "notificationGroups", &p)
	return p
}

func (s *testServer) mustReact(tb testing.TB, token, post, kind string) {
	tb.Helper()
	s.MustDo(tb, token, `mutation($p:ID!,$k:ReactionKind!){reactToPost(postId:$p,kind:$k){id}}`,
		map[string]any{"p": post, "k": kind}, "reactToPost", nil)
}

func (s *testServer) mustUnreact(tb testing.TB, token, post string) {
	tb.Helper()
	s.MustDo(tb, token, `mutation($p:ID!){removeReactionFromPost(postId:$p)}`, map[string]any{"p": post}, "removeReactionFromPost", nil)
}

// mustMarkGroupRead calls markNotificationGroupRead and returns its result.
func (s *testServer) mustMarkGroupRead(tb testing.TB, token, key string) int {
	tb.Helper()
	var n int
	s.MustDo(tb, token, `mutation($k:ID!){markNotificationGroupRead(key:$k)}`, map[string]any{"k": key}, "markNotificationGroupRead", &n)
	return n
}

// TestNotificationGroups: undone follows and reactions leave one group per
// target with the messages of the contract; a third actor turns the
// message into "X and 2 others"; pages follow the cursor; unreadOnly keeps
// the groups with unread notifications.
func TestNotificationGroups(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "Alice")
	bob, _ := s.MustRegister(t, "Bob")
	post := s.MustPost(t, alice, "post")
	s.MustFollow(t, bob, "Alice")
	s.MustDo(t, bob, `mutation{unfollow(username:"Alice"){id}}`, nil, "unfollow", nil)
	s.MustFollow(t, bob, "Alice")
	for _, k := range []string{"LIKE", "LOVE", "LAUGH", "LIKE"} {
		s.mustReact(t, bob, post, k)
	}
	day := time.Now().UTC().Format(time.DateOnly)
	reactions, follows := "REACTION:POST:"+post, "FOLLOWING:"+day

	page := s.mustGroups(t, alice, "first:20")
	want := []string{
		reactions + ` 1/1 [Bob] "Bob reacted to your post" unread 1 latest Bob`,
		follows + ` 1/1 [Bob] "Bob started following you" unread 1 latest Bob`,
	}
	if got := page.lines(); !slices.Equal(got, want) || page.UnreadCount != 2 || page.PageInfo.HasNextPage {
		t.Fatalf("groups %q (unread %d, next page %v), want %q (unread 2, no next page)", got, page.UnreadCount, page.PageInfo.HasNextPage, want)
	}
	if g := page.Edges[0].Node; g.Action != "REACTION" || g.Affected == nil || *g.Affected != "POST" || g.AffectedID == nil || *g.AffectedID != post {
		t.Fatalf("reaction group %+v: want action REACTION, affected POST %s", g, post)
	}
	if g := page.Edges[1].Node; g.Action != "FOLLOWING" || g.Affected != nil || g.AffectedID != nil {
		t.Fatalf("follow group %+v: want action FOLLOWING, affected null", g)
	}

	cid, _ := s.MustRegister(t, "Cid")
	dan, _ := s.MustRegister(t, "Dan")
	s.mustReact(t, cid, post, "WOW")
	if got := s.mustGroups(t, alice, "first:1").lines(); !slices.Equal(got, []string{reactions + ` 2/2 [Cid Bob] "Cid and Bob reacted to your post" unread 2 latest Cid`}) {
		t.Fatalf("with two reactors: %q", got)
	}
	s.mustReact(t, dan, post, "SAD")
	want[0] = reactions + ` 3/3 [Dan Cid Bob] "Dan and 2 others reacted to your post" unread 3 latest Dan`

	t.Run("Paging", func(t *testing.T) {
		first := s.mustGroups(t, alice, "first:1")
		if got := first.lines(); !slices.Equal(got, want[:1]) || !first.PageInfo.HasNextPage {
			t.Fatalf("first page %q (next page %v), want %q and a next page", got, first.PageInfo.HasNextPage, want[:1])
		}
		next := s.mustGroups(t, alice, fmt.Sprintf("first:1, after:%q", first.Edges[0].Cursor))
		if got := next.lines(); !slices.Equal(got, want[1:]) || next.PageInfo.HasNextPage {
			t.Fatalf("second page %q (next page %v), want %q and no next page", got, next.PageInfo.HasNextPage, want[1:])
		}
		if empty := s.mustGroups(t, alice, "first:0"); len(empty.Edges) != 0 || !empty.PageInfo.HasNextPage || empty.UnreadCount != 4 {
			t.Fatalf("first:0 gave %+v, want no edges, a next page and unread 4", empty)
		}
	})

	t.Run("MarkReadAndUnreadOnly", func(t *testing.T) {
		if n := s.mustMarkGroupRead(t, alice, follows); n != 1 {
			t.Fatalf("markNotificationGroupRead = %d, want 1", n)
		}
		if n := s.mustMarkGroupRead(t, alice, follows); n != 0 {
			t.Fatalf("markNotificationGroupRead again = %d, want 0", n)
		}
		if n := s.mustMarkGroupRead(t, bob, reactions); n != 0 {
			t.Fatalf("markNotificationGroupRead of someone else's group = %d, want 0", n)
		}
		unread := s.mustGroups(t, alice, "unreadOnly:true")
		if got := unread.lines(); !slices.Equal(got, want[:1]) || unread.UnreadCount != 3 {
			t.Fatalf("unreadOnly: %q (unread %d), want %q (unread 3)", got, unread.UnreadCount, want[:1])
		}
		all := s.mustGroups(t, alice, "unreadOnly:false")
		want[1] = strings.Replace(want[1], "unread 1", "unread 0", 1)
		if got := all.lines(); !slices.Equal(got, want) {
			t.Fatalf("all groups %q, want %q", got, want)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		for _, args := range []string{"first:101", "first:-1", `after:"x"`} {
			if r := s.Do(t, alice, `{notificationGroups(`+args+`){unreadCount}}`, nil); r.Code() != "BAD_USER_INPUT" {
				t.Errorf("notificationGroups(%s): errors %+v, want BAD_USER_INPUT", args, r.Errors)
			}
		}
		if r := s.Do(t, "", `{notificationGroups{unreadCount}}`, nil); r.Code() != "UNAUTHENTICATED" {
			t.Errorf("anonymous notificationGroups: errors %+v, want UNAUTHENTICATED", r.Errors)
		}
	})
}

// TestNotificationGroupsPriced: notificationGroups costs its page size
// times its node, as notifications does, so that aliased copies of a large
// page are refused before they run while a default page passes.
func TestNotificationGroupsPriced(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "Alice")
	copies := func(first int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range 4 {
			fmt.Fprintf(&b, "g%d:notificationGroups(first:%d){edges{node{%s latest{%s}}}} ", i, first, groupFields, notificationFields)
		}
		return b.String() + "}"
	}
	if r := s.Do(t, alice, copies(100), nil); r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" {
		t.Fatalf("four pages of 100 groups: errors %+v, want COMPLEXITY_LIMIT_EXCEEDED", r.Errors)
	}
	if r := s.Do(t, alice, copies(20), nil); len(r.Errors) > 0 {
		t.Fatalf("four default pages: errors %+v", r.Errors)
	}
}

type groupedChange struct {
	inboxChange
	Groups []notificationGroup
}

const groupedChangeFields = inboxChangeFields + ` groups{` + groupFields + `}`

// wantGroupedChanges fails tb unless each change of got is "<kind>:
// <group> | <group>...", each group as notificationGroup.String.
func wantGroupedChanges(tb testing.TB, got []groupedChange, want ...string) {
	tb.Helper()
	short := make([]string, len(got))
	for i, c := range got {
		gs := make([]string, len(c.Groups))
		for j, g := range c.Groups {
			gs[j] = g.String()
		}
		short[i] = c.Kind + ": " + strings.Join(gs, " | ")
	}
	if !slices.Equal(short, want) {
		tb.Fatalf("changes\n%s\nwant\n%s", strings.Join(short, "\n"), strings.Join(want, "\n"))
	}
}

// TestInboxChangeGroups: every change carries the groups it touched as
// they were right after it; a replay shows them as they were then, not as
// they are now; a group emptied by a removal has count 0 and no latest.
func TestInboxChangeGroups(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "Alice")
	bob, _ := s.MustRegister(t, "Bob")
	cid, _ := s.MustRegister(t, "Cid")
	dan, _ := s.MustRegister(t, "Dan")
	post := s.MustPost(t, alice, "post")
	key := "REACTION:POST:" + post
	s.mustReact(t, bob, post, "LIKE")
	s.mustReact(t, cid, post, "LOVE")
	s.MustFollow(t, bob, "Alice")
	s.mustUnreact(t, bob, post)
	s.mustMarkGroupRead(t, alice, key)

	ws := s.MustDial(t, "graphql-transport-ws", http.Header{"Authorization": {"Bearer " + alice}}, nil)
	ws.MustAck()
	ws.Subscribe("c", `subscription{inboxChanges(after:"0"){`+groupedChangeFields+`}}`, nil)
	next := func(n int) []groupedChange {
		out := make([]groupedChange, n)
		for i := range out {
			ws.MustData("c", "inboxChanges", &out[i])
		}
		return out
	}
	// Bob's LIKE is left out of the replay: it was removed since.
	follows := "FOLLOWING:" + time.Now().UTC().Format(time.DateOnly)
	wantGroupedChanges(t, next(4),
		"ADDED: "+key+` 2/2 [Cid Bob] "Cid and Bob reacted to your post" unread 2 latest Cid`,
		"ADDED: "+follows+` 1/1 [Bob] "Bob started following you" unread 1 latest Bob`,
		"REMOVED: "+key+` 1/1 [Cid] "Cid reacted to your post" unread 1 latest Cid`,
		"READ: "+key+` 1/1 [Cid] "Cid reacted to your post" unread 0 latest Cid`,
	)

	s.mustUnreact(t, cid, post)
	s.mustReact(t, dan, post, "SAD")
	s.MustDo(t, alice, `mutation{markNotificationsRead(all:true)}`, nil, "markNotificationsRead", nil)
	live := next(3)
	wantGroupedChanges(t, live,
		"REMOVED: "+key+` 0/0 [] "" unread 0 latest -`,
		"ADDED: "+key+` 1/1 [Dan] "Dan reacted to your post" unread 1 latest Dan`,
		"READ: "+follows+` 1/1 [Bob] "Bob started following you" unread 0 latest Bob | `+
			key+` 1/1 [Dan] "Dan reacted to your post" unread 0 latest Dan`,
	)
	if g := live[0].Groups[0]; g.UpdatedAt.IsZero() || g.Action != "REACTION" || g.Affected == nil || *g.Affected != "POST" {
		t.Fatalf("emptied group %+v: want its action, affected and when it was emptied", g)
	}
}
