package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/pulse-social/pulse/internal/admit"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/pushconn"
)

// wsSession is what the hooks of a GraphQL websocket (socketOpened and
// initFunc) share, in its upgrade request's context.
type wsSession struct {
	// conn is the socket's admission: socketOpened takes it when the
	// socket opens and releases it when the socket closes, whatever ends
	// it; initFunc goes on with it. It is nil when the client address
	// holds too many sockets (Arrive's only refusal); initFunc then closes
	// the socket with 4429.
	conn   *admit.Conn
	userID atomic.Int64
}

type wsSessionKey struct{}

func sessionFrom(ctx context.Context) *wsSession {
	s, _ := ctx.Value(wsSessionKey{}).(*wsSession)
	return s
}

// socketSession gives a GraphQL websocket's upgrade request the wsSession
// its hooks share.
func socketSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			stateFrom(r.Context()).session = new(wsSession)
		}
		next.ServeHTTP(w, r)
	})
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
// closes (user id, close code and reason, duration), and keeps the
// open-sockets gauge. It owns the socket's admission: it counts the socket
// against its client address's cap when it opens (the refusal comes at
// connection_init: a browser can read a close code, not a refused
// handshake), and releases the admission (its slots, its subscription and
// its session) once it has closed, after connection_init has returned.
func socketOpened(log *slog.Logger, m *metrics.Metrics, adm *admit.Admitter) func(r *http.Request) func(pushconn.CloseInfo) {
	return func(r *http.Request) func(pushconn.CloseInfo) {
		ctx := LogContext(r.Context())
		gauge := m.SocketOpened(metrics.GraphQL)
		s := sessionFrom(r.Context())
		s.conn, _ = adm.Arrive(clientAddr(r.Context()))
		log.InfoContext(ctx, "graphql socket open", "remote", r.RemoteAddr)
		return func(info pushconn.CloseInfo) {
			gauge()
			if s.conn != nil {
				s.conn.Release()
			}
			log.InfoContext(ctx, "graphql socket closed", "user_id", s.userID.Load(),
				"code", info.Code, "reason", info.Reason, "duration", info.Duration)
		}
	}
}
