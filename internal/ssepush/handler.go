package ssepush

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/pulse-social/pulse/internal/admit"
	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// Defaults of Config's zero values.
const (
	// DefaultPingInterval is at most the 15 s between comments that the
	// contract promises.
	DefaultPingInterval = 15 * time.Second
	DefaultWriteTimeout = wspolicy.DefaultWriteTimeout
)

// Retry is the reconnection delay, in milliseconds, that every stream
// starts with (its "retry:" field).
const Retry = 3000

// The reasons of "event: closed" (the ones a session's end gives are
// wspolicy's, the sockets' close reasons).
const (
	reasonTooSlow  = "too slow"
	reasonInternal = "internal error"
)

// Config tunes a Handler. The zero value is ready to use.
type Config struct {
	// Logger gets one line per stream opened and one per stream ended, and
	// the errors of the store; nil discards them.
	Logger *slog.Logger

	// PingInterval is how often an idle stream sends a comment (": ping"),
	// which keeps proxies from timing it out and finds clients that are
	// gone. 0 means DefaultPingInterval.
	PingInterval time.Duration

	// WriteTimeout bounds every write to a stream; one that times out ends
	// it. The server's own write (and read) timeouts do not apply to a
	// stream. 0 means DefaultWriteTimeout.
	WriteTimeout time.Duration

	// StreamsPerUser and StreamsPerAddress cap the streams a user and a
	// client address hold open, with keys limit.UserKey and limit.Address:
	// give the sockets' caps to count streams and sockets together. A
	// stream over either is refused with HTTP 429. Nil caps nothing.
	StreamsPerUser    *limit.Slots
	StreamsPerAddress *limit.Slots

	// Metrics counts open streams, delivered notifications with their
	// publish-to-write latency, and streams ended as too slow, under the
	// transport label "sse"; nil counts nothing.
	Metrics *metrics.Metrics

	// Context ends the streams: when it is done, each ends with "event:
	// closed" and the reason "server shutting down". Nil means
	// context.Background().
	Context context.Context
}

// Handler serves GET /events. Create it with New; it is safe for
// concurrent use. It does not apply the origin policy: the router does,
// as for /query.
type Handler struct {
	log          *slog.Logger
	pingInterval time.Duration
	writeTimeout time.Duration
	admit        *admit.Admitter
	metrics      *metrics.Metrics
	shutdown     context.Context // Config.Context
}

var _ http.Handler = (*Handler)(nil)

// New returns a Handler for the streams of svc's users.
func New(svc *social.Service, cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Context == nil {
		cfg.Context = context.Background()
	}
	return &Handler{
		log:          cfg.Logger,
		pingInterval: cfg.PingInterval,
		writeTimeout: cfg.WriteTimeout,
		admit: admit.New(admit.Config{
			Service: svc, PerAddress: cfg.StreamsPerAddress, PerUser: cfg.StreamsPerUser,
			Metrics: cfg.Metrics, Transport: metrics.SSE,
		}),
		metrics:  cfg.Metrics,
		shutdown: cfg.Context,
	}
}

// ServeHTTP serves one stream, for as long as it lasts. Everything that
// can refuse it, and opening its feed, happens before the response starts:
// a refusal is an HTTP error with a JSON body, and a client that sees the
// stream start gets every notification committed from then on.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodOptions: // a CORS preflight: the router set its headers
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, OPTIONS")
		refuse(w, http.StatusMethodNotAllowed, "method not allowed: use GET", social.CodeBadUserInput)
		return
	}
	start := time.Now()
	ctx := r.Context()
	cred, ok := credential(r)
	if !ok {
		unauthorized(w)
		return
	}
	after, ok := resumeFrom(r)
	if !ok {
		refuse(w, http.StatusBadRequest, "invalid Last-Event-ID or after: want a non-negative integer", social.CodeBadUserInput)
		return
	}
	adm, err := h.admit.Arrive(limit.Address(r.RemoteAddr))
	if err != nil {
		h.refused(w, r, err, 0)
		return
	}
	defer adm.Release()
	if _, err := adm.Authenticate(ctx, cred); err != nil {
		h.refused(w, r, err, 0)
		return
	}
	s := newStream(h, w, r, adm)
	if err := adm.Open(ctx, admit.Options{After: after, OnEvent: s.onEvent, OnEnded: s.onFeedEnded, Expired: s.expired}); err != nil {
		h.refused(w, r, err, adm.UserID())
		return
	}
	defer h.metrics.SocketOpened(metrics.SSE)()
	h.log.InfoContext(ctx, "event stream open", "user_id", adm.UserID(), "remote", r.RemoteAddr)
	reason := s.serve(after != nil)
	h.log.InfoContext(ctx, "event stream closed", "user_id", adm.UserID(), "reason", reason, "duration", time.Since(start))
}

// credential returns what the request authenticates with: the
// Authorization header's token, or else the ?ticket= ticket.
func credential(r *http.Request) (admit.Credential, bool) {
	if v := r.Header.Get("Authorization"); v != "" {
		return admit.Token(social.TokenFromAuthorization(v)), true
	}
	if t := r.URL.Query().Get("ticket"); t != "" {
		return admit.Ticket(t), true
	}
	return admit.Credential{}, false
}

// resumeFrom returns the cursor the stream resumes after: the
// Last-Event-ID header, or else ?after=; nil for neither. It returns false
// when the one it reads is not a non-negative integer.
func resumeFrom(r *http.Request) (*int64, bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		q := r.URL.Query()
		if !q.Has("after") {
			return nil, true
		}
		v = q.Get("after")
	}
	n, ok := admit.ParseCursor(v)
	return &n, ok
}

// refused answers a stream that admit refused, and logs a failure of the
// server's.
func (h *Handler) refused(w http.ResponseWriter, r *http.Request, err error, userID int64) {
	switch admit.ReasonOf(err) {
	case admit.TooManyForAddress, admit.TooManyForUser:
		refuse(w, http.StatusTooManyRequests, "too many streams", social.CodeRateLimited)
	case admit.BadCredential:
		unauthorized(w)
	case admit.LoggedOut:
		refuse(w, http.StatusUnauthorized, wspolicy.ReasonLoggedOut, social.CodeUnauthenticated)
	case admit.ShuttingDown:
		refuse(w, http.StatusServiceUnavailable, wspolicy.ReasonShuttingDown, social.CodeUnavailable)
	default:
		h.log.ErrorContext(r.Context(), "event stream: admit", "user_id", userID, "err", err)
		refuse(w, http.StatusInternalServerError, reasonInternal, social.CodeInternal)
	}
}

// unauthorized answers a missing, bad, expired or revoked token, or a used,
// expired or unknown ticket.
func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	refuse(w, http.StatusUnauthorized, "invalid access token", social.CodeUnauthenticated)
}

// refuse answers with status and the JSON body {"error": message, "code":
// code}, which a client reads as it reads the plain socket's errors.
func refuse(w http.ResponseWriter, status int, message string, code social.Code) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		Error string      `json:"error"`
		Code  social.Code `json:"code"`
	}{message, code})
}
