// Package admit is the one home of the rules that let a push connection in,
// whatever its transport (the plain socket, the GraphQL socket, and the
// event streams of /events and of GraphQL): the per-address and per-user
// caps, authentication by an access token or a one-time ticket, the
// subscription to the user's events and the cursor the connection starts
// from, and the hold on the session (its end and its expiry).
//
// A transport takes a Conn with Admitter.Arrive, then Authenticate and Open
// it in turn, and maps each Refusal to its own wire (a close code and a
// reason, an HTTP status): only how it refuses is its own. The Conn's owner
// calls Release, once the connection is served or refused; Release may be
// called more than once.
package admit
