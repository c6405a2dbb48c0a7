// Package ssepush serves the notification stream as server-sent events at
// GET /events, for clients that only receive: a browser's EventSource,
// mobile HTTP stacks, proxies that do not pass websockets.
//
// # Connecting
//
// A stream is authenticated by the Authorization header (Bearer <token>)
// or, since EventSource cannot set headers, by ?ticket=<ticket>, a
// one-time socket ticket; it belongs to that session. Everything that can
// refuse a stream happens before its response starts, and is answered
// with an HTTP error and a JSON body {"error": "<why>", "code": "<CODE>"}:
// 401 UNAUTHENTICATED for a missing, bad, expired or revoked token or a
// used, expired or unknown ticket; 400 BAD_USER_INPUT for a Last-Event-ID
// or ?after= that is not a non-negative integer; 429 RATE_LIMITED when the
// user or the client address holds the most streams and sockets allowed
// (they share the sockets' caps); 503 while the server shuts down.
//
// # Events
//
// The response is text/event-stream, Cache-Control: no-store and
// X-Accel-Buffering: no (nginx then passes each event on at once). It
// starts with "retry: 3000". Each notification is one event: "id:" its
// id, "event: notification", "data:" the plain socket's frame (see
// plainframe) on one line. With ?changes=1 it is the inbox change stream
// instead: "id:" the change's cursor, "event:" notification, removed or
// read, "data:" the plain socket's ?changes=1 frame.
//
// A reconnecting EventSource sends Last-Event-ID, and the stream resumes
// after it as ?after= would (the header wins over ?after=): every stored
// change after it, oldest first, then live ones, without gap or duplicate
// (social.Feed.Read). Without either, the stream gets every notification
// committed after its response starts.
//
// An idle stream sends a comment (": ping") every Config.PingInterval. It
// ends with "event: closed" and data {"reason": "..."}, then the end of
// the response, when its session ends ("logged out") or expires ("token
// expired"), when its client cannot keep up ("too slow": its bounded queue,
// the broker's queue size, was full; nothing is lost, it resumes with
// Last-Event-ID), at shutdown ("server shutting down"), or when the store
// fails ("internal error").
//
// # Goroutines and memory
//
// A stream is an HTTP response, not a hijacked connection: its writer is
// the ServeHTTP call itself, which stays for the stream's life and is the
// only goroutine that writes to it, each write within Config.WriteTimeout
// (which replaces the server's write timeout, through
// http.ResponseController; the server's read timeout does not end a
// request whose body is read). The feed's function queues live events for
// it (at most the broker's queue size) and wakes it through a channel.
// So an idle stream holds two goroutines (its handler, and net/http's
// reader that watches for the client's close), a ticker, net/http's read
// and write buffers (4 KiB each) and the stream's own small state:
// docs/performance.md has the measured figure.
//
// # Logs and metrics
//
// One line when a stream opens (user id, remote address) and one when it
// ends (user id, reason, duration); the access log has the path alone,
// never the query, so a ticket never reaches a log line. With
// Config.Metrics, the streams count under the transport label "sse".
package ssepush
