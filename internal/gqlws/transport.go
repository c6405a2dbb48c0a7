package gqlws

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/pushconn"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// Defaults of Config's zero values.
const (
	DefaultInitTimeout  = 10 * time.Second
	DefaultReadLimit    = 1 << 20
	DefaultCloseTimeout = 2 * time.Second
	DefaultQueueSize    = 64
)

// readBufferSize is gorilla/websocket's read buffer of each socket when
// Config.Websocket.ReadBufferSize is 0: small, since an idle socket holds
// it, and big enough for a control frame (125 bytes and the header).
// Messages may be larger.
const readBufferSize = 512

// Config tunes a Transport. The zero value serves anonymous sockets with
// the defaults.
type Config struct {
	// Websocket is the policy shared with the plain socket: allowed
	// origins, buffer sizes, write timeout.
	Websocket wspolicy.Config

	// Init runs at connection_init, with the socket's context (which holds
	// the upgrade request's values) and the message's payload (nil if it
	// had none). The context it returns is the one the socket's operations
	// run in; it must be derived from the one it was given, which ends
	// when the socket closes. An error closes the socket: with its code
	// and reason if it is a *CloseError, else with 1011. Nil acknowledges
	// every socket.
	Init func(ctx context.Context, payload map[string]any) (context.Context, error)

	// InitTimeout is how long a client has, from the handshake, to send
	// connection_init; then the socket is closed with 4408. 0 means
	// DefaultInitTimeout.
	InitTimeout time.Duration

	// PingInterval is the keepalive, from connection_ack on: a
	// graphql-transport-ws socket is sent {"type":"ping"} every interval,
	// and one whose client has sent nothing, not even a pong, for two
	// intervals is dropped; a legacy socket is sent {"type":"ka"} every
	// interval. 0 sends nothing.
	PingInterval time.Duration

	// MaxOperations caps the operations (subscriptions, and queries or
	// mutations sent over the socket) one socket runs at once. One more is
	// answered with an error message for its id whose extensions.code is
	// RATE_LIMITED, and the socket stays open. 0 means no cap.
	MaxOperations int

	// OnOperationRefused, if set, is called for each operation refused by
	// MaxOperations, with the socket's context.
	OnOperationRefused func(ctx context.Context)

	// ReadLimit is the largest message a client may send; a bigger one
	// closes the socket with 1009. 0 means DefaultReadLimit.
	ReadLimit int64

	// QueueSize is how many messages (answers, results of queries and
	// mutations) may wait for the socket's writer; when it is full the
	// client does not read, and the socket is closed with 4008. It does
	// not bound a subscription's events, which its resolver holds until
	// the writer takes them. 0 means DefaultQueueSize.
	QueueSize int

	// CloseTimeout is how long the server waits for the client's answer to
	// its close frame before it drops the connection. 0 means
	// DefaultCloseTimeout.
	CloseTimeout time.Duration

	// Values, if not nil, returns what a socket keeps of its upgrade
	// request's context: the values that Init, the operations and the
	// logs read (the socket outlives the request). Nil keeps the request's
	// context whole, with everything it holds.
	Values func(r *http.Request) context.Context

	// Opened, if set, is called when a socket has been accepted, with its
	// upgrade request, before Init; the function it returns, if not nil, is
	// called once the socket has closed and Init has returned, with how it
	// ended.
	Opened func(r *http.Request) func(pushconn.CloseInfo)

	// Logger gets the errors that are the server's fault; nil discards
	// them.
	Logger *slog.Logger

	// Sockets counts the open sockets, and its context ends them, each
	// with 1001 "server shutting down" (see pushconn.Group). Nil means a
	// group of the Transport's own, whose context never ends.
	Sockets *pushconn.Group
}

// CloseError is an error of Config.Init that closes the socket with its
// code and reason. Message, if not empty, is sent to a legacy client in a
// connection_error first.
type CloseError struct {
	Code    int
	Reason  string
	Message string
}

func (e *CloseError) Error() string { return e.Reason }

// Transport serves GraphQL over websocket for gqlgen: add it to a gqlgen
// handler.Server with AddTransport. It is safe for concurrent use.
type Transport struct {
	cfg      Config
	upgrader *websocket.Upgrader
	policy   pushconn.Policy // its sockets'
}

var _ graphql.Transport = (*Transport)(nil)

// New returns a Transport.
func New(cfg Config) *Transport {
	ws := cfg.Websocket.WithDefaults()
	if cfg.InitTimeout <= 0 {
		cfg.InitTimeout = DefaultInitTimeout
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = DefaultReadLimit
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Sockets == nil {
		cfg.Sockets = pushconn.NewGroup(context.Background())
	}
	cfg.Websocket = ws
	up := ws.Upgrader()
	if cfg.Websocket.ReadBufferSize == 0 {
		// Not net/http's, which would keep its connection's state alive.
		up.ReadBufferSize = readBufferSize
	}
	up.Error = func(w http.ResponseWriter, _ *http.Request, status int, _ error) {
		w.Header().Set("Sec-Websocket-Version", "13")
		http.Error(w, http.StatusText(status), status)
	}
	return &Transport{cfg: cfg, upgrader: up, policy: pushconn.Policy{
		Group:        cfg.Sockets,
		CloseTimeout: cfg.CloseTimeout,
		PingInterval: cfg.PingInterval,
		Shutdown:     pushconn.End{Code: wspolicy.CloseShuttingDown, Reason: wspolicy.ReasonShuttingDown, SendClose: true},
		Silent:       pushconn.End{Code: websocket.CloseAbnormalClosure, Reason: "no pong"},
	}}
}

// Supports reports whether r asks for a websocket, as gqlgen's own
// websocket transport decides.
func (t *Transport) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") != ""
}

// Do upgrades r to a websocket and serves it until it closes, without this
// call: it returns once the socket is open, so that an idle socket holds
// neither this call's stack nor net/http's buffers. The first subprotocol
// of the client's list that is graphql-transport-ws or graphql-ws is
// chosen; a client that offers neither gets none, and the legacy protocol.
// An origin the policy does not allow is refused with HTTP 403.
func (t *Transport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	var header http.Header
	for _, p := range websocket.Subprotocols(r) {
		if p == subprotocolTransportWS || p == subprotocolLegacy {
			header = http.Header{"Sec-Websocket-Protocol": {p}}
			break
		}
	}
	conn, err := t.upgrader.Upgrade(w, r, header)
	if err != nil {
		return // the upgrader has answered
	}
	s := newSocket(t, conn, exec, r)
	if t.cfg.Opened != nil {
		s.closed = t.cfg.Opened(r)
	}
	s.open()
}
