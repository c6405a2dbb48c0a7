package soak

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/testbin"
)

// target is a post or comment that can be reacted to and deleted.
type target struct {
	Kind   string // "Post" or "Comment", as in the mutations' names
	ID     string
	Author string
	Post   string // a comment's post
	Parent string // a reply's comment
}

// reactionOutcome is what one actor's reactions to one target came to: the
// kind ("" for none) after the last call that returned success, and the
// kind the call in flight at the kill would leave, if there was one.
type reactionOutcome struct {
	ok, inFlight string
	hasInFlight  bool
}

// allows reports whether kind ("" for none) is a state the reaction may be
// in after the restart.
func (o reactionOutcome) allows(kind string) bool {
	return kind == o.ok || o.hasInFlight && kind == o.inFlight
}

// inboxNotification is a notification with what the checks below read.
type inboxNotification struct {
	ID, Message, Action, ActionID, ByUser, CreatedAt string
	ActionContent, Affected, AffectedID              *string
	Read                                             bool
}

// group is a NotificationGroup as notificationGroups and inboxChanges
// send it.
type group struct {
	Key                                        string
	Action                                     string
	Affected                                   *string
	AffectedID                                 *string
	NotificationCount, ActorCount, UnreadCount int
	SampleActors                               []string
	Message                                    string
	UpdatedAt                                  string
	Latest                                     *struct{ ID, CreatedAt string }
}

const groupFields = `key action affected affectedId notificationCount actorCount unreadCount sampleActors message updatedAt latest{id createdAt}`

func (g group) String() string {
	b, _ := json.Marshal(g)
	return string(b)
}

// MustInbox pages through token's notifications, newest first, and
// returns them with the unread count.
func (s *server) MustInbox(tb testing.TB, token string) ([]inboxNotification, int) {
	tb.Helper()
	return mustPages[inboxNotification](tb, s, token, "notifications", `id message action actionId byUser actionContent affected affectedId read createdAt`)
}

// MustGroups pages through token's notificationGroups, newest first.
func (s *server) MustGroups(tb testing.TB, token string) []group {
	tb.Helper()
	gs, _ := mustPages[group](tb, s, token, "notificationGroups", groupFields)
	return gs
}

// inboxChange is one inboxChanges result.
type inboxChange struct {
	Cursor, Kind    string
	NotificationIDs []string `json:"notificationIds"`
	UnreadCount     int
	Groups          []group
}

