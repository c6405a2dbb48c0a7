package httpapi_test

import (
	"fmt"
	"slices"
	"testing"
)

// mustCommentedPost creates a post of alice's with n comments and returns
// its id and the comments' ids, oldest first.
func mustCommentedPost(tb testing.TB, s *testServer, token string, n int) (string, []string) {
	tb.Helper()
	post := s.MustPost(tb, token, "post")
	ids := make([]string, n)
	for i := range ids {
		var c struct{ ID string }
		s.MustDo(tb, token, `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`,
			map[string]any{"p": post, "b": fmt.Sprintf("comment %d", i)}, "createComment", &c)
		ids[i] = c.ID
	}
	return post, ids
}

// mustIDs runs query on post (and vars) and returns the ids of
// post.<field>.
func (s *testServer) mustIDs(tb testing.TB, token, query, field string, vars map[string]any) []string {
	tb.Helper()
	var p map[string][]struct{ ID string }
	s.MustDo(tb, token, query, vars, "post", &p)
	ids := make([]string, len(p[field]))
	for i, x := range p[field] {
		ids[i] = x.ID
	}
	return ids
}

func TestPostCommentsPaging(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "alice")
	post, ids := mustCommentedPost(t, s, alice, 30)

	t.Run("DefaultShowsAll", func(t *testing.T) {
		got := s.mustIDs(t, alice, `query($p:ID!){post(id:$p){comments{id}}}`, "comments", map[string]any{"p": post})
		if !slices.Equal(got, ids) {
			t.Fatalf("comments %v, want every comment %v", got, ids)
		}
	})

	t.Run("Pages", func(t *testing.T) {
		q := `query($p:ID!,$f:Int,$a:ID){post(id:$p){comments(first:$f,after:$a){id}}}`
		var all []string
		var after any
		for {
			page := s.mustIDs(t, alice, q, "comments", map[string]any{"p": post, "f": 7, "a": after})
			if len(page) > 7 {
				t.Fatalf("page of %d, want at most 7", len(page))
			}
			if len(page) == 0 {
				break
			}
			all = append(all, page...)
			after = page[len(page)-1]
		}
		if !slices.Equal(all, ids) {
			t.Fatalf("pages %v, want %v", all, ids)
		}
		if got := s.mustIDs(t, alice, q, "comments", map[string]any{"p": post, "f": 0}); len(got) != 0 {
			t.Fatalf("first 0: %v", got)
		}
	})

	t.Run("BadArguments", func(t *testing.T) {
		for _, args := range []string{`first:-1`, `first:501`, `after:"x"`, `after:"-3"`} {
			r := s.Do(t, alice, fmt.Sprintf(`query($p:ID!){post(id:$p){comments(%s){id}}}`, args), map[string]any{"p": post})
			if r.Code() != "BAD_USER_INPUT" {
				t.Errorf("%s: errors %+v, want BAD_USER_INPUT", args, r.Errors)
			}
		}
	})
}

func TestPostReactionsPaging(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "alice")
	post := s.MustPost(t, alice, "post")
	var ids []string
	for _, name := range []string{"bob", "cat", "dan", "eve"} {
		token, _ := s.MustRegister(t, name)
		var r struct{ ID string }
		s.MustDo(t, token, `mutation($p:ID!){reactToPost(postId:$p,kind:LIKE){id}}`, map[string]any{"p": post}, "reactToPost", &r)
		ids = append(ids, r.ID)
	}
	vars := map[string]any{"p": post}
	if got := s.mustIDs(t, alice, `query($p:ID!){post(id:$p){reactions{id}}}`, "reactions", vars); !slices.Equal(got, ids) {
		t.Fatalf("reactions %v, want %v", got, ids)
	}
	vars["a"] = ids[1]
	if got := s.mustIDs(t, alice, `query($p:ID!,$a:ID){post(id:$p){reactions(first:1,after:$a){id}}}`, "reactions", vars); !slices.Equal(got, ids[2:3]) {
		t.Fatalf("reactions after %s: %v, want %v", ids[1], got, ids[2:3])
	}
}
