package gqlws_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/internal/gqlws"
	"github.com/pulse-social/pulse/internal/pushconn"
)

// readTimeout bounds every read of a test client and every wait for the
// server: generous, since a failure is a hang, not a late answer.
const readTimeout = 10 * time.Second

// The close codes of the protocols (graphql-transport-ws's, which the
// server uses for the legacy protocol too) and the server's own, spelled out
// rather than taken from the package: a change of the package's constants
// is a change on the wire.
const (
	codeBadRequest   = 4400
	codeUnauthorized = 4401
	codeInitTimeout  = 4408
	codeDuplicateID  = 4409
	codeTooManyInits = 4429
	codeTooSlow      = 4008
)

// protocol is what a test client speaks.
type protocol struct {
	name   string // the subprotocol
	legacy bool
	start  string // the message type that starts an operation
	stop   string // the one that stops it
	next   string // the one that carries a result
}

var (
	transportWS = protocol{name: "graphql-transport-ws", start: "subscribe", stop: "complete", next: "next"}
	legacyWS    = protocol{name: "graphql-ws", legacy: true, start: "start", stop: "stop", next: "data"}
	protocols   = []protocol{transportWS, legacyWS}
)

// Env is a Transport served by an httptest server on 127.0.0.1, with a
// fake executor. Its cleanup ends the sockets through the Group's context
// and waits for them.
type Env struct {
	Exec     *Exec
	Group    *pushconn.Group
	Server   *httptest.Server
	Shutdown context.CancelFunc
	// Inits gets the context of every connection_init the default Init
	// acknowledged (when Config.Init is nil).
	Inits chan context.Context
	// Closed gets how each socket ended (Config.Opened's function).
	Closed chan pushconn.CloseInfo
}

// MustEnv starts an Env with cfg. A nil cfg.Init is replaced by one that
// acknowledges every socket and records its context; a nil cfg.Opened by
// one that records how sockets end; a zero CloseTimeout by 500ms, so that a
// test client that does not answer the close frame does not slow the
// cleanup.
func MustEnv(tb testing.TB, cfg gqlws.Config) *Env {
	tb.Helper()
	base, cancel := context.WithCancel(context.Background())
	e := &Env{
		Exec:     &Exec{subs: make(chan *Sub, 1024)},
		Group:    pushconn.NewGroup(base),
		Shutdown: cancel,
		Inits:    make(chan context.Context, 1024),
		Closed:   make(chan pushconn.CloseInfo, 1024),
	}
	cfg.Sockets = e.Group
	if cfg.Init == nil {
		cfg.Init = func(ctx context.Context, _ map[string]any) (context.Context, error) {
			e.Inits <- ctx
			return ctx, nil
		}
	}
	if cfg.Opened == nil {
		cfg.Opened = func(*http.Request) func(pushconn.CloseInfo) {
			return func(info pushconn.CloseInfo) { e.Closed <- info }
		}
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = 500 * time.Millisecond
	}
	tr := gqlws.New(cfg)
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tr.Supports(r) {
			http.Error(w, "not a websocket", http.StatusBadRequest)
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), requestKey{}, "from the request"))
		tr.Do(w, r, e.Exec)
	}))
	tb.Cleanup(func() {
		cancel()
		MustWait(tb, e.Group)
		e.Server.Close()
		if n := e.Exec.blocked.Load(); n > 0 {
			tb.Errorf("a ResponseHandler was called %d times with nothing on its channel: gqlgen's would have blocked the writer", n)
		}
	})
	return e
}

// requestKey is the key of a value the server puts in each upgrade
// request's context.
type requestKey struct{}

// MustWait waits for every socket of g to end.
func MustWait(tb testing.TB, g *pushconn.Group) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
	defer cancel()
	if err := g.Wait(ctx); err != nil {
		tb.Fatalf("sockets still open: Group.Wait: %v", err)
	}
}

// URL is the websocket URL of the server.
func (e *Env) URL() string {
	return "ws" + strings.TrimPrefix(e.Server.URL, "http") + "/graphql"
}

// MustClosed returns how the next socket ended.
func (e *Env) MustClosed(tb testing.TB) pushconn.CloseInfo {
	tb.Helper()
	select {
	case info := <-e.Closed:
		return info
	case <-time.After(readTimeout):
		tb.Fatalf("no socket ended within %v", readTimeout)
		return pushconn.CloseInfo{}
	}
}

// MustInitContext returns the context of the next acknowledged
// connection_init.
func (e *Env) MustInitContext(tb testing.TB) context.Context {
	tb.Helper()
	select {
	case ctx := <-e.Inits:
		return ctx
	case <-time.After(readTimeout):
		tb.Fatalf("no connection_init within %v", readTimeout)
		return nil
	}
}

