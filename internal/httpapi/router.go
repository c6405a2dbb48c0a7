package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/pulse-social/pulse/internal/admit"
	"github.com/pulse-social/pulse/internal/gqlsse"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/pushconn"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// Config is what the HTTP surface needs. Zero values are documented per
// field.
type Config struct {
	// Service runs every action. Required.
	Service *social.Service
	// Logger receives access and error logs; nil discards them.
	Logger *slog.Logger
	// Websocket is the policy shared by both sockets (origins, buffers,
	// write timeout).
	Websocket wspolicy.Config
	// PlainSocket serves /ws/{token}/. Required.
	PlainSocket http.Handler
	// Events serves the server-sent event stream at /events, behind the
	// origin policy of /query; nil serves none.
	Events http.Handler
	// Playground serves the GraphiQL page at / and its assets under
	// /playground/; nil serves no playground.
	Playground http.Handler
	// Ready reports whether the server can serve (store and broker
	// reachable, not shutting down); nil means always ready.
	Ready func(context.Context) error
	// Introspection enables GraphQL introspection (the playground needs it).
	Introspection bool
	// ComplexityLimit bounds a GraphQL operation's complexity (see
	// graph.Complexity); 0 means DefaultComplexityLimit.
	ComplexityLimit int
	// Costs bound a GraphQL document and each response beyond depth and
	// complexity; zero fields mean their defaults.
	Costs CostLimits
	// PingInterval is the GraphQL websocket keepalive; 0 means 25s.
	PingInterval time.Duration
	// StreamKeepAlive is how often a GraphQL event stream with nothing to
	// send gets a comment line; 0 means gqlsse.DefaultKeepAlive (15s).
	StreamKeepAlive time.Duration
	// MaxBodyBytes bounds a GraphQL request body and a GraphQL websocket
	// message; 0 means 1 MiB. A bigger body is answered with 413.
	MaxBodyBytes int64
	// MaxDepth bounds how deep a GraphQL operation's selections nest
	// (introspection not counted); 0 means DefaultMaxDepth.
	MaxDepth int
	// RequestTimeout bounds the time a query or mutation runs, over HTTP or
	// a GraphQL socket (subscriptions are not bounded); 0 means
	// DefaultRequestTimeout. One cut short answers with a TIMEOUT error.
	RequestTimeout time.Duration
	// MaxAuthFields bounds the register and login fields of one request,
	// refused before any password is checked; 0 means DefaultMaxAuthFields.
	MaxAuthFields int
	// Limits are the abuse limits; the zero value limits nothing.
	Limits Limits
	// GraphQLSockets counts the open GraphQL websockets, and its context
	// ends them (see pushconn.Group): a socket outlives the request that
	// opened it, so the server waits for them at shutdown. Nil means a
	// group whose context never ends.
	GraphQLSockets *pushconn.Group
	// Metrics counts requests, operations and sockets, and is served at
	// /metrics; nil counts nothing and serves no /metrics.
	Metrics *metrics.Metrics
}

// DefaultMaxDepth is the default of Config.MaxDepth.
const DefaultMaxDepth = 12

// DefaultMaxAuthFields is the default of Config.MaxAuthFields.
const DefaultMaxAuthFields = 3

// New returns the server's HTTP handler.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ComplexityLimit == 0 {
		cfg.ComplexityLimit = DefaultComplexityLimit
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = 25 * time.Second
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.MaxDepth == 0 {
		cfg.MaxDepth = DefaultMaxDepth
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.MaxAuthFields == 0 {
		cfg.MaxAuthFields = DefaultMaxAuthFields
	}
	cfg.Costs = cfg.Costs.withDefaults()

	r := chi.NewRouter()
	r.Use(withRequest)
	r.Use(countRequests(cfg.Metrics))
	r.Use(accessLog(cfg.Logger))
	r.Use(securityHeaders)
	r.Use(recoverer(cfg.Logger))

	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	r.Get("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if cfg.Ready != nil {
			if err := cfg.Ready(r.Context()); err != nil {
				writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
				return
			}
		}
		writeText(w, http.StatusOK, "ready")
	})

	if cfg.Metrics != nil {
		r.Get("/metrics", cfg.Metrics.Handler().ServeHTTP)
	}

	adm := admit.New(admit.Config{
		Service: cfg.Service, PerAddress: cfg.Limits.SocketsPerAddress, PerUser: cfg.Limits.SocketsPerUser,
		Metrics: cfg.Metrics, Transport: metrics.GraphQL,
	})
	streamAdm := admit.New(admit.Config{
		Service: cfg.Service, PerAddress: cfg.Limits.SocketsPerAddress, PerUser: cfg.Limits.SocketsPerUser,
		Metrics: cfg.Metrics, Transport: metrics.GraphQLSSE,
	})
	gql := newGraphQL(cfg, adm)
	r.With(cors(cfg.Websocket.AllowedOrigins), limitBody(cfg.MaxBodyBytes), refusals, authenticate(cfg.Service, cfg.Logger),
		socketSession, streamAdmission(streamAdm, cfg.Logger)).
		Handle("/query", gql)

	r.Handle("/ws/{token}", cfg.PlainSocket)
	r.Handle("/ws/{token}/", cfg.PlainSocket)
	if cfg.Events != nil {
		r.With(cors(cfg.Websocket.AllowedOrigins)).Handle("/events", cfg.Events)
	}

	if cfg.Playground != nil {
		r.Get("/", cfg.Playground.ServeHTTP)
		r.Get("/playground/*", cfg.Playground.ServeHTTP)
	}
	return r
}

type authorizationKey struct{}

// authenticate resolves the Authorization header of a GraphQL request. No
// header: the request goes on anonymous, and fields that need a user fail
// with UNAUTHENTICATED. A bad, expired or revoked token: HTTP 401 before
// anything runs. Websocket upgrades are authenticated at connection_init,
// where the header is one of the two places the token may come from, and
// event streams by streamAdmission.
func authenticate(svc *social.Service, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// A login records it with its session.
			ctx := social.WithUserAgent(r.Context(), r.UserAgent())
			h := r.Header.Get("Authorization")
			if h == "" {
				next.ServeHTTP(w, r.WithContext(ctx))
				return
			}
			if r.Header.Get("Upgrade") != "" {
				stateFrom(ctx).authorization = h
				next.ServeHTTP(w, r.WithContext(ctx))
				return
			}
			if gqlsse.Accepts(r) {
				next.ServeHTTP(w, r.WithContext(ctx))
				return
			}
			a, err := svc.Authenticate(ctx, social.TokenFromAuthorization(h))
			if err != nil && r.Context().Err() != nil {
				log.DebugContext(r.Context(), "authenticate: request ended", "err", err)
				return
			}
			if err != nil {
				status := http.StatusUnauthorized
				if social.ErrorCode(err) != social.CodeUnauthenticated {
					log.ErrorContext(r.Context(), "authenticate", "err", err)
					status = http.StatusInternalServerError
				}
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
				writeGraphQLError(w, status, social.ErrorMessage(err), social.ErrorCode(err))
				return
			}
			next.ServeHTTP(w, r.WithContext(social.WithAuth(ctx, a)))
		})
	}
}

// headerAuthorization returns the Authorization header of the websocket
// upgrade request of ctx, if it had one.
func headerAuthorization(ctx context.Context) string {
	h, _ := ctx.Value(authorizationKey{}).(string)
	return h
}

func writeGraphQLError(w http.ResponseWriter, status int, message string, code social.Code) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []any{map[string]any{"message": message, "extensions": map[string]any{"code": code}}},
	})
}

func writeText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text + "\n"))
}
