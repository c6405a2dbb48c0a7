package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/testlog"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// sseEvent is one event of a GraphQL event stream; a comment line (the
// keepalive) is one with Comment set.
type sseEvent struct {
	Event   string
	Data    string
	Comment string
}

// sseStream reads a GraphQL event stream (graphql-sse's distinct
// connections mode) on a goroutine of its own, which ends with the
// response.
type sseStream struct {
	tb     testing.TB
	resp   *http.Response
	events chan sseEvent // closed at the end of the response
	done   chan struct{}
}

// PostStream posts a GraphQL operation that asks for an event stream, with
// an optional bearer token, and returns the response as it is.
func (s *testServer) PostStream(tb testing.TB, token, query string, vars map[string]any) *http.Response {
	tb.Helper()
	return s.postStreamWith(tb, s.Client(), token, query, vars)
}

func (s *testServer) postStreamWith(tb testing.TB, client *http.Client, token, query string, vars map[string]any) *http.Response {
	tb.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequestWithContext(tb.Context(), http.MethodPost, s.URL+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("post: %v", err)
	}
	tb.Cleanup(func() { resp.Body.Close() })
	return resp
}

// MustStream is PostStream that expects an event stream, and reads it.
func (s *testServer) MustStream(tb testing.TB, token, query string, vars map[string]any) *sseStream {
	tb.Helper()
	return s.mustStreamWith(tb, s.Client(), token, query, vars)
}

func (s *testServer) mustStreamWith(tb testing.TB, client *http.Client, token, query string, vars map[string]any) *sseStream {
	tb.Helper()
	resp := s.postStreamWith(tb, client, token, query, vars)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		b, _ := io.ReadAll(resp.Body)
		tb.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	st := &sseStream{tb: tb, resp: resp, events: make(chan sseEvent, 64), done: make(chan struct{})}
	go st.read()
	tb.Cleanup(func() {
		resp.Body.Close()
		<-st.done
	})
	return st
}

func (st *sseStream) read() {
	defer close(st.done)
	defer close(st.events)
	sc := bufio.NewScanner(st.resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	var ev sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev != (sseEvent{}) {
				st.events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			ev.Comment = line
		case strings.HasPrefix(line, "event:"):
			ev.Event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			ev.Data = strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")
		}
	}
}

// next returns the next event that is not a comment; ok is false when the
// stream ended first.
func (st *sseStream) next() (ev sseEvent, ok bool) {
	st.tb.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok = <-st.events:
			if !ok || ev.Comment == "" {
				return ev, ok
			}
		case <-timeout:
			st.tb.Fatal("no event within 10s")
		}
	}
}

// MustNext returns the data of the next event, which must be a next
// event, decoded.
func (st *sseStream) MustNext() gqlResponse {
	st.tb.Helper()
	ev, ok := st.next()
	if !ok || ev.Event != "next" {
		st.tb.Fatalf("got %+v (stream open: %v), want a next event", ev, ok)
	}
	var r gqlResponse
	if err := json.Unmarshal([]byte(ev.Data), &r); err != nil {
		st.tb.Fatalf("next event's data %q: %v", ev.Data, err)
	}
	return r
}

// MustData decodes data[field] of the next event, which must carry no
// error.
func (st *sseStream) MustData(field string, v any) {
	st.tb.Helper()
	r := st.MustNext()
	if len(r.Errors) > 0 {
		st.tb.Fatalf("errors %+v, want data", r.Errors)
	}
	if err := json.Unmarshal(r.Data[field], v); err != nil {
		st.tb.Fatalf("decode %s: %v (%s)", field, err, r.Data[field])
	}
}

// MustComplete checks that a complete event comes next, and then the end
// of the response.
func (st *sseStream) MustComplete() {
	st.tb.Helper()
	ev, ok := st.next()
	if !ok || ev.Event != "complete" {
		st.tb.Fatalf("got %+v (stream open: %v), want complete", ev, ok)
	}
	if ev, ok := st.next(); ok {
		st.tb.Fatalf("got %+v after complete, want the end of the response", ev)
	}
}

