// Package plainframe is the plain socket's JSON encoding of notifications
// and inbox changes (docs/api.md, "The plain socket"), shared by the two
// transports that send it: the plain socket (plainws) and the server-sent
// event stream (ssepush).
package plainframe
