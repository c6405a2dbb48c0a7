package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// gqlSocket is a GraphQL websocket client speaking either
// graphql-transport-ws or the legacy graphql-ws protocol.
type gqlSocket struct {
	tb     testing.TB
	conn   *websocket.Conn
	legacy bool
}

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// MustDial opens a GraphQL socket and sends connection_init with payload.
func (s *testServer) MustDial(tb testing.TB, protocol string, header http.Header, payload map[string]any) *gqlSocket {
	tb.Helper()
	return s.MustDialWith(tb, nil, protocol, header, payload)
}

// smallReceiveBuffer makes a client socket's kernel receive buffer small,
// so that a client that stops reading backs the server up quickly.
func smallReceiveBuffer(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
	})
	if err != nil {
		return err
	}
	return serr
}

// MustDialWith is MustDial with control applied to the client's socket.
func (s *testServer) MustDialWith(tb testing.TB, control func(network, address string, c syscall.RawConn) error, protocol string, header http.Header, payload map[string]any) *gqlSocket {
	tb.Helper()
	nd := &net.Dialer{Control: control}
	d := websocket.Dialer{Subprotocols: []string{protocol}, HandshakeTimeout: 5 * time.Second, NetDialContext: nd.DialContext}
	conn, resp, err := d.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/query", header)
	if err != nil {
		tb.Fatalf("dial: %v (%v)", err, resp)
	}
	if conn.Subprotocol() != protocol {
		tb.Fatalf("negotiated %q, want %q", conn.Subprotocol(), protocol)
	}
	tb.Cleanup(func() { conn.Close() })
	c := &gqlSocket{tb: tb, conn: conn, legacy: protocol == "graphql-ws"}
	p, _ := json.Marshal(payload)
	c.send(wsMessage{Type: "connection_init", Payload: p})
	return c
}

func (c *gqlSocket) send(m wsMessage) {
	c.tb.Helper()
	if err := c.conn.WriteJSON(m); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

// next reads the next message that is not a keepalive or ping.
func (c *gqlSocket) next() (wsMessage, error) {
	return c.nextWithin(5 * time.Second)
}

// nextWithin is next with a deadline.
func (c *gqlSocket) nextWithin(d time.Duration) (wsMessage, error) {
	for {
		_ = c.conn.SetReadDeadline(time.Now().Add(d))
		var m wsMessage
		if err := c.conn.ReadJSON(&m); err != nil {
			return m, err
		}
		switch m.Type {
		case "ka", "ping", "pong":
			if m.Type == "ping" {
				c.send(wsMessage{Type: "pong"})
			}
			continue
		}
		return m, nil
	}
}

// MustAck waits for connection_ack.
func (c *gqlSocket) MustAck() {
	c.tb.Helper()
	m, err := c.next()
	if err != nil || m.Type != "connection_ack" {
		c.tb.Fatalf("want connection_ack, got %+v, %v", m, err)
	}
}

// Subscribe starts an operation with this id.
func (c *gqlSocket) Subscribe(id, query string, vars map[string]any) {
	c.tb.Helper()
	p, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	typ := "subscribe"
	if c.legacy {
		typ = "start"
	}
	c.send(wsMessage{ID: id, Type: typ, Payload: p})
}

// MustData reads the next result of operation id and decodes data[field].
func (c *gqlSocket) MustData(id, field string, v any) {
	c.tb.Helper()
	m, err := c.next()
	if err != nil {
		c.tb.Fatalf("read: %v", err)
	}
	want := "next"
	if c.legacy {
		want = "data"
	}
	if m.Type != want || m.ID != id {
		c.tb.Fatalf("want %s for %s, got %+v (%s)", want, id, m, m.Payload)
	}
	var p struct {
		Data   map[string]json.RawMessage
		Errors []gqlError
	}
	if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
		c.tb.Fatalf("payload %s: %v", m.Payload, err)
	}
	if err := json.Unmarshal(p.Data[field], v); err != nil {
		c.tb.Fatalf("decode %s: %v", p.Data[field], err)
	}
}

// MustClose waits for the server to close the socket and returns the code.
func (c *gqlSocket) MustClose() (int, string) {
	c.tb.Helper()
	for {
		_, err := c.next()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code, ce.Text
		}
		c.tb.Fatalf("want a close frame, got %v", err)
	}
}

