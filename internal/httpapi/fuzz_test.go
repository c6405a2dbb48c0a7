package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/inproc"
	"github.com/pulse-social/pulse/internal/plainws"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/sqlite"
	"github.com/pulse-social/pulse/internal/testlog"
)

// FuzzGraphQLRequest posts any query with any variables, signed in or
// not, and checks that the input validation holds: nothing panics, nothing
// is an internal error, every answer is JSON with a known status, and
// every error carries a code; and that the cost limits hold: no answer is
// bigger than fuzzMaxBody or costs more than fuzzMaxAllocs allocations
// (fuzzMaxAllocBytes bytes). Seeds: testdata/fuzz/FuzzGraphQLRequest and
// the f.Add calls.
func FuzzGraphQLRequest(f *testing.F) {
	seeds := []struct{ query, vars string }{
		{`{me{id username followerCount followingCount}}`, `{}`},
		{`mutation($u:String!,$p:String!){register(username:$u,password:$p){accessToken user{id}}}`, `{"u":"fuzzer_1","p":"password1"}`},
		{`mutation($u:String!,$p:String!){register(username:$u,password:$p){accessToken}}`, `{"u":"\u0000\u00e9","p":"short"}`},
		{`mutation($u:String!,$p:String!){login(username:$u,password:$p){accessToken}}`, `{"u":"alice","p":"wrong-password"}`},
		{`mutation($b:String!){createPost(body:$b){id body author{username}}}`, `{"b":"hello"}`},
		{`mutation($b:String!){createPost(body:$b){id}}`, `{"b":"   "}`},
		{`mutation($p:ID!,$b:String!,$r:ID){createComment(postId:$p,body:$b,parentId:$r){id}}`, `{"p":"1","b":"c","r":"x"}`},
		{`mutation($p:ID!){reactToPost(postId:$p,kind:LAUGH){id kind}}`, `{"p":"-1"}`},
		{`mutation($c:ID!,$k:ReactionKind!){reactToComment(commentId:$c,kind:$k){id}}`, `{"c":"99999999999999999999","k":"NOPE"}`},
		{`mutation($u:String!){follow(username:$u){id}}`, `{"u":"alice"}`},
		{`mutation($u:String!){unfollow(username:$u){id}}`, `{"u":"nobody"}`},
		{`mutation($i:[ID!]){markNotificationsRead(ids:$i)}`, `{"i":["1","a",""]}`},
		{`mutation{markNotificationsRead(all:true)}`, `{}`},
		{`query($f:Int,$a:String){notifications(first:$f,after:$a){edges{cursor node{id message}} pageInfo{hasNextPage endCursor} unreadCount}}`, `{"f":-1,"a":"zz"}`},
		{`query($f:Int){notifications(first:$f){unreadCount}}`, `{"f":2147483648}`},
		{`query($id:ID!){post(id:$id){id comments{id parent{id} post{id}} reactions{id kind targetKind targetId user{id}}}}`, `{"id":"1"}`},
		{`{user(username:""){id}}`, `null`},
		{`{__schema{types{name fields{name}}}}`, `{}`},
		{`{post(id:"1"){comments{post{comments{post{comments{post{comments{post{comments{post{comments{id}}}}}}}}}}}}}`, `{}`},
		{`query A{me{id}} query B{me{id}}`, `{}`},
		{`{a:me{id} b:me{id} c:me{id}}`, `{}`},
		{`fragment F on User{...F} {me{...F}}`, `{}`},
		{`subscription{notifications{id}}`, `{}`},
		{`mutation{logout}`, `{}`},
		{`{`, `{`},
		{``, `[]`},
		{`{a:user(username:"1"){id} a:user(username:"2"){id} a:user(username:"3"){id}}`, `{}`},
		{`{user(username:"1"){id} user(username:"2"){id} user(username:"3"){id}}`, `{}`},
		{`{me{id id id id} me{id id id id} me{id id id id}}`, `{}`},
		{`query($f:Int,$a:ID){post(id:"1"){comments(first:$f,after:$a){id body} reactions(first:$f){id}}}`, `{"f":500,"a":"0"}`},
		{`query($f:Int){post(id:"1"){comments(first:$f){post{comments(first:$f){post{id}}}}}}`, `{"f":2147483647}`},
		{`fragment A on Query{me{id}} fragment B on Query{...A ...A} fragment C on Query{...B ...B} {...C ...C}`, `{}`},
		{`{me @skip(if:false) @include(if:true) {id @skip(if:false)}}`, `{}`},
	}
	// The attacks of issue 13 on validation.
	seeds = append(seeds,
		struct{ query, vars string }{conflicting(900, true), `{}`},
		struct{ query, vars string }{conflicting(900, false), `{}`},
	)
	for _, s := range seeds {
		f.Add(s.query, s.vars, true)
		f.Add(s.query, s.vars, false)
	}

	ctx := context.Background()
	store, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		f.Fatal(err)
	}
	broker := inproc.New(fanout.Config{})
	f.Cleanup(func() {
		broker.Close()
		store.Close()
	})
	svc := social.NewService(store, broker, social.Config{PasswordCost: bcrypt.MinCost})
	alice, token, err := svc.Register(ctx, "alice", "password-alice")
	if err != nil {
		f.Fatal(err)
	}
	bob, _, err := svc.Register(ctx, "bob", "password-bob")
	if err != nil {
		f.Fatal(err)
	}
	p, err := svc.CreatePost(ctx, bob, "bob's post")
	if err != nil {
		f.Fatal(err)
	}
	if _, err := svc.CreateComment(ctx, alice, p.ID, "alice's comment", 0); err != nil {
		f.Fatal(err)
	}
	logs := &testlog.Buffer{}
	h := httpapi.New(httpapi.Config{
		Service:       svc,
		Logger:        slog.New(slog.NewTextHandler(logs, nil)),
		PlainSocket:   plainws.New(svc, plainws.Config{}),
		Introspection: true,
		// Small enough that a fuzzed query can meet it.
		Costs: httpapi.CostLimits{MaxResponseBytes: fuzzMaxBody},
	})

	f.Fuzz(func(t *testing.T, query, vars string, signedIn bool) {
		body, _ := json.Marshal(map[string]any{"query": query, "variables": json.RawMessage(validJSON(vars))})
		req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if signedIn {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		logs.Reset()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		h.ServeHTTP(rec, req)
		runtime.ReadMemStats(&after)

		// The envelope ({"data":...}) is not counted by the limit.
		if n := rec.Body.Len(); n > fuzzMaxBody+1024 {
			t.Fatalf("%q %q: answer of %d bytes, more than %d", query, vars, n, fuzzMaxBody)
		}
		if n := after.Mallocs - before.Mallocs; n > fuzzMaxAllocs {
			t.Fatalf("%q %q: %d allocations, more than %d", query, vars, n, fuzzMaxAllocs)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > fuzzMaxAllocBytes {
			t.Fatalf("%q %q: %d bytes allocated, more than %d", query, vars, n, fuzzMaxAllocBytes)
		}

		switch rec.Code {
		case 200, 400, 422:
		default:
			t.Fatalf("%q %q: status %d: %s", query, vars, rec.Code, rec.Body)
		}
		var resp struct {
			Data   json.RawMessage `json:"data"`
			Errors []struct {
				Message    string         `json:"message"`
				Extensions map[string]any `json:"extensions"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("%q %q: answer is not JSON: %s", query, vars, rec.Body)
		}
		if len(resp.Errors) == 0 && (len(resp.Data) == 0 || string(resp.Data) == "null") {
			t.Fatalf("%q %q: neither data nor errors: %s", query, vars, rec.Body)
		}
		for _, e := range resp.Errors {
			code, _ := e.Extensions["code"].(string)
			if code == "" || code == string(social.CodeInternal) || e.Message == "internal error" {
				t.Fatalf("%q %q: error %+v", query, vars, e)
			}
		}
		if l := logs.String(); strings.Contains(l, "panic") || strings.Contains(l, "level=ERROR") {
			t.Fatalf("%q %q: logged %s", query, vars, l)
		}
		if signedIn && strings.Contains(query, "logout") {
			// The token may be revoked: sign in again for the next input.
			if _, token, err = svc.Login(ctx, "alice", "password-alice"); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// The bounds of FuzzGraphQLRequest: the response cap it configures, and
// what one request may allocate. The biggest answers within the cost
// limits (the introspection query, a full page of comments) stay well
// under them.
const (
	fuzzMaxBody       = 256 << 10
	fuzzMaxAllocs     = 500_000
	fuzzMaxAllocBytes = 64 << 20
)

// validJSON returns s if it is JSON, else null: the variables of a request
// are JSON or the request is not one (its decoding is gqlgen's, not ours).
func validJSON(s string) string {
	if json.Valid([]byte(s)) {
		return s
	}
	return "null"
}
