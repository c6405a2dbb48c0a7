package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// The transports a socket (or stream) can use.
const (
	plain   = "plain"
	graphql = "graphql"
	sse     = "sse" // GET /events, server-sent events
)

// receipt is one notification a socket received.
type receipt struct {
	action   string // lower case: "post", "reaction", ...
	actionID int64
	content  string // action_content: the post body carries W2's token
	at       time.Time
}

// client is one websocket (or event stream) of one user, with a reader
// goroutine that records every notification it receives.
type client struct {
	user   int             // index into population.users
	conn   *websocket.Conn // a websocket's
	stream net.Conn        // an event stream's connection
	done   chan struct{}   // closed when the reader returns

	mu  sync.Mutex
	got []receipt
}

// take returns the receipts recorded so far and forgets them.
func (c *client) take() []receipt {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.got
	c.got = nil
	return got
}

// fleet is a set of open sockets, one per user, all on one transport.
type fleet struct {
	transport string
	clients   []*client
	received  atomic.Int64 // notifications received, by all clients

	closing atomic.Bool
	// failures counts sockets that ended before the fleet closed them and
	// frames that were not what the protocol promises; firstFailure says
	// what the first one was, and firstUser whose socket it was (an index of
	// clients).
	failures     atomic.Int64
	failMu       sync.Mutex
	firstFailure string
	firstUser    int
}

// fail records a failure of user's socket.
func (f *fleet) fail(user int, format string, args ...any) {
	if f.failures.Add(1) == 1 {
		f.failMu.Lock()
		f.firstFailure = fmt.Sprintf("user %d: ", user) + fmt.Sprintf(format, args...)
		f.firstUser = user
		f.failMu.Unlock()
	}
}

// failure returns how many failures there were, what the first was and
// whose socket it was.
func (f *fleet) failure() (n int64, first string, user int) {
	f.failMu.Lock()
	defer f.failMu.Unlock()
	return f.failures.Load(), f.firstFailure, f.firstUser
}

// reset forgets every receipt recorded so far.
func (f *fleet) reset() {
	for _, c := range f.clients {
		c.take()
	}
	f.received.Store(0)
}

// waitReceived waits until at least n notifications have been received in
// all since the last reset, or until timeout; it reports whether they were.
func (f *fleet) waitReceived(ctx context.Context, n int64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for f.received.Load() < n {
		if time.Now().After(deadline) || !sleepCtx(ctx, time.Millisecond) {
			return false
		}
	}
	return true
}

// sourceIPs are the local addresses the sockets are spread over, so that
// 10,000 of them and the HTTP clients do not run out of ephemeral ports.
var sourceIPs = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"}

// dialers returns one websocket dialer per source address.
func dialers(transport string) []*websocket.Dialer {
	var ds []*websocket.Dialer
	for _, nd := range netDialers() {
		d := &websocket.Dialer{
			NetDialContext:   nd.DialContext,
			HandshakeTimeout: 10 * time.Second,
			ReadBufferSize:   1024,
			WriteBufferSize:  1024,
		}
		if transport == graphql {
			d.Subprotocols = []string{"graphql-transport-ws"}
		}
		ds = append(ds, d)
	}
	return ds
}

// netDialers returns one TCP dialer per source address.
func netDialers() []*net.Dialer {
	var ds []*net.Dialer
	for _, ip := range sourceIPs {
		ds = append(ds, &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second})
	}
	return ds
}

// openFleet opens one socket (or event stream) per user of users on the
// transport, parallel connections at a time, user i's on addrs[i%len(addrs)].
// A GraphQL socket is acknowledged and has its notifications subscription
// sent when openFleet returns; whether the server has it live yet is for the
// caller to probe.
func openFleet(ctx context.Context, addrs []string, transport string, users []account, parallel int) (*fleet, error) {
	f := &fleet{transport: transport, clients: make([]*client, len(users))}
	ds, nds := dialers(transport), netDialers()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range parallel {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(users) || ctx.Err() != nil {
					return
				}
				var c *client
				var err error
				if transport == sse {
					c, err = f.dialStream(ctx, nds[i%len(nds)], addrs[i%len(addrs)], i, users[i].token)
				} else {
					c, err = f.dial(ctx, ds[i%len(ds)], addrs[i%len(addrs)], i, users[i].token)
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("socket %d of %d: %w", i+1, len(users), err) })
					cancel()
					return
				}
				f.clients[i] = c
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		f.clients = compact(f.clients)
		f.close()
		return nil, firstErr
	}
	return f, nil
}

