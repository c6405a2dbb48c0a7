package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestTour(t *testing.T) {
	s := MustServer(t)
	oliver, _ := s.MustRegister(t, "Oliver")
	john, _ := s.MustRegister(t, "John")
	s.MustFollow(t, john, "oliver")
	postID := s.MustPost(t, oliver, "Hello, followers")

	ns := s.MustNotifications(t, john)
	if len(ns) != 1 {
		t.Fatalf("john has %d notifications, want 1 (the post; none of his own follow): %+v", len(ns), ns)
	}
	n := ns[0]
	if n.Message != "Oliver created a new post" || n.Action != "POST" || n.ActionID != postID || n.ByUser != "Oliver" ||
		n.ActionContent == nil || *n.ActionContent != "Hello, followers" || n.Affected != nil || n.AffectedID != nil || n.Read {
		t.Fatalf("john's newest notification = %+v", n)
	}
	oliverNs := s.MustNotifications(t, oliver)
	if len(oliverNs) != 1 || oliverNs[0].Message != "John started following you" || oliverNs[0].Action != "FOLLOWING" || oliverNs[0].ActionContent != nil {
		t.Fatalf("oliver's notifications = %+v", oliverNs)
	}
}

func TestAuthentication(t *testing.T) {
	s := MustServer(t)
	token, id := s.MustRegister(t, "Alice")

	t.Run("MeWithToken", func(t *testing.T) {
		var me struct{ ID, Username string }
		s.MustDo(t, token, `{me{id username}}`, nil, "me", &me)
		if me.ID != id || me.Username != "Alice" {
			t.Fatalf("me = %+v", me)
		}
	})
	t.Run("BareToken", func(t *testing.T) {
		r := doRaw(t, s, token, `{me{id}}`)
		if r.StatusCode != http.StatusOK {
			t.Fatalf("status %d", r.StatusCode)
		}
	})
	t.Run("MissingTokenIsFieldError", func(t *testing.T) {
		r := s.Do(t, "", `{me{id}}`, nil)
		if r.Status != http.StatusOK || r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("status %d code %q, want 200 UNAUTHENTICATED", r.Status, r.Code())
		}
	})
	t.Run("BadTokenIs401", func(t *testing.T) {
		r := s.Do(t, "not-a-token", `{me{id}}`, nil)
		if r.Status != http.StatusUnauthorized || r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("status %d code %q, want 401 UNAUTHENTICATED", r.Status, r.Code())
		}
	})
	t.Run("WrongPassword", func(t *testing.T) {
		r := s.Do(t, "", `mutation{login(username:"alice",password:"wrong-password"){accessToken}}`, nil)
		if r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("code %q, want UNAUTHENTICATED", r.Code())
		}
	})
	t.Run("UnknownUser", func(t *testing.T) {
		r := s.Do(t, "", `mutation{login(username:"nobody",password:"password-x"){accessToken}}`, nil)
		if r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("code %q, want UNAUTHENTICATED", r.Code())
		}
	})
	t.Run("LoginIgnoresCaseAndLogoutRevokes", func(t *testing.T) {
		var p struct {
			AccessToken string
			User        struct{ Username string }
		}
		s.MustDo(t, "", `mutation{login(username:"ALICE",password:"password-Alice"){accessToken user{username}}}`, nil, "login", &p)
		if p.AccessToken == "" || p.AccessToken == token || p.User.Username != "Alice" {
			t.Fatalf("login = %+v", p)
		}
		var ok bool
		s.MustDo(t, p.AccessToken, `mutation{logout}`, nil, "logout", &ok)
		if !ok {
			t.Fatal("logout returned false")
		}
		if r := s.Do(t, p.AccessToken, `{me{id}}`, nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("revoked token: status %d, want 401", r.Status)
		}
		if r := s.Do(t, token, `{me{id}}`, nil); r.Status != http.StatusOK || len(r.Errors) > 0 {
			t.Fatalf("the other session was revoked too: %+v", r)
		}
	})
	t.Run("LogoutWithoutToken", func(t *testing.T) {
		if r := s.Do(t, "", `mutation{logout}`, nil); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("code %q", r.Code())
		}
	})
	t.Run("TokenShape", func(t *testing.T) {
		if len(token) != 43 || strings.ContainsAny(token, "+/=") {
			t.Fatalf("token %q is not 32 bytes of unpadded base64url", token)
		}
	})
}

