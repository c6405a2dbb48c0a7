package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/wsconn"
)

// wsSession is what the middleware of a GraphQL websocket and its
// InitFunc share, in the upgrade request's context.
type wsSession struct {
	// refused is set before the upgrade when the client address holds
	// too many sockets; InitFunc then closes the socket with 4429.
	refused bool
	userID  atomic.Int64

	mu     sync.Mutex
	closed func() // ends the socket's count in the open-sockets gauge
}

type wsSessionKey struct{}

func sessionFrom(ctx context.Context) *wsSession {
	s, _ := ctx.Value(wsSessionKey{}).(*wsSession)
	return s
}

// socketCaps counts a GraphQL websocket against its client address's cap
// for as long as it is open, and marks it refused when the address is over
// the cap. The refusal itself comes after the upgrade, at connection_init
// (a browser can read a close code, not a refused handshake).
func socketCaps(l Limits) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") == "" {
				next.ServeHTTP(w, r)
				return
			}
			s := new(wsSession)
			release, ok := l.SocketsPerAddress.Acquire(clientAddr(r.Context()))
			if ok {
				defer release()
			} else {
				s.refused = true
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), wsSessionKey{}, s)))
		})
	}
}

// socketLog logs one line when a GraphQL websocket opens and one when it
// closes (user id, close code and reason, duration), and keeps the
// open-sockets gauge.
func socketLog(log *slog.Logger, m *metrics.Metrics) wsconn.TrackOptions {
	return wsconn.TrackOptions{
		OnAccept: func(r *http.Request) {
			closed := m.SocketOpened(metrics.GraphQL)
			if s := sessionFrom(r.Context()); s != nil {
				s.mu.Lock()
				s.closed = closed
				s.mu.Unlock()
			}
			log.InfoContext(r.Context(), "graphql socket open", "remote", r.RemoteAddr)
		},
		OnClose: func(r *http.Request, info wsconn.CloseInfo) {
			var userID int64
			if s := sessionFrom(r.Context()); s != nil {
				userID = s.userID.Load()
				s.mu.Lock()
				if s.closed != nil {
					s.closed()
				}
				s.mu.Unlock()
			}
			code := info.Code
			if code == 0 {
				code = 1006 // no close frame: the connection was lost
			}
			log.InfoContext(r.Context(), "graphql socket closed", "user_id", userID,
				"code", code, "reason", info.Reason, "duration", info.Duration)
		},
	}
}
