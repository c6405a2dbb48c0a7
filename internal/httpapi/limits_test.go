package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/gqlws"
	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// slow is a rate that refills too slowly to matter within a test.
func slow(burst int) *limit.Rates {
	return limit.NewRates(limit.Rate{PerSecond: 0.001, Burst: burst}, nil)
}

// rawResponse is a GraphQL HTTP response with its headers and its body's
// size.
type rawResponse struct {
	gqlResponse
	Header http.Header
	Bytes  int
}

// DoRaw posts a GraphQL operation and returns the response with headers.
func (s *testServer) DoRaw(tb testing.TB, token, query string, vars map[string]any) rawResponse {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(tb, req)
}

// send sends a GraphQL request and reads its response.
func send(tb testing.TB, req *http.Request) rawResponse {
	tb.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Data   map[string]json.RawMessage `json:"data"`
		Errors []gqlError                 `json:"errors"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		tb.Fatalf("response %d is not JSON: %s", resp.StatusCode, raw)
	}
	return rawResponse{gqlResponse{Status: resp.StatusCode, Data: out.Data, Errors: out.Errors}, resp.Header, len(raw)}
}

// mustRateLimited checks that r is a whole request refused by a rate
// limit: 429, Retry-After, RATE_LIMITED with extensions.retryAfter.
func mustRateLimited(tb testing.TB, r rawResponse) {
	tb.Helper()
	if r.Status != http.StatusTooManyRequests || r.Code() != "RATE_LIMITED" {
		tb.Fatalf("status %d, errors %+v; want 429 RATE_LIMITED", r.Status, r.Errors)
	}
	retry, _ := r.Errors[0].Extensions["retryAfter"].(float64)
	if retry < 1 || r.Header.Get("Retry-After") != fmt.Sprint(retry) {
		tb.Fatalf("retryAfter %v, Retry-After %q; want the same whole number of seconds", r.Errors[0].Extensions["retryAfter"], r.Header.Get("Retry-After"))
	}
}

const registerQuery = `mutation($u:String!,$p:String!){register(username:$u,password:$p){accessToken}}`

func TestRateLimitAuth(t *testing.T) {
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) {
		c.Limits.Auth = slow(3)
	}})
	for i := range 2 {
		s.MustRegister(t, fmt.Sprint("user", i))
	}
	r := s.DoRaw(t, "", `mutation{login(username:"user0",password:"password-user0"){accessToken}}`, nil)
	if r.Status != http.StatusOK || len(r.Errors) > 0 {
		t.Fatalf("third sign-in: %d %+v", r.Status, r.Errors)
	}
	mustRateLimited(t, s.DoRaw(t, "", registerQuery, map[string]any{"u": "user9", "p": "password9"}))
	mustRateLimited(t, s.DoRaw(t, "", `mutation{login(username:"user0",password:"password-user0"){accessToken}}`, nil))
	// Aliases count one each: two registrations in one request are two.
	s2 := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) { c.Limits.Auth = slow(1) }})
	mustRateLimited(t, s2.DoRaw(t, "", `mutation{a:register(username:"aaa",password:"password"){accessToken} b:register(username:"bbb",password:"password"){accessToken}}`, nil))
	// Nothing ran: the first alias's user does not exist.
	if r := s2.Do(t, "", `{user(username:"aaa"){id}}`, nil); string(r.Data["user"]) != "null" {
		t.Fatalf("a refused request registered a user: %s", r.Data["user"])
	}
	// Queries are not limited.
	for range 5 {
		if r := s.Do(t, "", `{user(username:"user0"){id}}`, nil); len(r.Errors) > 0 {
			t.Fatalf("query refused: %+v", r.Errors)
		}
	}
}

func TestRateLimitMutations(t *testing.T) {
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) {
		c.Limits.Mutations = slow(2)
	}})
	alice, _ := s.MustRegister(t, "alice")
	bob, _ := s.MustRegister(t, "bob")
	s.MustPost(t, alice, "one")
	s.MustPost(t, alice, "two")
	mustRateLimited(t, s.DoRaw(t, alice, `mutation{createPost(body:"three"){id}}`, nil))
	s.MustPost(t, bob, "bob's own budget")
	if r := s.Do(t, alice, `{me{username}}`, nil); len(r.Errors) > 0 {
		t.Fatalf("a query of a limited user refused: %+v", r.Errors)
	}

	// Over a GraphQL socket the error answers the operation alone.
	ws := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": alice})
	ws.MustAck()
	ws.Subscribe("m", `mutation{createPost(body:"four"){id}}`, nil)
	m, err := ws.next()
	if err != nil || m.Type != "next" || !strings.Contains(string(m.Payload), `"RATE_LIMITED"`) || !strings.Contains(string(m.Payload), `"retryAfter"`) {
		t.Fatalf("got %+v %s, %v; want a RATE_LIMITED result", m, m.Payload, err)
	}
}

func TestDepthLimit(t *testing.T) {
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) { c.MaxDepth = 4 }})
	alice, _ := s.MustRegister(t, "alice")
	post := s.MustPost(t, alice, "post")
	ok := `query($p:ID!){post(id:$p){comments{post{id}}}}` // 4 deep
	if r := s.Do(t, alice, ok, map[string]any{"p": post}); len(r.Errors) > 0 {
		t.Fatalf("depth 4 refused: %+v", r.Errors)
	}
	for _, q := range []string{
		`query($p:ID!){post(id:$p){comments{post{author{id}}}}}`,
		`query($p:ID!){post(id:$p){...A}} fragment A on Post{comments{...B}} fragment B on Comment{post{author{id}}}`,
		`query($p:ID!){post(id:$p){... on Post{comments{post{... on Post{author{username}}}}}}}`,
	} {
		r := s.Do(t, alice, q, map[string]any{"p": post})
		if r.Code() != "DEPTH_LIMIT_EXCEEDED" {
			t.Errorf("%s: %+v, want DEPTH_LIMIT_EXCEEDED", q, r.Errors)
		}
	}
	// Introspection does not count.
	intro := `{__schema{types{fields{type{ofType{ofType{ofType{ofType{name}}}}}}}}}`
	if r := s.Do(t, "", intro, nil); len(r.Errors) > 0 {
		t.Fatalf("introspection refused: %+v", r.Errors)
	}
}

func TestBodyLimit(t *testing.T) {
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) { c.MaxBodyBytes = 1000 }})
	body := `{"query":"{me{id}}","variables":{"x":"` + strings.Repeat("a", 2000) + `"}}`
	resp, err := http.Post(s.URL+"/query", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

func TestOriginPolicy(t *testing.T) {
	s := MustServerOpts(t, ServerOptions{Websocket: wspolicy.Config{AllowedOrigins: []string{"https://app.example"}}})
	for _, tc := range []struct {
		origin string
		status int
		acao   string
	}{
		{"", 200, ""},
		{"https://app.example", 200, "https://app.example"},
		{s.URL, 200, ""}, // same host: the playground
		{"https://evil.example", 403, ""},
	} {
		for _, method := range []string{http.MethodPost, http.MethodOptions} {
			req, _ := http.NewRequest(method, s.URL+"/query", strings.NewReader(`{"query":"{__typename}"}`))
			req.Header.Set("Content-Type", "application/json")
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if method == http.MethodPost && resp.StatusCode != tc.status || method == http.MethodOptions && tc.status == 403 && resp.StatusCode != 403 {
				t.Errorf("%s from %q: status %d, want %d", method, tc.origin, resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.acao {
				t.Errorf("%s from %q: Access-Control-Allow-Origin %q, want %q", method, tc.origin, got, tc.acao)
			}
		}
	}
}

func TestSecurityHeaders(t *testing.T) {
	s := MustServer(t)
	for _, p := range []string{"/healthz", "/query?query={__typename}"} {
		resp, err := http.Get(s.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: headers %v", p, resp.Header)
		}
	}
}

func TestDuplicateSubscriptionID(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "alice")
	ws := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": alice})
	ws.MustAck()
	ws.Subscribe("a", `subscription{unreadCount}`, nil)
	var n int
	ws.MustData("a", "unreadCount", &n)
	// Complete it and reuse its id: allowed.
	ws.send(wsMessage{ID: "a", Type: "complete"})
	ws.Subscribe("a", `subscription{unreadCount}`, nil)
	for {
		m, err := ws.next()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if m.Type == "next" && m.ID == "a" {
			break
		}
	}
	ws.Subscribe("a", `subscription{notifications{id}}`, nil)
	code, reason := ws.MustClose()
	if code != gqlws.CloseDuplicateID || reason != "Subscriber for a already exists" {
		t.Fatalf("closed with %d %q, want 4409 \"Subscriber for a already exists\"", code, reason)
	}

	// The legacy protocol has no such rule: the socket stays open.
	legacy := s.MustDial(t, "graphql-ws", nil, map[string]any{"authorization": alice})
	legacy.MustAck()
	legacy.Subscribe("a", `subscription{unreadCount}`, nil)
	legacy.MustData("a", "unreadCount", &n)
	legacy.Subscribe("a", `subscription{unreadCount}`, nil)
	legacy.MustData("a", "unreadCount", &n)
}

func TestOperationsPerSocket(t *testing.T) {
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) { c.Limits.OperationsPerSocket = 2 }})
	alice, _ := s.MustRegister(t, "alice")
	for _, protocol := range []string{"graphql-transport-ws", "graphql-ws"} {
		ws := s.MustDial(t, protocol, nil, map[string]any{"authorization": alice})
		ws.MustAck()
		var n int
		for _, id := range []string{"1", "2"} {
			ws.Subscribe(id, `subscription{unreadCount}`, nil)
			ws.MustData(id, "unreadCount", &n)
		}
		ws.Subscribe("3", `subscription{unreadCount}`, nil)
		m, err := ws.next()
		if err != nil || m.Type != "error" || m.ID != "3" || !strings.Contains(string(m.Payload), `"RATE_LIMITED"`) {
			t.Fatalf("%s: third operation got %+v %s, %v; want error RATE_LIMITED", protocol, m, m.Payload, err)
		}
		// Ending one makes room for another.
		stop := "complete"
		if protocol == "graphql-ws" {
			stop = "stop"
		}
		ws.send(wsMessage{ID: "1", Type: stop})
		deadline := time.Now().Add(5 * time.Second)
		for {
			ws.Subscribe("4", `subscription{unreadCount}`, nil)
			m, err := ws.next()
			if err != nil {
				t.Fatalf("%s: read: %v", protocol, err)
			}
			if m.ID == "1" { // the server's complete for 1, then 4's refusal or data
				if m, err = ws.next(); err != nil {
					t.Fatalf("read: %v", err)
				}
			}
			if m.ID == "4" && (m.Type == "next" || m.Type == "data") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no room after completing an operation: %+v %s", protocol, m, m.Payload)
			}
		}
	}
}

func TestSocketCaps(t *testing.T) {
	perAddress, perUser := limit.NewSlots(3), limit.NewSlots(1)
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) {
		c.Limits.SocketsPerUser = perUser
		c.Limits.SocketsPerAddress = perAddress
	}})
	alice, aliceID := s.MustRegister(t, "alice")
	bob, _ := s.MustRegister(t, "bob")
	first := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": alice})
	first.MustAck()
	second := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": alice})
	if code, _ := second.MustClose(); code != wspolicy.CloseTooMany {
		t.Fatalf("second socket of a user closed with %d, want 4429", code)
	}
	// The plain socket counts against the same cap.
	plain, _, err := websocketDial(s.URL, alice)
	if err != nil {
		t.Fatal(err)
	}
	if code := readCloseCode(t, plain); code != wspolicy.CloseTooMany {
		t.Fatalf("plain socket over the user cap closed with %d, want 4429", code)
	}
	// Closing the first frees its slot.
	first.conn.Close()
	userKey := limit.UserKey(mustID(t, aliceID))
	for deadline := time.Now().Add(5 * time.Second); perUser.Held(userKey) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the closed socket still holds its user's slot")
		}
	}
	again := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": alice})
	again.MustAck()
	again.conn.Close()

	// Per address: 3 sockets, whoever they belong to, once the sockets
	// closed above have ended.
	for deadline := time.Now().Add(5 * time.Second); perAddress.Held("127.0.0.1") > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the closed sockets still hold %d slots of the address", perAddress.Held("127.0.0.1"))
		}
	}
	var open []*gqlSocket
	for _, tok := range []string{alice, bob, ""} {
		ws := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": tok})
		ws.MustAck()
		open = append(open, ws)
	}
	over := s.MustDial(t, "graphql-transport-ws", nil, nil)
	if code, reason := over.MustClose(); code != wspolicy.CloseTooMany {
		t.Fatalf("fourth socket of an address closed with %d %q, want 4429", code, reason)
	}
	_ = open
}

func TestBadInitPayload(t *testing.T) {
	s := MustServer(t)
	for _, protocol := range []string{"graphql-transport-ws", "graphql-ws"} {
		ws := s.MustDial(t, protocol, nil, nil)
		// MustDial sent connection_init with a null payload: ack. Send
		// another socket a string payload.
		ws.MustAck()
		bad := s.MustDialRaw(t, protocol)
		if err := bad.conn.WriteMessage(1, []byte(`{"type":"connection_init","payload":"token"}`)); err != nil {
			t.Fatal(err)
		}
		if code, _ := bad.MustClose(); code != gqlws.CloseBadRequest {
			t.Fatalf("%s: closed with %d, want 4400", protocol, code)
		}
	}
}

// TestSubscriptionOverHTTP checks that a subscription sent over plain HTTP
// is refused at once instead of holding the request open.
func TestSubscriptionOverHTTP(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "alice")
	done := make(chan gqlResponse, 1)
	go func() { done <- s.Do(t, alice, `subscription{notifications{id}}`, nil) }()
	select {
	case r := <-done:
		if r.Code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, "websocket") {
			t.Fatalf("got %+v", r.Errors)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a subscription over HTTP held the request open")
	}
}
