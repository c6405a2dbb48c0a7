package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/testbin"
)

// The cluster tests run the real binary as several processes sharing one
// PostgreSQL database and one Redis server of their own (see testbin).

// requireServices skips the test, or fails it in CI, when PostgreSQL or
// redis-server is missing.
func requireServices(t *testing.T) {
	t.Helper()
	testbin.RequireServices(t)
}

// MustDatabase creates a fresh PostgreSQL database and returns its URL.
func MustDatabase(t *testing.T) string {
	t.Helper()
	return testbin.MustDatabase(t)
}

// MustRedis starts a redis-server of the test's own.
func MustRedis(t *testing.T) *testbin.Redis {
	t.Helper()
	return testbin.MustRedis(t)
}

// process is one running server.
type process struct {
	*testbin.Server
	t *testing.T
}

// MustStart starts a server on db and broker, with more flags if given.
func MustStart(t *testing.T, db, broker string, flags ...string) *process {
	t.Helper()
	return &process{Server: testbin.Start(t, append([]string{"--db", db, "--broker", broker}, flags...)...), t: t}
}

// plainSocket is a client of /ws/{token}/ that collects notification ids.
type plainSocket struct {
	conn *websocket.Conn
}

func (p *process) DialPlain(token string, after string) (*plainSocket, error) {
	u := "ws://" + p.Addr + "/ws/" + token + "/"
	if after != "" {
		u += "?after=" + after
	}
	c, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		return nil, err
	}
	return &plainSocket{conn: c}, nil
}

func (p *process) MustDialPlain(token, after string) *plainSocket {
	p.t.Helper()
	s, err := p.DialPlain(token, after)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { s.conn.Close() })
	return s
}

// Next returns the next notification frame, or the close error.
func (s *plainSocket) Next(timeout time.Duration) (map[string]any, error) {
	_ = s.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		_, b, err := s.conn.ReadMessage()
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, err
		}
		if _, ok := m["action"]; ok {
			return m, nil
		}
	}
}

func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// gqlSocket is a graphql-transport-ws client with one notifications
// subscription.
type gqlSocket struct {
	conn *websocket.Conn
}

func (p *process) MustDialGraphQL(token string) *gqlSocket {
	p.t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	c, _, err := d.Dial("ws://"+p.Addr+"/query", nil)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.Close() })
	s := &gqlSocket{conn: c}
	_ = c.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"authorization": token}})
	if m, err := s.read(5 * time.Second); err != nil || m["type"] != "connection_ack" {
		p.t.Fatalf("connection_init: %v %v", m, err)
	}
	_ = c.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": `subscription{notifications(after:"0"){id message}}`}})
	return s
}

func (s *gqlSocket) read(timeout time.Duration) (map[string]any, error) {
	_ = s.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		var m map[string]any
		if err := s.conn.ReadJSON(&m); err != nil {
			return nil, err
		}
		if m["type"] == "ping" {
			_ = s.conn.WriteJSON(map[string]any{"type": "pong"})
			continue
		}
		return m, nil
	}
}

// NextMessage returns the message of the next notification.
func (s *gqlSocket) NextMessage(timeout time.Duration) (string, error) {
	m, err := s.read(timeout)
	if err != nil {
		return "", err
	}
	if m["type"] != "next" {
		return "", fmt.Errorf("got %v", m)
	}
	payload, _ := m["payload"].(map[string]any)
	data, _ := payload["data"].(map[string]any)
	n, _ := data["notifications"].(map[string]any)
	msg, _ := n["message"].(string)
	return msg, nil
}

