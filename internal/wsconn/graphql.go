package wsconn

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

	// MaxOperations caps the operations (subscriptions, and queries or
	// mutations sent over the socket) one socket runs at once. One more is
	// answered with an error message for its id whose extensions.code is
	// RATE_LIMITED, and the socket stays open. 0 means no cap.
	MaxOperations int

	// OnOperationRefused, if set, is called for each operation refused by
	// MaxOperations, with the request's context.
	OnOperationRefused func(ctx context.Context)

	// PingInterval is the protocol keepalive, from connection_ack on: a
	// graphql-transport-ws socket is sent {"type":"ping"} every interval
	// and must answer with a pong within two intervals (the read deadline
	// is set two intervals ahead at the ack, and at each ping once the
	// previous one was answered; gqlgen clears it at each pong); a legacy
	// graphql-ws socket is sent {"type":"ka"} every interval. 0 sends
	// nothing. It does what gqlgen's Websocket.PingPongInterval and
	// KeepAlivePingInterval do, with a timer instead of a goroutine per
	// socket: leave those 0.
	PingInterval time.Duration
}

// CloseDuplicateID is the close code of a graphql-transport-ws socket whose
// client subscribes with the id of an operation still running, as the
// protocol prescribes: 4409 "Subscriber for <id> already exists". The
// legacy graphql-ws protocol has no such rule, and a reused id there
// replaces the running operation, as gqlgen does.
const CloseDuplicateID = 4409

// CloseBadRequest is the close code of a socket whose client sent a
// connection_init payload that is not an object.
const CloseBadRequest = 4400

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
	c := &graphqlConn{
		ws:           ws,
		writeTimeout: cfg.WriteTimeout,
		pingInterval: g.PingInterval,
		ctx:          r.Context(),
		transportWS:  ws.Subprotocol() == subprotocolTransportWS,
		maxOps:       g.MaxOperations,
		onRefused:    g.OnOperationRefused,
		ops:          make(map[string]struct{}),
		ending:       make(map[string]int),
		opened:       time.Now(),
	}
	if s != nil {
		s.conn.Store(c)
		if s.onAccept != nil {
			s.onAccept(r)
		}
	}
	return c, nil
}

// The subprotocol of the graphql-ws library; the legacy one is "graphql-ws".
const subprotocolTransportWS = "graphql-transport-ws"

// graphqlConn is a gorilla connection as gqlgen's transport wants it.
// gqlgen serializes its own writes (WriteJSON, WriteClose) and reads from one
// goroutine; Close (the package function) may write the close frame from
// any goroutine at the same time, which gorilla allows for control frames.
type graphqlConn struct {
	ws           *websocket.Conn
	writeTimeout time.Duration
	pingInterval time.Duration
	ctx          context.Context // the upgrade request's
	transportWS  bool            // graphql-transport-ws, not the legacy graphql-ws
	maxOps       int
	onRefused    func(context.Context)
	opened       time.Time

	// writeMu serializes data messages: gqlgen's (under its own lock) and
	// the refusals the reader writes.
	writeMu sync.Mutex

	// opsMu guards ops, the ids of the operations running (added when the
	// client starts one, removed when either side completes it or the
	// server reports its error), and ending, for each id the client
	// completed while it ran, how many of the server's final messages
	// (complete or error) are still to come for it: those end the old
	// operation, not a new one the client started with the same id.
	opsMu  sync.Mutex
	ops    map[string]struct{}
	ending map[string]int

	// pingMu guards the keepalive: its timer (nil until connection_ack),
	// whether it is stopped (the connection closed), and whether the peer
	// answered the last ping.
	pingMu      sync.Mutex
	pingTimer   *time.Timer
	pingStopped bool
	ponged      bool

	// mu serializes the close path: it is held while a close frame is
	// written, so that the TCP connection is not closed under it.
	mu          sync.Mutex
	closeSent   bool // a close frame was written (or attempted)
	netClosed   bool // the TCP connection was closed
	closeCode   int  // the first close code sent or received; 0 if none
	closeReason string
}

var (
	_ transport.WebsocketConn          = (*graphqlConn)(nil)
	_ transport.WebsocketReadLimiter   = (*graphqlConn)(nil)
	_ transport.WebsocketReadDeadliner = (*graphqlConn)(nil)
)

