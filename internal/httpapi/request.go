package httpapi

import (
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"strconv"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/pulse-social/pulse/internal/limit"
)

// requestState is the context node that withRequest puts under each
// request, once: it answers for the request's id, its client address and,
// on /query, the rate limiter's refusal and a GraphQL websocket's
// session, which would otherwise take a context and a copy of the request
// each.
type requestState struct {
	context.Context
	id       string
	addr     string
	refusing bool // refusals answers for this request; see refusalKey
	refusal  refusal
	// A GraphQL websocket's: the session its hooks share, and the upgrade
	// request's Authorization header (see headerAuthorization).
	session       *wsSession
	authorization string
}

// Value answers for the keys of requestState and asks its parent for the
// others.
func (s *requestState) Value(key any) any {
	switch key {
	case middleware.RequestIDKey:
		return s.id
	case clientAddrKey{}:
		return s.addr
	case refusalKey{}:
		if s.refusing {
			return &s.refusal
		}
	case wsSessionKey{}:
		if s.session != nil {
			return s.session
		}
	case authorizationKey{}:
		if s.authorization != "" {
			return s.authorization
		}
	case requestStateKey{}:
		return s
	}
	return s.Context.Value(key)
}

type requestStateKey struct{}

// stateFrom returns the requestState of ctx, which withRequest put there.
func stateFrom(ctx context.Context) *requestState {
	s, _ := ctx.Value(requestStateKey{}).(*requestState)
	return s
}

// clientAddrKey is what the client address of a request's context, as
// limit.Address reduces it, is found under.
type clientAddrKey struct{}

func clientAddr(ctx context.Context) string {
	a, _ := ctx.Value(clientAddrKey{}).(string)
	return a
}

// maxRequestIDLen is the longest X-Request-Id taken from a client.
const maxRequestIDLen = 64

// withRequest gives each request its requestState: an id, the client's
// X-Request-Id if it is at most maxRequestIDLen bytes of visible ASCII
// and a generated one otherwise (every log line of the request carries
// it), and its client address, as limit.Address reduces it.
func withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(middleware.RequestIDHeader)
		if id != "" && !validRequestID(id) {
			r.Header.Del(middleware.RequestIDHeader)
			id = ""
		}
		if id == "" {
			id = nextRequestID()
		}
		s := &requestState{Context: r.Context(), id: id, addr: limit.Address(r.RemoteAddr)}
		next.ServeHTTP(w, r.WithContext(s))
	})
}

func validRequestID(id string) bool {
	if len(id) > maxRequestIDLen {
		return false
	}
	for i := range len(id) {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// requestIDPrefix starts every generated request id: the host's name and
// a random word, so that ids of two processes differ.
var requestIDPrefix = func() string {
	host, err := os.Hostname()
	if host == "" || err != nil {
		host = "localhost"
	}
	return host + "/" + rand.Text()[:10] + "-"
}()

// nextRequestID returns a new request id: the prefix and a counter of at
// least six digits.
func nextRequestID() string {
	b := make([]byte, 0, len(requestIDPrefix)+12)
	b = append(b, requestIDPrefix...)
	n := strconv.FormatUint(middleware.NextRequestID(), 10)
	for i := len(n); i < 6; i++ {
		b = append(b, '0')
	}
	return string(append(b, n...))
}