// mustStatusError checks that resp is an HTTP error with status and a
// GraphQL error body whose code is code.
func mustStatusError(tb testing.TB, resp *http.Response, status int, code string) {
	tb.Helper()
	var r gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		tb.Fatalf("status %d, body: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != status || r.Code() != code {
		tb.Fatalf("status %d, errors %+v; want %d with %s", resp.StatusCode, r.Errors, status, code)
	}
}

// TestStreamNotifications checks the notifications, unreadCount and
// inboxChanges subscriptions over an event stream, and its headers.
func TestStreamNotifications(t *testing.T) {
	s := MustServer(t)
	john, _ := s.MustRegister(t, "john")
	oliver, _ := s.MustRegister(t, "oliver")
	post := s.MustPost(t, oliver, "hello")

	notes := s.MustStream(t, oliver, `subscription{notifications{`+notificationFields+`}}`, nil)
	h := notes.resp.Header
	if h.Get("Cache-Control") != "no-store" || h.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("headers %v", h)
	}
	counts := s.MustStream(t, oliver, `subscription{unreadCount}`, nil)
	var n int
	counts.MustData("unreadCount", &n)
	if n != 0 {
		t.Fatalf("unreadCount %d, want 0", n)
	}
	changes := s.MustStream(t, oliver, `subscription{inboxChanges{kind cursor}}`, nil)

	// The subscriptions are live once their response has started.
	s.MustDo(t, john, `mutation($p:ID!){reactToPost(postId:$p,kind:LIKE){id}}`, map[string]any{"p": post}, "reactToPost", nil)
	var got notification
	notes.MustData("notifications", &got)
	if got.Action != "REACTION" || got.ByUser != "john" || got.AffectedID == nil || *got.AffectedID != post {
		t.Fatalf("notification %+v", got)
	}
	counts.MustData("unreadCount", &n)
	if n != 1 {
		t.Fatalf("unreadCount %d, want 1", n)
	}
	var c struct{ Kind, Cursor string }
	changes.MustData("inboxChanges", &c)
	if c.Kind != "ADDED" || c.Cursor != got.ID {
		t.Fatalf("inbox change %+v, want ADDED %s", c, got.ID)
	}

	// Resume with after: the backlog first.
	again := s.MustStream(t, oliver, `subscription($a:ID){notifications(after:$a){id}}`, map[string]any{"a": "0"})
	var first struct{ ID string }
	again.MustData("notifications", &first)
	if first.ID != got.ID {
		t.Fatalf("replayed %s, want %s", first.ID, got.ID)
	}
}

// TestStreamAuth: a bad token is HTTP 401 before the stream starts, as for
// a plain POST; without a token the subscription's resolver refuses it in
// the stream.
func TestStreamAuth(t *testing.T) {
	s := MustServer(t)
	resp := s.PostStream(t, "not-a-token", `subscription{notifications{id}}`, nil)
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("401 without WWW-Authenticate: %v", resp.Header)
	}
	mustStatusError(t, resp, http.StatusUnauthorized, "UNAUTHENTICATED")

	anon := s.MustStream(t, "", `subscription{notifications{id}}`, nil)
	if r := anon.MustNext(); r.Code() != "UNAUTHENTICATED" {
		t.Fatalf("anonymous subscription: %+v, want UNAUTHENTICATED", r.Errors)
	}
	anon.MustComplete()
}