func TestGraphQLSocketNotifications(t *testing.T) {
	for _, protocol := range []string{"graphql-transport-ws", "graphql-ws"} {
		t.Run(protocol, func(t *testing.T) {
			s := MustServer(t)
			oliver, _ := s.MustRegister(t, "Oliver")
			john, _ := s.MustRegister(t, "John")
			post := s.MustPost(t, oliver, "post")

			ws := s.MustDial(t, protocol, nil, map[string]any{"authorization": "Bearer " + oliver})
			ws.MustAck()
			// after: "0" replays from the store, so the notification
			// arrives even if the reaction commits before the subscription
			// is live.
			ws.Subscribe("n", `subscription{notifications(after:"0"){`+notificationFields+`}}`, nil)
			ws.Subscribe("u", `subscription{unreadCount}`, nil)
			var count int
			ws.MustData("u", "unreadCount", &count)
			if count != 0 {
				t.Fatalf("initial unreadCount %d", count)
			}
			// The subscription is live once unreadCount answered? Not
			// necessarily for "n": make sure by retrying the action.
			var r struct{ ID string }
			deadline := time.Now().Add(5 * time.Second)
			var got notification
			for {
				s.MustDo(t, john, `mutation($p:ID!){reactToPost(postId:$p,kind:LAUGH){id}}`, map[string]any{"p": post}, "reactToPost", &r)
				m := readUntil(t, ws, "n")
				if m != nil {
					got = *m
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no notification")
				}
			}
			if got.Message != "John reacted to your post" || got.Action != "REACTION" || got.ActionID != r.ID || got.ByUser != "John" ||
				got.ActionContent == nil || *got.ActionContent != "laugh" || got.Affected == nil || *got.Affected != "POST" ||
				got.AffectedID == nil || *got.AffectedID != post || got.Read || got.ID == "" || got.CreatedAt == "" {
				t.Fatalf("notification = %+v", got)
			}
		})
	}
}

// readUntil reads results until one for operation id arrives (returning
// it) or none comes within 5 seconds (failing the test: the connection is
// unusable after a timed-out read).
func readUntil(t *testing.T, ws *gqlSocket, id string) *notification {
	t.Helper()
	for {
		_ = ws.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var m wsMessage
		if err := ws.conn.ReadJSON(&m); err != nil {
			t.Fatalf("no result for %s: %v", id, err)
		}
		if m.ID != id {
			continue
		}
		var p struct {
			Data struct{ Notifications notification }
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		return &p.Data.Notifications
	}
}

func TestGraphQLSocketResumeAndUnread(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "Alice")
	bob, _ := s.MustRegister(t, "Bob")
	post := s.MustPost(t, alice, "post")
	for i := range 5 {
		s.MustDo(t, bob, `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`, map[string]any{"p": post, "b": fmt.Sprint(i)}, "createComment", nil)
	}
	stored := s.MustNotifications(t, alice) // newest first
	after := stored[3].ID                   // the second oldest

	ws := s.MustDial(t, "graphql-transport-ws", http.Header{"Authorization": {"Bearer " + alice}}, nil)
	ws.MustAck()
	ws.Subscribe("n", `subscription($a:ID){notifications(after:$a){id actionContent}}`, map[string]any{"a": after})
	for _, want := range []string{"2", "3", "4"} {
		var n struct{ ID, ActionContent string }
		ws.MustData("n", "notifications", &n)
		if n.ActionContent != want {
			t.Fatalf("replayed %+v, want comment %s", n, want)
		}
	}
	s.MustDo(t, bob, `mutation($p:ID!){createComment(postId:$p,body:"live"){id}}`, map[string]any{"p": post}, "createComment", nil)
	var live struct{ ID, ActionContent string }
	ws.MustData("n", "notifications", &live)
	if live.ActionContent != "live" {
		t.Fatalf("live = %+v", live)
	}

	ws.Subscribe("u", `subscription{unreadCount}`, nil)
	var count int
	ws.MustData("u", "unreadCount", &count)
	if count != 6 {
		t.Fatalf("unreadCount %d, want 6", count)
	}
	s.MustDo(t, alice, `mutation{markNotificationsRead(all:true)}`, nil, "markNotificationsRead", nil)
	ws.MustData("u", "unreadCount", &count)
	if count != 0 {
		t.Fatalf("unreadCount after marking read %d, want 0", count)
	}
}

