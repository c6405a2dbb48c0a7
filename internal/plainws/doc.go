// Package plainws serves the plain JSON notification socket at
// /ws/{token}/ (and /ws/{token}), as the public API describes it.
//
// # Connecting
//
// The access token, or a one-time socket ticket (social.IsTicket), is the
// path segment after /ws/; the socket belongs to its session. A bad,
// expired or revoked token is still upgraded, then closed at once with 4401 and the
// reason "invalid access token", because a browser can read a close code
// but not a refused handshake. ?after=<id> (a non-negative integer) first
// replays every stored notification with a greater id, oldest first, then
// goes on with live ones, without gap or duplicate; a malformed ?after= is
// upgraded and closed with 1008 and the reason "invalid after: want a
// non-negative integer". Without ?after= the socket gets every notification
// committed after its handshake completes: the token is checked and the
// user's feed opened before the server answers the upgrade. A browser
// origin the policy does not allow is refused with HTTP 403 before the
// upgrade (see wspolicy).
//
// # Frames
//
// A frame is one JSON object in a websocket text message of its own (the
// words of docs/api.md); the websocket protocol's frames are websocket
// frames (frameReader reads those).
//
// Server to client: a notification (plainframe.AppendNotification:
// every key present, ids as strings, absent values null), a message
// {"message": "..."} sent by any socket of the same user (the sender's
// included), {"type": "pong"} answering {"type": "ping"}, or {"error":
// "<why>"} answering a frame the server does not understand.
//
// With ?changes=1 (and ?after= a change's cursor, if any), the socket sends
// every inbox change instead of additions only: a notification's frame
// with "type", "cursor" and "unread_count" added, and the REMOVED and READ
// frames of plainframe. Without it, a notification removed before the
// socket read it from the store is not sent.
//
// Client to server: {"message": "<text>"} (any string up to
// social.MessageMaxBytes; other keys are ignored) or {"type": "ping"}.
// Anything else (not JSON, not an object, neither key, a message that is
// not a string, a type other than "ping", a binary websocket message) is
// answered with {"error": "<why>"} and the socket stays open. A websocket
// message over 64 KiB closes the socket with 1009, a text one that is not
// UTF-8 with 1007.
//
// Messages are written to every socket of the user, so each user has a
// budget of them, per process (Config.Messages, MessageBytes): a message
// past it is not sent and is answered with {"error": "rate limited: too
// many messages; try again in 3 s", "code": "RATE_LIMITED",
// "retry_after": 3} (or "too much message text"), and a client that sends
// more than Config.RefusedMessages of those in a row is closed with 4429.
// Pings have no budget: the pong goes to the sender only and is no larger
// than the ping, and a client that does not read its answers fills its
// reply queue and is closed with 4008.
//
// # Close codes
//
//	(any)       the client's own code when the client closes; it is echoed
//	1001        "server shutting down": the server's base context was
//	            cancelled, or the broker shut down
//	1008        "invalid after: want a non-negative integer"
//	1002        the client's frames break RFC 6455 (unmasked, reserved
//	            bits, unknown opcode, bad fragmentation or close code);
//	            the reason says how
//	1007        "invalid utf-8": a text message that is not UTF-8; or a
//	            close frame whose reason is not UTF-8
//	1009        "message too big": a message over 64 KiB
//	1011        "internal error": the store failed (the cause is logged)
//	4008        "too slow": the socket's bounded queue of notifications
//	            (the broker's queue size), or of replies to the client's frames,
//	            was full; reconnect
//	            with ?after= the last id seen, nothing is lost
//	4401        "invalid access token" at connect (a bad, expired or
//	            revoked token, or a used, expired or unknown ticket);
//	            "logged out" when the socket's session ends while it is
//	            open (or as it opens); "token expired" when the session
//	            expires, by a timer of the socket's, which needs no broker
//	            and which refreshToken moves on
//	4429        "too many sockets": the user or the client address holds
//	            the most sockets allowed (Config.SocketsPerUser,
//	            SocketsPerAddress, shared with the GraphQL socket); the
//	            address is checked before the token. "too many messages":
//	            the client went on sending messages past the user's
//	            budget (Config.RefusedMessages)
//
// A peer that answers no ping (and sends nothing) for two ping intervals is
// dropped without a close frame; so is one whose writes time out.
//
// # Goroutines
//
// An idle socket has no goroutine. Its reader runs when the client has
// sent something: on Linux, one goroutine per Handler waits in epoll for
// every socket and starts a reader for the socket that has data, which
// reads what has come without waiting (frameReader keeps a frame that is
// not complete yet), handles it and returns; elsewhere each socket has a
// goroutine waiting in Read. Everything the socket writes, pings and pongs
// included, each with the write timeout, is written by its writer: a
// goroutine started when there is something to write and gone when
// nothing is left, never more than one at a time. The writer owns the
// socket's social.Feed, whose events the broker hands to a function that
// queues them (at most the broker's queue size); the reader queues its replies
// the same way (at most Config.ReplyQueue). The last writer closes the
// socket: it sends the close frame, waits for the client's (at most
// CloseTimeout), and closes the connection. One shared ticker, running
// while any socket is open, has the sockets ping in turns, and drops one
// whose client has sent nothing for two ping intervals. How a socket
// ends, its writers and its close handshake are a pushconn.Core's, the
// GraphQL socket's too.
//
// The handler does not stay with its socket: an idle socket would hold its
// deep stack (the HTTP server's, the middlewares', the handshake's store
// calls) and net/http's read and write buffers. So the server cannot learn
// from its handlers when the sockets have ended: Config.Context is their
// signal to close with 1001, and Handler.Wait waits for every socket to
// end.
//
// # Logs
//
// One line when a socket opens (user id, remote address) and one when it
// closes (user id, close code and reason, duration), with the path logged as
// /ws/<redacted>/: the token never appears in a log line.
//
// # Metrics
//
// With Config.Metrics, the handler counts its open sockets, the
// notifications it writes (with the publish-to-write latency of live ones),
// the sockets it closes as too slow, and the messages the budget refuses
// (pulse_rate_limited_total{limit="message"}).
package plainws