// TestStreamLogout: logging out ends the session's streams with an
// UNAUTHENTICATED "logged out" error, then complete; the user's other
// sessions keep theirs.
func TestStreamLogout(t *testing.T) {
	s := MustServer(t)
	token, _ := s.MustRegister(t, "alice")
	var login struct{ AccessToken string }
	s.MustDo(t, "", `mutation{login(username:"alice",password:"password-alice"){accessToken}}`, nil, "login", &login)

	ended := s.MustStream(t, token, `subscription{unreadCount}`, nil)
	kept := s.MustStream(t, login.AccessToken, `subscription{unreadCount}`, nil)
	var n int
	ended.MustData("unreadCount", &n)
	kept.MustData("unreadCount", &n)

	s.MustDo(t, token, `mutation{logout}`, nil, "logout", nil)
	r := ended.MustNext()
	if r.Code() != "UNAUTHENTICATED" || r.Errors[0].Message != "logged out" {
		t.Fatalf("got %+v, want UNAUTHENTICATED \"logged out\"", r.Errors)
	}
	ended.MustComplete()
	select {
	case ev, ok := <-kept.events:
		t.Fatalf("the other session's stream got %+v (open: %v)", ev, ok)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestStreamTokenExpiry: a stream ends when its token expires, not before.
func TestStreamTokenExpiry(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	s := MustServerOpts(t, ServerOptions{Social: social.Config{TokenTTL: ttl}})
	registered := time.Now().Truncate(time.Millisecond)
	token, _ := s.MustRegister(t, "alice")
	st := s.MustStream(t, token, `subscription{unreadCount}`, nil)
	var n int
	st.MustData("unreadCount", &n)
	r := st.MustNext()
	if ended := time.Now(); ended.Before(registered.Add(ttl)) {
		t.Fatalf("ended %v after registering, before the token's expiry (%v)", ended.Sub(registered), ttl)
	}
	if r.Code() != "UNAUTHENTICATED" || !strings.Contains(r.Errors[0].Message, "expired") {
		t.Fatalf("got %+v, want UNAUTHENTICATED saying the token expired", r.Errors)
	}
	st.MustComplete()
}

// TestStreamCaps: event streams count against the sockets' per-user and
// per-address caps, and are refused with HTTP 429 over them.
func TestStreamCaps(t *testing.T) {
	perAddress := limit.NewSlots(2)
	m := metrics.New()
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) {
		c.Limits.SocketsPerUser = limit.NewSlots(1)
		c.Limits.SocketsPerAddress = perAddress
		c.Metrics = m
	}})
	alice, _ := s.MustRegister(t, "alice")
	bobToken, _ := s.MustRegister(t, "bob")
	first := s.MustStream(t, alice, `subscription{unreadCount}`, nil)
	var n int
	first.MustData("unreadCount", &n)
	mustStatusError(t, s.PostStream(t, alice, `subscription{unreadCount}`, nil), http.StatusTooManyRequests, "RATE_LIMITED")

	// A websocket of the same user counts against the same cap.
	ws := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": alice})
	if code, _ := ws.MustClose(); code != 4429 {
		t.Fatalf("socket over the user cap closed with %d, want 4429", code)
	}

	// Per address: bob's stream is the address's last, once the socket
	// closed above has let go of its slot; even a query over an event
	// stream is refused then.
	for deadline := time.Now().Add(5 * time.Second); perAddress.Held("127.0.0.1") > 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the address holds %d slots, want 1", perAddress.Held("127.0.0.1"))
		}
	}
	bob := s.MustStream(t, bobToken, `subscription{unreadCount}`, nil)
	bob.MustData("unreadCount", &n)
	mustStatusError(t, s.PostStream(t, "", `{__typename}`, nil), http.StatusTooManyRequests, "RATE_LIMITED")
	if got := counterValue(t, m, "pulse_sockets_refused_total", map[string]string{"transport": metrics.GraphQLSSE, "reason": "per_user"}); got != 1 {
		t.Fatalf("per_user refusals of graphql_sse: %v, want 1", got)
	}
	if got := counterValue(t, m, "pulse_sockets_open", map[string]string{"transport": metrics.GraphQLSSE}); got != 2 {
		t.Fatalf("open graphql_sse streams: %v, want 2", got)
	}
}

