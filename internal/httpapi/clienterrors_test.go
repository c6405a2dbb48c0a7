package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/testlog"
)

// TestBodyLimitChunked sends a body over the limit without a
// Content-Length: it is refused with 413 and a GraphQL error, as one that
// says its length is.
func TestBodyLimitChunked(t *testing.T) {
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) { c.MaxBodyBytes = 1000 }})
	body := `{"query":"{me{id}}","variables":{"x":"` + strings.Repeat("a", 2000) + `"}}`
	// A reader of unknown length: the client sends it chunked.
	resp, err := http.Post(s.URL+"/query", "application/json", struct{ io.Reader }{strings.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out gqlResponse
	mustDecode(t, resp.Body, &out)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || out.Code() != "BAD_USER_INPUT" {
		t.Fatalf("status %d, errors %+v; want 413 BAD_USER_INPUT", resp.StatusCode, out.Errors)
	}
}

// TestClientErrorsAreNotInternal checks that mistakes of the client are
// answered with their code, never INTERNAL, and log no ERROR line.
func TestClientErrorsAreNotInternal(t *testing.T) {
	t.Run("EnumVariableWrongCase", func(t *testing.T) {
		var logs testlog.Buffer
		s := MustServerOpts(t, ServerOptions{Configure: logTo(&logs)})
		alice, _ := s.MustRegister(t, "alice")
		post := s.MustPost(t, alice, "a post")
		for _, kind := range []string{"like", "Like", "lOVE"} {
			r := s.Do(t, alice, `mutation($p:ID!,$k:ReactionKind!){reactToPost(postId:$p,kind:$k){id}}`, map[string]any{"p": post, "k": kind})
			if r.Code() != "BAD_USER_INPUT" || r.Errors[0].Message == "internal error" {
				t.Fatalf("kind %q: errors %+v, want BAD_USER_INPUT", kind, r.Errors)
			}
		}
		mustNoErrorLines(t, &logs)
	})
	t.Run("IntrospectionOff", func(t *testing.T) {
		var logs testlog.Buffer
		s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) {
			logTo(&logs)(c)
			c.Introspection = false
		}})
		invalid := s.DoRaw(t, "", `{me{email}}`, nil)
		for _, q := range []string{
			`{__schema{types{name}}}`,
			`{__type(name:"User"){name}}`,
			`{me{id} s:__schema{queryType{name}}}`,
			`{...F} fragment F on Query{__schema{queryType{name}}}`,
			`{... on Query{__type(name:"Post"){fields{name}}}}`,
		} {
			r := s.DoRaw(t, "", q, nil)
			if r.Code() != "GRAPHQL_VALIDATION_FAILED" || r.Status != invalid.Status {
				t.Fatalf("%s: status %d, errors %+v; want %d GRAPHQL_VALIDATION_FAILED, as any invalid operation", q, r.Status, r.Errors, invalid.Status)
			}
		}
		if r := s.Do(t, "", `{__typename}`, nil); len(r.Errors) > 0 {
			t.Fatalf("__typename refused: %+v", r.Errors)
		}
		mustNoErrorLines(t, &logs)
	})
}

// authAliases returns a mutation of n aliased login fields.
func authAliases(n int) string {
	var q strings.Builder
	q.WriteString("mutation{")
	for i := range n {
		fmt.Fprintf(&q, `l%d:login(username:"alice",password:"password-alice"){accessToken} `, i)
	}
	q.WriteString("}")
	return q.String()
}

// TestAuthFieldsPerRequest checks that a request with more register or
// login fields than the cap is refused before any of them runs (no lookup
// of a user, so no bcrypt), and that one at the cap runs.
func TestAuthFieldsPerRequest(t *testing.T) {
	store, wrap := MustBlockingStore()
	s := MustServerOpts(t, ServerOptions{Store: wrap})
	s.MustRegister(t, "alice")
	store.lookups.Store(0)
	// 300 aliases are over the document's alias cap too, which refuses
	// them first, before validation.
	for n, code := range map[int]string{httpapi.DefaultMaxAuthFields + 1: "BAD_USER_INPUT", 300: "GRAPHQL_VALIDATION_FAILED"} {
		r := s.Do(t, "", authAliases(n), nil)
		if r.Code() != code || len(r.Data) > 0 && string(r.Data["l0"]) != "null" {
			t.Fatalf("%d logins: errors %+v, data %s; want %s", n, r.Errors, r.Data["l0"], code)
		}
		if got := store.lookups.Load(); got != 0 {
			t.Fatalf("%d logins refused after %d of them looked their user up", n, got)
		}
	}
	r := s.Do(t, "", authAliases(httpapi.DefaultMaxAuthFields), nil)
	if len(r.Errors) > 0 {
		t.Fatalf("%d logins: %+v", httpapi.DefaultMaxAuthFields, r.Errors)
	}
}

// TestLogoutNotRateLimited spends a user's mutation budget and checks
// that logout alone still passes (and that a request mixing it with other
// mutations is refused whole, as documented on Limits.Mutations).
func TestLogoutNotRateLimited(t *testing.T) {
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) {
		c.Limits.Mutations = slow(1)
	}})
	alice, _ := s.MustRegister(t, "alice")
	s.MustPost(t, alice, "one")
	mustRateLimited(t, s.DoRaw(t, alice, `mutation{createPost(body:"two"){id}}`, nil))
	mustRateLimited(t, s.DoRaw(t, alice, `mutation{createPost(body:"two"){id} logout}`, nil))
	var ok bool
	s.MustDo(t, alice, `mutation{logout}`, nil, "logout", &ok)
	if !ok {
		t.Fatal("logout returned false")
	}
	if r := s.DoRaw(t, alice, `{me{id}}`, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("after logout: status %d, want 401", r.Status)
	}
}