func TestGraphQLSocketAuth(t *testing.T) {
	s := MustServer(t)
	token, _ := s.MustRegister(t, "Alice")
	for _, protocol := range []string{"graphql-transport-ws", "graphql-ws"} {
		t.Run(protocol+"/BadToken", func(t *testing.T) {
			ws := s.MustDial(t, protocol, nil, map[string]any{"Authorization": "Bearer nope"})
			if code, _ := ws.MustClose(); code != 4403 {
				t.Fatalf("close code %d, want 4403", code)
			}
		})
		t.Run(protocol+"/Logout", func(t *testing.T) {
			var p struct{ AccessToken string }
			s.MustDo(t, "", `mutation{login(username:"alice",password:"password-Alice"){accessToken}}`, nil, "login", &p)
			ws := s.MustDial(t, protocol, nil, map[string]any{"authorization": p.AccessToken})
			ws.MustAck()
			ws.Subscribe("u", `subscription{unreadCount}`, nil)
			var n int
			ws.MustData("u", "unreadCount", &n)
			s.MustDo(t, p.AccessToken, `mutation{logout}`, nil, "logout", nil)
			if code, _ := ws.MustClose(); code != 4401 {
				t.Fatalf("close code %d, want 4401", code)
			}
		})
		t.Run(protocol+"/Anonymous", func(t *testing.T) {
			ws := s.MustDial(t, protocol, nil, nil)
			ws.MustAck()
			ws.Subscribe("n", `subscription{notifications{id}}`, nil)
			m, err := ws.next()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(m.Payload), "UNAUTHENTICATED") {
				t.Fatalf("anonymous subscription got %+v (%s)", m, m.Payload)
			}
		})
	}
	_ = token
}

// TestGraphQLSlowSubscriber stops reading a subscription while notifications
// keep coming: the subscription ends with SLOW_CONSUMER and the id to
// resume from, another user's subscription is not held up, and resuming
// from that id misses nothing.
func TestGraphQLSlowSubscriber(t *testing.T) {
	// A long write timeout: the slow socket must be cut off for being slow,
	// not dropped for a write that timed out.
	s := MustServerWith(t, fanout.Config{QueueSize: 8}, wspolicy.Config{WriteTimeout: 2 * time.Minute})
	author, _ := s.MustRegister(t, "Author")
	slowToken, _ := s.MustRegister(t, "Slow")
	fastToken, _ := s.MustRegister(t, "Fast")
	s.MustFollow(t, slowToken, "author")
	s.MustFollow(t, fastToken, "author")

	slow := s.MustDialWith(t, smallReceiveBuffer, "graphql-transport-ws", nil, map[string]any{"authorization": slowToken})
	slow.MustAck()
	slow.Subscribe("n", `subscription{notifications{id actionContent}}`, nil)
	fast := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": fastToken})
	fast.MustAck()
	fast.Subscribe("n", `subscription{notifications{id actionContent}}`, nil)

	// 300 posts of 5,000 four-byte characters (6 MB) overflow the slow
	// socket's small receive buffer and the server's send buffer (at most 4
	// MB here), then its queue at the broker. The fast one reads every
	// notification as it comes.
	body := strings.Repeat("😀", 5000)
	const posts = 300
	for range posts {
		s.MustPost(t, author, body)
		var n struct{ ID string }
		fast.MustData("n", "notifications", &n)
	}

	var after string
	var received int
	for {
		m, err := slow.next()
		if err != nil {
			t.Fatalf("after %d results the slow socket ended with %v, want a SLOW_CONSUMER error", received, err)
		}
		if m.Type == "next" {
			received++
			continue
		}
		if m.Type != "error" || !strings.Contains(string(m.Payload), "SLOW_CONSUMER") {
			t.Fatalf("got %+v (%s), want a SLOW_CONSUMER error", m, m.Payload)
		}
		var errs []gqlError
		if err := json.Unmarshal(m.Payload, &errs); err != nil {
			t.Fatal(err)
		}
		after, _ = errs[0].Extensions["after"].(string)
		break
	}
	if after == "" || received == 0 || received >= posts {
		t.Fatalf("received %d of %d, resume after %q", received, posts, after)
	}

	again := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": slowToken})
	again.MustAck()
	again.Subscribe("r", `subscription($a:ID){notifications(after:$a){id}}`, map[string]any{"a": after})
	for i := received; i < posts; i++ {
		var n struct{ ID string }
		again.MustData("r", "notifications", &n)
	}
	if m, err := again.nextWithin(200 * time.Millisecond); err == nil {
		t.Fatalf("got more than the %d posts: %+v", posts, m)
	}
}