func compact(cs []*client) []*client {
	var out []*client
	for _, c := range cs {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

const subscribeQuery = `subscription { notifications { id action actionId actionContent } }`

// dial opens one socket and starts its reader.
func (f *fleet) dial(ctx context.Context, d *websocket.Dialer, addr string, user int, token string) (*client, error) {
	var url string
	if f.transport == plain {
		url = "ws://" + addr + "/ws/" + token + "/"
	} else {
		url = "ws://" + addr + "/query"
	}
	conn, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial: %w (HTTP %s)", err, resp.Status)
		}
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &client{user: user, conn: conn, done: make(chan struct{})}
	if f.transport == graphql {
		if err := graphqlHandshake(conn, token); err != nil {
			conn.Close()
			return nil, err
		}
		go f.readGraphQL(c)
	} else {
		go f.readPlain(c)
	}
	return c, nil
}

// dialStream opens GET /events over a connection of its own (a small read
// buffer, as the websockets have) and starts its reader once the server
// has answered 200: the stream is then live.
func (f *fleet) dialStream(ctx context.Context, nd *net.Dialer, addr string, user int, token string) (*client, error) {
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /events HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + token + "\r\nAccept: text/event-stream\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, fmt.Errorf("request: %w", err)
	}
	r := bufio.NewReaderSize(conn, 1024)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		conn.Close()
		return nil, fmt.Errorf("GET /events: HTTP %s", resp.Status)
	}
	_ = conn.SetDeadline(time.Time{})
	c := &client{user: user, stream: conn, done: make(chan struct{})}
	go f.readStream(c, bufio.NewReaderSize(resp.Body, 1024))
	return c, nil
}

// readStream records the notification events of a stream; their data is
// the plain socket's frame. Any other event ("closed" when the server
// ends the stream) is the end of the stream for the benchmark.
func (f *fleet) readStream(c *client, r *bufio.Reader) {
	defer close(c.done)
	var event []byte
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			f.readerEnded(c, err)
			return
		}
		if name, ok := bytes.CutPrefix(line, []byte("event: ")); ok {
			event = bytes.TrimSpace(name)
			continue
		}
		data, ok := bytes.CutPrefix(line, []byte("data: "))
		if !ok {
			continue // id, retry, a comment, the blank line
		}
		if string(event) != "notification" {
			f.readerEnded(c, fmt.Errorf("event %q: %.200s", event, data))
			return
		}
		at := time.Now()
		var fr plainFrame
		if err := json.Unmarshal(data, &fr); err != nil || fr.ID == "" || fr.Action == "" {
			f.fail(c.user, "unexpected event data %.200s", data)
			continue
		}
		f.record(c, fr.Action, fr.ActionID, fr.ActionContent, at)
	}
}

// graphqlHandshake runs graphql-transport-ws's connection_init, waits for
// connection_ack and subscribes to notifications with id "1".
func graphqlHandshake(conn *websocket.Conn, token string) error {
	deadline := time.Now().Add(10 * time.Second)
	_ = conn.SetWriteDeadline(deadline)
	_ = conn.SetReadDeadline(deadline)
	defer conn.SetWriteDeadline(time.Time{})
	defer conn.SetReadDeadline(time.Time{})
	init := map[string]any{"type": "connection_init", "payload": map[string]string{"authorization": "Bearer " + token}}
	if err := conn.WriteJSON(init); err != nil {
		return fmt.Errorf("connection_init: %w", err)
	}
	for {
		var m struct {
			Type string `json:"type"`
		}
		if err := conn.ReadJSON(&m); err != nil {
			return fmt.Errorf("waiting for connection_ack: %w", err)
		}
		if m.Type == "connection_ack" {
			break
		}
		if m.Type == "ping" {
			if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`)); err != nil {
				return err
			}
		}
	}
	sub := map[string]any{"id": "1", "type": "subscribe", "payload": map[string]string{"query": subscribeQuery}}
	if err := conn.WriteJSON(sub); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	return nil
}

// plainFrame is a notification on the plain socket.
type plainFrame struct {
	ID            string  `json:"id"`
	Action        string  `json:"action"`
	ActionID      string  `json:"action_id"`
	ActionContent *string `json:"action_content"`
}

func (f *fleet) readPlain(c *client) {
	defer close(c.done)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			f.readerEnded(c, err)
			return
		}
		at := time.Now()
		var fr plainFrame
		if err := json.Unmarshal(data, &fr); err != nil || fr.ID == "" || fr.Action == "" {
			f.fail(c.user, "unexpected plain frame %.200s", data)
			continue
		}
		f.record(c, fr.Action, fr.ActionID, fr.ActionContent, at)
	}
}

// gqlMessage is a graphql-transport-ws message.
type gqlMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Payload json.RawMessage `json:"payload"`
}

// gqlNext is the payload of a "next" message of the subscription.
type gqlNext struct {
	Data *struct {
		Notifications *struct {
			ID            string  `json:"id"`
			Action        string  `json:"action"`
			ActionID      string  `json:"actionId"`
			ActionContent *string `json:"actionContent"`
		} `json:"notifications"`
	} `json:"data"`
	Errors json.RawMessage `json:"errors"`
}

func (f *fleet) readGraphQL(c *client) {
	defer close(c.done)
	for {
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			f.readerEnded(c, err)
			return
		}
		at := time.Now()
		var m gqlMessage
		if err := json.Unmarshal(data, &m); err != nil {
			f.fail(c.user, "unexpected GraphQL frame %.200s", data)
			continue
		}
		switch m.Type {
		case "next":
			var p gqlNext
			if err := json.Unmarshal(m.Payload, &p); err != nil || p.Data == nil || p.Data.Notifications == nil {
				f.fail(c.user, "unexpected next %.200s", data)
				continue
			}
			n := p.Data.Notifications
			f.record(c, strings.ToLower(n.Action), n.ActionID, n.ActionContent, at)
		case "ping":
			_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := c.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`)); err != nil {
				f.readerEnded(c, err)
				return
			}
		case "pong", "ka":
		default: // error, complete, or anything else: the subscription is over
			f.fail(c.user, "subscription ended: %.200s", data)
		}
	}
}

