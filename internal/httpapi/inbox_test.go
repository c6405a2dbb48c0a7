package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
)

type inboxChange struct {
	Cursor          string
	Kind            string
	Notification    *struct{ ID, ActionContent string }
	NotificationIDs []string
	UnreadCount     int
}

const inboxChangeFields = `cursor kind notification{id actionContent} notificationIds unreadCount`

// mustChanges reads n results of the inboxChanges subscription id.
func mustChanges(ws *gqlSocket, id string, n int) []inboxChange {
	ws.tb.Helper()
	out := make([]inboxChange, n)
	for i := range out {
		ws.MustData(id, "inboxChanges", &out[i])
	}
	return out
}

// wantChanges fails tb unless got is, kind by kind, "ADDED <content> <unread>"
// or "<KIND> <ids count> <unread>", with increasing cursors; an ADDED
// change's cursor and only id are its notification's.
func wantChanges(tb testing.TB, got []inboxChange, want ...string) {
	tb.Helper()
	var short []string
	for i, c := range got {
		if i > 0 && mustInt(tb, c.Cursor) <= mustInt(tb, got[i-1].Cursor) {
			tb.Fatalf("cursor %s after %s", c.Cursor, got[i-1].Cursor)
		}
		if c.Kind == "ADDED" {
			if c.Notification == nil || c.Notification.ID != c.Cursor || !slices.Equal(c.NotificationIDs, []string{c.Cursor}) {
				tb.Fatalf("ADDED change %+v: want its notification, whose id is the cursor", c)
			}
			short = append(short, "ADDED "+c.Notification.ActionContent+" "+strconv.Itoa(c.UnreadCount))
			continue
		}
		if c.Notification != nil {
			tb.Fatalf("%s change %+v has a notification", c.Kind, c)
		}
		short = append(short, c.Kind+" "+strconv.Itoa(len(c.NotificationIDs))+" "+strconv.Itoa(c.UnreadCount))
	}
	if !slices.Equal(short, want) {
		tb.Fatalf("changes %q, want %q", short, want)
	}
}

func mustInt(tb testing.TB, s string) int64 {
	tb.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		tb.Fatalf("%q is not an id", s)
	}
	return n
}

// TestInboxChanges: inboxChanges replays every change after the cursor
// (without the ADDED changes of notifications removed since), then sends
// live ones, each once; resuming from any cursor continues exactly there.
func TestInboxChanges(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "Alice")
	bob, _ := s.MustRegister(t, "Bob")
	post := s.MustPost(t, alice, "post")
	var c1 struct{ ID string }
	s.MustDo(t, bob, `mutation($p:ID!){createComment(postId:$p,body:"one"){id}}`, map[string]any{"p": post}, "createComment", &c1)
	for _, k := range []string{"LIKE", "LOVE"} {
		s.MustDo(t, bob, `mutation($p:ID!,$k:ReactionKind!){reactToPost(postId:$p,kind:$k){id}}`, map[string]any{"p": post, "k": k}, "reactToPost", nil)
	}
	s.MustDo(t, bob, `mutation($p:ID!){removeReactionFromPost(postId:$p)}`, map[string]any{"p": post}, "removeReactionFromPost", nil)
	stored := s.MustNotifications(t, alice)
	if len(stored) != 1 {
		t.Fatalf("alice's notifications %+v, want the comment's only", stored)
	}
	s.MustDo(t, alice, `mutation($u:ID){markNotificationsRead(all:true,upTo:$u)}`, map[string]any{"u": stored[0].ID}, "markNotificationsRead", nil)

	ws := s.MustDial(t, "graphql-transport-ws", http.Header{"Authorization": {"Bearer " + alice}}, nil)
	ws.MustAck()
	ws.Subscribe("c", `subscription{inboxChanges(after:"0"){`+inboxChangeFields+`}}`, nil)
	replay := mustChanges(ws, "c", 4)
	// The like's ADDED and the love's ADDED are left out: both were removed.
	wantChanges(t, replay, "ADDED one 1", "REMOVED 1 1", "REMOVED 1 1", "READ 1 0")
	if replay[3].NotificationIDs[0] != stored[0].ID {
		t.Fatalf("READ change %+v, want the comment's id", replay[3])
	}

	// Live: a new comment, then bob deletes the first one (read already).
	s.MustDo(t, bob, `mutation($p:ID!){createComment(postId:$p,body:"two"){id}}`, map[string]any{"p": post}, "createComment", nil)
	s.MustDo(t, bob, `mutation($c:ID!){deleteComment(id:$c)}`, map[string]any{"c": c1.ID}, "deleteComment", nil)
	live := mustChanges(ws, "c", 2)
	wantChanges(t, append(replay[3:], live...), "READ 1 0", "ADDED two 1", "REMOVED 1 1")

	// Resuming after the first REMOVED continues exactly there.
	ws.Subscribe("r", `subscription($a:ID){inboxChanges(after:$a){`+inboxChangeFields+`}}`, map[string]any{"a": replay[1].Cursor})
	resumed := mustChanges(ws, "r", 4)
	wantChanges(t, resumed, "REMOVED 1 1", "READ 1 0", "ADDED two 1", "REMOVED 1 1")
	for i, c := range resumed {
		if want := append(replay[2:], live...)[i]; c.Cursor != want.Cursor {
			t.Fatalf("resumed change %d has cursor %s, want %s", i, c.Cursor, want.Cursor)
		}
	}

	// notifications(after:"0") replays the additions still there only.
	ws.Subscribe("n", `subscription{notifications(after:"0"){id actionContent}}`, nil)
	var n struct{ ID, ActionContent string }
	ws.MustData("n", "notifications", &n)
	if n.ActionContent != "two" || n.ID != live[0].Cursor {
		t.Fatalf("notifications replayed %+v first, want the second comment's", n)
	}
	// Nothing else is pending on any subscription: the next results are
	// the next live change, on both inboxChanges subscriptions.
	s.MustDo(t, alice, `mutation{markNotificationsRead(all:true)}`, nil, "markNotificationsRead", nil)
	got := map[string]bool{}
	for range 2 {
		m, err := ws.next()
		if err != nil || m.Type != "next" || got[m.ID] || m.ID != "c" && m.ID != "r" {
			t.Fatalf("want the READ on c and r, got %+v (%s), %v", m, m.Payload, err)
		}
		got[m.ID] = true
		var p struct {
			Data struct{ InboxChanges inboxChange }
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		if c := p.Data.InboxChanges; c.Kind != "READ" || c.UnreadCount != 0 || !slices.Equal(c.NotificationIDs, []string{live[0].Cursor}) {
			t.Fatalf("live READ %+v, want the second comment's id, unread 0", c)
		}
	}
}

