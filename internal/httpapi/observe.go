package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/pulse-social/pulse/internal/metrics"
)

// LogHandler wraps h so that every record logged with a request's context
// carries the request's id (request_id), which the access log line of the
// request carries too.
func LogHandler(h slog.Handler) slog.Handler { return requestIDHandler{h} }

type requestIDHandler struct{ slog.Handler }

// LogContext returns a context that holds only what LogHandler reads from
// ctx, the request's id, for records logged after the request has ended: a
// plain socket, which outlives its upgrade request, keeps it instead of
// the request's context and everything that context holds.
func LogContext(ctx context.Context) context.Context {
	return context.WithValue(context.Background(), middleware.RequestIDKey, middleware.GetReqID(ctx))
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := middleware.GetReqID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// countRequests counts every request by its route pattern (never its
// path), method and status.
func countRequests(m *metrics.Metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if m == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			route := "unmatched"
			if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
				route = rc.RoutePattern()
			}
			status := ww.Status()
			if status == 0 {
				status = http.StatusSwitchingProtocols // hijacked: a websocket
			}
			m.HTTPRequest(route, r.Method, status)
		})
	}
}

// operationMetrics is the gqlgen extension that counts operations by root
// field and outcome: ok, or the code of the first error. A query or
// mutation counts when it answers, a subscription at its first event or
// error (or its end), and a request refused before it ran (parse,
// validation, complexity or depth) as "invalid".
type operationMetrics struct{ m *metrics.Metrics }

var (
	_ graphql.HandlerExtension     = operationMetrics{}
	_ graphql.OperationInterceptor = operationMetrics{}
	_ graphql.ResponseInterceptor  = operationMetrics{}
)

type countedKey struct{}

func (operationMetrics) ExtensionName() string                   { return "OperationMetrics" }
func (operationMetrics) Validate(graphql.ExecutableSchema) error { return nil }

func (o operationMetrics) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	name := operationName(graphql.GetOperationContext(ctx))
	h := next(context.WithValue(ctx, countedKey{}, true))
	var once sync.Once
	return func(ctx context.Context) *graphql.Response {
		resp := h(ctx)
		once.Do(func() { o.m.GraphQLOperation(name, outcome(resp)) })
		return resp
	}
}

// InterceptResponse counts the requests that never became an operation.
func (o operationMetrics) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if counted, _ := ctx.Value(countedKey{}).(bool); !counted {
		o.m.GraphQLOperation("invalid", outcome(resp))
	}
	return resp
}

// operationName is the operation's type and first root field, e.g.
// "mutation createPost": names from the schema, never from the client.
func operationName(oc *graphql.OperationContext) string {
	if oc == nil || oc.Operation == nil {
		return "invalid"
	}
	op := string(oc.Operation.Operation)
	if fields := rootFields(oc); len(fields) > 0 {
		return op + " " + fields[0]
	}
	return op
}

func outcome(resp *graphql.Response) string {
	if resp == nil || len(resp.Errors) == 0 {
		return "ok"
	}
	if c, ok := resp.Errors[0].Extensions["code"].(string); ok && c != "" {
		return c
	}
	return "error"
}
