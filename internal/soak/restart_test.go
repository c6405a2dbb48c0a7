package soak

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/testbin"
)

// storedNotification is a notification as the notifications query lists it.
type storedNotification struct {
	ID, Action, ActionID, ByUser        string
	ActionContent, Affected, AffectedID *string
}

// MustAllNotifications pages through every notification of token's user.
func (s *server) MustAllNotifications(tb testing.TB, token string) []storedNotification {
	tb.Helper()
	all, _ := mustPages[storedNotification](tb, s, token, "notifications", `id action actionId byUser actionContent affected affectedId`)
	return all
}

// mustPages pages through field, a connection of token's (notifications
// or notificationGroups), 100 nodes with these fields at a time, and
// returns the nodes and the unread count.
func mustPages[T any](tb testing.TB, s *server, token, field, fields string) ([]T, int) {
	tb.Helper()
	var all []T
	var after *string
	for {
		var c struct {
			Edges    []struct{ Node T }
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
			UnreadCount int
		}
		s.MustDo(tb, token, `query($a:String){`+field+`(first:100,after:$a){edges{node{`+fields+`}} pageInfo{hasNextPage endCursor} unreadCount}}`,
			map[string]any{"a": after}, field, &c)
		for _, e := range c.Edges {
			all = append(all, e.Node)
		}
		if !c.PageInfo.HasNextPage {
			return all, c.UnreadCount
		}
		after = c.PageInfo.EndCursor
	}
}

