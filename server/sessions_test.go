package main

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wantClose fails unless err is a close with code and reason.
func wantClose(t *testing.T, name string, err error, code int, reason string) {
	t.Helper()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != code || ce.Text != reason {
		t.Fatalf("%s: %v, want closed with %d %q", name, err, code, reason)
	}
}

// sessionSockets are a plain and a GraphQL socket of one session.
type sessionSockets struct {
	plain *plainSocket
	gql   *gqlSocket
}

// mustOpenSockets opens both sockets on p with credential (a token or,
// for the plain socket, a ticket).
func (p *process) mustOpenSockets(token string) sessionSockets {
	p.t.Helper()
	return sessionSockets{plain: p.MustDialPlain(token, ""), gql: p.MustDialGraphQL(token)}
}

// open fails unless both sockets are open: each answers a ping.
func (s sessionSockets) mustBeOpen(t *testing.T, name string) {
	t.Helper()
	if err := s.plain.conn.WriteJSON(map[string]any{"type": "ping"}); err != nil {
		t.Fatalf("%s plain socket: %v", name, err)
	}
	_ = s.plain.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := s.plain.conn.ReadMessage(); err != nil || string(b) != `{"type":"pong"}` {
		t.Fatalf("%s plain socket: %s, %v; want a pong", name, b, err)
	}
	if err := s.gql.conn.WriteJSON(map[string]any{"type": "ping"}); err != nil {
		t.Fatalf("%s GraphQL socket: %v", name, err)
	}
	if m, err := s.gql.read(5 * time.Second); err != nil || m["type"] != "pong" {
		t.Fatalf("%s GraphQL socket: %v, %v; want a pong", name, m, err)
	}
}

// mustClose waits (at most within) for both sockets to close with 4401
// and reason, the GraphQL socket's subscription perhaps ending first.
func (s sessionSockets) mustClose(t *testing.T, name string, within time.Duration, reason string) {
	t.Helper()
	_, err := s.plain.Next(within)
	wantClose(t, name+" plain socket", err, 4401, reason)
	for {
		m, err := s.gql.read(within)
		if err != nil {
			wantClose(t, name+" GraphQL socket", err, 4401, reason)
			return
		}
		if m["type"] != "error" {
			t.Fatalf("%s GraphQL socket: got %v before the close", name, m)
		}
	}
}

// TestRefreshKeepsSockets opens both sockets with a short-lived token T
// on one process and refreshes T through another: the sockets stay open
// past T's expiry, and close when the new token expires. T itself stops
// working after the grace period. With one process (SQLite) and with two
// (PostgreSQL, Redis): the refresh reaches sockets through the broker.
func TestRefreshKeepsSockets(t *testing.T) {
	t.Run("OneProcess", func(t *testing.T) {
		p := MustStart(t, filepath.Join(t.TempDir(), "pulse.db"), "", "--token-ttl", "4s", "--token-refresh-grace", "1s")
		testRefreshKeepsSockets(t, p, p)
	})
	t.Run("Cluster", func(t *testing.T) {
		requireServices(t)
		db, redis := MustDatabase(t), MustRedis(t)
		flags := []string{"--token-ttl", "4s", "--token-refresh-grace", "1s"}
		testRefreshKeepsSockets(t, MustStart(t, db, redis.URL(), flags...), MustStart(t, db, redis.URL(), flags...))
	})
}

func testRefreshKeepsSockets(t *testing.T, issuer, holder *process) {
	const ttl = 4 * time.Second
	start := time.Now()
	old := issuer.MustRegister(t, "alice")
	socks := holder.mustOpenSockets(old)
	time.Sleep(time.Second)
	var refreshed struct{ AccessToken string }
	refreshedAt := time.Now()
	issuer.MustDo(t, old, `mutation{refreshToken{accessToken}}`, nil, "refreshToken", &refreshed)
	if refreshed.AccessToken == "" || refreshed.AccessToken == old {
		t.Fatalf("refreshToken gave %q", refreshed.AccessToken)
	}
	// Past the old token's grace, it stops; the new one works.
	time.Sleep(1500 * time.Millisecond)
	if err := issuer.Do(old, `{me{id}}`, nil, "me", nil); err == nil {
		t.Fatalf("the old token works after its grace period")
	}
	issuer.MustDo(t, refreshed.AccessToken, `{me{id}}`, nil, "me", nil)
	// Past the old token's own expiry, the sockets are open.
	time.Sleep(time.Until(start.Add(ttl + 500*time.Millisecond)))
	socks.mustBeOpen(t, "after the old token's expiry")
	// They close when the new token expires.
	socks.mustClose(t, "at the new token's expiry", 10*time.Second, "token expired")
	if since := time.Since(refreshedAt); since < ttl || since > ttl+3*time.Second {
		t.Fatalf("the sockets closed %v after the refresh, want soon after %v", since, ttl)
	}
}

