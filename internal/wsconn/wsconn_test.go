package wsconn_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"go.uber.org/goleak"

	"github.com/pulse-social/pulse/internal/wsconn"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// MustServer starts an httptest server on 127.0.0.1 whose cleanup waits for
// every handler, hijacked ones included (httptest does not wait for those).
func MustServer(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		h.ServeHTTP(w, r)
	}))
	tb.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return srv
}

func wsURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// MustDial opens a websocket with the given request headers and fails the
// test if the handshake does not succeed.
func MustDial(tb testing.TB, url string, header http.Header, subprotocols ...string) *websocket.Conn {
	tb.Helper()
	d := websocket.Dialer{Subprotocols: subprotocols, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, header)
	if err != nil {
		tb.Fatalf("dial %s: %v (response %v)", url, err, resp)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// MustCloseError reads until the socket fails and returns the close error
// the server sent.
func MustCloseError(tb testing.TB, c *websocket.Conn) *websocket.CloseError {
	tb.Helper()
	ce, err := readClose(c)
	if err != nil {
		tb.Fatalf("read: %v, want a close frame", err)
	}
	return ce
}

// readClose reads until the socket fails and returns the close error the
// server sent, or the error that is not one.
func readClose(c *websocket.Conn) (*websocket.CloseError, error) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			return nil, err
		}
		return ce, nil
	}
}

// noOps is a gqlgen executor for tests that run no operation.
type noOps struct{}

func (noOps) CreateOperationContext(context.Context, *graphql.RawParams) (*graphql.OperationContext, gqlerror.List) {
	return nil, gqlerror.List{gqlerror.Errorf("no operations here")}
}

func (noOps) DispatchOperation(ctx context.Context, _ *graphql.OperationContext) (graphql.ResponseHandler, context.Context) {
	return func(context.Context) *graphql.Response { return nil }, ctx
}

func (noOps) DispatchError(_ context.Context, list gqlerror.List) *graphql.Response {
	return &graphql.Response{Errors: list}
}

// gqlgenHandler serves gqlgen's real websocket transport on GraphQL, behind
// Track.
func gqlgenHandler(cfg wsconn.Config, ws transport.Websocket) http.Handler {
	ws.Implementation = wsconn.GraphQL{Config: cfg}
	return wsconn.Track(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws.Do(w, r, noOps{})
	}))
}

// plainHandler upgrades with Config.Upgrader and waits for the client to
// close.
func plainHandler(cfg wsconn.Config) http.Handler {
	up := cfg.Upgrader()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, _, err := c.NextReader(); err != nil {
				return
			}
		}
	})
}

func TestOrigin(t *testing.T) {
	app := []string{"https://app.example.com"}
	tests := []struct {
		name    string
		allowed []string
		host    string // the request's Host, if not the server's address
		origin  string // "" sends no Origin header; %s is the server's address
		ok      bool
	}{
		{name: "NoOrigin", ok: true},
		{name: "SameHost", origin: "http://%s", ok: true},
		{name: "SameHostOtherScheme", origin: "https://%s", ok: true},
		{name: "SameHostIgnoringCase", host: "Pulse.Example:8000", origin: "http://pulse.EXAMPLE:8000", ok: true},
		{name: "SameHostOtherPort", host: "pulse.example:8000", origin: "http://pulse.example:9000"},
		{name: "OtherHost", origin: "http://evil.example"},
		{name: "NullOrigin", origin: "null"},
		{name: "Garbage", origin: "::not a url::"},
		{name: "Listed", allowed: app, origin: "https://app.example.com", ok: true},
		{name: "ListedIgnoringCase", allowed: app, origin: "HTTPS://App.Example.com", ok: true},
		{name: "ListedWithSlash", allowed: []string{"https://app.example.com/"}, origin: "https://app.example.com", ok: true},
		{name: "ListedOtherPort", allowed: app, origin: "https://app.example.com:8443"},
		{name: "ListedOtherScheme", allowed: app, origin: "http://app.example.com"},
		{name: "ListedOtherHost", allowed: app, origin: "https://evil.example"},
		{name: "Star", allowed: []string{"*"}, origin: "https://evil.example", ok: true},
	}
	for _, tt := range tests {
		cfg := wsconn.Config{AllowedOrigins: tt.allowed}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: Validate: %v", tt.name, err)
		}
		servers := map[string]*httptest.Server{
			"Plain":   MustServer(t, plainHandler(cfg)),
			"GraphQL": MustServer(t, gqlgenHandler(cfg, transport.Websocket{})),
		}
		for kind, srv := range servers {
			t.Run(kind+"/"+tt.name, func(t *testing.T) {
				header := http.Header{}
				if tt.host != "" {
					header.Set("Host", tt.host)
				}
				if tt.origin != "" {
					header.Set("Origin", strings.ReplaceAll(tt.origin, "%s", srv.Listener.Addr().String()))
				}
				d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
				c, resp, err := d.Dial(wsURL(srv), header)
				if tt.ok {
					if err != nil {
						t.Fatalf("dial: %v, want success", err)
					}
					c.Close()
					return
				}
				if err == nil {
					c.Close()
					t.Fatalf("dial succeeded, want 403")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("dial: %v (response %v), want 403", err, resp)
				}
				body, _ := io.ReadAll(resp.Body)
				if string(body) != "Forbidden\n" {
					t.Fatalf("body = %q, want only %q", body, "Forbidden\n")
				}
			})
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		origin string
		ok     bool
	}{
		{"*", true},
		{"https://app.example.com", true},
		{"http://localhost:3000", true},
		{"https://app.example.com/", true},
		{"app.example.com", false},
		{"https://", false},
		{"https://app.example.com/path", false},
		{"https://app.example.com?q=1", false},
	}
	for _, tt := range tests {
		err := wsconn.Config{AllowedOrigins: []string{tt.origin}}.Validate()
		if (err == nil) != tt.ok {
			t.Fatalf("Validate(%q) = %v, want ok %v", tt.origin, err, tt.ok)
		}
	}
}

