package wspolicy

// The application close codes both sockets send (RFC 6455 leaves
// 4000-4999 to applications). Clients act on them, so their values never
// change; docs/api.md lists each with its reasons per socket.
const (
	// CloseTooSlow: the client does not read what the socket has to send.
	CloseTooSlow = 4008
	// CloseUnauthorized: the token was bad at connect (plain socket) or
	// was revoked while the socket was open; or, on graphql-transport-ws,
	// a subscribe came before connection_ack.
	CloseUnauthorized = 4401
	// CloseForbidden: a bad token at connection_init (GraphQL socket).
	CloseForbidden = 4403
	// CloseTooMany: too many sockets, messages or connection_inits.
	CloseTooMany = 4429
)
