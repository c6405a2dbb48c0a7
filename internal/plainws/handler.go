package plainws

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/admit"
	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/pushconn"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// Defaults of Config's zero values.
const (
	DefaultPingInterval = 25 * time.Second
	DefaultReplyQueue   = 8
	DefaultCloseTimeout = 2 * time.Second
	// DefaultRefusedMessages is Config.RefusedMessages's.
	DefaultRefusedMessages = 10
)

// readBufferSize is gorilla/websocket's read buffer for each socket when
// Config.Websocket.ReadBufferSize is 0. The socket reads its client's
// websocket frames itself (see frameReader), into buffers it holds only while it
// reads; gorilla's reader only waits for the close of a refused socket,
// so this is small. It holds a control frame whole (gorilla/websocket
// needs 125 bytes and the header).
const readBufferSize = 256

// ReadLimit is the largest websocket message a client may send; a bigger
// one closes the socket with 1009.
const ReadLimit = 64 << 10

// redactedPath is how the socket's path appears in logs.
const redactedPath = "/ws/<redacted>/"

// Close reasons of the plain socket (the codes are wspolicy's); see the
// package doc.
const (
	reasonTooManySockets = "too many sockets"
	reasonInvalidToken   = "invalid access token"
	reasonTooSlow        = "too slow"
	reasonInvalidAfter   = "invalid after: want a non-negative integer"
	reasonInternalError  = "internal error"
	reasonMessageTooBig  = "message too big"
	reasonConnectionLost = "connection lost"
	reasonNoPong         = "no pong"
	reasonWriteFailed    = "write failed"
)

// Config tunes a Handler. The zero value is ready to use.
type Config struct {
	// Websocket is the policy shared with the GraphQL socket: allowed
	// origins, buffer sizes, write timeout.
	Websocket wspolicy.Config

	// Logger gets one line per socket opened and one per socket closed,
	// and the errors of the store; nil discards them.
	Logger *slog.Logger

	// LogContext, if not nil, returns what a socket keeps of its upgrade
	// request's context for its log lines (the Logger's handler may read
	// values from it): the socket outlives the request. Nil keeps the
	// request's context whole, with everything it holds.
	LogContext func(context.Context) context.Context

	// PingInterval is how often the server pings every socket; one that
	// sends nothing, not even a pong, for two intervals is dropped. 0 means
	// DefaultPingInterval.
	PingInterval time.Duration

	// ReplyQueue is how many replies to the client's frames (pongs, errors)
	// wait for the writer; when it is full the client is not reading, and
	// the socket is closed with 4008. 0 means DefaultReplyQueue.
	ReplyQueue int

	// CloseTimeout is how long the server waits for the client's answer to
	// its close frame before it drops the connection. 0 means
	// DefaultCloseTimeout.
	CloseTimeout time.Duration

	// SocketsPerUser and SocketsPerAddress cap the sockets a user and a
	// client address hold open (shared with the GraphQL socket: keys are
	// limit.UserKey and limit.Address). A socket over either cap is
	// upgraded and closed at once with 4429 "too many sockets". Nil caps
	// nothing.
	SocketsPerUser    *limit.Slots
	SocketsPerAddress *limit.Slots

	// Messages and MessageBytes are the budget of each user's
	// {"message": ...} frames, which each cost a write on every socket of
	// the user: a message takes one token of Messages and a token per byte
	// of its text of MessageBytes (whose burst must hold
	// social.MessageMaxBytes), keyed by limit.UserKey, so that the budget
	// is the user's across its sockets on this Handler (in this process:
	// with several processes, a user has a budget in each). A message over
	// either is not sent and is answered with {"error": "rate limited: ...",
	// "code": "RATE_LIMITED", "retry_after": <seconds>}; it may still have
	// taken its token of Messages. Nil: no budget.
	Messages     *limit.Rates
	MessageBytes *limit.Rates

	// RefusedMessages is how many messages in a row the budgets may refuse
	// on one socket; the next refused one closes it with 4429 "too many
	// messages". 0 means DefaultRefusedMessages.
	RefusedMessages int

	// Metrics counts open sockets, delivered notifications with their
	// publish-to-write latency, and slow clients cut off; nil counts
	// nothing.
	Metrics *metrics.Metrics

	// Context ends the sockets: when it is done, each closes with 1001
	// "server shutting down". A socket outlives the ServeHTTP call that
	// opened it, so the server cancels this at shutdown, then calls Wait.
	// Nil means context.Background().
	Context context.Context
}