// acceptHandler accepts with GraphQL and hands the connection and the
// request's context to fn, which owns it.
func acceptHandler(cfg wsconn.Config, opts transport.WebsocketAcceptOptions, fn func(context.Context, transport.WebsocketConn)) http.Handler {
	g := wsconn.GraphQL{Config: cfg}
	return wsconn.Track(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := g.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.Close()
		fn(r.Context(), c)
	}))
}

// drain reads from c until it fails and returns the error.
func drain(c transport.WebsocketConn) error {
	for {
		if _, _, err := c.NextReader(); err != nil {
			return err
		}
	}
}

func TestSubprotocol(t *testing.T) {
	opts := transport.WebsocketAcceptOptions{
		ResponseHeader: http.Header{"X-Test": {"yes"}},
		Subprotocols:   []string{"graphql-ws", "graphql-transport-ws"},
	}
	srv := MustServer(t, acceptHandler(wsconn.Config{}, opts, func(_ context.Context, c transport.WebsocketConn) {
		_ = c.WriteJSON(map[string]string{"subprotocol": c.Subprotocol()})
		_ = drain(c)
	}))
	tests := []struct {
		name    string
		offered []string
		want    string
	}{
		{"TransportWS", []string{"graphql-transport-ws"}, "graphql-transport-ws"},
		{"LegacyWS", []string{"graphql-ws"}, "graphql-ws"},
		{"ClientPrefersTransportWS", []string{"graphql-transport-ws", "graphql-ws"}, "graphql-transport-ws"},
		{"ClientPrefersLegacy", []string{"graphql-ws", "graphql-transport-ws"}, "graphql-ws"},
		{"UnknownFirst", []string{"mqtt", "graphql-transport-ws"}, "graphql-transport-ws"},
		{"None", nil, ""},
		{"OnlyUnknown", []string{"mqtt"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: tt.offered, HandshakeTimeout: 5 * time.Second}
			c, resp, err := d.Dial(wsURL(srv), nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			if got := c.Subprotocol(); got != tt.want {
				t.Fatalf("client's subprotocol = %q, want %q", got, tt.want)
			}
			if got := resp.Header.Get("X-Test"); got != "yes" {
				t.Fatalf("X-Test header = %q, want the ResponseHeader's %q", got, "yes")
			}
			var m map[string]string
			if err := c.ReadJSON(&m); err != nil {
				t.Fatalf("read: %v", err)
			}
			if m["subprotocol"] != tt.want {
				t.Fatalf("server's subprotocol = %q, want %q", m["subprotocol"], tt.want)
			}
		})
	}
}

func TestNormalClose(t *testing.T) {
	errs := make(chan error, 1)
	srv := MustServer(t, acceptHandler(wsconn.Config{}, transport.WebsocketAcceptOptions{}, func(_ context.Context, c transport.WebsocketConn) {
		errs <- drain(c)
	}))
	tests := []struct {
		name    string
		payload []byte
		normal  bool
	}{
		{"Normal", websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), true},
		{"GoingAway", websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), true},
		{"NoStatus", []byte{}, true},
		{"Application", websocket.FormatCloseMessage(4000, "app"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := MustDial(t, wsURL(srv), nil)
			if err := c.WriteControl(websocket.CloseMessage, tt.payload, time.Now().Add(time.Second)); err != nil {
				t.Fatalf("write close: %v", err)
			}
			err := <-errs
			if got := errors.Is(err, transport.ErrWebsocketClosed); got != tt.normal {
				t.Fatalf("NextReader error = %v; ErrWebsocketClosed %v, want %v", err, got, tt.normal)
			}
		})
	}
}

