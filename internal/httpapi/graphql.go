package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/graph"
	"github.com/pulse-social/pulse/internal/admit"
	"github.com/pulse-social/pulse/internal/gqlsse"
	"github.com/pulse-social/pulse/internal/gqlws"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// DefaultParserTokenLimit bounds how many tokens of a GraphQL document the
// parser reads.
const DefaultParserTokenLimit = 10_000

// newGraphQL builds the gqlgen server for production: explicit transports,
// a query cache, persisted queries, the cost limits, errors that carry
// the domain's codes, and panics turned into GraphQL errors.
func newGraphQL(cfg Config, adm *admit.Admitter) *handler.Server {
	schema := graph.NewExecutableSchema(graph.Config{
		Resolvers:  &graph.Resolver{Service: cfg.Service, Logger: cfg.Logger, Metrics: cfg.Metrics, Streams: streams{}},
		Complexity: graph.Complexity(),
	})
	srv := handler.New(schema)
	srv.AddTransport(gqlws.New(gqlws.Config{
		Websocket:     cfg.Websocket,
		Init:          initFunc(cfg.Logger),
		PingInterval:  cfg.PingInterval,
		MaxOperations: cfg.Limits.OperationsPerSocket,
		OnOperationRefused: func(context.Context) {
			cfg.Metrics.RateLimited("operations")
		},
		ReadLimit: cfg.MaxBodyBytes,
		Values:    socketValues,
		Opened:    socketOpened(cfg.Logger, cfg.Metrics, adm),
		Logger:    cfg.Logger,
		Sockets:   cfg.GraphQLSockets,
	}))
	// Before POST, which would take the requests that ask for an event
	// stream too.
	srv.AddTransport(gqlsse.New(gqlsse.Config{
		Subscribe:    subscribeStream(),
		KeepAlive:    cfg.StreamKeepAlive,
		WriteTimeout: cfg.Websocket.WithDefaults().WriteTimeout,
		Opened:       streamOpened(cfg.Logger, cfg.Metrics),
		Logger:       cfg.Logger,
	}))
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})

	queries := lru.New[*ast.QueryDocument](1000)
	srv.SetQueryCache(queries)
	srv.SetParserTokenLimit(DefaultParserTokenLimit)
	srv.SetValidationRulesFn(cappedRules(cfg.Costs.MaxErrors))
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.Use(noIntrospection{})
	}
	srv.Use(extension.AutomaticPersistedQuery{Cache: lru.New[string](1000)})
	// After the persisted query extension, which fills in the document.
	srv.Use(documentLimits{limits: cfg.Costs.Document, tokenLimit: DefaultParserTokenLimit, cache: queries})
	srv.Use(&complexityLimit{limit: cfg.ComplexityLimit})
	srv.Use(depthLimit{max: cfg.MaxDepth})
	srv.Use(exactEnums{schema: schema.Schema()})
	srv.Use(responseLimits{maxFields: cfg.Costs.MaxResolvedFields, maxErrors: cfg.Costs.MaxErrors, maxBytes: cfg.Costs.MaxResponseBytes})
	if cfg.Metrics != nil {
		srv.Use(operationMetrics{m: cfg.Metrics})
	}
	srv.Use(operationDeadline{d: cfg.RequestTimeout, log: cfg.Logger})
	srv.Use(sessionExpiry{svc: cfg.Service})
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
// payload's ticket (a socket ticket, used up), else its authorization (any
// case; "Bearer " optional), else the upgrade request's Authorization
// header. Without any the socket stays anonymous (operations that need a
// user fail with UNAUTHENTICATED); a bad token or ticket closes it with
// 4403. An authenticated socket belongs to its session: it is closed with
// 4401 when the session ends, and expires with it. A socket over its
// address's or its user's cap is closed with 4429. The rules are admit's;
// only the close codes are this socket's.
func initFunc(log *slog.Logger) func(context.Context, map[string]any) (context.Context, error) {
	return func(ctx context.Context, payload map[string]any) (context.Context, error) {
		// socketOpened admitted the socket's address, and releases what
		// the socket holds when it closes.
		session := sessionFrom(ctx)
		if session.conn == nil {
			return nil, &gqlws.CloseError{Code: wspolicy.CloseTooMany, Reason: "Too many sockets from this address", Message: "too many sockets from this address"}
		}
		conn := session.conn
		var cred admit.Credential
		if ticket := payloadString(payload, "ticket"); ticket != "" {
			cred = admit.Ticket(ticket)
		} else {
			token := payloadString(payload, "authorization")
			if token == "" {
				token = headerAuthorization(ctx)
			}
			if token == "" {
				return ctx, nil
			}
			cred = admit.Token(social.TokenFromAuthorization(token))
		}
		a, err := conn.Authenticate(ctx, cred)
		if err != nil {
			if admit.ReasonOf(err) != admit.BadCredential {
				log.ErrorContext(ctx, "graphql websocket: authenticate", "err", err)
			}
			return nil, &gqlws.CloseError{Code: wspolicy.CloseForbidden, Reason: "Forbidden: invalid access token", Message: "invalid access token"}
		}
		err = conn.Open(ctx, admit.Options{
			Cursor: true,
			OnEvent: func(ev social.Event) {
				if conn.Observe(ev) {
					// Close never blocks: the socket's writer sends the close frame.
					gqlws.Close(ctx, wspolicy.CloseLoggedOut, wspolicy.ReasonLoggedOut)
				}
			},
			Expired: func() { expire(ctx) },
		})
		switch admit.ReasonOf(err) {
		case 0:
		case admit.TooManyForUser:
			return nil, &gqlws.CloseError{Code: wspolicy.CloseTooMany, Reason: "Too many sockets for this user", Message: "too many sockets for this user"}
		case admit.LoggedOut:
			// Logged out before the subscription went live.
			return nil, &gqlws.CloseError{Code: wspolicy.CloseLoggedOut, Reason: wspolicy.ReasonLoggedOut, Message: wspolicy.ReasonLoggedOut}
		case admit.ShuttingDown:
			return nil, &gqlws.CloseError{Code: wspolicy.CloseShuttingDown, Reason: wspolicy.ReasonShuttingDown, Message: wspolicy.ReasonShuttingDown}
		default:
			log.ErrorContext(ctx, "graphql websocket: open", "err", err)
			return nil, errInternal
		}
		a.Hold = conn.Hold()
		session.userID.Store(a.User.ID)
		return graph.WithConnectionStart(social.WithAuth(ctx, a), conn.Start()), nil
	}
}

