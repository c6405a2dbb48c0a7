package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/httpapi"
)

// allocated returns the bytes allocated by the whole process (server and
// client) while f runs.
func allocated(f func()) uint64 {
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// get sends query as GET /query without an Origin header, as a script
// would.
func (s *testServer) get(tb testing.TB, query string) rawResponse {
	tb.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/query?query="+url.QueryEscape(query), nil)
	return send(tb, req)
}

// nestedComments is the attack of issue 13: comments of the post of each
// comment, depth levels deep, which multiplies by the number of comments
// at every level.
func nestedComments(post string, depth int) string {
	q := "id"
	for range depth {
		q = "comments{post{" + q + "}}"
	}
	return fmt.Sprintf(`post(id:%q){%s}`, post, q)
}

// TestNestedListsRefused: the nested comments attack, alone and as aliased
// copies, is refused before it runs, whatever its transport: its cost
// follows the page size of each list.
func TestNestedListsRefused(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "alice")
	post, _ := mustCommentedPost(t, s, alice, 10)

	one := "{" + nestedComments(post, 5) + "}"
	var four strings.Builder
	four.WriteString("{")
	for i := range 4 {
		fmt.Fprintf(&four, "a%d:%s ", i, nestedComments(post, 5))
	}
	four.WriteString("}")
	// Two levels are enough to be over the limit with the default page.
	two := "{" + nestedComments(post, 2) + "}"

	for name, q := range map[string]string{"Five": one, "FourCopies": four.String(), "Two": two} {
		t.Run(name, func(t *testing.T) {
			var r rawResponse
			start := time.Now()
			alloc := allocated(func() { r = s.get(t, q) })
			t.Logf("refused in %v, %d bytes allocated", time.Since(start), alloc)
			if r.Status != http.StatusOK || r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" {
				t.Fatalf("status %d, errors %+v; want 200 and COMPLEXITY_LIMIT_EXCEEDED", r.Status, r.Errors)
			}
			ext := r.Errors[0].Extensions
			limit, _ := ext["limit"].(float64)
			cost, _ := ext["complexity"].(float64)
			if limit != 5000 || cost <= limit {
				t.Errorf("extensions %v: want the limit 5000 and a greater complexity", ext)
			}
			if len(r.Data) > 0 && string(r.Data["post"]) != "" {
				t.Errorf("data %v: the operation ran", r.Data)
			}
			// One copy ran for seconds and took megabytes before the fix.
			if alloc > 2<<20 {
				t.Errorf("allocated %d bytes to refuse it, want at most 2 MiB", alloc)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v to refuse it", d)
			}
		})
	}

	t.Run("OnePageAllowed", func(t *testing.T) {
		q := fmt.Sprintf(`{post(id:%q){comments{id body author{username} post{id}}}}`, post)
		if r := s.get(t, q); r.Status != http.StatusOK || len(r.Errors) > 0 {
			t.Fatalf("status %d, errors %+v", r.Status, r.Errors)
		}
	})
}

// conflicting returns a query of n root fields under one response name
// with different arguments (each pair a validation error), aliased or not.
func conflicting(n int, aliased bool) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if aliased {
			b.WriteString("a:")
		}
		fmt.Fprintf(&b, `user(username:"u%d"){id} `, i)
	}
	b.WriteString("}")
	return b.String()
}