// NextReader returns the next message, or transport.ErrWebsocketClosed when
// the peer closed the socket normally (1000, 1001 or no code). It keeps
// the set of running operations: a subscribe with the id of a running one
// closes a graphql-transport-ws socket with 4409, and one over
// MaxOperations is answered with a RATE_LIMITED error and never reaches
// gqlgen.
func (c *graphqlConn) NextReader() (int, io.Reader, error) {
	for {
		t, r, err := c.ws.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.noteClose(ce.Code, ce.Text)
			}
			if websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived) {
				return t, nil, transport.ErrWebsocketClosed
			}
			return t, r, err
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return t, nil, err
		}
		var m struct {
			ID      string          `json:"id"`
			Type    string          `json:"type"`
			Payload json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(b, &m) != nil {
			return t, bytes.NewReader(b), nil // gqlgen answers it
		}
		switch m.Type {
		case "connection_init":
			// gqlgen gives up without closing the connection when the
			// payload is not an object; the protocol says 4400.
			if p := bytes.TrimSpace(m.Payload); len(p) > 0 && p[0] != '{' && string(p) != "null" {
				c.shut(CloseBadRequest, "connection_init payload must be an object")
				return t, nil, transport.ErrWebsocketClosed
			}
		case "subscribe", "start":
			c.opsMu.Lock()
			_, running := c.ops[m.ID]
			switch {
			case running && c.transportWS:
				c.opsMu.Unlock()
				c.shut(CloseDuplicateID, "Subscriber for "+m.ID+" already exists")
				return t, nil, transport.ErrWebsocketClosed
			case !running && c.maxOps > 0 && len(c.ops) >= c.maxOps:
				c.opsMu.Unlock()
				if err := c.refuse(m.ID); err != nil {
					return t, nil, err
				}
				continue
			}
			c.ops[m.ID] = struct{}{}
			c.opsMu.Unlock()
		case "pong":
			c.pingMu.Lock()
			c.ponged = true
			c.pingMu.Unlock()
		case "complete", "stop":
			c.opsMu.Lock()
			if _, running := c.ops[m.ID]; running {
				delete(c.ops, m.ID)
				c.ending[m.ID]++
			}
			c.opsMu.Unlock()
		}
		return t, bytes.NewReader(b), nil
	}
}

// refuse answers an operation over MaxOperations with an error message.
func (c *graphqlConn) refuse(id string) error {
	if c.onRefused != nil {
		c.onRefused(c.ctx)
	}
	msg := fmt.Sprintf("too many operations on this socket: at most %d at once", c.maxOps)
	payload, _ := json.Marshal([]any{map[string]any{
		"message":    msg,
		"extensions": map[string]any{"code": "RATE_LIMITED", "limit": c.maxOps},
	}})
	b, _ := json.Marshal(map[string]any{"id": id, "type": "error", "payload": json.RawMessage(payload)})
	return c.write(b)
}

// opDone records the server's final message for an operation.
func (c *graphqlConn) opDone(id string) {
	c.opsMu.Lock()
	defer c.opsMu.Unlock()
	if n := c.ending[id]; n > 0 {
		if n == 1 {
			delete(c.ending, id)
		} else {
			c.ending[id] = n - 1
		}
		return
	}
	delete(c.ops, id)
}

// Both protocols' server messages end with their type, since gqlgen
// encodes payload, id and type in that order: an operation ends with
// "complete" or "error".
var (
	suffixComplete = []byte(`"type":"complete"}`)
	suffixError    = []byte(`"type":"error"}`)
	suffixAck      = []byte(`"type":"connection_ack"}`)
)

// The keepalive messages of the two protocols.
var (
	msgPing = []byte(`{"type":"ping"}`)
	msgKA   = []byte(`{"type":"ka"}`)
)

// WriteJSON writes v as one text message, within the write timeout. A
// complete or error message ends its operation.
func (c *graphqlConn) WriteJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if bytes.HasSuffix(b, suffixComplete) || bytes.HasSuffix(b, suffixError) {
		var m struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(b, &m) == nil && m.ID != "" {
			c.opDone(m.ID)
		}
	}
	if err := c.write(b); err != nil {
		return err
	}
	if bytes.HasSuffix(b, suffixAck) {
		c.startPing()
	}
	return nil
}