// TestGraphQLBrokerClosed: a notifications subscription whose broker
// closes ends with an UNAVAILABLE error that says where to resume.
func TestGraphQLBrokerClosed(t *testing.T) {
	s := MustServer(t)
	author, _ := s.MustRegister(t, "Author")
	token, _ := s.MustRegister(t, "Reader")
	s.MustFollow(t, token, "author")

	c := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": token})
	c.MustAck()
	c.Subscribe("n", `subscription{notifications{id}}`, nil)
	s.MustPost(t, author, "first")
	var n struct{ ID string }
	c.MustData("n", "notifications", &n)

	s.broker.Close()
	m, err := c.next()
	if err != nil {
		t.Fatalf("after the broker closed: %v, want an error message", err)
	}
	var errs []gqlError
	if m.Type != "error" || json.Unmarshal(m.Payload, &errs) != nil || len(errs) == 0 {
		t.Fatalf("got %+v (%s), want an UNAVAILABLE error", m, m.Payload)
	}
	if code, after := errs[0].Extensions["code"], errs[0].Extensions["after"]; code != "UNAVAILABLE" || after != n.ID {
		t.Fatalf("extensions %v, want code UNAVAILABLE and after %q", errs[0].Extensions, n.ID)
	}
}

// MustDialRaw opens a GraphQL socket and sends nothing.
func (s *testServer) MustDialRaw(tb testing.TB, protocol string) *gqlSocket {
	tb.Helper()
	d := websocket.Dialer{Subprotocols: []string{protocol}, HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/query", nil)
	if err != nil {
		tb.Fatalf("dial: %v (%v)", err, resp)
	}
	tb.Cleanup(func() { conn.Close() })
	return &gqlSocket{tb: tb, conn: conn, legacy: protocol == "graphql-ws"}
}

// websocketDial opens a plain socket with token.
func websocketDial(serverURL, token string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	return d.Dial("ws"+strings.TrimPrefix(serverURL, "http")+"/ws/"+token+"/", nil)
}

// readCloseCode reads until the server closes c and returns its code (0 if
// the connection ended without a close frame).
func readCloseCode(tb testing.TB, c *websocket.Conn) int {
	tb.Helper()
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			return 0
		}
	}
}

// TestGraphQLLiveFromAck checks the promise a subscription without after
// makes: the socket's first one gets every notification committed after the
// client saw connection_ack, even one committed before the subscription
// started; later ones start when they start.
func TestGraphQLLiveFromAck(t *testing.T) {
	s := MustServer(t)
	alice, _ := s.MustRegister(t, "Alice")
	bob, _ := s.MustRegister(t, "Bob")
	post := s.MustPost(t, alice, "post")
	comment := func(body string) {
		s.MustDo(t, bob, `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`, map[string]any{"p": post, "b": body}, "createComment", nil)
	}
	comment("before the socket")

	ws := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": alice})
	ws.MustAck()
	comment("after the ack")
	ws.Subscribe("first", `subscription{notifications{actionContent}}`, nil)
	var n struct{ ActionContent string }
	ws.MustData("first", "notifications", &n)
	if n.ActionContent != "after the ack" {
		t.Fatalf("first subscription got %q, want the comment made after the ack", n.ActionContent)
	}

	// A second subscription starts when it starts: it never replays the
	// comment made after the ack. It goes live at a moment the client
	// cannot see, so comment until it has seen one.
	ws.Subscribe("second", `subscription{notifications{actionContent}}`, nil)
	second := make(chan string, 64)
	go func() { // ends when the test closes the socket
		defer close(second)
		for {
			var m wsMessage
			if err := ws.conn.ReadJSON(&m); err != nil {
				return
			}
			var p struct {
				Data struct {
					Notifications struct{ ActionContent string }
				}
			}
			if m.ID == "second" && json.Unmarshal(m.Payload, &p) == nil {
				second <- p.Data.Notifications.ActionContent
			}
		}
	}()
	_ = ws.conn.SetReadDeadline(time.Time{})
	for i := range 50 {
		comment(fmt.Sprint("live ", i))
		select {
		case got := <-second:
			if !strings.HasPrefix(got, "live ") {
				t.Fatalf("the second subscription got %q, want only live comments", got)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatal("the second subscription never received a notification")
}