// TestValidationBounded: documents whose validation was the attack of
// issue 13 are refused by the document caps before validation, quickly
// and with a small body.
func TestValidationBounded(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "alice")
	repeated := "{" + strings.Repeat("me{id username followerCount followingCount id username followerCount followingCount} ", 900) + "}"
	for _, c := range []struct{ name, query string }{
		{"AliasedConflicts", conflicting(900, true)},
		{"Conflicts", conflicting(900, false)},
		{"RepeatedFields", repeated},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r rawResponse
			start := time.Now()
			alloc := allocated(func() { r = s.DoRaw(t, alice, c.query, nil) })
			t.Logf("refused in %v, %d bytes allocated, %d bytes of body", time.Since(start), alloc, r.Bytes)
			if r.Status != http.StatusUnprocessableEntity || r.Code() != "GRAPHQL_VALIDATION_FAILED" || len(r.Errors) != 1 {
				t.Fatalf("status %d, %d errors, first %+v; want 422 and one GRAPHQL_VALIDATION_FAILED", r.Status, len(r.Errors), r.Errors[:min(1, len(r.Errors))])
			}
			if !strings.Contains(r.Errors[0].Message, "limit") {
				t.Errorf("message %q does not name the limit", r.Errors[0].Message)
			}
			if r.Bytes > 1024 {
				t.Errorf("body of %d bytes, want at most 1 KiB", r.Bytes)
			}
			// The documents themselves are 30 to 80 KB; before the fix
			// validation took hundreds of megabytes.
			if alloc > 8<<20 {
				t.Errorf("allocated %d bytes to refuse it, want at most 8 MiB", alloc)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %v to refuse it", d)
			}
		})
	}
}

// TestValidationErrorsCapped: the worst document under the caps, 500
// fields that all conflict, gets a handful of errors, not one per
// conflict, and costs little to refuse.
func TestValidationErrorsCapped(t *testing.T) {
	s := MustServer(t)
	var r rawResponse
	alloc := allocated(func() { r = s.DoRaw(t, "", conflicting(249, false), nil) })
	t.Logf("refused with %d bytes allocated, %d bytes of body", alloc, r.Bytes)
	if r.Status != http.StatusUnprocessableEntity || len(r.Errors) != 20 {
		t.Fatalf("status %d, %d errors; want 422 and 20", r.Status, len(r.Errors))
	}
	if last := r.Errors[len(r.Errors)-1].Message; !strings.Contains(last, "too many validation errors") {
		t.Errorf("last error %q does not say that errors were left out", last)
	}
	if r.Bytes > 8<<10 {
		t.Errorf("body of %d bytes, want at most 8 KiB", r.Bytes)
	}
	if alloc > 64<<20 {
		t.Errorf("allocated %d bytes to refuse it, want at most 64 MiB", alloc)
	}
}

// TestExecutionErrorsCapped: a response keeps at most 20 errors and says
// how many it left out.
func TestExecutionErrorsCapped(t *testing.T) {
	s := MustServer(t)
	var b strings.Builder
	b.WriteString("{")
	for i := range 50 {
		fmt.Fprintf(&b, "a%d:me{id} ", i)
	}
	b.WriteString("}")
	r := s.Do(t, "", b.String(), nil) // signed out: each me is UNAUTHENTICATED
	if len(r.Errors) != 21 {
		t.Fatalf("%d errors, want 20 and one that says 30 were left out", len(r.Errors))
	}
	last := r.Errors[20]
	if last.Extensions["code"] != "RESOURCE_LIMIT_EXCEEDED" || !strings.Contains(last.Message, "30 more errors") {
		t.Errorf("last error %+v", last)
	}
}

// TestResolverBudget: with the complexity limit out of the way, a request
// that resolves more fields than the budget (10,000 by default) is cut
// with one error, and does not get its data.
func TestResolverBudget(t *testing.T) {
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) { c.ComplexityLimit = 1 << 30 }})
	alice, _ := s.MustRegister(t, "alice")
	post, _ := mustCommentedPost(t, s, alice, 40)
	// 40 comments, each with 3 fields and its post's 40 comments of 3
	// fields: about 5,000 fields a copy.
	level := `comments{id body createdAt post{id comments{id body createdAt}}}`
	q := fmt.Sprintf(`{post(id:%q){a:%s b:%s c:%s}}`, post, level, level, level)
	var r rawResponse
	alloc := allocated(func() { r = s.DoRaw(t, alice, q, nil) })
	t.Logf("cut with %d bytes allocated", alloc)
	if r.Status != http.StatusOK || len(r.Errors) != 1 || r.Code() != "RESOURCE_LIMIT_EXCEEDED" {
		t.Fatalf("status %d, %d errors, first %+v; want one RESOURCE_LIMIT_EXCEEDED", r.Status, len(r.Errors), r.Errors[:min(1, len(r.Errors))])
	}
	if limit, _ := r.Errors[0].Extensions["limit"].(float64); limit != 10_000 {
		t.Errorf("extensions %v: want the budget 10000", r.Errors[0].Extensions)
	}
	if len(r.Data) > 0 {
		t.Errorf("data %v, want none", r.Data)
	}
	if r.Bytes > 1024 {
		t.Errorf("body of %d bytes", r.Bytes)
	}
	// One copy passes.
	q = fmt.Sprintf(`{post(id:%q){a:%s}}`, post, level)
	if r := s.Do(t, alice, q, nil); len(r.Errors) > 0 {
		t.Fatalf("one copy: errors %+v", r.Errors)
	}
}

