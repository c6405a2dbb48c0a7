package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/pulse-social/pulse/internal/admit"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/pushconn"
)

// wsSession is what the middleware of a GraphQL websocket, its InitFunc
// and its close share, in the upgrade request's context.
type wsSession struct {
	// conn is the socket's admission from its arrival on: InitFunc goes on
	// with it, and the socket's close (or the middleware, if it never
	// opened) releases it. It is nil when the client address holds too many
	// sockets, and refused says so; InitFunc then closes the socket with
	// 4429.
	conn    *admit.Conn
	refused error
	userID  atomic.Int64

	mu     sync.Mutex
	opened bool
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
func socketCaps(adm *admit.Admitter) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") == "" {
				next.ServeHTTP(w, r)
				return
			}
			s := new(wsSession)
			s.conn, s.refused = adm.Arrive(clientAddr(r.Context()))
			stateFrom(r.Context()).session = s
			next.ServeHTTP(w, r)
			// The socket, if one opened, outlives this call and releases
			// its admission when it closes.
			s.mu.Lock()
			defer s.mu.Unlock()
			if !s.opened && s.conn != nil {
				s.conn.Release()
			}
		})
	}
}

// socketValues is what a GraphQL socket keeps of its upgrade request's
// context: the values its InitFunc, its operations and its log lines read
// (the request's id and address, its session and Authorization header),
// in one node.
func socketValues(r *http.Request) context.Context {
	s := stateFrom(r.Context())
	return &requestState{Context: context.Background(), id: s.id, addr: s.addr, session: s.session, authorization: s.authorization}
}

// socketOpened logs one line when a GraphQL websocket opens and one when it
// closes (user id, close code and reason, duration), keeps the open-sockets
// gauge, and releases the socket's admission (its slots, its subscription
// and its session) when it closes.
func socketOpened(log *slog.Logger, m *metrics.Metrics) func(r *http.Request) func(pushconn.CloseInfo) {
	return func(r *http.Request) func(pushconn.CloseInfo) {
		ctx := LogContext(r.Context())
		gauge := m.SocketOpened(metrics.GraphQL)
		var conn *admit.Conn
		s := sessionFrom(r.Context())
		if s != nil {
			s.mu.Lock()
			s.opened, conn = true, s.conn
			s.mu.Unlock()
		}
		log.InfoContext(ctx, "graphql socket open", "remote", r.RemoteAddr)
		return func(info pushconn.CloseInfo) {
			var userID int64
			if s != nil {
				userID = s.userID.Load()
			}
			gauge()
			if conn != nil {
				conn.Release()
			}
			log.InfoContext(ctx, "graphql socket closed", "user_id", userID,
				"code", info.Code, "reason", info.Reason, "duration", info.Duration)
		}
	}
}
