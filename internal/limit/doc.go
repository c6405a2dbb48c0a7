// Package limit holds the server's abuse limits: Rates, a token bucket per
// key (a user id, a client address) for requests, and Slots, a cap on how
// many things (sockets) one key holds open at once.
//
// Both are safe for concurrent use, start no goroutine, and forget idle
// keys on their own, so that a flood of distinct keys cannot grow them
// without bound. Their zero Limit allows everything.
package limit