// TestRestartAfterKill kills the server with SIGKILL in the middle of a
// burst of actions, restarts it on the same SQLite file, and checks that
// nothing is half-written (every notification's action exists, every
// action that exists has all of its notifications, every action that
// returned success exists) and that a socket resuming with ?after= the
// last id it saw gets every committed notification, each once.
func TestRestartAfterKill(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pulse.db")
	s := MustStart(t, db, append(noLimits, "--log-level", "warn")...)

	const followers = 5
	author := s.MustRegister(t, "author")
	tokens := []string{author}
	for i := range followers {
		tok := s.MustRegister(t, fmt.Sprint("follower", i))
		s.MustDo(t, tok, `mutation{follow(username:"author"){id}}`, nil, "follow", nil)
		tokens = append(tokens, tok)
	}
	var p0 struct{ ID string }
	s.MustDo(t, author, `mutation{createPost(body:"the post"){id}}`, nil, "createPost", &p0)

	// Every user has a socket open through the burst.
	ctx, cancel := context.WithCancel(context.Background())
	clients := make([]*plainClient, len(tokens))
	var cwg sync.WaitGroup
	for i, tok := range tokens {
		clients[i] = &plainClient{addrs: []string{s.Addr}, token: tok}
		cwg.Go(func() { clients[i].run(ctx, 0, nil) })
	}
	time.Sleep(200 * time.Millisecond)

	// The burst: the author posts (5 notifications each) while the
	// followers comment (1 each), as fast as they can, until the kill.
	var mu sync.Mutex
	okPosts, okComments := []string{}, []string{}
	var burst sync.WaitGroup
	for g := range 6 {
		burst.Go(func() {
			for i := 0; ; i++ {
				var r struct{ ID string }
				if g < 3 {
					if s.Do(author, `mutation($b:String!){createPost(body:$b){id}}`, map[string]any{"b": fmt.Sprint("burst ", g, " ", i)}, "createPost", &r) != nil {
						return
					}
					mu.Lock()
					okPosts = append(okPosts, r.ID)
					mu.Unlock()
				} else {
					if s.Do(tokens[g-2], `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`, map[string]any{"p": p0.ID, "b": fmt.Sprint("c", i)}, "createComment", &r) != nil {
						return
					}
					mu.Lock()
					okComments = append(okComments, r.ID)
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	cancel() // the clients stop reconnecting: their server is about to die
	s.Kill()
	burst.Wait()
	cwg.Wait()
	testbin.HTTPClient.CloseIdleConnections()
	if len(okPosts) == 0 || len(okComments) == 0 {
		t.Fatalf("the burst did nothing before the kill: %d posts, %d comments", len(okPosts), len(okComments))
	}

	s2 := MustStart(t, db, append(noLimits, "--log-level", "warn")...)
	stored := make([][]storedNotification, len(tokens))
	for i, tok := range tokens {
		stored[i] = s2.MustAllNotifications(t, tok)
	}

	// Every post that exists (ids are dense) has notified every follower,
	// and every notified post exists.
	existing := map[string]bool{}
	for id := 1; ; id++ {
		var p *struct{ ID string }
		s2.MustDo(t, "", `query($id:ID!){post(id:$id){id}}`, map[string]any{"id": strconv.Itoa(id)}, "post", &p)
		if p == nil {
			if id > len(okPosts)+100 {
				break
			}
			continue
		}
		existing[p.ID] = true // p0 included: the followers followed before it
	}
	for _, id := range okPosts {
		if !existing[id] {
			t.Errorf("post %s returned success but does not exist after the restart", id)
		}
	}
	for f := 1; f <= followers; f++ {
		told := map[string]int{}
		for _, n := range stored[f] {
			if n.Action == "POST" {
				told[n.ActionID]++
			}
		}
		for id := range existing {
			if told[id] != 1 {
				t.Errorf("follower %d was told %d times of post %s, want once", f-1, told[id], id)
			}
		}
		for id := range told {
			if !existing[id] {
				t.Errorf("follower %d was told of post %s, which does not exist", f-1, id)
			}
		}
	}

	// Every comment on the post has notified the author once, and every
	// notified comment exists.
	comments := map[string]bool{}
	vars := map[string]any{"id": p0.ID} // then "after": the last id of the page before
	for {
		var post struct{ Comments []struct{ ID string } }
		s2.MustDo(t, "", `query($id:ID!,$after:ID){post(id:$id){comments(first:500,after:$after){id}}}`, vars, "post", &post)
		if len(post.Comments) == 0 {
			break
		}
		for _, c := range post.Comments {
			comments[c.ID] = true
		}
		vars["after"] = post.Comments[len(post.Comments)-1].ID
	}
	for _, id := range okComments {
		if !comments[id] {
			t.Errorf("comment %s returned success but does not exist after the restart", id)
		}
	}
	told := map[string]int{}
	for _, n := range stored[0] {
		if n.Action == "FOLLOWING" {
			continue // from the setup
		}
		told[n.ActionID]++
		if n.Action != "COMMENT" || n.AffectedID == nil || *n.AffectedID != p0.ID {
			t.Errorf("the author has an unexpected notification %+v", n)
		}
	}
	for id := range comments {
		if told[id] != 1 {
			t.Errorf("the author was told %d times of comment %s, want once", told[id], id)
		}
	}
	for id := range told {
		if !comments[id] {
			t.Errorf("the author was told of comment %s, which does not exist", id)
		}
	}

	// Each socket resumes after the last id it saw and gets the rest: in
	// all, every stored notification, each once, in order.
	ctx2, cancel2 := context.WithCancel(context.Background())
	for i, c := range clients {
		c.addrs = []string{s2.Addr}
		cwg.Go(func() { clients[i].run(ctx2, 0, nil) })
	}
	deadline := time.Now().Add(30 * time.Second)
	for i, c := range clients {
		want := make([]int64, len(stored[i]))
		for j, n := range stored[i] {
			want[len(want)-1-j], _ = strconv.ParseInt(n.ID, 10, 64) // stored newest first
		}
		for {
			fs, errs := c.snapshot()
			if len(errs) > 0 {
				t.Errorf("socket %d: %v", i, errs)
			}
			got := make([]int64, len(fs))
			for j, f := range fs {
				got[j] = f.ID
			}
			if slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("socket %d: received %d notifications across the restart, want the %d stored", i, len(got), len(want))
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	cancel2()
	cwg.Wait()
	t.Logf("killed after %d posts (x%d notifications) and %d comments had returned success; %d posts and %d comments exist after the restart",
		len(okPosts), followers, len(okComments), len(existing)-1, len(comments))
}