// TestStreamQuery: queries and mutations over an event stream are
// answered in one next event, then complete; errors found before the
// operation runs come the same way; a POST that accepts JSON as well gets
// plain JSON.
func TestStreamQuery(t *testing.T) {
	s := MustServer(t)
	q := s.MustStream(t, "", `{__typename}`, nil)
	var typename string
	q.MustData("__typename", &typename)
	if typename != "Query" {
		t.Fatalf("__typename %q", typename)
	}
	q.MustComplete()

	mut := s.MustStream(t, "", `mutation{register(username:"bob",password:"password-bob"){user{username}}}`, nil)
	var reg struct{ User struct{ Username string } }
	mut.MustData("register", &reg)
	if reg.User.Username != "bob" {
		t.Fatalf("registered %+v", reg)
	}
	mut.MustComplete()

	bad := s.MustStream(t, "", `{nosuchfield}`, nil)
	if r := bad.MustNext(); r.Code() != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("got %+v, want a validation error", r.Errors)
	}
	bad.MustComplete()

	body := strings.NewReader(`{"query":"{__typename}"}`)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/query", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/graphql-response+json, application/json, text/event-stream")
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "json") {
		t.Fatalf("a POST that accepts JSON got %q", ct)
	}
}

// TestStreamCosts: the resolver budget holds for each event of a
// subscription over an event stream.
func TestStreamCosts(t *testing.T) {
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) {
		c.Costs.MaxResolvedFields = 6
	}})
	john, _ := s.MustRegister(t, "john")
	oliver, _ := s.MustRegister(t, "oliver")
	st := s.MustStream(t, oliver, `subscription{notifications{`+notificationFields+`}}`, nil)
	s.MustFollow(t, john, "oliver")
	if r := st.MustNext(); r.Code() != string(social.CodeResourceLimitExceeded) {
		t.Fatalf("got %+v, want RESOURCE_LIMIT_EXCEEDED", r.Errors)
	}
}

