package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/graph"
	"github.com/pulse-social/pulse/internal/gqlws"
	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/wsconn"
)

// DefaultParserTokenLimit bounds how many tokens of a GraphQL document the
// parser reads.
const DefaultParserTokenLimit = 10_000

// newGraphQL builds the gqlgen server for production: explicit transports,
// a query cache, persisted queries, a complexity limit, errors that carry
// the domain's codes, and panics turned into GraphQL errors.
func newGraphQL(cfg Config) *handler.Server {
	schema := graph.NewExecutableSchema(graph.Config{
		Resolvers: &graph.Resolver{Service: cfg.Service, Logger: cfg.Logger, Metrics: cfg.Metrics},
	})
	srv := handler.New(schema)
	srv.AddTransport(gqlws.New(gqlws.Config{
		Websocket:     cfg.Websocket,
		Init:          initFunc(cfg.Service, cfg.Logger, cfg.Limits, cfg.Metrics),
		PingInterval:  cfg.PingInterval,
		MaxOperations: cfg.Limits.OperationsPerSocket,
		OnOperationRefused: func(context.Context) {
			cfg.Metrics.RateLimited("operations")
		},
		ReadLimit: cfg.MaxBodyBytes,
		Values:    socketValues,
		Opened:    socketOpened(cfg.Logger, cfg.Metrics),
		Logger:    cfg.Logger,
		Sockets:   cfg.GraphQLSockets,
	}))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})

	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.SetParserTokenLimit(DefaultParserTokenLimit)
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.Use(noIntrospection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	srv.Use(extension.FixedComplexityLimit(cfg.ComplexityLimit))
	srv.Use(depthLimit{max: cfg.MaxDepth})
	srv.Use(exactEnums{schema: schema.Schema()})
	if cfg.Metrics != nil {
		srv.Use(operationMetrics{m: cfg.Metrics})
	}
	srv.Use(operationDeadline{d: cfg.RequestTimeout, log: cfg.Logger})
	srv.Use(rateLimit{limits: cfg.Limits, maxAuthFields: cfg.MaxAuthFields, metrics: cfg.Metrics})

	srv.SetErrorPresenter(errorPresenter(cfg.Logger))
	srv.SetRecoverFunc(func(ctx context.Context, v any) error {
		cfg.Logger.ErrorContext(ctx, "panic in resolver", "panic", v, "stack", string(debug.Stack()))
		return &gqlerror.Error{Message: "internal error", Extensions: map[string]any{"code": string(social.CodeInternal)}}
	})
	return srv
}

// errorPresenter shows a domain error with its code (and the field at fault
// for bad input), keeps gqlgen's own parse and validation errors, shows the
// error of a field whose operation was cut short as such without logging
// it, and shows anything else as "internal error" while logging the cause.
func errorPresenter(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gerr := graphql.DefaultErrorPresenter(ctx, err)
		var se *social.Error
		if errors.As(err, &se) {
			gerr.Message = se.Message
			gerr.Extensions = map[string]any{"code": string(se.Code)}
			if se.Field != "" {
				gerr.Extensions["field"] = se.Field
			}
			return gerr
		}
		var inner *gqlerror.Error
		if gerr.Err == nil || errors.As(gerr.Err, &inner) {
			// gqlgen's own error: parse, validation, argument coercion,
			// complexity. Its message is meant for the client.
			if gerr.Extensions == nil {
				gerr.Extensions = map[string]any{}
			}
			if _, ok := gerr.Extensions["code"]; !ok {
				gerr.Extensions["code"] = string(social.CodeBadUserInput)
			}
			return gerr
		}
		if cutError(ctx, err, gerr) {
			return gerr // the operation logs it once (operationDeadline)
		}
		log.ErrorContext(ctx, "graphql: internal error", "path", gerr.Path.String(), "err", err)
		gerr.Message = "internal error"
		gerr.Extensions = map[string]any{"code": string(social.CodeInternal)}
		gerr.Err = nil
		return gerr
	}
}