func (f *fleet) record(c *client, action, actionID string, content *string, at time.Time) {
	id, err := strconv.ParseInt(actionID, 10, 64)
	if err != nil {
		f.fail(c.user, "action id %q is not a number", actionID)
		return
	}
	r := receipt{action: action, actionID: id, at: at}
	if content != nil {
		r.content = *content
	}
	c.mu.Lock()
	c.got = append(c.got, r)
	c.mu.Unlock()
	f.received.Add(1)
}

func (f *fleet) readerEnded(c *client, err error) {
	if f.closing.Load() {
		return
	}
	f.fail(c.user, "socket ended: %v", err)
}

// close closes every socket: a close frame first, then, once the server has
// answered or after a few seconds, the connection. It waits for every
// reader to return.
func (f *fleet) close() {
	f.closing.Store(true)
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(f.clients) {
					return
				}
				if c := f.clients[i]; c.conn != nil {
					_ = c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
				}
			}
		})
	}
	wg.Wait()
	// An event stream has no closing handshake: its connection is closed
	// at once. A websocket gets until the deadline to answer the close.
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	expired := false
	for _, c := range f.clients {
		if c.stream != nil {
			c.stream.Close()
			continue
		}
		if !expired {
			select {
			case <-c.done:
			case <-deadline.C:
				expired = true
			}
		}
		c.conn.Close()
	}
	for _, c := range f.clients {
		<-c.done // Close makes the reader's ReadMessage fail at once
	}
}

// api calls the GraphQL API over HTTP with keep-alive connections.
type api struct {
	url string
	hc  *http.Client
}

func newAPI(addr string, conns int) *api {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &api{url: "http://" + addr + "/query", hc: &http.Client{Transport: tr, Timeout: 15 * time.Second}}
}

func (a *api) close() { a.hc.CloseIdleConnections() }

// gqlResponse is a GraphQL response whose data is decoded into Data.
type gqlResponse[T any] struct {
	Data   *T `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// errRateLimited is a RATE_LIMITED answer from the server.
var errRateLimited = errors.New("RATE_LIMITED")

// call posts a GraphQL request body with the token's authorization and
// decodes the response's data into out.
func call[T any](ctx context.Context, a *api, token string, body []byte) (*T, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return nil, fmt.Errorf("%w: HTTP %s", errRateLimited, resp.Status)
	}
	var r gqlResponse[T]
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("HTTP %s: %.200s", resp.Status, data)
	}
	if len(r.Errors) > 0 {
		e := r.Errors[0]
		if e.Extensions["code"] == "RATE_LIMITED" {
			return nil, fmt.Errorf("%w: %s", errRateLimited, e.Message)
		}
		return nil, fmt.Errorf("HTTP %s: %s (%v)", resp.Status, e.Message, e.Extensions["code"])
	}
	if r.Data == nil {
		return nil, fmt.Errorf("HTTP %s: no data: %.200s", resp.Status, data)
	}
	return r.Data, nil
}

// createPost posts body as the author and returns the post's id.
func (a *api) createPost(ctx context.Context, token, body string) (int64, error) {
	req, _ := json.Marshal(map[string]any{
		"query":     `mutation($b: String!) { createPost(body: $b) { id } }`,
		"variables": map[string]string{"b": body},
	})
	d, err := call[struct {
		CreatePost struct{ ID string } `json:"createPost"`
	}](ctx, a, token, req)
	if err != nil {
		return 0, fmt.Errorf("createPost: %w", err)
	}
	return strconv.ParseInt(d.CreatePost.ID, 10, 64)
}

// reactToPost reacts to a post with LIKE and returns the reaction's id.
func (a *api) reactToPost(ctx context.Context, token string, postID int64) (int64, error) {
	req := make([]byte, 0, 160)
	req = append(req, `{"query":"mutation($p: ID!) { reactToPost(postId: $p, kind: LIKE) { id } }","variables":{"p":"`...)
	req = strconv.AppendInt(req, postID, 10)
	req = append(req, `"}}`...)
	d, err := call[struct {
		ReactToPost struct{ ID string } `json:"reactToPost"`
	}](ctx, a, token, req)
	if err != nil {
		return 0, fmt.Errorf("reactToPost: %w", err)
	}
	return strconv.ParseInt(d.ReactToPost.ID, 10, 64)
}