// startPing starts the keepalive, at connection_ack.
func (c *graphqlConn) startPing() {
	if c.pingInterval <= 0 {
		return
	}
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if c.pingStopped || c.pingTimer != nil {
		return
	}
	if c.transportWS {
		_ = c.ws.SetReadDeadline(time.Now().Add(2 * c.pingInterval))
	}
	c.pingTimer = time.AfterFunc(c.pingInterval, c.ping)
}

// ping sends one keepalive message and sets the timer for the next, on a
// goroutine of the timer's that ends with it.
func (c *graphqlConn) ping() {
	msg := msgKA
	if c.transportWS {
		msg = msgPing
	}
	if c.write(msg) != nil {
		return // the connection is broken: the reader fails, or has
	}
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	if c.pingStopped {
		return
	}
	if c.transportWS && c.ponged {
		_ = c.ws.SetReadDeadline(time.Now().Add(2 * c.pingInterval))
	}
	c.ponged = false
	c.pingTimer.Reset(c.pingInterval)
}

// stopPing stops the keepalive for good.
func (c *graphqlConn) stopPing() {
	c.pingMu.Lock()
	defer c.pingMu.Unlock()
	c.pingStopped = true
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
}

func (c *graphqlConn) write(b []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// noteClose records the first close code sent or received.
func (c *graphqlConn) noteClose(code int, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeCode == 0 {
		c.closeCode, c.closeReason = code, reason
	}
}

// CloseInfo is how a GraphQL socket ended, for its log line.
type CloseInfo struct {
	// Code is the first close code sent or received; 0 if the connection
	// ended without one (1006 in the protocol's terms).
	Code   int
	Reason string
	// Duration is how long the socket was open.
	Duration time.Duration
}

func (c *graphqlConn) info() CloseInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CloseInfo{Code: c.closeCode, Reason: c.closeReason, Duration: time.Since(c.opened)}
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
	if c.closeCode == 0 {
		c.closeCode, c.closeReason = code, reason
	}
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
	if c.closeCode == 0 {
		c.closeCode, c.closeReason = code, reason
	}
	_ = c.writeClose(code, reason)
	_ = c.closeNet()
	return true
}

// writeClose writes a close frame; the caller holds c.mu.
func (c *graphqlConn) writeClose(code int, reason string) error {
	return c.ws.WriteControl(websocket.CloseMessage, FormatClose(code, reason), time.Now().Add(c.writeTimeout))
}

// closeNet closes the TCP connection once, and stops the keepalive; the
// caller holds c.mu.
func (c *graphqlConn) closeNet() error {
	if c.netClosed {
		return nil
	}
	c.netClosed = true
	c.stopPing()
	return c.ws.Close()
}

type slotKey struct{}

// slot is what Track puts into an upgrade request's context: GraphQL.Accept
// fills it with the accepted connection.
type slot struct {
	conn     atomic.Pointer[graphqlConn]
	answered atomic.Bool // Accept answered a refused upgrade, or hijacked the connection
	onAccept func(r *http.Request)
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
	return TrackWith(TrackOptions{})(next)
}

// TrackOptions are hooks of TrackWith, each optional.
type TrackOptions struct {
	// OnAccept is called when a socket is accepted, with its upgrade
	// request.
	OnAccept func(r *http.Request)
	// OnClose is called, after OnAccept, when the handler returns because
	// the socket has ended, with how it ended.
	OnClose func(r *http.Request, info CloseInfo)
}

// TrackWith is Track with hooks.
func TrackWith(opts TrackOptions) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") == "" {
				next.ServeHTTP(w, r)
				return
			}
			s := &slot{onAccept: opts.OnAccept}
			r = r.WithContext(context.WithValue(r.Context(), slotKey{}, s))
			next.ServeHTTP(&trackedWriter{ResponseWriter: w, slot: s}, r)
			if c := s.conn.Load(); c != nil && opts.OnClose != nil {
				opts.OnClose(r, c.info())
			}
		})
	}
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