func doRaw(t *testing.T, s *testServer, authorization, query string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(fmt.Sprintf(`{"query":%q}`, query)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestErrors(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "Alice")
	bob, _ := s.MustRegister(t, "Bob")
	postA := s.MustPost(t, alice, "a post")
	postB := s.MustPost(t, bob, "another post")
	var c struct{ ID string }
	s.MustDo(t, bob, `mutation($p:ID!){createComment(postId:$p,body:"on b"){id}}`, map[string]any{"p": postB}, "createComment", &c)
	s.MustFollow(t, alice, "Bob")

	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name  string
		token string
		query string
		vars  map[string]any
		code  string
		field string
	}{
		{"UsernameTaken", "", `mutation{register(username:"ALICE",password:"12345678"){accessToken}}`, nil, "CONFLICT", ""},
		{"UsernameTooShort", "", `mutation{register(username:"ab",password:"12345678"){accessToken}}`, nil, "BAD_USER_INPUT", "username"},
		{"UsernameTooLong", "", `mutation($u:String!){register(username:$u,password:"12345678"){accessToken}}`, map[string]any{"u": long(31)}, "BAD_USER_INPUT", "username"},
		{"UsernameBadChars", "", `mutation{register(username:"a-b-c",password:"12345678"){accessToken}}`, nil, "BAD_USER_INPUT", "username"},
		{"PasswordTooShort", "", `mutation{register(username:"carol",password:"1234567"){accessToken}}`, nil, "BAD_USER_INPUT", "password"},
		{"PasswordTooLong", "", `mutation($p:String!){register(username:"carol",password:$p){accessToken}}`, map[string]any{"p": long(73)}, "BAD_USER_INPUT", "password"},
		{"PostEmpty", alice, `mutation{createPost(body:""){id}}`, nil, "BAD_USER_INPUT", "body"},
		{"PostTooLong", alice, `mutation($b:String!){createPost(body:$b){id}}`, map[string]any{"b": long(5001)}, "BAD_USER_INPUT", "body"},
		{"PostNeedsToken", "", `mutation{createPost(body:"x"){id}}`, nil, "UNAUTHENTICATED", ""},
		{"CommentTooLong", alice, `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`, map[string]any{"p": postA, "b": long(2001)}, "BAD_USER_INPUT", "body"},
		{"CommentUnknownPost", alice, `mutation{createComment(postId:"999999",body:"x"){id}}`, nil, "NOT_FOUND", ""},
		{"CommentMalformedPostID", alice, `mutation{createComment(postId:"abc",body:"x"){id}}`, nil, "NOT_FOUND", ""},
		{"CommentUnknownParent", alice, `mutation($p:ID!){createComment(postId:$p,body:"x",parentId:"999999"){id}}`, map[string]any{"p": postA}, "NOT_FOUND", ""},
		{"CommentParentOnOtherPost", alice, `mutation($p:ID!,$c:ID!){createComment(postId:$p,body:"x",parentId:$c){id}}`, map[string]any{"p": postA, "c": c.ID}, "BAD_USER_INPUT", "parentId"},
		{"ReactUnknownPost", alice, `mutation{reactToPost(postId:"999999",kind:LIKE){id}}`, nil, "NOT_FOUND", ""},
		{"ReactUnknownComment", alice, `mutation{reactToComment(commentId:"999999",kind:LIKE){id}}`, nil, "NOT_FOUND", ""},
		{"ReactUnknownKind", alice, `mutation($p:ID!){reactToPost(postId:$p,kind:HUG){id}}`, map[string]any{"p": postB}, "GRAPHQL_VALIDATION_FAILED", ""},
		{"ReactUnknownKindVariable", alice, `mutation($p:ID!,$k:ReactionKind!){reactToPost(postId:$p,kind:$k){id}}`, map[string]any{"p": postB, "k": "HUG"}, "GRAPHQL_VALIDATION_FAILED", ""},
		{"FollowSelf", alice, `mutation{follow(username:"alice"){id}}`, nil, "BAD_USER_INPUT", "username"},
		{"FollowTwice", alice, `mutation{follow(username:"bob"){id}}`, nil, "CONFLICT", ""},
		{"FollowUnknown", alice, `mutation{follow(username:"nobody"){id}}`, nil, "NOT_FOUND", ""},
		{"UnfollowNotFollowing", bob, `mutation{unfollow(username:"alice"){id}}`, nil, "CONFLICT", ""},
		{"UnfollowSelf", bob, `mutation{unfollow(username:"bob"){id}}`, nil, "BAD_USER_INPUT", "username"},
		{"PageTooBig", alice, `{notifications(first:101){unreadCount}}`, nil, "BAD_USER_INPUT", "first"},
		{"PageNegative", alice, `{notifications(first:-1){unreadCount}}`, nil, "BAD_USER_INPUT", "first"},
		{"BadCursor", alice, `{notifications(after:"zzz"){unreadCount}}`, nil, "BAD_USER_INPUT", "after"},
		{"MarkReadNeedsIdsOrAll", alice, `mutation{markNotificationsRead}`, nil, "BAD_USER_INPUT", "ids"},
		{"SyntaxError", alice, `{me{id}`, nil, "GRAPHQL_PARSE_FAILED", ""},
		{"UnknownField", alice, `{me{email}}`, nil, "GRAPHQL_VALIDATION_FAILED", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.Do(t, tt.token, tt.query, tt.vars)
			if r.Code() != tt.code {
				t.Fatalf("code %q, want %q (errors %+v)", r.Code(), tt.code, r.Errors)
			}
			if field, _ := r.Errors[0].Extensions["field"].(string); field != tt.field {
				t.Fatalf("field %q, want %q", field, tt.field)
			}
			if r.Errors[0].Message == "" || r.Errors[0].Message == "internal error" {
				t.Fatalf("message %q does not say what is wrong", r.Errors[0].Message)
			}
		})
	}

	t.Run("LimitsAreInclusive", func(t *testing.T) {
		s.MustDo(t, alice, `mutation($b:String!){createPost(body:$b){id}}`, map[string]any{"b": strings.Repeat("é", 5000)}, "createPost", nil)
		s.MustDo(t, alice, `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`, map[string]any{"p": postA, "b": long(2000)}, "createComment", nil)
		s.MustDo(t, "", `mutation($u:String!,$p:String!){register(username:$u,password:$p){accessToken}}`, map[string]any{"u": long(30), "p": long(72)}, "register", nil)
	})
	t.Run("FailedActionsLeaveNothing", func(t *testing.T) {
		ns := s.MustNotifications(t, bob)
		if len(ns) != 1 || ns[0].Action != "FOLLOWING" {
			t.Fatalf("bob's notifications after failed actions = %+v, want only alice's follow", ns)
		}
	})
}