// TestIntrospectionPassesCaps: the playground's introspection query, every
// option on, passes every cap with the defaults.
func TestIntrospectionPassesCaps(t *testing.T) {
	s := MustServer(t)
	q, err := os.ReadFile("testdata/introspection.graphql")
	if err != nil {
		t.Fatal(err)
	}
	r := s.Do(t, "", string(q), nil)
	if r.Status != http.StatusOK || len(r.Errors) > 0 || len(r.Data["__schema"]) == 0 {
		t.Fatalf("status %d, errors %+v", r.Status, r.Errors)
	}
}

// TestResolverBudgetPerEvent: over a subscription the budget holds for
// each event, not for the subscription's life.
func TestResolverBudgetPerEvent(t *testing.T) {
	// An event of notificationFields resolves 10 fields.
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) { c.Costs.MaxResolvedFields = 12 }})
	alice, _ := s.MustRegister(t, "alice")
	bob, _ := s.MustRegister(t, "bob")
	post := s.MustPost(t, alice, "post")
	for i := range 5 {
		s.MustDo(t, bob, `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`, map[string]any{"p": post, "b": fmt.Sprint(i)}, "createComment", nil)
	}
	ws := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": alice})
	ws.MustAck()
	ws.Subscribe("n", `subscription{notifications(after:"0"){`+notificationFields+`}}`, nil)
	for i := range 5 {
		var n notification
		ws.MustData("n", "notifications", &n)
		if n.ActionContent == nil || *n.ActionContent != fmt.Sprint(i) {
			t.Fatalf("event %d: %+v", i, n)
		}
	}
	// Two events' fields in one query are over it.
	r := s.Do(t, alice, `{notifications(first:1){edges{node{`+notificationFields+`}}}}`, nil)
	if r.Code() != "RESOURCE_LIMIT_EXCEEDED" {
		t.Fatalf("query: errors %+v, want RESOURCE_LIMIT_EXCEEDED", r.Errors)
	}
}

// TestResponseBytesCapped: a response over the byte cap is replaced by one
// error that names the limit.
func TestResponseBytesCapped(t *testing.T) {
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) { c.Costs.MaxResponseBytes = 10_000 }})
	alice, _ := s.MustRegister(t, "alice")
	post := s.MustPost(t, alice, strings.Repeat("x", 4000))
	q := `query($p:ID!){a:post(id:$p){body} b:post(id:$p){body} c:post(id:$p){body}}`
	r := s.DoRaw(t, alice, q, map[string]any{"p": post})
	if r.Status != http.StatusOK || r.Code() != "RESOURCE_LIMIT_EXCEEDED" || r.Bytes > 1024 {
		t.Fatalf("status %d, %d bytes, errors %+v; want a small RESOURCE_LIMIT_EXCEEDED", r.Status, r.Bytes, r.Errors)
	}
	if limit, _ := r.Errors[0].Extensions["limit"].(float64); limit != 10_000 {
		t.Errorf("extensions %v: want the limit", r.Errors[0].Extensions)
	}
	// Two copies fit.
	q = `query($p:ID!){a:post(id:$p){body} b:post(id:$p){body}}`
	if r := s.Do(t, alice, q, map[string]any{"p": post}); len(r.Errors) > 0 {
		t.Fatalf("two copies: %+v", r.Errors)
	}
}
