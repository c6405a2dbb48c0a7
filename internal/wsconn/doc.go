// Package wsconn is the one websocket policy of the server, shared by the
// plain notification socket (/ws/{token}/) and the GraphQL socket (/query),
// on github.com/gorilla/websocket.
//
// # Policy
//
// Config holds it: which browser origins may open a socket, the buffer
// sizes and the write timeout. Writes go through a write buffer taken from
// a pool shared by every socket with the same WriteBufferSize, so an idle
// socket holds no write buffer; by default the GraphQL socket, whose
// handler runs as long as it is open, reads through the read buffer
// net/http already holds for the connection, so it holds no read buffer of
// its own either (the plain socket, whose handler returns, has a small one
// of its own instead).
//
// The origin check (OriginPolicy) allows a request without an Origin
// header (a non-browser client), an Origin whose host is the request's Host
// (the playground served by this server), and an Origin listed in
// Config.AllowedOrigins; anything else is refused with HTTP 403 before the
// upgrade.
//
// # The plain socket
//
// Config.Upgrader returns the gorilla Upgrader that applies the policy; the
// plain socket package owns the connection it returns.
//
// # The GraphQL socket
//
// GraphQL implements gqlgen's transport.WebsocketImplementation: set it as
// the Implementation of gqlgen's transport.Websocket. Its connections write
// JSON with the write timeout, report a normal close (1000, 1001, 1005) as
// transport.ErrWebsocketClosed, and enforce gqlgen's read limit and read
// deadline.
//
// gqlgen owns the connection, but the application sometimes has to close
// it from outside, with a code of its own: logout closes the sockets opened
// with the revoked token with 4401. For that, wrap the GraphQL handler in
// Track and call Close with any context derived from the request's, such as
// the one gqlgen passes to the transport's InitFunc:
//
//	srv.AddTransport(transport.Websocket{
//		Implementation: wsconn.GraphQL{Config: cfg},
//		InitFunc: func(ctx context.Context, p transport.InitPayload) (context.Context, *transport.InitPayload, error) {
//			// ... authenticate, then watch for the revocation:
//			go func() {
//				select {
//				case <-revoked:
//					wsconn.Close(ctx, 4401, "Unauthorized")
//				case <-ctx.Done(): // the connection ended
//				}
//			}()
//			return ctx, nil, nil
//		},
//	})
//	mux.Handle("/query", wsconn.Track(srv))
//
// GraphQL.PingInterval is the protocol keepalive (pings, or ka messages for
// the legacy protocol) on a timer per socket, instead of gqlgen's
// KeepAlivePingInterval and PingPongInterval, which cost a goroutine per
// socket.
//
// Close writes the close frame (with the write timeout) and closes the TCP
// connection; gqlgen's reader then fails, and gqlgen ends the connection's
// operations and calls its CloseFunc as it does for any dropped connection
// (with code 1000: gqlgen does not know the code Close sent). The goroutine
// that calls Close must itself end when the connection does (select on
// ctx.Done(), which gqlgen cancels then): Close does not stop it.
//
// # Protocol rules gqlgen leaves out
//
// The adapter reads each client message before gqlgen does, and keeps the
// ids of the operations running (from the client's subscribe to the
// server's complete or error, or the client's complete). With it:
//
//   - a graphql-transport-ws client that subscribes with the id of a
//     running operation is closed with 4409 "Subscriber for <id> already
//     exists", as the protocol prescribes (the legacy graphql-ws protocol
//     has no such rule: gqlgen replaces the operation);
//   - GraphQL.MaxOperations caps the operations of one socket: one more
//     is answered with an error message for its id, extensions.code
//     RATE_LIMITED, and never reaches gqlgen;
//   - a connection_init payload that is not an object closes the socket
//     with 4400 (gqlgen would leave the connection open).
//
// TrackWith is Track with hooks called when a socket is accepted and when
// it ends, with its close code (the first sent or received), reason and
// duration: the GraphQL socket's log lines and open-sockets gauge.
package wsconn