// Exec is a fake gqlgen executor. It parses nothing: a query "bad" fails
// validation, "usererror" fails with an error of the user's kind, a query
// that starts with "subscription" is a subscription (whose events the test
// feeds through a Sub), "panic" panics, anything else is a query answered
// {"hello":"world"}.
// A subscription whose query contains "initial" sends {"n":0} before its
// resolver returns, as one that starts with a current value does.
type Exec struct {
	subs    chan *Sub
	blocked atomic.Int64 // ResponseHandler calls that would have blocked
}

var _ graphql.GraphExecutor = (*Exec)(nil)

func (e *Exec) CreateOperationContext(_ context.Context, params *graphql.RawParams) (*graphql.OperationContext, gqlerror.List) {
	switch params.Query {
	case "bad":
		err := gqlerror.Errorf("bad query")
		errcode.Set(err, errcode.ValidationFailed)
		return nil, gqlerror.List{err}
	case "usererror":
		return nil, gqlerror.List{gqlerror.Errorf("user error")}
	case "panic":
		panic("executor panic")
	}
	op := ast.Query
	if strings.HasPrefix(params.Query, "subscription") {
		op = ast.Subscription
	}
	return &graphql.OperationContext{
		RawQuery:  params.Query,
		Variables: params.Variables,
		Operation: &ast.OperationDefinition{Operation: op},
	}, nil
}

func (e *Exec) DispatchOperation(ctx context.Context, rc *graphql.OperationContext) (graphql.ResponseHandler, context.Context) {
	if rc.Operation.Operation != ast.Subscription {
		return graphql.OneShot(&graphql.Response{Data: json.RawMessage(`{"hello":"world"}`)}), ctx
	}
	notify := gqlws.Notifier(ctx)
	if notify == nil {
		return graphql.OneShot(graphql.ErrorResponse(ctx, "no Notifier")), ctx
	}
	s := &Sub{Ctx: ctx, ch: make(chan string, 64), notify: notify}
	if strings.Contains(rc.RawQuery, "initial") {
		s.Send(`{"n":0}`)
	}
	e.subs <- s
	return func(context.Context) *graphql.Response {
		select {
		case v, ok := <-s.ch:
			if !ok {
				return nil
			}
			return &graphql.Response{Data: json.RawMessage(v)}
		default:
			e.blocked.Add(1)
			return nil
		}
	}, ctx
}

func (e *Exec) DispatchError(_ context.Context, list gqlerror.List) *graphql.Response {
	return &graphql.Response{Errors: list}
}

// MustSub returns the next subscription the executor dispatched.
func (e *Exec) MustSub(tb testing.TB) *Sub {
	tb.Helper()
	select {
	case s := <-e.subs:
		return s
	case <-time.After(readTimeout):
		tb.Fatalf("no subscription dispatched within %v", readTimeout)
		return nil
	}
}

// Sub is a dispatched subscription, as its resolver sees it: the test
// sends its events and ends it.
type Sub struct {
	Ctx    context.Context // the resolver's
	ch     chan string
	notify func()
}

// Send puts an event (the response's data, JSON) on the channel and tells
// the socket.
func (s *Sub) Send(data string) {
	s.ch <- data
	s.notify()
}

// End closes the channel and tells the socket.
func (s *Sub) End() {
	close(s.ch)
	s.notify()
}

// MustEnded waits for the resolver's context to end.
func (s *Sub) MustEnded(tb testing.TB) {
	tb.Helper()
	select {
	case <-s.Ctx.Done():
	case <-time.After(readTimeout):
		tb.Fatalf("the subscription's context did not end within %v", readTimeout)
	}
}

// Client is a test client of one protocol.
type Client struct {
	*websocket.Conn
	P protocol
}

// Msg is a server message.
type Msg struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (m Msg) String() string {
	b, _ := json.Marshal(m)
	return string(b)
}

// MustDial opens a socket offering the subprotocol of p.
func (e *Env) MustDial(tb testing.TB, p protocol) *Client {
	tb.Helper()
	return &Client{Conn: MustDialOffering(tb, e.URL(), []string{p.name}), P: p}
}