// Handler serves the plain socket. Create it with New; it is safe for
// concurrent use and starts no goroutine until the first socket opens.
type Handler struct {
	svc          *social.Service
	log          *slog.Logger
	logContext   func(context.Context) context.Context
	upgrader     *websocket.Upgrader
	writeTimeout time.Duration
	pingInterval time.Duration
	replyQueue   int
	closeTimeout time.Duration
	admit        *admit.Admitter
	messages     *limit.Rates
	messageBytes *limit.Rates
	refusedMax   int
	metrics      *metrics.Metrics
	ctx          context.Context // Config.Context
	policy       pushconn.Policy // the sockets'
	sockets      tracker
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler for the sockets of svc's users.
func New(svc *social.Service, cfg Config) *Handler {
	ws := cfg.Websocket.WithDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.ReplyQueue <= 0 {
		cfg.ReplyQueue = DefaultReplyQueue
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	if cfg.Context == nil {
		cfg.Context = context.Background()
	}
	if cfg.RefusedMessages <= 0 {
		cfg.RefusedMessages = DefaultRefusedMessages
	}
	up := ws.Upgrader()
	if cfg.Websocket.ReadBufferSize == 0 {
		// Not net/http's, which the returned handler would keep alive.
		up.ReadBufferSize = readBufferSize
	}
	h := &Handler{
		svc:          svc,
		log:          cfg.Logger,
		logContext:   cfg.LogContext,
		upgrader:     up,
		writeTimeout: ws.WriteTimeout,
		pingInterval: cfg.PingInterval,
		replyQueue:   cfg.ReplyQueue,
		closeTimeout: cfg.CloseTimeout,
		admit: admit.New(admit.Config{
			Service: svc, PerAddress: cfg.SocketsPerAddress, PerUser: cfg.SocketsPerUser,
			Metrics: cfg.Metrics, Transport: metrics.Plain,
		}),
		messages:     cfg.Messages,
		messageBytes: cfg.MessageBytes,
		refusedMax:   cfg.RefusedMessages,
		metrics:      cfg.Metrics,
		ctx:          cfg.Context,
		policy: pushconn.Policy{
			Group:        pushconn.NewGroup(cfg.Context),
			CloseTimeout: cfg.CloseTimeout,
			PingInterval: cfg.PingInterval,
			Shutdown:     pushconn.End{Code: wspolicy.CloseShuttingDown, Reason: wspolicy.ReasonShuttingDown, SendClose: true},
			Silent:       pushconn.End{Code: websocket.CloseAbnormalClosure, Reason: reasonNoPong},
		},
		sockets: tracker{interval: cfg.PingInterval},
	}
	h.upgrader.Error = h.refuse
	return h
}

// Wait blocks until every socket has closed and its goroutines have
// returned, or until ctx is done. At shutdown, cancel Config.Context (which
// closes every socket with 1001) and then call Wait: neither the
// http.Server nor the ServeHTTP calls wait for the sockets.
func (h *Handler) Wait(ctx context.Context) error {
	return h.policy.Group.Wait(ctx)
}

// ServeHTTP opens one socket and returns as soon as it is served without
// this call (see the package doc), so that an idle socket holds neither
// this call's deep stack nor net/http's buffers; see Wait. A path that is not /ws/{token} or
// /ws/{token}/ is answered with 404.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := tokenFromPath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	start := time.Now()
	ctx := r.Context()

	// Everything that can refuse the socket, and opening its feed, happens
	// before the upgrade: a client that sees the socket open knows that
	// every notification from then on reaches it, even without ?after=.
	// A refused socket is still upgraded, then closed with its code, since
	// browsers can read a close code but not a refused handshake.
	var refused struct {
		code   int
		reason string
		userID int64
	}
	// The request's values, for the logs; the request itself ends when
	// this call returns.
	values := context.WithoutCancel(ctx)
	if h.logContext != nil {
		values = h.logContext(ctx)
	}
	// The socket's writers start with the first, which its reader starts
	// once it runs; until then the feed's events wait in its queue.
	s := &socket{
		h:       h,
		ctx:     wspolicy.SocketContext(h.ctx, values),
		changes: r.URL.Query().Get("changes") == "1",
		frames:  frameReader{limit: ReadLimit},
		backlog: true,
	}
	s.core.Init(&s.mu, s, &h.policy, start)
	adm, err := h.admit.Arrive(limit.Address(r.RemoteAddr))
	served := false
	if err == nil {
		// The socket's once it is open, else this call's.
		defer func() {
			if !served {
				adm.Release()
			}
		}()
		s.adm = adm
		_, err = adm.Authenticate(ctx, admit.TokenOrTicket(token))
		if err == nil {
			if after, ok := parseAfter(r); !ok {
				refused.code, refused.reason = websocket.ClosePolicyViolation, reasonInvalidAfter
			} else {
				err = adm.Open(ctx, admit.Options{After: after, OnEvent: s.onEvent, OnEnded: s.onFeedEnded, Expired: s.expired})
			}
		}
		refused.userID = adm.UserID()
	}
	if err != nil {
		refused.code, refused.reason = h.refusal(ctx, err, refused.userID)
	}

	conn, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered (see refuse)
	}
	if refused.code != 0 {
		h.policy.Group.Add()
		h.reject(ctx, conn, start, refused.userID, refused.code, refused.reason)
		h.policy.Group.Done()
		return
	}
	h.log.InfoContext(ctx, "plain socket open", "path", redactedPath, "user_id", adm.UserID(), "remote", r.RemoteAddr)
	s.conn = conn
	s.userID = adm.UserID()
	served = true
	s.open()
}