func TestCloseFromOutside(t *testing.T) {
	ctxs := make(chan context.Context, 1)
	closed := make(chan int, 1)
	srv := MustServer(t, gqlgenHandler(wsconn.Config{}, transport.Websocket{
		InitFunc: func(ctx context.Context, _ transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			ctxs <- ctx
			return ctx, nil, nil
		},
		CloseFunc: func(_ context.Context, code int) { closed <- code },
	}))
	for _, proto := range []string{"graphql-transport-ws", "graphql-ws"} {
		t.Run(proto, func(t *testing.T) {
			c := MustDial(t, wsURL(srv), nil, proto)
			if err := c.WriteJSON(map[string]string{"type": "connection_init"}); err != nil {
				t.Fatalf("write: %v", err)
			}
			var ack map[string]any
			if err := c.ReadJSON(&ack); err != nil || ack["type"] != "connection_ack" {
				t.Fatalf("read ack: %v %v", ack, err)
			}
			ctx := <-ctxs
			if !wsconn.Close(ctx, 4401, "Unauthorized") {
				t.Fatalf("Close = false, want true")
			}
			ce := MustCloseError(t, c)
			if ce.Code != 4401 || ce.Text != "Unauthorized" {
				t.Fatalf("close = %d %q, want 4401 Unauthorized", ce.Code, ce.Text)
			}
			select {
			case <-closed:
			case <-time.After(5 * time.Second):
				t.Fatalf("gqlgen did not end the connection")
			}
			if wsconn.Close(ctx, 4401, "again") {
				t.Fatalf("second Close = true, want false")
			}
		})
	}
	if wsconn.Close(context.Background(), 4401, "nobody") {
		t.Fatalf("Close without Track = true, want false")
	}
}

func TestCloseWhileWriting(t *testing.T) {
	ctxs := make(chan context.Context, 1)
	writeErrs := make(chan error, 1)
	srv := MustServer(t, acceptHandler(wsconn.Config{}, transport.WebsocketAcceptOptions{}, func(ctx context.Context, c transport.WebsocketConn) {
		ctxs <- ctx
		var mu sync.Mutex // gqlgen serializes its writes the same way
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				err := c.WriteJSON(map[string]string{"data": strings.Repeat("x", 512)})
				mu.Unlock()
				if err != nil {
					writeErrs <- err
					return
				}
			}
		}()
		_ = drain(c)
		wg.Wait()
		mu.Lock()
		_ = c.WriteClose(1000, "terminated")
		mu.Unlock()
	}))
	c := MustDial(t, wsURL(srv), nil)
	type closeResult struct {
		ce  *websocket.CloseError
		err error
	}
	closes := make(chan closeResult, 1)
	go func() {
		ce, err := readClose(c)
		closes <- closeResult{ce, err}
	}()
	ctx := <-ctxs
	time.Sleep(50 * time.Millisecond) // let the writes run
	if !wsconn.Close(ctx, 4008, "too slow") {
		t.Fatalf("Close = false, want true")
	}
	r := <-closes
	if r.err != nil {
		t.Fatalf("read: %v, want a close frame", r.err)
	}
	if r.ce.Code != 4008 || r.ce.Text != "too slow" {
		t.Fatalf("close = %d %q, want 4008 too slow", r.ce.Code, r.ce.Text)
	}
	select {
	case err := <-writeErrs:
		if err == nil {
			t.Fatalf("write after Close succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("writes did not fail after Close")
	}
}

func TestReadLimit(t *testing.T) {
	errs := make(chan error, 1)
	srv := MustServer(t, acceptHandler(wsconn.Config{}, transport.WebsocketAcceptOptions{}, func(_ context.Context, c transport.WebsocketConn) {
		c.(transport.WebsocketReadLimiter).SetReadLimit(1024)
		errs <- drain(c)
	}))
	c := MustDial(t, wsURL(srv), nil)
	if err := c.WriteMessage(websocket.TextMessage, make([]byte, 1024)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := c.WriteMessage(websocket.TextMessage, make([]byte, 1025)); err != nil {
		t.Fatalf("write: %v", err)
	}
	if ce := MustCloseError(t, c); ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("close code = %d, want 1009", ce.Code)
	}
	if err := <-errs; !errors.Is(err, websocket.ErrReadLimit) {
		t.Fatalf("NextReader error = %v, want ErrReadLimit", err)
	}
}

func TestReadDeadline(t *testing.T) {
	errs := make(chan error, 1)
	srv := MustServer(t, acceptHandler(wsconn.Config{}, transport.WebsocketAcceptOptions{}, func(_ context.Context, c transport.WebsocketConn) {
		_ = c.(transport.WebsocketReadDeadliner).SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		errs <- drain(c)
	}))
	MustDial(t, wsURL(srv), nil)
	var ne net.Error
	if err := <-errs; !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("NextReader error = %v, want a timeout", err)
	}
}

func TestWriteTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	type result struct {
		err     error
		elapsed time.Duration
		close   time.Duration
	}
	results := make(chan result, 1)
	srv := MustServer(t, acceptHandler(wsconn.Config{WriteTimeout: timeout}, transport.WebsocketAcceptOptions{}, func(_ context.Context, c transport.WebsocketConn) {
		big := map[string]string{"data": strings.Repeat("x", 1<<20)}
		start := time.Now()
		var err error
		for err == nil && time.Since(start) < 30*time.Second {
			err = c.WriteJSON(big)
		}
		var r result
		r.err, r.elapsed = err, time.Since(start)
		start = time.Now()
		_ = c.WriteClose(1000, "bye")
		r.close = time.Since(start)
		results <- r
	}))
	c := MustDial(t, wsURL(srv), nil)
	// A peer that never reads, with a small receive window.
	if err := c.NetConn().(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatalf("set read buffer: %v", err)
	}
	r := <-results
	var ne net.Error
	if !errors.As(r.err, &ne) || !ne.Timeout() {
		t.Fatalf("write error = %v, want a timeout", r.err)
	}
	if r.elapsed > 10*time.Second {
		t.Fatalf("writes failed after %v, want about the write timeout %v once the buffers are full", r.elapsed, timeout)
	}
	if r.close > 2*timeout {
		t.Fatalf("WriteClose after a timed-out write took %v", r.close)
	}
}

func TestFormatClose(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	p := wsconn.FormatClose(4401, long)
	if len(p) > 125 {
		t.Fatalf("payload is %d bytes, want at most 125", len(p))
	}
	if got := string(p[2:]); got != strings.Repeat("é", 61) {
		t.Fatalf("reason = %q, want 61 whole characters", got)
	}
}

// TestKeepalive checks GraphQL.PingInterval with gqlgen's transport: pings
// (graphql-transport-ws) or ka messages (graphql-ws) every interval from
// connection_ack on, and a graphql-transport-ws client that does not answer
// is dropped after about two intervals while one that answers stays.
func TestKeepalive(t *testing.T) {
	const interval = 100 * time.Millisecond
	handler := func() http.Handler {
		impl := wsconn.GraphQL{PingInterval: interval}
		ws := transport.Websocket{Implementation: impl}
		return wsconn.Track(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws.Do(w, r, noOps{})
		}))
	}
	type msg struct {
		Type string `json:"type"`
	}
	open := func(t *testing.T, protocol string) *websocket.Conn {
		srv := MustServer(t, handler())
		c := MustDial(t, wsURL(srv)+"/", nil, protocol)
		if err := c.WriteJSON(map[string]any{"type": "connection_init"}); err != nil {
			t.Fatal(err)
		}
		var m msg
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := c.ReadJSON(&m); err != nil || m.Type != "connection_ack" {
			t.Fatalf("want connection_ack, got %+v, %v", m, err)
		}
		return c
	}
	next := func(c *websocket.Conn) (msg, error) {
		var m msg
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		err := c.ReadJSON(&m)
		return m, err
	}

	t.Run("Pong", func(t *testing.T) {
		c := open(t, "graphql-transport-ws")
		start := time.Now()
		for range 6 {
			m, err := next(c)
			if err != nil || m.Type != "ping" {
				t.Fatalf("want a ping, got %+v, %v", m, err)
			}
			if err := c.WriteJSON(map[string]any{"type": "pong"}); err != nil {
				t.Fatal(err)
			}
		}
		// Six pings, one an interval, and the socket still open.
		if d := time.Since(start); d < 5*interval {
			t.Fatalf("six pings in %v, want one per %v", d, interval)
		}
	})
	t.Run("NoPong", func(t *testing.T) {
		c := open(t, "graphql-transport-ws")
		start := time.Now()
		for {
			m, err := next(c)
			if err == nil {
				if m.Type != "ping" {
					t.Fatalf("got %+v, want pings only", m)
				}
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the server kept a socket that answers no ping for %v", time.Since(start))
			}
			break // dropped
		}
		if d := time.Since(start); d < 2*interval {
			t.Fatalf("dropped after %v, want two intervals (%v) for the pong", d, 2*interval)
		}
	})
	t.Run("Legacy", func(t *testing.T) {
		c := open(t, "graphql-ws")
		var kas int
		start := time.Now()
		for kas < 4 {
			m, err := next(c)
			if err != nil || m.Type != "ka" {
				t.Fatalf("want ka, got %+v, %v", m, err)
			}
			kas++
		}
		// The first ka comes with the ack; then one an interval. No pong
		// is asked for: the socket stays open.
		if d := time.Since(start); d < 2*interval {
			t.Fatalf("four ka in %v, want one per %v", d, interval)
		}
	})
}