// MustDialOffering opens a socket offering these subprotocols (none if
// nil: no Sec-WebSocket-Protocol header).
func MustDialOffering(tb testing.TB, url string, offered []string) *websocket.Conn {
	tb.Helper()
	d := websocket.Dialer{Subprotocols: offered, HandshakeTimeout: readTimeout}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		tb.Fatalf("dial: %v (response %v)", err, resp)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// MustConnect opens a socket and has it acknowledged.
func (e *Env) MustConnect(tb testing.TB, p protocol) *Client {
	tb.Helper()
	c := e.MustDial(tb, p)
	c.MustInit(tb)
	return c
}

// MustSend writes v as JSON.
func (c *Client) MustSend(tb testing.TB, v any) {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("encode %v: %v", v, err)
	}
	c.MustSendRaw(tb, string(b))
}

// MustSendRaw writes a text message.
func (c *Client) MustSendRaw(tb testing.TB, msg string) {
	tb.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(readTimeout))
	if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		tb.Fatalf("write: %v", err)
	}
}

// MustRead reads one message.
func (c *Client) MustRead(tb testing.TB) Msg {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(readTimeout))
	typ, b, err := c.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		tb.Fatalf("message type %d, want text", typ)
	}
	var m Msg
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("message %s: %v", b, err)
	}
	return m
}

// MustReadType reads one message and checks its id and type.
func (c *Client) MustReadType(tb testing.TB, id, typ string) Msg {
	tb.Helper()
	m := c.MustRead(tb)
	if m.ID != id || m.Type != typ {
		tb.Fatalf("got %v, want id %q type %q", m, id, typ)
	}
	return m
}

// MustInit sends connection_init and reads connection_ack (and the ka that
// follows it on the legacy protocol).
func (c *Client) MustInit(tb testing.TB) {
	tb.Helper()
	c.MustSend(tb, map[string]any{"type": "connection_init"})
	c.MustReadType(tb, "", "connection_ack")
	if c.P.legacy {
		c.MustReadType(tb, "", "ka")
	}
}

// MustStart starts operation id with query.
func (c *Client) MustStart(tb testing.TB, id, query string) {
	tb.Helper()
	c.MustSend(tb, map[string]any{"id": id, "type": c.P.start, "payload": map[string]any{"query": query}})
}

// MustSubscribe starts subscription id and returns it once dispatched.
func (c *Client) MustSubscribe(tb testing.TB, e *Env, id string) *Sub {
	tb.Helper()
	c.MustStart(tb, id, "subscription { events }")
	return e.Exec.MustSub(tb)
}

// MustStop stops operation id.
func (c *Client) MustStop(tb testing.TB, id string) {
	tb.Helper()
	c.MustSend(tb, map[string]any{"id": id, "type": c.P.stop})
}

// MustResult reads a result of operation id and checks its payload.
func (c *Client) MustResult(tb testing.TB, id, payload string) {
	tb.Helper()
	m := c.MustReadType(tb, id, c.P.next)
	MustJSONEqual(tb, m.Payload, payload)
}

// MustEvent reads an event of subscription id and checks its data.
func (c *Client) MustEvent(tb testing.TB, id, data string) {
	tb.Helper()
	c.MustResult(tb, id, `{"data":`+data+`}`)
}

// MustErrors reads an error message for id and returns its errors.
func (c *Client) MustErrors(tb testing.TB, id string) gqlerror.List {
	tb.Helper()
	m := c.MustReadType(tb, id, "error")
	var errs gqlerror.List
	if err := json.Unmarshal(m.Payload, &errs); err != nil || len(errs) == 0 {
		tb.Fatalf("error payload %s: want a list of errors (%v)", m.Payload, err)
	}
	return errs
}

// MustClose checks that the next thing the server sends is a close frame
// with code and reason.
func MustClose(tb testing.TB, c *websocket.Conn, code int, reason string) {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(readTimeout))
	_, b, err := c.ReadMessage()
	if err == nil {
		tb.Fatalf("got %s, want close %d %q", b, code, reason)
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) {
		tb.Fatalf("read: %v, want close %d %q", err, code, reason)
	}
	if ce.Code != code || ce.Text != reason {
		tb.Fatalf("closed with %d %q, want %d %q", ce.Code, ce.Text, code, reason)
	}
}

// MustDropped reads until the connection fails and checks that it was not
// a read timeout: the server dropped it.
func MustDropped(tb testing.TB, c *websocket.Conn) {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(readTimeout))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			tb.Fatalf("the socket is still open after %v", readTimeout)
		}
		return
	}
}

// MustJSONEqual checks that got and want are the same JSON value.
func MustJSONEqual(tb testing.TB, got json.RawMessage, want string) {
	tb.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		tb.Fatalf("payload %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		tb.Fatalf("want %s: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		tb.Fatalf("payload %s, want %s", got, want)
	}
}
