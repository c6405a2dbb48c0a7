// Package httpapi is the server's HTTP surface: the chi router with its
// middleware (request ids, access logs with tokens redacted, panic
// recovery, CORS for allowed origins), the GraphQL endpoint /query with its
// transports (POST, GET, websocket), the plain socket /ws/{token}/, the
// playground, the health endpoints and /metrics.
//
// Abuse limits (Config.Limits, each off at its zero value): register and
// login per client address and other mutations per user, refused with
// RATE_LIMITED and extensions.retryAfter (HTTP 429 and Retry-After when
// the whole request is refused); GraphQL websockets per user and per
// address, closed with 4429 at connection_init; operations per GraphQL
// socket; and, always on, GraphQL depth (DEPTH_LIMIT_EXCEEDED) and
// complexity limits, a parser token limit, a body size limit (413), no
// subscriptions over plain HTTP, and an origin check (403 for a browser
// origin the policy refuses). Also always on: a deadline per query and
// mutation (TIMEOUT) and a cap on register and login fields per request.
//
// Sessions: a GraphQL websocket authenticated at connection_init (by
// token or by a one-time socket ticket) belongs to its session: it closes
// with 4401 "logged out" when the session ends (logout, endSession,
// logoutAll; also when that happens while the socket opens), and with 4401
// "token expired" when the session expires, each running operation first
// ending with an UNAUTHENTICATED error; refreshToken moves that expiry on
// without a reconnect. An operation whose caller's session has expired
// does not run, on any transport.
//
// It builds the GraphQL server (resolver, transports, limits) around the
// social.Service it is given, and mounts the plain socket handler it is
// given; the program in ../../server chooses the store and the broker.
package httpapi