// TestEndSessionAndLogoutAll ends one session of a user from another
// device, then all of them: each closes the sockets of the sessions it
// ends, on both transports, within a second, and no others.
func TestEndSessionAndLogoutAll(t *testing.T) {
	p := MustStart(t, filepath.Join(t.TempDir(), "pulse.db"), "")
	first := p.MustRegister(t, "alice")
	var login struct{ AccessToken string }
	p.MustDo(t, "", `mutation{login(username:"alice",password:"password-alice"){accessToken}}`, nil, "login", &login)
	second := login.AccessToken
	p.MustDo(t, "", `mutation{login(username:"alice",password:"password-alice"){accessToken}}`, nil, "login", &login)
	device := login.AccessToken
	bob := p.MustRegister(t, "bob")

	firstSocks, secondSocks, bobSocks := p.mustOpenSockets(first), p.mustOpenSockets(second), p.mustOpenSockets(bob)

	var sessions []struct {
		ID      string
		Current bool
	}
	p.MustDo(t, first, `{sessions{id current}}`, nil, "sessions", &sessions)
	if len(sessions) != 3 || !sessions[2].Current || sessions[0].Current || sessions[1].Current {
		t.Fatalf("sessions of the first device = %+v, want 3, newest first, the last current", sessions)
	}
	var ended bool
	p.MustDo(t, device, `mutation($id:ID!){endSession(id:$id)}`, map[string]any{"id": sessions[2].ID}, "endSession", &ended)
	if !ended {
		t.Fatalf("endSession = false")
	}
	firstSocks.mustClose(t, "the ended session's", time.Second, "logged out")
	secondSocks.mustBeOpen(t, "another session's")
	p.MustDo(t, bob, `mutation($id:ID!){endSession(id:$id)}`, map[string]any{"id": sessions[1].ID}, "endSession", &ended)
	if ended {
		t.Fatalf("bob ended alice's session")
	}
	secondSocks.mustBeOpen(t, "a session another user tried to end")

	var n int
	p.MustDo(t, device, `mutation{logoutAll}`, nil, "logoutAll", &n)
	if n != 2 {
		t.Fatalf("logoutAll = %d, want 2 live sessions", n)
	}
	secondSocks.mustClose(t, "after logoutAll", time.Second, "logged out")
	bobSocks.mustBeOpen(t, "bob's")
	for _, tok := range []string{first, second, device} {
		if err := p.Do(tok, `{me{id}}`, nil, "me", nil); err == nil {
			t.Fatalf("a token of an ended session works")
		}
	}
}

// mustTicket returns a socket ticket issued through p for token's session.
func (p *process) mustTicket(token string) string {
	p.t.Helper()
	var st struct{ Ticket string }
	p.MustDo(p.t, token, `mutation{socketTicket{ticket expiresAt}}`, nil, "socketTicket", &st)
	return st.Ticket
}

// dialGraphQLTicket opens a GraphQL socket on p with a ticket in its
// connection_init; it returns the socket once acknowledged, or the close.
func (p *process) dialGraphQLTicket(ticket string) (*gqlSocket, error) {
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	c, _, err := d.Dial("ws://"+p.Addr+"/query", nil)
	if err != nil {
		return nil, err
	}
	p.t.Cleanup(func() { c.Close() })
	s := &gqlSocket{conn: c}
	_ = c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"ticket": ticket}})
	m, err := s.read(5 * time.Second)
	if err != nil {
		return nil, err
	}
	if m["type"] != "connection_ack" {
		return nil, errors.New("no connection_ack")
	}
	return s, nil
}

// TestClusterTickets issues tickets through A and uses them on B: each
// opens one socket, of either transport, once; then logoutAll through C
// closes the user's sockets on A and B.
func TestClusterTickets(t *testing.T) {
	requireServices(t)
	db, redis := MustDatabase(t), MustRedis(t)
	a, b, c := MustStart(t, db, redis.URL()), MustStart(t, db, redis.URL()), MustStart(t, db, redis.URL())
	alice := a.MustRegister(t, "alice")

	ticket := a.mustTicket(alice)
	plain := b.MustDialPlain(ticket, "")
	again := b.MustDialPlain(ticket, "")
	_, err := again.Next(5 * time.Second)
	wantClose(t, "a used ticket on the plain socket", err, 4401, "invalid access token")
	_, err = a.dialGraphQLTicket(ticket)
	wantClose(t, "a used ticket on the GraphQL socket", err, 4403, "Forbidden: invalid access token")

	ticket = a.mustTicket(alice)
	gql, err := b.dialGraphQLTicket(ticket)
	if err != nil {
		t.Fatalf("GraphQL socket with a ticket: %v", err)
	}
	_, err = b.MustDialPlain(ticket, "").Next(5 * time.Second)
	wantClose(t, "a ticket used by the GraphQL socket, on the plain socket", err, 4401, "invalid access token")
	// The ticket's socket belongs to the session: its operations are
	// alice's.
	_ = gql.conn.WriteJSON(map[string]any{"id": "me", "type": "subscribe", "payload": map[string]any{"query": `{me{username}}`}})
	if m, err := gql.read(5 * time.Second); err != nil || m["type"] != "next" {
		t.Fatalf("me over the ticket's socket: %v, %v", m, err)
	}
	if m, err := gql.read(5 * time.Second); err != nil || m["type"] != "complete" {
		t.Fatalf("me over the ticket's socket: %v, %v", m, err)
	}
	onA := a.mustOpenSockets(alice)
	socks := sessionSockets{plain: plain, gql: gql}
	socks.mustBeOpen(t, "B's, opened with tickets")

	var n int
	c.MustDo(t, alice, `mutation{logoutAll}`, nil, "logoutAll", &n)
	if n != 1 {
		t.Fatalf("logoutAll = %d, want 1", n)
	}
	socks.mustClose(t, "B's after logoutAll on C", time.Second, "logged out")
	onA.mustClose(t, "A's after logoutAll on C", time.Second, "logged out")
}
