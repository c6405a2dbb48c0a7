package pushconn

import (
	"context"
	"sync"
)

// Group counts open connections, for a server to wait for them at
// shutdown; its context ends them, each as its Policy.Shutdown says. A
// connection outlives the ServeHTTP call that opened it, so the server
// cancels the context at shutdown, then calls Wait.
type Group struct {
	ctx  context.Context
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to 0; nil while it is 0
}

// NewGroup returns a Group whose connections end when ctx does.
func NewGroup(ctx context.Context) *Group {
	return &Group{ctx: ctx}
}

// Context is the group's context: it ends at shutdown.
func (g *Group) Context() context.Context { return g.ctx }

// Add counts in one connection (Core.Open does), or other work of the
// server's that Wait is to wait for, such as the close handshake of a
// connection refused before it opened.
func (g *Group) Add() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n == 0 {
		g.idle = make(chan struct{})
	}
	g.n++
}

// Done counts out what Add counted in.
func (g *Group) Done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.n--
	if g.n == 0 {
		close(g.idle)
		g.idle = nil
	}
}

// Wait blocks until every connection has closed and its goroutines have
// returned, or until ctx is done.
func (g *Group) Wait(ctx context.Context) error {
	g.mu.Lock()
	idle := g.idle
	g.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