func TestNotificationRules(t *testing.T) {
	s := MustServer(t)
	oliver, _ := s.MustRegister(t, "Oliver")
	john, _ := s.MustRegister(t, "John")
	ann, _ := s.MustRegister(t, "Ann")
	post := s.MustPost(t, oliver, "my post")

	var c1, c2, c3 struct{ ID string }
	s.MustDo(t, ann, `mutation($p:ID!){createComment(postId:$p,body:"first!"){id}}`, map[string]any{"p": post}, "createComment", &c1)
	s.MustDo(t, john, `mutation($p:ID!,$c:ID!){createComment(postId:$p,body:"reply",parentId:$c){id}}`, map[string]any{"p": post, "c": c1.ID}, "createComment", &c2)
	s.MustDo(t, oliver, `mutation($p:ID!,$c:ID!){createComment(postId:$p,body:"own reply",parentId:$c){id}}`, map[string]any{"p": post, "c": c2.ID}, "createComment", &c3)

	var r1, r2, r3 struct{ ID, Kind string }
	s.MustDo(t, john, `mutation($p:ID!){reactToPost(postId:$p,kind:LAUGH){id kind}}`, map[string]any{"p": post}, "reactToPost", &r1)
	s.MustDo(t, john, `mutation($p:ID!){reactToPost(postId:$p,kind:LAUGH){id kind}}`, map[string]any{"p": post}, "reactToPost", &r2)
	s.MustDo(t, john, `mutation($p:ID!){reactToPost(postId:$p,kind:LOVE){id kind}}`, map[string]any{"p": post}, "reactToPost", &r3)
	if r1.ID != r2.ID || r2.ID != r3.ID || r3.Kind != "LOVE" {
		t.Fatalf("reactions %+v %+v %+v: want one reaction changed to LOVE", r1, r2, r3)
	}
	var rc struct{ ID string }
	s.MustDo(t, oliver, `mutation($c:ID!){reactToComment(commentId:$c,kind:WOW){id}}`, map[string]any{"c": c1.ID}, "reactToComment", &rc)
	s.MustDo(t, oliver, `mutation($p:ID!){reactToPost(postId:$p,kind:SAD){id}}`, map[string]any{"p": post}, "reactToPost", nil)

	type line struct{ message, action, actionID, content, affected, affectedID string }
	str := func(p *string) string {
		if p == nil {
			return "<null>"
		}
		return *p
	}
	got := func(token string) []line {
		var out []line
		for _, n := range s.MustNotifications(t, token) {
			out = append(out, line{n.Message, n.Action, n.ActionID, str(n.ActionContent), str(n.Affected), str(n.AffectedID)})
		}
		return out
	}
	want := map[string][]line{
		oliver: { // newest first; LOVE replaced LAUGH's notification
			{"John reacted to your post", "REACTION", r1.ID, "love", "POST", post},
			{"John commented on your post", "COMMENT", c2.ID, "reply", "POST", post},
			{"Ann commented on your post", "COMMENT", c1.ID, "first!", "POST", post},
		},
		ann: {
			{"Oliver reacted to your comment", "REACTION", rc.ID, "wow", "COMMENT", c1.ID},
			{"John replied to your comment", "COMMENT", c2.ID, "reply", "COMMENT", c1.ID},
		},
		john: {
			{"Oliver replied to your comment", "COMMENT", c3.ID, "own reply", "COMMENT", c2.ID},
		},
	}
	for token, w := range want {
		g := got(token)
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("notifications:\n got %v\nwant %v", g, w)
		}
	}
}