// MustFollowChanges subscribes to token's inboxChanges(after: "0") over
// graphql-transport-ws and hands each change to apply, in order, until
// apply has returned true and nothing more arrives for 300 ms. It fails
// the test if that takes more than 10 s.
func (s *server) MustFollowChanges(tb testing.TB, token string, apply func(inboxChange) bool) {
	tb.Helper()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial("ws://"+s.Addr+"/query", nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	type msg struct {
		ID      string          `json:"id,omitempty"`
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload,omitempty"`
	}
	init, _ := json.Marshal(map[string]any{"authorization": "Bearer " + token})
	sub, _ := json.Marshal(map[string]any{"query": `subscription{inboxChanges(after:"0"){cursor kind notificationIds unreadCount groups{` + groupFields + `}}}`})
	if err := conn.WriteJSON(msg{Type: "connection_init", Payload: init}); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	caughtUp, changes := false, 0
	for {
		dl := deadline
		if caughtUp {
			dl = time.Now().Add(300 * time.Millisecond)
		}
		_ = conn.SetReadDeadline(dl)
		var m msg
		if err := conn.ReadJSON(&m); err != nil {
			if caughtUp {
				return // quiet: the stream ended in the stored state
			}
			tb.Fatalf("inboxChanges after %d changes did not reach the stored state: %v", changes, err)
		}
		switch m.Type {
		case "connection_ack":
			if err := conn.WriteJSON(msg{ID: "1", Type: "subscribe", Payload: sub}); err != nil {
				tb.Fatal(err)
			}
		case "ping":
			_ = conn.WriteJSON(msg{Type: "pong"})
		case "next":
			var p struct {
				Data   struct{ InboxChanges inboxChange }
				Errors []gqlError
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
				tb.Fatalf("inboxChanges: %s (%v)", m.Payload, err)
			}
			changes++
			caughtUp = apply(p.Data.InboxChanges)
		default:
			tb.Fatalf("inboxChanges ended: %s %s", m.Type, m.Payload)
		}
	}
}

// groupOf names the group a notification belongs to (docs/api.md,
// "Grouped notifications") in the test's own terms.
func groupOf(action string, affected, affectedID *string, id, createdAt string) string {
	switch action {
	case "POST":
		return "POST|" + id
	case "FOLLOWING":
		return "FOLLOWING|" + createdAt[:len("2006-01-02")]
	}
	return action + "|" + *affected + "|" + *affectedID
}

// verbs are the groups' verbs, by action and what was acted on.
var verbs = map[string]string{
	"REACTION|POST": "reacted to your post", "REACTION|COMMENT": "reacted to your comment",
	"COMMENT|POST": "commented on your post", "COMMENT|COMMENT": "replied to your comment",
	"FOLLOWING|": "started following you",
}

// wantGroups groups notifications (newest first) as docs/api.md says the
// server must, keyed by groupOf.
func wantGroups(ns []inboxNotification) map[string]group {
	out := map[string]group{}
	for _, n := range ns {
		k := groupOf(n.Action, n.Affected, n.AffectedID, n.ID, n.CreatedAt)
		g, ok := out[k]
		if !ok {
			g = group{Action: n.Action, Affected: n.Affected, AffectedID: n.AffectedID, Latest: &struct{ ID, CreatedAt string }{n.ID, n.CreatedAt}, Message: n.Message}
		}
		g.NotificationCount++
		if !n.Read {
			g.UnreadCount++
		}
		if !slices.Contains(g.SampleActors, n.ByUser) {
			g.SampleActors = append(g.SampleActors, n.ByUser) // all of them, cut below
		}
		out[k] = g
	}
	for k, g := range out {
		g.ActorCount = len(g.SampleActors)
		verb := verbs[g.Action+"|"+deref(g.Affected)]
		switch {
		case g.ActorCount == 2:
			g.Message = fmt.Sprintf("%s and %s %s", g.SampleActors[0], g.SampleActors[1], verb)
		case g.ActorCount > 2:
			g.Message = fmt.Sprintf("%s and %d others %s", g.SampleActors[0], g.ActorCount-1, verb)
		}
		g.SampleActors = g.SampleActors[:min(3, len(g.SampleActors))]
		out[k] = g
	}
	return out
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestRestartAfterKillDuringUndo kills the server with SIGKILL in the
// middle of a burst of reaction toggles (react, change kind, remove),
// deletes of comments (with their replies) and posts, and mark-reads,
// restarts it on the same SQLite file, and checks that every call that
// returned success is reflected, that every notification has a cause that
// exists and every cause its notifications, that unread counts, each
// user's inboxChanges from "0" and notificationGroups all agree with the
// stored notifications.
func TestRestartAfterKillDuringUndo(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pulse.db")
	s := MustStart(t, db, append(noLimits, "--log-level", "warn")...)

	const actors = 4
	names, tokens := []string{"author"}, []string{s.MustRegister(t, "author")}
	for i := range actors {
		names = append(names, fmt.Sprint("actor", i))
		tokens = append(tokens, s.MustRegister(t, names[i+1]))
		s.MustDo(t, tokens[i+1], `mutation{follow(username:"author"){id}}`, nil, "follow", nil)
	}
	// Posts by the author, each with a comment and a reply to it by two
	// different actors.
	var posts []string
	var targets []target
	const comment = `mutation($p:ID!,$b:String!,$r:ID){createComment(postId:$p,body:$b,parentId:$r){id}}`
	for i := range 12 {
		var p, c, r struct{ ID string }
		s.MustDo(t, tokens[0], `mutation($b:String!){createPost(body:$b){id}}`, map[string]any{"b": fmt.Sprint("post ", i)}, "createPost", &p)
		ca, ra := 1+i%actors, 1+(i+1)%actors
		s.MustDo(t, tokens[ca], comment, map[string]any{"p": p.ID, "b": "a comment"}, "createComment", &c)
		s.MustDo(t, tokens[ra], comment, map[string]any{"p": p.ID, "b": "a reply", "r": c.ID}, "createComment", &r)
		posts = append(posts, p.ID)
		targets = append(targets, target{"Post", p.ID, names[0], "", ""}, target{"Comment", c.ID, names[ca], p.ID, ""}, target{"Comment", r.ID, names[ra], p.ID, c.ID})
	}

	// The burst, until the kill: each actor toggles its reactions at
	// random; the author deletes comments and posts; the author and the
	// actors mark their inboxes read up to their newest notification.
	var burst sync.WaitGroup
	outcomes := make([]map[target]reactionOutcome, actors) // each actor's, written by its goroutine
	for a := range actors {
		outcomes[a] = map[target]reactionOutcome{}
		burst.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(a), 15))
			for {
				tg := targets[rnd.IntN(len(targets))]
				lower := strings.ToLower(tg.Kind)
				var kind string
				var err error
				if rnd.IntN(3) == 0 {
					err = s.Do(tokens[a+1], fmt.Sprintf(`mutation($id:ID!){removeReactionFrom%s(%sId:$id)}`, tg.Kind, lower), map[string]any{"id": tg.ID}, "removeReactionFrom"+tg.Kind, nil)
				} else {
					kind = []string{"LIKE", "LOVE", "LAUGH"}[rnd.IntN(3)]
					err = s.Do(tokens[a+1], fmt.Sprintf(`mutation($id:ID!,$k:ReactionKind!){reactTo%s(%sId:$id,kind:$k){id}}`, tg.Kind, lower), map[string]any{"id": tg.ID, "k": kind}, "reactTo"+tg.Kind, nil)
				}
				o := outcomes[a][tg]
				switch {
				case err == nil:
					outcomes[a][tg] = reactionOutcome{ok: kind}
				case strings.Contains(err.Error(), "(NOT_FOUND)"): // deleted: it has no reactions left
				default: // the kill
					outcomes[a][tg] = reactionOutcome{ok: o.ok, inFlight: kind, hasInFlight: true}
					return
				}
			}
		})
	}
	deleted, deleting := map[string]bool{}, "" // "Kind|id"; written by the deleter
	burst.Go(func() {
		rnd := rand.New(rand.NewPCG(15, 15))
		for _, i := range rnd.Perm(len(targets)) {
			tg := targets[i]
			// Half the posts go, and a comment or a reply on each of a
			// quarter of them: the rest stay.
			if j := i / 3; j%2 == 0 && tg.Kind != "Post" || j%2 == 1 && (tg.Kind == "Post" || (j%4 == 1) != (tg.Parent == "")) {
				continue
			}
			deleting = tg.Kind + "|" + tg.ID
			if err := s.Do(tokens[0], fmt.Sprintf(`mutation($id:ID!){delete%s(id:$id)}`, tg.Kind), map[string]any{"id": tg.ID}, "delete"+tg.Kind, nil); err != nil {
				if strings.Contains(err.Error(), "(NOT_FOUND)") {
					continue // its post went first
				}
				return
			}
			deleted[deleting], deleting = true, ""
			time.Sleep(60 * time.Millisecond)
		}
	})
	readUpTo := make([]int64, len(tokens)) // written by the reader
	burst.Go(func() {
		for i := 0; ; i++ {
			u := i % len(tokens)
			var c struct {
				Edges []struct{ Node struct{ ID string } }
			}
			if s.Do(tokens[u], `{notifications(first:1){edges{node{id}}}}`, nil, "notifications", &c) != nil {
				return
			}
			if len(c.Edges) == 0 {
				continue
			}
			upTo := c.Edges[0].Node.ID
			if s.Do(tokens[u], `mutation($u:ID!){markNotificationsRead(all:true,upTo:$u)}`, map[string]any{"u": upTo}, "markNotificationsRead", nil) != nil {
				return
			}
			n, _ := strconv.ParseInt(upTo, 10, 64)
			readUpTo[u] = max(readUpTo[u], n)
			time.Sleep(10 * time.Millisecond)
		}
	})
	time.Sleep(600 * time.Millisecond)
	s.Kill()
	burst.Wait()
	testbin.HTTPClient.CloseIdleConnections()
	if len(deleted) == 0 {
		t.Fatal("the burst deleted nothing before the kill")
	}

	s2 := MustStart(t, db, append(noLimits, "--log-level", "warn")...)

	// What exists after the restart.
	postExists := map[string]bool{}
	type storedComment struct{ post, author, parent string }
	comments := map[string]storedComment{}
	postReactions := map[string]map[string]string{} // post -> user -> "id|kind"
	for _, id := range posts {
		var p *struct {
			Comments []struct {
				ID     string
				Author struct{ Username string }
				Parent *struct{ ID string }
			}
			Reactions []struct {
				ID, Kind string
				User     struct{ Username string }
			}
		}
		s2.MustDo(t, tokens[0], `query($id:ID!){post(id:$id){comments(first:500){id author{username} parent{id}} reactions(first:500){id kind user{username}}}}`, map[string]any{"id": id}, "post", &p)
		if p == nil {
			continue
		}
		postExists[id] = true
		postReactions[id] = map[string]string{}
		for _, c := range p.Comments {
			comments[c.ID] = storedComment{id, c.Author.Username, ""}
			if c.Parent != nil {
				comments[c.ID] = storedComment{id, c.Author.Username, c.Parent.ID}
			}
		}
		for _, r := range p.Reactions {
			postReactions[id][r.User.Username] = r.ID + "|" + r.Kind
		}
	}
	exists := func(tg target) bool {
		if tg.Kind == "Post" {
			return postExists[tg.ID]
		}
		_, ok := comments[tg.ID]
		return ok
	}
	mayBeGone := func(kind, id string) bool { return id != "" && (deleted[kind+"|"+id] || kind+"|"+id == deleting) }
	for _, tg := range targets {
		switch {
		case deleted[tg.Kind+"|"+tg.ID] && exists(tg):
			t.Errorf("%s %s was deleted but exists after the restart", tg.Kind, tg.ID)
		case !exists(tg) && !mayBeGone(tg.Kind, tg.ID) && !mayBeGone("Post", tg.Post) && !mayBeGone("Comment", tg.Parent):
			t.Errorf("%s %s was never deleted but is gone after the restart", tg.Kind, tg.ID)
		}
	}
	for id, c := range comments {
		if c.parent != "" {
			if _, ok := comments[c.parent]; !ok {
				t.Errorf("reply %s outlived its comment %s", id, c.parent)
			}
		}
	}

	// Each user's notifications are exactly those of what exists; a
	// reaction's is of its last kind; unread counts agree.
	var want [][]string
	for range tokens {
		want = append(want, nil)
	}
	for a := range actors {
		want[0] = append(want[0], "FOLLOWING|"+names[a+1])
		for _, id := range posts {
			if postExists[id] {
				want[a+1] = append(want[a+1], "POST|"+id)
			}
		}
	}
	index := map[string]int{}
	for i, n := range names {
		index[n] = i
	}
	for id, c := range comments {
		if c.parent == "" {
			want[0] = append(want[0], "COMMENT|"+id)
		} else {
			want[0] = append(want[0], "COMMENT|"+id)
			want[index[comments[c.parent].author]] = append(want[index[comments[c.parent].author]], "COMMENT|"+id)
		}
	}
	for id, rs := range postReactions {
		for user, r := range rs {
			want[0] = append(want[0], "REACTION|"+id+"|"+user+"|"+r)
		}
	}
	inboxes := make([][]inboxNotification, len(tokens))
	commentReactions := map[string][]string{} // comment|actor -> kinds, from the notifications
	for u, tok := range tokens {
		ns, unread := s2.MustInbox(t, tok)
		inboxes[u] = ns
		var got []string
		unreadNow := 0
		for _, n := range ns {
			key := n.Action + "|" + n.ActionID
			switch {
			case n.Action == "FOLLOWING":
				key = "FOLLOWING|" + n.ByUser
			case n.Action == "REACTION" && *n.Affected == "POST":
				key = fmt.Sprintf("REACTION|%s|%s|%s|%s", *n.AffectedID, n.ByUser, n.ActionID, strings.ToUpper(*n.ActionContent))
			case n.Action == "REACTION":
				// A comment's reactions can be seen only through its
				// author's notifications: checked below.
				k := *n.AffectedID + "|" + n.ByUser
				commentReactions[k] = append(commentReactions[k], strings.ToUpper(*n.ActionContent))
				if c, ok := comments[*n.AffectedID]; !ok || c.author != names[u] {
					t.Errorf("%s has a notification of a reaction to comment %s, which is not theirs or does not exist", names[u], *n.AffectedID)
				}
			}
			if n.Action != "REACTION" || *n.Affected == "POST" {
				got = append(got, key)
			}
			if !n.Read {
				unreadNow++
			}
			if id := mustInt(t, n.ID); id <= readUpTo[u] && !n.Read {
				t.Errorf("%s: notification %d is unread after markNotificationsRead(upTo: %d) returned", names[u], id, readUpTo[u])
			}
		}
		slices.Sort(got)
		slices.Sort(want[u])
		if !slices.Equal(got, want[u]) {
			t.Errorf("%s's notifications after the restart:\n got %v\nwant %v", names[u], got, want[u])
		}
		if unread != unreadNow {
			t.Errorf("%s's unreadCount is %d; %d of the notifications are unread", names[u], unread, unreadNow)
		}
	}

	// Each actor's reaction to each target that exists is in the state of
	// the last call that returned success, or of the call in flight.
	for a := range actors {
		for _, tg := range targets {
			if !exists(tg) || tg.Author == names[a+1] {
				continue
			}
			o := outcomes[a][tg]
			var kinds []string // what the restarted server shows
			if tg.Kind == "Post" {
				if r := postReactions[tg.ID][names[a+1]]; r != "" {
					kinds = append(kinds, r[strings.IndexByte(r, '|')+1:])
				}
			} else {
				kinds = commentReactions[tg.ID+"|"+names[a+1]]
			}
			if len(kinds) > 1 || !o.allows(strings.Join(kinds, "")) {
				t.Errorf("%s's reaction to %s %s is %v after the restart; want %q (or %q, in flight at the kill: %v)", names[a+1], tg.Kind, tg.ID, kinds, o.ok, o.inFlight, o.hasInFlight)
			}
		}
	}

	// Each user's change stream from the start ends in the stored state,
	// its last groups are those notificationGroups lists, and those are
	// the stored notifications, grouped.
	for u, tok := range tokens {
		stored := map[string]bool{} // id -> read
		for _, n := range inboxes[u] {
			stored[n.ID] = n.Read
		}
		state, streamGroups := map[string]bool{}, map[string]group{}
		var last int64
		unread := -1
		s2.MustFollowChanges(t, tok, func(c inboxChange) bool {
			if cur := mustInt(t, c.Cursor); cur <= last {
				t.Errorf("%s: change %s after %d: duplicate or out of order", names[u], c.Cursor, last)
			} else {
				last = cur
			}
			for _, id := range c.NotificationIDs {
				switch c.Kind {
				case "ADDED":
					if _, dup := state[id]; dup {
						t.Errorf("%s: notification %s added twice", names[u], id)
					}
					state[id] = false
				case "REMOVED":
					delete(state, id)
				case "READ":
					if _, ok := state[id]; ok {
						state[id] = true
					}
				}
			}
			for _, g := range c.Groups {
				streamGroups[g.Key] = g
			}
			unread = c.UnreadCount
			n := 0
			for _, read := range state {
				if !read {
					n++
				}
			}
			return fmt.Sprint(state) == fmt.Sprint(stored) && unread == n
		})

		groups := s2.MustGroups(t, tok)
		expected := wantGroups(inboxes[u])
		for i, g := range groups {
			if i > 0 && mustInt(t, g.Latest.ID) >= mustInt(t, groups[i-1].Latest.ID) {
				t.Errorf("%s: group %s is listed after %s, whose latest is older", names[u], g.Key, groups[i-1].Key)
			}
			if sg := streamGroups[g.Key]; sg.String() != g.String() {
				t.Errorf("%s: group %s in inboxChanges ends as\n %v\nnotificationGroups has\n %v", names[u], g.Key, sg, g)
			}
			k := groupOf(g.Action, g.Affected, g.AffectedID, g.Latest.ID, g.Latest.CreatedAt)
			w := expected[k]
			w.Key, w.UpdatedAt = g.Key, g.UpdatedAt
			if w.String() != g.String() {
				t.Errorf("%s: group %s is\n %v\nits notifications make\n %v", names[u], k, g, w)
			}
			delete(expected, k)
		}
		for k := range expected {
			t.Errorf("%s: no group %s for notifications that exist", names[u], k)
		}
		for k, g := range streamGroups {
			if g.NotificationCount > 0 && !slices.ContainsFunc(groups, func(h group) bool { return h.Key == k }) {
				t.Errorf("%s: inboxChanges leaves group %v, which notificationGroups does not list", names[u], g)
			}
		}
	}
	t.Logf("killed after deleting %d of %d posts and comments; %d posts and %d comments exist after the restart", len(deleted), len(targets), len(postExists), len(comments))
}

func mustInt(tb testing.TB, id string) int64 {
	tb.Helper()
	var n int64
	if _, err := fmt.Sscan(id, &n); err != nil {
		tb.Fatalf("id %q: %v", id, err)
	}
	return n
}
