package wsconn

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
)

// GraphQL accepts gqlgen's websocket connections on gorilla/websocket with
// the policy of Config. Use it as the Implementation of gqlgen's
// transport.Websocket, and wrap the GraphQL handler in Track.
type GraphQL struct {
	Config Config
}

var _ transport.WebsocketImplementation = GraphQL{}

// Accept upgrades r to a websocket. It picks the first subprotocol of the
// client's list that is among options.Subprotocols (a client that offers
// none of them gets none, which gqlgen treats as the legacy graphql-ws),
// sends options.ResponseHeader with the handshake, and refuses an origin
// the policy does not allow with HTTP 403. Behind Track, the connection is
// registered for Close, and a refused upgrade's answer is the only one the
// client gets (gqlgen's own error response after a failed Accept is
// dropped).
func (g GraphQL) Accept(w http.ResponseWriter, r *http.Request, options transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	cfg := g.Config.WithDefaults()
	s, _ := r.Context().Value(slotKey{}).(*slot)

	header := http.Header{}
	for k, vs := range options.ResponseHeader {
		for _, v := range vs {
			header.Add(k, v)
		}
	}
	for _, p := range websocket.Subprotocols(r) {
		if slices.Contains(options.Subprotocols, p) {
			header.Set("Sec-Websocket-Protocol", p)
			break
		}
	}

	up := cfg.Upgrader()
	up.Error = func(w http.ResponseWriter, _ *http.Request, status int, _ error) {
		w.Header().Set("Sec-Websocket-Version", "13")
		http.Error(w, http.StatusText(status), status)
		if s != nil {
			s.answered.Store(true)
		}
	}
	ws, err := up.Upgrade(w, r, header)
	if err != nil {
		return nil, fmt.Errorf("websocket upgrade: %w", err)
	}
	c := &graphqlConn{ws: ws, writeTimeout: cfg.WriteTimeout}
	if s != nil {
		s.conn.Store(c)
	}
	return c, nil
}

// graphqlConn is a gorilla connection as gqlgen's transport wants it.
// gqlgen serializes its own writes (WriteJSON, WriteClose) and reads from one
// goroutine; Close (the package function) may write the close frame from
// any goroutine at the same time, which gorilla allows for control frames.
type graphqlConn struct {
	ws           *websocket.Conn
	writeTimeout time.Duration

	// mu serializes the close path: it is held while a close frame is
	// written, so that the TCP connection is not closed under it.
	mu        sync.Mutex
	closeSent bool // a close frame was written (or attempted)
	netClosed bool // the TCP connection was closed
}

var (
	_ transport.WebsocketConn          = (*graphqlConn)(nil)
	_ transport.WebsocketReadLimiter   = (*graphqlConn)(nil)
	_ transport.WebsocketReadDeadliner = (*graphqlConn)(nil)
)

// NextReader returns the next message, or transport.ErrWebsocketClosed when
// the peer closed the socket normally (1000, 1001 or no code).
func (c *graphqlConn) NextReader() (int, io.Reader, error) {
	t, r, err := c.ws.NextReader()
	if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
		return t, nil, transport.ErrWebsocketClosed
	}
	return t, r, err
}

// WriteJSON writes v as one text message, within the write timeout.
func (c *graphqlConn) WriteJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// WriteClose writes a close frame, within the write timeout, unless one was
// written already (by Close from outside).
func (c *graphqlConn) WriteClose(code int, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent {
		return nil
	}
	c.closeSent = true
	return c.writeClose(code, reason)
}

// Close closes the TCP connection; it is safe to call more than once.
func (c *graphqlConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeNet()
}

// Subprotocol returns the negotiated subprotocol, or "".
func (c *graphqlConn) Subprotocol() string { return c.ws.Subprotocol() }

// SetReadLimit bounds the size of a message from the peer; a bigger one
// closes the socket with 1009.
func (c *graphqlConn) SetReadLimit(limit int64) { c.ws.SetReadLimit(limit) }

// SetReadDeadline sets the read deadline; the zero time clears it.
func (c *graphqlConn) SetReadDeadline(t time.Time) error { return c.ws.SetReadDeadline(t) }

// shut writes a close frame and closes the TCP connection, unless a close
// frame was written already; it reports whether it did.
func (c *graphqlConn) shut(code int, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent {
		return false
	}
	c.closeSent = true
	_ = c.writeClose(code, reason)
	_ = c.closeNet()
	return true
}

// writeClose writes a close frame; the caller holds c.mu.
func (c *graphqlConn) writeClose(code int, reason string) error {
	return c.ws.WriteControl(websocket.CloseMessage, FormatClose(code, reason), time.Now().Add(c.writeTimeout))
}

// closeNet closes the TCP connection once; the caller holds c.mu.
func (c *graphqlConn) closeNet() error {
	if c.netClosed {
		return nil
	}
	c.netClosed = true
	return c.ws.Close()
}

type slotKey struct{}

// slot is what Track puts into an upgrade request's context: GraphQL.Accept
// fills it with the accepted connection.
type slot struct {
	conn     atomic.Pointer[graphqlConn]
	answered atomic.Bool // Accept answered a refused upgrade, or hijacked the connection
}

// Track is the middleware for the GraphQL handler that makes Close work:
// for a websocket upgrade request (one with an Upgrade header, as gqlgen
// decides) it puts an empty slot into the request's context, which
// GraphQL.Accept fills with the connection it accepts. It also drops what
// gqlgen writes after Accept has refused an upgrade and answered it (403
// for a refused origin) or has hijacked the connection, so that the client
// gets that answer alone and net/http logs no misuse. Other requests pass
// through untouched.
func Track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		s := new(slot)
		ctx := context.WithValue(r.Context(), slotKey{}, s)
		next.ServeHTTP(&trackedWriter{ResponseWriter: w, slot: s}, r.WithContext(ctx))
	})
}

// Close closes the GraphQL socket accepted for the request that ctx belongs
// to (ctx is the request's context or derived from it, as the one gqlgen
// passes to InitFunc and to resolvers): it writes a close frame with code
// and reason (cut to 123 bytes), within the write timeout, and closes the
// TCP connection. It reports whether it did: false if the request went
// through no Track, if no socket was accepted for it, or if the socket was
// already closing. It is safe to call from any goroutine.
func Close(ctx context.Context, code int, reason string) bool {
	s, _ := ctx.Value(slotKey{}).(*slot)
	if s == nil {
		return false
	}
	c := s.conn.Load()
	if c == nil {
		return false
	}
	return c.shut(code, reason)
}

// trackedWriter is the ResponseWriter of a tracked upgrade request.
type trackedWriter struct {
	http.ResponseWriter
	slot *slot
}

func (w *trackedWriter) WriteHeader(status int) {
	if !w.slot.answered.Load() {
		w.ResponseWriter.WriteHeader(status)
	}
}

func (w *trackedWriter) Write(b []byte) (int, error) {
	if w.slot.answered.Load() {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// Hijack hands the connection to the websocket, as gorilla requires. Once
// it is hijacked, nothing more may be written through w.
func (w *trackedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.slot.answered.Store(true)
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the server's ResponseWriter.
func (w *trackedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