// TestStreamTimeouts: the server's read and write timeouts, meant for
// whole requests, do not cut a stream, and an idle stream gets keepalive
// comments.
func TestStreamTimeouts(t *testing.T) {
	s := MustServerOpts(t, ServerOptions{
		Configure: func(c *httpapi.Config) { c.StreamKeepAlive = 50 * time.Millisecond },
		HTTPServer: func(srv *http.Server) {
			srv.ReadTimeout = 300 * time.Millisecond
			srv.WriteTimeout = 300 * time.Millisecond
		},
	})
	john, _ := s.MustRegister(t, "john")
	oliver, _ := s.MustRegister(t, "oliver")
	st := s.MustStream(t, oliver, `subscription{notifications{id}}`, nil)
	select {
	case ev := <-st.events:
		if ev.Comment == "" {
			t.Fatalf("got %+v, want a comment", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no keepalive")
	}
	time.Sleep(time.Second)
	s.MustFollow(t, john, "oliver")
	var n struct{ ID string }
	st.MustData("notifications", &n)
}

// TestStreamSlowConsumer: a stream whose client stops reading is cut off
// with a SLOW_CONSUMER error that says where to resume, and resuming there
// loses nothing.
func TestStreamSlowConsumer(t *testing.T) {
	// A long write timeout: the stream must be cut off for being slow, not
	// dropped for a write that timed out.
	m := metrics.New()
	s := MustServerOpts(t, ServerOptions{
		Fanout:    fanout.Config{QueueSize: 8},
		Websocket: wspolicy.Config{WriteTimeout: 2 * time.Minute},
		Configure: func(c *httpapi.Config) { c.Metrics = m },
	})
	author, _ := s.MustRegister(t, "Author")
	slowToken, _ := s.MustRegister(t, "Slow")
	s.MustFollow(t, slowToken, "author")

	dialer := &net.Dialer{Control: smallReceiveBuffer}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, ReadBufferSize: 4096}}
	t.Cleanup(client.CloseIdleConnections)
	slow := s.mustStreamWith(t, client, slowToken, `subscription{notifications{id actionContent}}`, nil)
	// The reader takes no more once its 64 events wait unread: then 300
	// posts of 5,000 four-byte characters (6 MB) overflow the client's
	// small receive buffer and the server's send buffer, then the
	// subscription's queue at the broker.
	body := strings.Repeat("😀", 5000)
	const posts = 300
	for range posts {
		s.MustPost(t, author, body)
	}

	var received int
	var after string
	for {
		r := slow.MustNext()
		if len(r.Errors) == 0 {
			received++
			continue
		}
		if r.Code() != "SLOW_CONSUMER" {
			t.Fatalf("after %d results: %+v, want SLOW_CONSUMER", received, r.Errors)
		}
		after, _ = r.Errors[0].Extensions["after"].(string)
		break
	}
	slow.MustComplete()
	if after == "" || received == 0 || received >= posts {
		t.Fatalf("received %d of %d, resume after %q", received, posts, after)
	}
	sse := map[string]string{"transport": metrics.GraphQLSSE}
	if got := counterValue(t, m, "pulse_slow_client_cutoffs_total", sse); got != 1 {
		t.Fatalf("graphql_sse slow cutoffs: %v, want 1", got)
	}
	if got := counterValue(t, m, "pulse_notifications_delivered_total", sse); got < float64(received) {
		t.Fatalf("graphql_sse deliveries: %v, want at least the %d received", got, received)
	}
	again := s.MustStream(t, slowToken, `subscription($a:ID){notifications(after:$a){id}}`, map[string]any{"a": after})
	for range posts - received {
		var n struct{ ID string }
		again.MustData("notifications", &n)
	}
	select {
	case ev := <-again.events:
		if ev.Comment == "" {
			t.Fatalf("got more than the %d posts: %+v", posts, ev)
		}
	case <-time.After(200 * time.Millisecond):
	}
}

// TestStreamLogs: a stream's log lines carry no token, and a refused or
// ended stream logs no ERROR.
func TestStreamLogs(t *testing.T) {
	var logs testlog.Buffer
	s := MustServerOpts(t, ServerOptions{Configure: logTo(&logs)})
	token, _ := s.MustRegister(t, "alice")
	st := s.MustStream(t, token, `subscription{unreadCount}`, nil)
	var n int
	st.MustData("unreadCount", &n)
	mustStatusError(t, s.PostStream(t, token+"x", `subscription{unreadCount}`, nil), http.StatusUnauthorized, "UNAUTHENTICATED")
	s.MustDo(t, token, `mutation{logout}`, nil, "logout", nil)
	st.MustNext()
	st.MustComplete()
	waitForLine(t, &logs, "graphql stream ended", "reason=\"logged out\"")
	if strings.Contains(logs.String(), token) {
		t.Fatalf("a log line holds the token:\n%s", logs.String())
	}
	mustNoErrorLines(t, &logs)
}

// TestStreamShutdown: the server's shutdown (the end of every request's
// context) ends a stream without complete, which tells the graphql-sse
// client to connect again.
func TestStreamShutdown(t *testing.T) {
	s := MustServer(t)
	token, _ := s.MustRegister(t, "alice")
	st := s.MustStream(t, token, `subscription{unreadCount}`, nil)
	var n int
	st.MustData("unreadCount", &n)
	s.cancel()
	if ev, ok := st.next(); ok {
		t.Fatalf("got %+v at shutdown, want the end of the response", ev)
	}
}

// counterValue returns the value of the metric name with labels, or 0.
func counterValue(tb testing.TB, m *metrics.Metrics, name string, labels map[string]string) float64 {
	tb.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			if c := metric.GetCounter(); c != nil {
				return c.GetValue()
			}
			return metric.GetGauge().GetValue()
		}
	}
	return 0
}