func TestReads(t *testing.T) {
	s := MustServer(t)
	alice, aliceID := s.MustRegister(t, "Alice")
	bob, _ := s.MustRegister(t, "Bob")
	s.MustFollow(t, bob, "alice")
	post := s.MustPost(t, alice, "hello")
	var c1, c2 struct{ ID string }
	s.MustDo(t, bob, `mutation($p:ID!){createComment(postId:$p,body:"one"){id}}`, map[string]any{"p": post}, "createComment", &c1)
	s.MustDo(t, alice, `mutation($p:ID!,$c:ID!){createComment(postId:$p,body:"two",parentId:$c){id}}`, map[string]any{"p": post, "c": c1.ID}, "createComment", &c2)
	s.MustDo(t, bob, `mutation($p:ID!){reactToPost(postId:$p,kind:LIKE){id}}`, map[string]any{"p": post}, "reactToPost", nil)

	var p struct {
		ID, Body string
		Author   struct{ ID, Username string }
		Comments []struct {
			ID, Body string
			Parent   *struct{ ID string }
			Author   struct{ Username string }
			Post     struct{ ID string }
		}
		Reactions []struct {
			Kind, TargetKind, TargetID string
			User                       struct{ Username string }
		}
	}
	s.MustDo(t, "", `query($id:ID!){post(id:$id){id body author{id username} comments{id body parent{id} author{username} post{id}} reactions{kind targetKind targetId user{username}}}}`,
		map[string]any{"id": post}, "post", &p)
	if p.ID != post || p.Body != "hello" || p.Author.ID != aliceID || len(p.Comments) != 2 || len(p.Reactions) != 1 {
		t.Fatalf("post = %+v", p)
	}
	if p.Comments[0].ID != c1.ID || p.Comments[0].Parent != nil || p.Comments[1].ID != c2.ID || p.Comments[1].Parent == nil ||
		p.Comments[1].Parent.ID != c1.ID || p.Comments[1].Post.ID != post || p.Comments[0].Author.Username != "Bob" {
		t.Fatalf("comments = %+v", p.Comments)
	}
	if r := p.Reactions[0]; r.Kind != "LIKE" || r.TargetKind != "POST" || r.TargetID != post || r.User.Username != "Bob" {
		t.Fatalf("reaction = %+v", r)
	}

	var u struct {
		Username                      string
		FollowerCount, FollowingCount int
	}
	s.MustDo(t, "", `{user(username:"ALICE"){username followerCount followingCount}}`, nil, "user", &u)
	if u.Username != "Alice" || u.FollowerCount != 1 || u.FollowingCount != 0 {
		t.Fatalf("user = %+v", u)
	}
	for _, q := range []string{`{user(username:"nobody"){id}}`, `{post(id:"999999"){id}}`, `{post(id:"abc"){id}}`} {
		r := s.Do(t, "", q, nil)
		if len(r.Errors) > 0 || len(r.Data) != 1 {
			t.Fatalf("%s: %+v", q, r)
		}
		for _, v := range r.Data {
			if string(v) != "null" {
				t.Fatalf("%s: got %s, want null", q, v)
			}
		}
	}
	_ = bob
}