// expire closes the GraphQL socket of ctx, whose token has expired: each
// running operation ends with social.ErrTokenExpired, then the socket
// closes with 4401 "token expired". It never blocks.
func expire(ctx context.Context) {
	gqlws.CloseWithError(ctx, expiredError(), wspolicy.CloseTokenExpired, wspolicy.ReasonTokenExpired)
}

// expiredError is social.ErrTokenExpired as a GraphQL error.
func expiredError() *gqlerror.Error {
	return &gqlerror.Error{
		Message:    social.ErrTokenExpired.Message,
		Extensions: map[string]any{"code": string(social.ErrTokenExpired.Code)},
	}
}

// sessionExpiry is the gqlgen extension that refuses an operation whose
// caller's session has expired, whatever its transport, and closes the
// socket it came on, if any: the socket's timer may not have fired yet.
type sessionExpiry struct{ svc *social.Service }

var (
	_ graphql.HandlerExtension     = sessionExpiry{}
	_ graphql.OperationInterceptor = sessionExpiry{}
)

func (sessionExpiry) ExtensionName() string                   { return "SessionExpiry" }
func (sessionExpiry) Validate(graphql.ExecutableSchema) error { return nil }

func (e sessionExpiry) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	a, ok := social.AuthFrom(ctx)
	if !ok || !e.svc.Expired(a) {
		return next(ctx)
	}
	expire(ctx)
	return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{expiredError()}})
}

// errInternal closes a socket whose connection_init failed on the
// server's side, with 1011.
var errInternal = errors.New("internal error")

// payloadString returns the string at key (any case) in a connection_init
// payload, or "".
func payloadString(p map[string]any, key string) string {
	for k, v := range p {
		if s, ok := v.(string); ok && strings.EqualFold(k, key) {
			return s
		}
	}
	return ""
}
