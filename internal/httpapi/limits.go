package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/internal/gqlsse"
	"github.com/pulse-social/pulse/internal/gqlws"
	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
)

// Limits are the abuse limits of the HTTP surface. Every field's zero value
// limits nothing. The socket caps are shared with the plain socket, so that
// they count a user's or an address's sockets of both transports.
type Limits struct {
	// Auth limits register and login per client address, one token per
	// root field.
	Auth *limit.Rates
	// Mutations limits every other mutation but logout per user, one token
	// per root field. Logout alone is never refused, so that a user can
	// always sign out; a request that holds logout and other mutations over
	// the limit is refused whole, as any other.
	Mutations *limit.Rates
	// SocketsPerUser and SocketsPerAddress cap open websockets; a GraphQL
	// socket over either cap is closed with 4429 at connection_init.
	SocketsPerUser    *limit.Slots
	SocketsPerAddress *limit.Slots
	// OperationsPerSocket caps the operations one GraphQL socket runs at
	// once; one more gets a RATE_LIMITED error.
	OperationsPerSocket int
}

// refusal is where the rate limiter tells the HTTP layer that it refused
// the whole request, so that the response goes out as 429 with a
// Retry-After header.
type refusal struct{ retryAfter atomic.Int64 }

type refusalKey struct{}

// refusals answers a request that the rate limiter refused with HTTP 429
// and Retry-After (the GraphQL body says the same in extensions).
func refusals(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, r) // over a websocket each operation answers for itself
			return
		}
		s := stateFrom(r.Context())
		s.refusing = true
		next.ServeHTTP(&refusalWriter{ResponseWriter: w, ref: &s.refusal}, r)
	})
}

type refusalWriter struct {
	http.ResponseWriter
	ref     *refusal
	written bool
}

func (w *refusalWriter) WriteHeader(status int) {
	if !w.written {
		w.written = true
		if s := w.ref.retryAfter.Load(); s > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(s, 10))
			status = http.StatusTooManyRequests
		}
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *refusalWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *refusalWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// rateLimit is the gqlgen extension that applies Limits.Auth and
// Limits.Mutations to every mutation, whatever its transport, refuses a
// mutation with more than maxAuthFields register or login fields, and
// refuses subscriptions outside a websocket or an event stream.
type rateLimit struct {
	limits        Limits
	maxAuthFields int
	metrics       *metrics.Metrics
}

var (
	_ graphql.HandlerExtension     = rateLimit{}
	_ graphql.OperationInterceptor = rateLimit{}
)

func (rateLimit) ExtensionName() string                   { return "RateLimit" }
func (rateLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l rateLimit) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil {
		return next(ctx)
	}
	if oc.Operation.Operation == ast.Subscription && !gqlws.OnSocket(ctx) && !gqlsse.OnStream(ctx) {
		// Over a plain POST a subscription would hold the request open
		// until its first event: refuse it.
		return badInput("subscriptions need a websocket or an event stream: connect to /query with graphql-ws, or POST with Accept: text/event-stream (graphql-sse)")
	}
	if oc.Operation.Operation != ast.Mutation {
		return next(ctx)
	}
	var auth, other int
	for _, f := range rootFields(oc) {
		switch f {
		case "register", "login":
			auth++
		case "__typename", "logout":
		default:
			other++
		}
	}
	if auth > l.maxAuthFields {
		// Refused before any password is hashed or checked.
		return badInput(fmt.Sprintf("at most %d register or login fields in one request", l.maxAuthFields))
	}
	if auth > 0 {
		if ok, retry := l.limits.Auth.AllowN(clientAddr(ctx), auth); !ok {
			return l.refuse(ctx, "auth", "too many sign-ins from this address", limit.RetryAfterSeconds(retry))
		}
	}
	if u, signedIn := social.UserFrom(ctx); signedIn && other > 0 {
		if ok, retry := l.limits.Mutations.AllowN(limit.UserKey(u.ID), other); !ok {
			return l.refuse(ctx, "mutation", "too many changes: slow down", limit.RetryAfterSeconds(retry))
		}
	}
	return next(ctx)
}

func (l rateLimit) refuse(ctx context.Context, which, msg string, retryAfter int) graphql.ResponseHandler {
	l.metrics.RateLimited(which)
	if ref, ok := ctx.Value(refusalKey{}).(*refusal); ok {
		ref.retryAfter.Store(int64(retryAfter))
	}
	return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
		Message: fmt.Sprintf("%s; try again in %d s", msg, retryAfter),
		Extensions: map[string]any{
			"code":       string(social.CodeRateLimited),
			"retryAfter": retryAfter,
		},
	}}})
}

// badInput answers an operation refused before it ran with one
// BAD_USER_INPUT error.
func badInput(msg string) graphql.ResponseHandler {
	return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
		Message:    msg,
		Extensions: map[string]any{"code": string(social.CodeBadUserInput)},
	}}})
}

// rootFields returns the names of the operation's root fields, fragments
// included.
func rootFields(oc *graphql.OperationContext) []string {
	var names []string
	var walk func(ast.SelectionSet, int)
	walk = func(set ast.SelectionSet, depth int) {
		if depth > 10 { // fragments cannot cycle after validation; be safe
			return
		}
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				names = append(names, s.Name)
			case *ast.InlineFragment:
				walk(s.SelectionSet, depth+1)
			case *ast.FragmentSpread:
				if f := oc.Doc.Fragments.ForName(s.Name); f != nil {
					walk(f.SelectionSet, depth+1)
				}
			}
		}
	}
	walk(oc.Operation.SelectionSet, 0)
	return names
}

// depthLimit is the gqlgen extension that refuses an operation whose
// selections nest deeper than max (introspection fields not counted: the
// playground's introspection query nests deep by nature).
type depthLimit struct{ max int }

var (
	_ graphql.HandlerExtension        = depthLimit{}
	_ graphql.OperationContextMutator = depthLimit{}
)

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if depth := selectionDepth(oc.Doc, oc.Operation.SelectionSet, map[string]int{}); depth > d.max {
		return &gqlerror.Error{
			Message:    fmt.Sprintf("operation nests %d deep, more than %d", depth, d.max),
			Extensions: map[string]any{"code": string(social.CodeDepthLimitExceeded)},
		}
	}
	return nil
}

// selectionDepth returns how deep set nests, each fragment's depth computed
// once (memo), so that the time is linear in the document's size however
// often fragments are spread.
func selectionDepth(doc *ast.QueryDocument, set ast.SelectionSet, memo map[string]int) int {
	deepest := 0
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue
			}
			d = 1 + selectionDepth(doc, s.SelectionSet, memo)
		case *ast.InlineFragment:
			d = selectionDepth(doc, s.SelectionSet, memo)
		case *ast.FragmentSpread:
			v, ok := memo[s.Name]
			if !ok {
				memo[s.Name] = 0 // a cycle (validation refuses them) counts for nothing
				if f := doc.Fragments.ForName(s.Name); f != nil {
					v = selectionDepth(doc, f.SelectionSet, memo)
				}
				memo[s.Name] = v
			}
			d = v
		}
		deepest = max(deepest, d)
	}
	return deepest
}
