package gqlws

// growStack grows the calling goroutine's stack to hold a frame of
// stackReserve bytes, in one step while the stack is still shallow; a
// writer calls it before it runs subscriptions' selections, not for the
// bursts that only answer or ping.
//
// A socket's writer is a new goroutine for each burst of work, and starts
// with a small stack (the average of all goroutines', most of them readers
// waiting for a message). Running a subscription's selection for an event
// goes deep through gqlgen's executor, its extensions and the generated
// marshalers, so without this the stack doubled several times during the
// first event, each time copying every frame on it: about 12 µs of CPU
// per event in a W3 profile on GraphQL sockets. Grown first, the copy is
// of a few frames. The writer returns when its work is done, and its stack
// goes with it.
//
//go:noinline
func growStack() {
	var reserve [stackReserve]byte
	keepFrame(reserve[:])
}

// stackReserve is how much stack a writer reserves: more than delivering
// an event takes.
const stackReserve = 16 << 10

// keepFrame makes the compiler keep growStack's array on its stack.
//
//go:noinline
func keepFrame([]byte) {}
