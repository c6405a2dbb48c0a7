// Package pushconn is the part of a server-push connection's life that
// every transport shares: the plain socket (plainws) and the GraphQL
// socket (gqlws) today, server-sent events later. A Core decides once how
// its connection ends, starts a writer when there is something to write
// and never two at a time, runs the close handshake, drops a peer that has
// fallen silent, and counts the connection in and out of the Group the
// server waits for at shutdown. A transport keeps what is its own: its
// wire format, its reader and its queue, and it implements Transport for
// the core. Nothing here knows of websocket frames: a close frame is
// whatever Transport.WriteClose writes.
//
// # Ownership
//
// The transport owns its reader and tells the core what it sees: Heard
// when the peer sent something, ReadStopped when the peer will send
// nothing more, Lost when the connection is gone (which closes it, so that
// a writer stuck on a dead peer returns). The core owns the writers:
// WakeLocked starts Transport.Write on a goroutine of its own unless one
// runs, and that writer loops on Next until nothing is left (it returns)
// or the connection has ended; then it calls Finish, which sends the close
// frame if the end calls for one, waits at most Policy.CloseTimeout for
// the peer's answer, closes the connection, and hands over to
// Transport.Closed, which stops and waits for the reader and whatever else
// the transport started, and reports the close. Only then is the
// connection counted out of its Group, whose owner (the server) cancels
// its context at shutdown and waits for it: Group.Wait returning means
// every goroutine of every connection has returned. The core starts no
// goroutine while the connection is idle: the shutdown watch is one
// context.AfterFunc per Group, which ends the connections open in it, and
// whoever calls PingLocked when a ping is due (a ticker, a timer) is the
// transport's. The one channel, closed when the
// peer will send nothing more, is closed once, by ReadStopped.
//
// The core's state is guarded by the lock the transport gives Init, the
// same lock that guards the transport's queue, so that queuing work and
// waking a writer are one step. Methods whose names end in Locked are
// called with it held; the others take it.
package pushconn
