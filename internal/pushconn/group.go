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
	// The open connections, for ctx's end to end them: one watch of ctx
	// for the group rather than a context.AfterFunc per connection, which
	// each idle connection would keep.
	open map[*Core]struct{}
}

// NewGroup returns a Group whose connections end when ctx does.
func NewGroup(ctx context.Context) *Group {
	g := &Group{ctx: ctx, open: make(map[*Core]struct{})}
	context.AfterFunc(ctx, g.shutdown)
	return g
}

// join counts in c and has ctx's end end it; it reports false if ctx has
// ended already, and c is to end at once.
func (g *Group) join(c *Core) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.addLocked()
	if g.ctx.Err() != nil { // shutdown has run, or is about to
		return false
	}
	g.open[c] = struct{}{}
	return true
}

// leave counts out what join counted in.
func (g *Group) leave(c *Core) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.open, c)
	g.doneLocked()
}

// shutdown ends every open connection, each as its Policy.Shutdown says,
// once the group's context has ended. End never blocks.
func (g *Group) shutdown() {
	g.mu.Lock()
	open := g.open
	g.open = make(map[*Core]struct{})
	g.mu.Unlock()
	for c := range open {
		c.shutdown()
	}
}

// Context is the group's context: it ends at shutdown.
func (g *Group) Context() context.Context { return g.ctx }

// Add counts in work of the server's that Wait is to wait for, such as
// the close handshake of a connection refused before it opened (Core.Open
// counts in a connection).
func (g *Group) Add() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.addLocked()
}

func (g *Group) addLocked() {
	if g.n == 0 {
		g.idle = make(chan struct{})
	}
	g.n++
}

// Done counts out what Add counted in.
func (g *Group) Done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.doneLocked()
}

func (g *Group) doneLocked() {
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
