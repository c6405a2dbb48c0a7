// Package wspolicy is the one websocket policy of the server, shared by the
// plain notification socket (/ws/{token}/, package plainws) and the GraphQL
// socket (/query, package gqlws), on github.com/gorilla/websocket.
//
// Config holds it: which browser origins may open a socket, the buffer
// sizes and the write timeout. Config.Upgrader returns the gorilla Upgrader
// that applies it; the socket packages own the connections it returns.
// Writes go through a write buffer taken from a pool shared by every
// socket with the same WriteBufferSize, so an idle socket holds no write
// buffer; both socket packages give gorilla a small read buffer of their
// own, since their handlers return and net/http's buffers go with them.
//
// The origin check (OriginPolicy) allows a request without an Origin
// header (a non-browser client), an Origin whose host is the request's Host
// (the playground served by this server), and an Origin listed in
// Config.AllowedOrigins; anything else is refused with HTTP 403 before the
// upgrade. The same prepared policy answers CORS for /query.
//
// FormatClose builds a close frame's payload with the reason cut to what
// the protocol allows. SocketContext is the context of a socket that
// outlives the request that opened it: the request's values, the server's
// end.
package wspolicy