// initFunc authenticates a GraphQL websocket at connection_init: the
// payload's authorization (any case; "Bearer " optional) or else the upgrade
// request's Authorization header. Without either the socket stays
// anonymous (operations that need a user fail with UNAUTHENTICATED); a bad
// token closes it with 4403. An authenticated socket is closed with 4401
// when its token is revoked. A socket over its address's or its user's cap
// is closed with 4429.
func initFunc(svc *social.Service, log *slog.Logger, limits Limits, m *metrics.Metrics) func(context.Context, map[string]any) (context.Context, error) {
	return func(ctx context.Context, payload map[string]any) (context.Context, error) {
		session := sessionFrom(ctx)
		if session != nil && session.refused {
			m.SocketRefused(metrics.GraphQL, "per_address")
			return nil, &gqlws.CloseError{Code: wsconn.CloseTooMany, Reason: "Too many sockets from this address", Message: "too many sockets from this address"}
		}
		token := authorizationFrom(payload)
		if token == "" {
			token = headerAuthorization(ctx)
		}
		if token == "" {
			return ctx, nil
		}
		u, hash, err := svc.Authenticate(ctx, social.TokenFromAuthorization(token))
		if err != nil {
			if social.ErrorCode(err) != social.CodeUnauthenticated {
				log.ErrorContext(ctx, "graphql websocket: authenticate", "err", err)
			}
			return nil, &gqlws.CloseError{Code: wsconn.CloseForbidden, Reason: "Forbidden: invalid access token", Message: "invalid access token"}
		}
		release, ok := limits.SocketsPerUser.Acquire(limit.UserKey(u.ID))
		if !ok {
			m.SocketRefused(metrics.GraphQL, "per_user")
			return nil, &gqlws.CloseError{Code: wsconn.CloseTooMany, Reason: "Too many sockets for this user", Message: "too many sockets for this user"}
		}
		start, err := svc.LatestNotificationID(ctx, u.ID)
		if err != nil {
			release()
			log.ErrorContext(ctx, "graphql websocket: read the user's cursor", "err", err)
			return nil, errInternal
		}
		sub, err := svc.Subscribe(ctx, u.ID)
		if err != nil {
			release()
			log.ErrorContext(ctx, "graphql websocket: subscribe to revocations", "err", err)
			return nil, errInternal
		}
		if err := watchRevocation(ctx, sub, hash, release); err != nil {
			log.ErrorContext(ctx, "graphql websocket: watch revocations", "err", err)
			return nil, errInternal
		}
		if session != nil {
			session.userID.Store(u.ID)
		}
		return graph.WithConnectionStart(social.WithAuth(ctx, u, hash), start), nil
	}
}

// watchRevocation closes the connection of ctx with 4401 when the session
// with this token hash is revoked, until ctx ends (the connection closed);
// then it closes the subscription and calls release. If it cannot watch
// (the subscription hands out no events to a function, or has ended), it
// closes the subscription, calls release and returns an error.
func watchRevocation(ctx context.Context, sub social.Subscription, hash []byte, release func()) error {
	var revoked atomic.Bool
	onEvent := func(ev social.Event) {
		if ev.Kind == social.EventRevoke && bytes.Equal(ev.TokenHash, hash) && revoked.CompareAndSwap(false, true) {
			// Close never blocks: the socket's writer sends the frame.
			gqlws.Close(ctx, wsconn.CloseUnauthorized, reasonRevoked)
		}
	}
	fs, ok := sub.(social.FuncSubscription)
	if !ok || !fs.SetFunc(onEvent, nil) {
		sub.Close()
		release()
		if !ok {
			return fmt.Errorf("a %T cannot hand events to a function", sub)
		}
		return fmt.Errorf("subscription ended: %w", sub.Err())
	}
	context.AfterFunc(ctx, func() {
		sub.Close()
		release()
	})
	return nil
}

// reasonRevoked is the close reason of a socket whose token was revoked.
const reasonRevoked = "Unauthorized: access token revoked"

// errInternal closes a socket whose connection_init failed on the
// server's side, with 1011.
var errInternal = errors.New("internal error")

func authorizationFrom(p map[string]any) string {
	for k, v := range p {
		if s, ok := v.(string); ok && strings.EqualFold(k, "authorization") {
			return s
		}
	}
	return ""
}
