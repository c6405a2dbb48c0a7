// Package gqlws serves GraphQL over websocket for gqlgen, in both
// protocols: graphql-transport-ws (the graphql-ws library) and the legacy
// graphql-ws of subscriptions-transport-ws, which is also what a client
// that asks for neither gets. Transport is a gqlgen graphql.Transport: add
// it to a handler.Server with AddTransport; gqlgen still parses, validates
// and executes every operation.
//
// It replaces gqlgen's own websocket transport to make an idle socket
// cheap: that one keeps the HTTP handler's goroutine (with its deep stack
// and net/http's buffers), a goroutine per subscription and one more per
// socket for as long as the socket is open. Here Do returns once the socket
// is open, and a socket holds one goroutine, its reader, which hands
// anything that needs the store or the executor to a goroutine of its own
// so that its stack stays small. A writer runs only while there is
// something to send. A subscription holds no goroutine: its resolver calls
// the function Notifier gives it each time it has put a value on its
// channel (and once it has closed it), and the socket's writer then has
// gqlgen take that value and encode it, which cannot block.
//
// # The protocols
//
// connection_init runs Config.Init, whose context the socket's operations
// run in, and is answered with connection_ack (and, on the legacy
// protocol, a first {"type":"ka"}). Operations then start with subscribe
// (legacy: start) and stop with complete (legacy: stop); results come as
// next (legacy: data), and an operation ends with complete, or with error
// (validation errors, errors given to AddError), after which nothing more
// comes for its id. A client's complete is not answered on
// graphql-transport-ws, as the protocol says; a legacy stop is answered
// with complete.
//
// Close codes: 4400 a message the protocol does not allow (invalid JSON,
// an unknown type, a connection_init payload that is not an object), 4401
// subscribe before connection_ack, 4408 no connection_init within
// Config.InitTimeout, 4409 a graphql-transport-ws subscribe with the id of
// an operation still running (legacy: the new one replaces it), 4429 a
// second connection_init, 4008 a client that does not read what it is
// sent, 1001 server shutdown (Group's context), 1007 a text message that
// is not UTF-8, 1009 a message over Config.ReadLimit; Config.Init's
// *CloseError its own. A legacy client
// also gets a connection_error before a refused connection_init.
//
// Keepalive (Config.PingInterval): {"type":"ping"} on graphql-transport-ws,
// {"type":"ka"} on the legacy protocol, every interval from connection_ack
// on; a graphql-transport-ws client that sends nothing, not even a pong,
// for two intervals is dropped.
//
// # Closing from outside
//
// Close closes a socket with a code of the application's, given any
// context derived from the socket's: logout closes the sockets opened with
// the revoked token with 4401, from the context Config.Init returned.
// CloseWithError first ends each running operation with an error message:
// a socket whose token expires is closed that way, each operation getting
// an UNAUTHENTICATED error before the socket closes with 4401 "token
// expired".
//
// # Ownership
//
// A socket's reader owns reading; it and the goroutines it starts
// (connection_init, each query or mutation) are counted and waited for
// when the socket closes. Its writers, how it ends and its close
// handshake are a pushconn.Core's, the plain socket's too: at most one
// writer runs at a time, it owns every write, and the last one closes the
// socket (close frame, then the connection), ends the socket's context
// (and with it every operation's), waits for the reader and its
// goroutines, and counts the socket out of its pushconn.Group. The server
// cancels the Group's context at shutdown and waits for Group.Wait.
package gqlws