// refusal returns the close code and reason of a socket that admit
// refused, and logs a failure of the server's.
func (h *Handler) refusal(ctx context.Context, err error, userID int64) (int, string) {
	switch admit.ReasonOf(err) {
	case admit.TooManyForAddress, admit.TooManyForUser:
		return wspolicy.CloseTooMany, reasonTooManySockets
	case admit.BadCredential:
		return wspolicy.CloseUnauthorized, reasonInvalidToken
	case admit.LoggedOut:
		return wspolicy.CloseLoggedOut, wspolicy.ReasonLoggedOut
	case admit.ShuttingDown:
		return wspolicy.CloseShuttingDown, wspolicy.ReasonShuttingDown
	}
	h.log.ErrorContext(ctx, "plain socket: admit", "path", redactedPath, "user_id", userID, "err", err)
	return websocket.CloseInternalServerErr, reasonInternalError
}

// refuse answers a failed upgrade (403 for a refused origin, 400 for a
// request that is no websocket handshake) as gorilla does, and logs it.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, status int, reason error) {
	h.log.InfoContext(r.Context(), "plain socket refused", "path", redactedPath, "status", status,
		"origin", r.Header.Get("Origin"), "err", reason)
	w.Header().Set("Sec-Websocket-Version", "13")
	http.Error(w, http.StatusText(status), status)
}

// reject closes a socket that never got going: it sends the close frame,
// waits (at most CloseTimeout) for the client's answer, and logs the close.
func (h *Handler) reject(ctx context.Context, conn *websocket.Conn, start time.Time, userID int64, code int, reason string) {
	defer conn.Close()
	err := conn.WriteControl(websocket.CloseMessage, wspolicy.FormatClose(code, reason), time.Now().Add(h.writeTimeout))
	if err == nil {
		_ = conn.SetReadDeadline(time.Now().Add(h.closeTimeout))
		for {
			if _, _, err := conn.NextReader(); err != nil {
				break
			}
		}
	}
	h.log.InfoContext(ctx, "plain socket closed", "path", redactedPath, "user_id", userID,
		"code", code, "reason", reason, "duration", time.Since(start))
}

// tokenFromPath returns the segment after /ws/, with or without a trailing
// slash.
func tokenFromPath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, "/ws/")
	if !ok {
		return "", false
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.Contains(rest, "/") {
		return "", false
	}
	return rest, true
}

// parseAfter returns the ?after= cursor: nil without one, and false when it
// is not a non-negative integer.
func parseAfter(r *http.Request) (*int64, bool) {
	q := r.URL.Query()
	if !q.Has("after") {
		return nil, true
	}
	n, ok := admit.ParseCursor(q.Get("after"))
	return &n, ok
}
