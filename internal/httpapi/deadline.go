package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/internal/social"
)

// DefaultRequestTimeout is the default of Config.RequestTimeout.
const DefaultRequestTimeout = 30 * time.Second

// operationDeadline is the gqlgen extension that gives each query and
// mutation, over HTTP or a GraphQL socket, at most d to run; a
// subscription runs as long as its socket. An operation cut short answers
// with one TIMEOUT (or CANCELLED) error in place of one per unfinished
// field, and logs one debug line: a client that leaves is not a failure
// of the server.
type operationDeadline struct {
	d   time.Duration
	log *slog.Logger
}

var (
	_ graphql.HandlerExtension     = operationDeadline{}
	_ graphql.OperationInterceptor = operationDeadline{}
)

func (operationDeadline) ExtensionName() string                   { return "OperationDeadline" }
func (operationDeadline) Validate(graphql.ExecutableSchema) error { return nil }

// cutFields counts the fields of an operation that failed because its
// context ended.
type cutFields struct{ n atomic.Int64 }

type cutFieldsKey struct{}

func (o operationDeadline) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation == ast.Subscription {
		return next(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, o.d)
	cut := new(cutFields)
	h := next(context.WithValue(ctx, cutFieldsKey{}, cut))
	var ended bool
	return func(rctx context.Context) *graphql.Response {
		if ended {
			return nil
		}
		resp := h(rctx)
		if resp != nil && resp.HasNext != nil && *resp.HasNext {
			return resp // more to come (@defer)
		}
		ended = true
		defer cancel()
		if ctx.Err() == nil || (resp != nil && cut.n.Load() == 0) {
			return resp
		}
		code, msg := string(social.CodeCancelled), "operation cancelled"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			code, msg = string(social.CodeTimeout), fmt.Sprintf("the operation took longer than %s", o.d)
		}
		o.log.DebugContext(ctx, "graphql: operation cut short", "operation", operationName(oc), "code", code, "fields", cut.n.Load())
		if resp == nil {
			resp = &graphql.Response{}
		}
		resp.Errors = slices.DeleteFunc(resp.Errors, isCut)
		resp.Errors = append(resp.Errors, &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": code}})
		return resp
	}
}

// cutError presents err, the error of a field whose context ended, and
// counts it for the operation's one log line. It reports false if err is
// not such an error.
func cutError(ctx context.Context, err error, gerr *gqlerror.Error) bool {
	if ctx.Err() == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if cut, ok := ctx.Value(cutFieldsKey{}).(*cutFields); ok {
		cut.n.Add(1)
	}
	gerr.Message = "operation cancelled"
	gerr.Extensions = map[string]any{"code": string(social.CodeCancelled)}
	gerr.Err = nil
	return true
}

func isCut(e *gqlerror.Error) bool {
	return e.Extensions["code"] == string(social.CodeCancelled)
}