func TestNotificationPages(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "Alice")
	bob, _ := s.MustRegister(t, "Bob")
	post := s.MustPost(t, alice, "p")
	for i := range 25 {
		s.MustDo(t, bob, `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`, map[string]any{"p": post, "b": fmt.Sprint("c", i)}, "createComment", nil)
	}
	type page struct {
		Edges []struct {
			Cursor string
			Node   struct {
				ID            string
				ActionContent string
				Read          bool
			}
		}
		PageInfo struct {
			HasNextPage bool
			EndCursor   *string
		}
		UnreadCount int
	}
	var all []string
	var after any
	for range 3 {
		var pg page
		s.MustDo(t, alice, `query($a:String){notifications(first:10,after:$a){edges{cursor node{id actionContent read}} pageInfo{hasNextPage endCursor} unreadCount}}`,
			map[string]any{"a": after}, "notifications", &pg)
		if pg.UnreadCount != 25 {
			t.Fatalf("unreadCount = %d, want 25", pg.UnreadCount)
		}
		for _, e := range pg.Edges {
			all = append(all, e.Node.ActionContent)
		}
		if len(pg.Edges) > 0 && *pg.PageInfo.EndCursor != pg.Edges[len(pg.Edges)-1].Cursor {
			t.Fatalf("endCursor %s is not the last edge's cursor", *pg.PageInfo.EndCursor)
		}
		if !pg.PageInfo.HasNextPage {
			break
		}
		after = *pg.PageInfo.EndCursor
	}
	if len(all) != 25 || all[0] != "c24" || all[24] != "c0" {
		t.Fatalf("pages gave %v, want c24..c0", all)
	}

	ns := s.MustNotifications(t, alice)
	bobNs := s.MustNotifications(t, bob)
	var n int
	ids := []string{ns[0].ID, ns[1].ID, "999999", "not-an-id"}
	if len(bobNs) > 0 {
		ids = append(ids, bobNs[0].ID)
	}
	s.MustDo(t, alice, `mutation($ids:[ID!]){markNotificationsRead(ids:$ids)}`, map[string]any{"ids": ids}, "markNotificationsRead", &n)
	if n != 2 {
		t.Fatalf("markNotificationsRead changed %d, want 2", n)
	}
	s.MustDo(t, alice, `mutation($ids:[ID!]){markNotificationsRead(ids:$ids)}`, map[string]any{"ids": ids}, "markNotificationsRead", &n)
	if n != 0 {
		t.Fatalf("marking again changed %d, want 0", n)
	}
	var unread page
	s.MustDo(t, alice, `{notifications(first:100,unreadOnly:true){edges{node{id read}} unreadCount}}`, nil, "notifications", &unread)
	if len(unread.Edges) != 23 || unread.UnreadCount != 23 {
		t.Fatalf("unread page has %d edges, count %d; want 23", len(unread.Edges), unread.UnreadCount)
	}
	s.MustDo(t, alice, `mutation{markNotificationsRead(all:true)}`, nil, "markNotificationsRead", &n)
	if n != 23 {
		t.Fatalf("mark all changed %d, want 23", n)
	}
}

func TestHTTPTransports(t *testing.T) {
	s := MustServer(t)
	token, _ := s.MustRegister(t, "Alice")

	get := func(q string) int {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/query?query="+url.QueryEscape(q), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), `"errors"`) {
			return -resp.StatusCode
		}
		return resp.StatusCode
	}
	if got := get(`{me{username}}`); got != http.StatusOK {
		t.Fatalf("GET query: %d", got)
	}
	if got := get(`mutation{createPost(body:"x"){id}}`); got > 0 {
		t.Fatalf("GET mutation was accepted: %d", got)
	}

	t.Run("PersistedQuery", func(t *testing.T) {
		q := `{me{username}}`
		sum := sha256.Sum256([]byte(q))
		ext := fmt.Sprintf(`{"persistedQuery":{"version":1,"sha256Hash":%q}}`, hex.EncodeToString(sum[:]))
		post := func(body string) string {
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b)
		}
		if got := post(`{"extensions":` + ext + `}`); !strings.Contains(got, "PersistedQueryNotFound") {
			t.Fatalf("unknown hash: %s", got)
		}
		if got := post(fmt.Sprintf(`{"query":%q,"extensions":%s}`, q, ext)); !strings.Contains(got, `"Alice"`) {
			t.Fatalf("register hash: %s", got)
		}
		if got := post(`{"extensions":` + ext + `}`); !strings.Contains(got, `"Alice"`) {
			t.Fatalf("known hash: %s", got)
		}
	})

	t.Run("ComplexityLimit", func(t *testing.T) {
		r := s.Do(t, token, `{post(id:"1"){comments{post{comments{post{id}}}}}}`, nil)
		if r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" {
			t.Fatalf("code %q, want COMPLEXITY_LIMIT_EXCEEDED", r.Code())
		}
	})

	t.Run("Health", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, err := http.Get(s.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s: %d", p, resp.StatusCode)
			}
		}
	})
}
