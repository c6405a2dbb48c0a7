// Package httpapi is the server's HTTP surface: the chi router with its
// middleware (request ids, access logs with tokens redacted, panic
// recovery, CORS for allowed origins), the GraphQL endpoint /query with its
// transports (POST, GET, websocket), the plain socket /ws/{token}/, the
// playground, and the health endpoints.
//
// It wires nothing concrete: it receives the social.Service and the
// handlers it mounts; the program in ../../server builds them.
package httpapi