// TestUndoAndDeleteCodes: the codes and results of the new mutations over
// HTTP.
func TestUndoAndDeleteCodes(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "Alice")
	bob, _ := s.MustRegister(t, "Bob")
	cid, _ := s.MustRegister(t, "Cid")
	post := s.MustPost(t, alice, "post")
	var c struct{ ID string }
	s.MustDo(t, bob, `mutation($p:ID!){createComment(postId:$p,body:"c"){id}}`, map[string]any{"p": post}, "createComment", &c)

	var had bool
	s.MustDo(t, bob, `mutation($p:ID!){removeReactionFromPost(postId:$p)}`, map[string]any{"p": post}, "removeReactionFromPost", &had)
	if had {
		t.Fatal("removeReactionFromPost without a reaction = true")
	}
	s.MustDo(t, alice, `mutation($c:ID!){reactToComment(commentId:$c,kind:WOW){id}}`, map[string]any{"c": c.ID}, "reactToComment", nil)
	s.MustDo(t, alice, `mutation($c:ID!){removeReactionFromComment(commentId:$c)}`, map[string]any{"c": c.ID}, "removeReactionFromComment", &had)
	if !had {
		t.Fatal("removeReactionFromComment of a reaction = false")
	}
	for _, tc := range []struct {
		name, token, query string
		vars               map[string]any
		code               string
	}{
		{"UnreactUnknownPost", bob, `mutation{removeReactionFromPost(postId:"999")}`, nil, "NOT_FOUND"},
		{"UnreactUnknownComment", bob, `mutation{removeReactionFromComment(commentId:"x")}`, nil, "NOT_FOUND"},
		{"DeleteUnknownPost", alice, `mutation{deletePost(id:"999")}`, nil, "NOT_FOUND"},
		{"DeleteOthersPost", bob, `mutation($p:ID!){deletePost(id:$p)}`, map[string]any{"p": post}, "FORBIDDEN"},
		{"DeleteUnknownComment", alice, `mutation{deleteComment(id:"999")}`, nil, "NOT_FOUND"},
		{"DeleteOthersComment", cid, `mutation($c:ID!){deleteComment(id:$c)}`, map[string]any{"c": c.ID}, "FORBIDDEN"},
		{"Anonymous", "", `mutation($p:ID!){deletePost(id:$p)}`, map[string]any{"p": post}, "UNAUTHENTICATED"},
		{"BadUpTo", alice, `mutation{markNotificationsRead(all:true,upTo:"x")}`, nil, "BAD_USER_INPUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Do(t, tc.token, tc.query, tc.vars).Code(); got != tc.code {
				t.Fatalf("code %q, want %q", got, tc.code)
			}
		})
	}

	var ok bool
	s.MustDo(t, alice, `mutation($p:ID!){deletePost(id:$p)}`, map[string]any{"p": post}, "deletePost", &ok)
	if !ok {
		t.Fatal("deletePost = false")
	}
	r := s.Do(t, bob, `query($p:ID!){post(id:$p){id}}`, map[string]any{"p": post})
	if len(r.Errors) > 0 || string(r.Data["post"]) != "null" {
		t.Fatalf("post after delete: %s, %+v", r.Data["post"], r.Errors)
	}
	if ns := s.MustNotifications(t, alice); len(ns) != 0 {
		t.Fatalf("alice's notifications after deleting her post: %+v", ns)
	}
}