// TestClusterDeliversAcrossProcesses has bob act through B while alice
// listens on A, on both sockets and an event stream (opened with a ticket
// issued through C); logout through C then ends all three.
func TestClusterDeliversAcrossProcesses(t *testing.T) {
	requireServices(t)
	db, redis := MustDatabase(t), MustRedis(t)
	a, b, c := MustStart(t, db, redis.URL()), MustStart(t, db, redis.URL()), MustStart(t, db, redis.URL())

	alice := a.MustRegister(t, "alice")
	bob := b.MustRegister(t, "bob")
	var post struct{ ID string }
	a.MustDo(t, alice, `mutation{createPost(body:"hello"){id}}`, nil, "createPost", &post)

	plain := a.MustDialPlain(alice, "0")
	gql := a.MustDialGraphQL(alice)
	stream := sseDialer{}.dial(t, a.Addr, "after=0&ticket="+c.mustTicket(alice), nil)
	// The three subscriptions replay from the start, so whenever they go
	// live, the reaction reaches them.
	b.MustDo(t, bob, `mutation($p:ID!){reactToPost(postId:$p,kind:LAUGH){id}}`, map[string]any{"p": post.ID}, "reactToPost", nil)
	if msg, err := gql.NextMessage(10 * time.Second); err != nil || msg != "bob reacted to your post" {
		t.Fatalf("GraphQL socket on A: %q %v", msg, err)
	}
	if n, err := plain.Next(10 * time.Second); err != nil || n["message"] != "bob reacted to your post" || n["action_content"] != "laugh" {
		t.Fatalf("plain socket on A: %v %v", n, err)
	}
	if ev := stream.Notification(t, 10*time.Second); ev.Event != "notification" || mustFrame(t, ev)["message"] != "bob reacted to your post" {
		t.Fatalf("event stream on A: %+v", ev)
	}

	// A comment through B reaches the stream on A, live.
	b.MustDo(t, bob, `mutation($p:ID!){createComment(postId:$p,body:"hi"){id}}`, map[string]any{"p": post.ID}, "createComment", nil)
	if ev := stream.Notification(t, 10*time.Second); ev.Event != "notification" || mustFrame(t, ev)["action_content"] != "hi" {
		t.Fatalf("event stream on A: %+v", ev)
	}
	if n, err := plain.Next(10 * time.Second); err != nil || n["action_content"] != "hi" {
		t.Fatalf("plain socket on A: %v %v", n, err)
	}
	if msg, err := gql.NextMessage(10 * time.Second); err != nil || msg != "bob commented on your post" {
		t.Fatalf("GraphQL socket on A: %q %v", msg, err)
	}

	// Logout through C closes alice's sockets and ends her stream on A.
	c.MustDo(t, alice, `mutation{logout}`, nil, "logout", nil)
	stream.MustClosed(t, 10*time.Second, "logged out")
	if _, err := plain.Next(10 * time.Second); closeCode(err) != 4401 {
		t.Fatalf("plain socket after logout on another process: %v", err)
	}
	if _, err := gql.read(10 * time.Second); closeCode(err) != 4401 {
		t.Fatalf("GraphQL socket after logout on another process: %v", err)
	}
}

// TestClusterTokenExpiry opens sockets on one process with a token from
// another: each closes with 4401 "token expired" when the token expires,
// on both transports, the GraphQL socket's subscription first ending with
// an UNAUTHENTICATED error. No process tells another: each knows the
// expiry of the sockets it holds.
func TestClusterTokenExpiry(t *testing.T) {
	requireServices(t)
	const ttl = 3 * time.Second
	db, redis := MustDatabase(t), MustRedis(t)
	a := MustStart(t, db, redis.URL(), "--token-ttl", ttl.String())
	b := MustStart(t, db, redis.URL(), "--token-ttl", ttl.String())
	// The session expires ttl after this, or later (the store keeps times
	// to the millisecond).
	registered := time.Now().Truncate(time.Millisecond)
	alice := a.MustRegister(t, "alice")
	plain := b.MustDialPlain(alice, "")
	gql := b.MustDialGraphQL(alice)

	var wg sync.WaitGroup
	check := func(name string, wait func() error) {
		defer wg.Done()
		err := wait()
		closed := time.Now()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4401 || ce.Text != "token expired" {
			t.Errorf("%s socket: %v, want closed with 4401 \"token expired\"", name, err)
			return
		}
		if closed.Before(registered.Add(ttl)) || closed.After(registered.Add(ttl+5*time.Second)) {
			t.Errorf("%s socket closed %v after registering, want soon after the token's expiry (%v)", name, closed.Sub(registered), ttl)
		}
	}
	wg.Add(2)
	go check("plain", func() error {
		n, err := plain.Next(15 * time.Second)
		if err == nil {
			return fmt.Errorf("got %v", n)
		}
		return err
	})
	go check("GraphQL", func() error {
		m, err := gql.read(15 * time.Second)
		if err != nil {
			return err
		}
		payload, _ := json.Marshal(m["payload"])
		if m["type"] != "error" || !strings.Contains(string(payload), "UNAUTHENTICATED") {
			return fmt.Errorf("got %v, want the subscription's error", m)
		}
		_, err = gql.read(15 * time.Second)
		return err
	})
	wg.Wait()
}

