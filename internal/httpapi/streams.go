package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/graph"
	"github.com/pulse-social/pulse/internal/admit"
	"github.com/pulse-social/pulse/internal/gqlsse"
	"github.com/pulse-social/pulse/internal/gqlws"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// streams is graph.Streams over the two transports that read
// subscriptions' channels themselves: the GraphQL websocket and GraphQL
// over server-sent events.
type streams struct{}

var _ graph.Streams = streams{}

func (streams) Notifier(ctx context.Context) func() {
	if f := gqlws.Notifier(ctx); f != nil {
		return f
	}
	return gqlsse.Notifier(ctx)
}

func (streams) AddError(ctx context.Context, err *gqlerror.Error) bool {
	return gqlws.AddError(ctx, err) || gqlsse.AddError(ctx, err)
}

func (streams) Transport(ctx context.Context) string {
	if gqlsse.OnStream(ctx) {
		return metrics.GraphQLSSE
	}
	return metrics.GraphQL
}

type streamConnKey struct{}

// streamAdmission admits a GraphQL event stream (gqlsse.Accepts) before
// anything runs, by admit's rules: its client address under the
// per-address cap (HTTP 429), and its Authorization header, if any (HTTP
// 401 for a bad token, as a plain POST gets). What it takes is given back
// when the request ends; a subscription takes its user's slot on top
// (subscribeStream).
func streamAdmission(adm *admit.Admitter, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !gqlsse.Accepts(r) {
				next.ServeHTTP(w, r)
				return
			}
			conn, err := adm.Arrive(clientAddr(r.Context()))
			if err != nil {
				writeGraphQLError(w, http.StatusTooManyRequests, "too many streams from this address", social.CodeRateLimited)
				return
			}
			defer conn.Release()
			ctx := context.WithValue(r.Context(), streamConnKey{}, conn)
			if h := r.Header.Get("Authorization"); h != "" {
				a, err := conn.Authenticate(ctx, admit.Token(social.TokenFromAuthorization(h)))
				switch admit.ReasonOf(err) {
				case 0:
					ctx = social.WithAuth(ctx, a)
				case admit.BadCredential:
					w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
					writeGraphQLError(w, http.StatusUnauthorized, social.ErrorMessage(err), social.CodeUnauthenticated)
					return
				case admit.ShuttingDown:
					// The request ended: at shutdown the client still reads
					// this; a client that left reads nothing.
					log.DebugContext(ctx, "graphql stream: request ended", "err", err)
					writeGraphQLError(w, http.StatusServiceUnavailable, "server shutting down", social.CodeUnavailable)
					return
				default:
					log.ErrorContext(ctx, "graphql stream: authenticate", "err", err)
					writeGraphQLError(w, http.StatusInternalServerError, "internal error", social.CodeInternal)
					return
				}
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// subscribeStream admits a subscription over an event stream: it takes its
// user's slot (HTTP 429 over the cap) and holds its session, so that the
// stream ends with an UNAUTHENTICATED error when the session ends (logout:
// "logged out") or expires ("token expired"). An anonymous subscription
// starts as it is, and its resolver refuses it.
func subscribeStream() func(context.Context) (context.Context, error) {
	return func(ctx context.Context) (context.Context, error) {
		conn, _ := ctx.Value(streamConnKey{}).(*admit.Conn)
		a, signedIn := social.AuthFrom(ctx)
		if conn == nil || !signedIn {
			return ctx, nil
		}
		err := conn.Open(ctx, admit.Options{
			Cursor: true,
			OnEvent: func(ev social.Event) {
				if conn.Observe(ev) {
					// End never blocks: the stream's writer sends the error.
					gqlsse.End(ctx, wspolicy.ReasonLoggedOut, loggedOutError())
				}
			},
			Expired: func() { gqlsse.End(ctx, wspolicy.ReasonTokenExpired, expiredError()) },
		})
		switch admit.ReasonOf(err) {
		case 0:
		case admit.TooManyForUser:
			return nil, &gqlsse.Refusal{Status: http.StatusTooManyRequests, Err: codeError("too many streams for this user", social.CodeRateLimited)}
		case admit.LoggedOut:
			return nil, &gqlsse.Refusal{Status: http.StatusUnauthorized, Err: loggedOutError()}
		case admit.ShuttingDown:
			return nil, &gqlsse.Refusal{Status: http.StatusServiceUnavailable, Err: codeError("server shutting down", social.CodeUnavailable)}
		default:
			return nil, err
		}
		// The request's end (streamAdmission) releases what Open took.
		a.Hold = conn.Hold()
		return graph.WithConnectionStart(social.WithAuth(ctx, a), conn.Start()), nil
	}
}

// loggedOutError ends a subscription whose session was logged out.
func loggedOutError() *gqlerror.Error {
	return codeError(wspolicy.ReasonLoggedOut, social.CodeUnauthenticated)
}

func codeError(msg string, code social.Code) *gqlerror.Error {
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": string(code)}}
}

// streamOpened logs one line when a GraphQL event stream opens and one
// when it ends (user id, how, duration), and keeps the open-streams gauge.
func streamOpened(log *slog.Logger, m *metrics.Metrics) func(context.Context) func(gqlsse.Ended) {
	return func(ctx context.Context) func(gqlsse.Ended) {
		gauge := m.SocketOpened(metrics.GraphQLSSE)
		var userID int64
		if u, ok := social.UserFrom(ctx); ok {
			userID = u.ID
		}
		log.DebugContext(ctx, "graphql stream open", "user_id", userID)
		return func(e gqlsse.Ended) {
			gauge()
			log.InfoContext(ctx, "graphql stream ended", "user_id", userID, "reason", e.Reason, "duration", e.Duration)
		}
	}
}