// TestClusterResumeAcrossProcesses moves a socket from A to B: resuming with
// after gives exactly what was missed, then live ones.
func TestClusterResumeAcrossProcesses(t *testing.T) {
	requireServices(t)
	db, redis := MustDatabase(t), MustRedis(t)
	a, b := MustStart(t, db, redis.URL()), MustStart(t, db, redis.URL())
	alice, bob := a.MustRegister(t, "alice"), b.MustRegister(t, "bob")
	var post struct{ ID string }
	a.MustDo(t, alice, `mutation{createPost(body:"hello"){id}}`, nil, "createPost", &post)
	comment := func(p *process, body string) {
		p.MustDo(t, bob, `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`, map[string]any{"p": post.ID, "b": body}, "createComment", nil)
	}

	s := a.MustDialPlain(alice, "0")
	comment(b, "one")
	n, err := s.Next(5 * time.Second)
	if err != nil || n["action_content"] != "one" {
		t.Fatalf("first: %v %v", n, err)
	}
	last := n["id"].(string)
	s.conn.Close()
	for _, body := range []string{"two", "three", "four"} {
		comment(a, body)
	}
	s = b.MustDialPlain(alice, last)
	comment(a, "five")
	for _, want := range []string{"two", "three", "four", "five"} {
		n, err := s.Next(5 * time.Second)
		if err != nil || n["action_content"] != want {
			t.Fatalf("after moving: got %v %v, want %s", n, err, want)
		}
	}
	if n, err := s.Next(300 * time.Millisecond); err == nil {
		t.Fatalf("duplicate or extra notification %v", n)
	}
}

// loadClient is one user's plain socket that reconnects, to any live
// process, with after set to the last id it saw, until told to stop.
type loadClient struct {
	token string
	mu    sync.Mutex
	ids   []int64
}

func (lc *loadClient) run(ctx context.Context, procs func() []*process, wg *sync.WaitGroup) {
	defer wg.Done()
	for ctx.Err() == nil {
		ps := procs()
		p := ps[rand.IntN(len(ps))]
		lc.mu.Lock()
		after := "0"
		if n := len(lc.ids); n > 0 {
			after = strconv.FormatInt(lc.ids[n-1], 10)
		}
		lc.mu.Unlock()
		s, err := p.DialPlain(lc.token, after)
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		stop := context.AfterFunc(ctx, func() { s.conn.Close() })
		for {
			n, err := s.Next(time.Minute)
			if err != nil {
				break
			}
			id, _ := strconv.ParseInt(n["id"].(string), 10, 64)
			lc.mu.Lock()
			lc.ids = append(lc.ids, id)
			lc.mu.Unlock()
		}
		stop()
		s.conn.Close()
	}
}

// TestClusterLosesNothing runs actions through two processes while clients
// connected to all three follow along; one process is killed with SIGKILL
// and Redis is restarted in the middle. Every client ends with every
// notification committed for its user, exactly once, in order.
func TestClusterLosesNothing(t *testing.T) {
	requireServices(t)
	db, redis := MustDatabase(t), MustRedis(t)
	a, b, c := MustStart(t, db, redis.URL()), MustStart(t, db, redis.URL()), MustStart(t, db, redis.URL())
	var live sync.Mutex
	procs := []*process{a, b, c}
	alive := func() []*process {
		live.Lock()
		defer live.Unlock()
		return append([]*process(nil), procs...)
	}

	const users = 8
	actor := b.MustRegister(t, "actor")
	var posts []string
	clients := make([]*loadClient, users)
	for i := range clients {
		tok := a.MustRegister(t, fmt.Sprintf("user%d", i))
		var p struct{ ID string }
		a.MustDo(t, tok, `mutation{createPost(body:"p"){id}}`, nil, "createPost", &p)
		posts = append(posts, p.ID)
		clients[i] = &loadClient{token: tok}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, lc := range clients {
		wg.Add(1)
		go lc.run(ctx, alive, &wg)
	}

	committed := make([]int, users)
	act := func(i, round int) {
		err := []*process{b, c}[rand.IntN(2)].Do(actor, `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`,
			map[string]any{"p": posts[i], "b": fmt.Sprint("c", round)}, "createComment", nil)
		if err == nil {
			committed[i]++
		}
	}
	for round := range 60 {
		for i := range users {
			act(i, round)
		}
		switch round {
		case 20:
			a.Kill()
			live.Lock()
			procs = []*process{b, c}
			live.Unlock()
		case 40:
			redis.Stop()
			time.Sleep(200 * time.Millisecond)
			redis.Start()
		}
	}

	deadline := time.Now().Add(30 * time.Second)
	for i, lc := range clients {
		for {
			lc.mu.Lock()
			n := len(lc.ids)
			lc.mu.Unlock()
			if n >= committed[i] || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	cancel()
	wg.Wait()
	for i, lc := range clients {
		if len(lc.ids) != committed[i] {
			t.Errorf("user%d received %d notifications, %d were committed", i, len(lc.ids), committed[i])
		}
		for j := 1; j < len(lc.ids); j++ {
			if lc.ids[j] <= lc.ids[j-1] {
				t.Errorf("user%d: id %d after %d: duplicate or out of order", i, lc.ids[j], lc.ids[j-1])
				break
			}
		}
	}
}
