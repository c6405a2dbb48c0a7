package pushconn

import (
	"sync"
	"sync/atomic"
	"time"
)

// Transport is what a Core asks of its connection's transport.
type Transport interface {
	// Write is a writer: the core runs it on a goroutine of its own, never
	// two at a time. It loops on Core.Next.
	Write()
	// WriteClose sends the close frame (or the transport's last word) with
	// code and reason, within the transport's write timeout.
	WriteClose(code int, reason string) error
	// Close closes the connection: a writer stuck on a dead peer returns,
	// and so does a reader. It may be called more than once.
	Close() error
	// Closed is called once, by the last writer, after Close: the
	// transport stops and waits for what it started, releases what it
	// holds, and reports how the connection ended (logs, metrics).
	Closed(info CloseInfo)
}

// End is a way for a connection to end: its close code and reason, and
// whether a close frame with them is sent to the peer.
type End struct {
	Code      int
	Reason    string
	SendClose bool
}

// Policy is what the connections of one transport share. Its fields are
// read, never written, once a connection opens.
type Policy struct {
	// Group counts the connections open; its context ends them with
	// Shutdown.
	Group *Group
	// CloseTimeout is how long the last writer waits for the peer's answer
	// to its close frame before it closes the connection.
	CloseTimeout time.Duration
	// PingInterval is how often a ping is due; 0 means never.
	PingInterval time.Duration
	// Shutdown is how a connection ends when Group's context does.
	Shutdown End
	// Silent is how a connection ends when its peer has sent nothing, not
	// even a pong, for two ping intervals (see Core.PingLocked).
	Silent End
}

// CloseInfo is how a connection ended, for its log line.
type CloseInfo struct {
	// Code is the close code sent or received first; 1006 if the
	// connection ended without one.
	Code   int
	Reason string
	// Duration is how long the connection was open.
	Duration time.Duration
}

// Step is what a writer does after Core.Next.
type Step uint8

// The steps of a writer.
const (
	// Work: the writer took work from the queue; it writes it, then calls
	// Next again.
	Work Step = iota
	// Rest: nothing is left; the writer returns, and the next Wake starts
	// another.
	Rest
	// Finish: the connection has ended; the writer calls Core.Finish.
	Finish
)

// Core is the shared state machine of one connection; the transport's
// connection holds it by value. Init it, then Open it once the connection
// can be written to.
type Core struct {
	mu         *sync.Mutex // the transport's; see the package doc
	t          Transport
	p          *Policy
	start      time.Time
	lastRead   atomic.Int64  // when the peer last sent something, UnixNano
	readClosed chan struct{} // closed when the peer will send nothing more

	// Guarded by mu. How the connection ends is set once (ended), and read
	// without the lock by the writer that Next told to Finish.
	code        int
	reason      string
	sendClose   bool
	ended       bool
	writing     bool // a writer runs, or the last one is finishing
	readStopped bool // readClosed is closed
}

// Init readies c for the connection that t serves, under p, which began
// (its handshake did) at start. mu guards c's state and t's queue. No
// writer starts until Open.
func (c *Core) Init(mu *sync.Mutex, t Transport, p *Policy, start time.Time) {
	c.mu, c.t, c.p, c.start = mu, t, p, start
	c.readClosed = make(chan struct{})
	c.writing = true
}

// Open counts the connection into its group, has the group's context end
// it, and lets writers start: one at once if wake is set, or if the
// connection has ended already.
func (c *Core) Open(wake bool) {
	c.lastRead.Store(time.Now().UnixNano())
	if !c.p.Group.join(c) {
		c.shutdown()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writing = false
	if wake || c.ended {
		c.WakeLocked()
	}
}

// End decides how the connection ends, unless that is decided, and has a
// writer act on it. send says whether the writer is to send a close frame
// with code and reason.
func (c *Core) End(code int, reason string, send bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.EndLocked(code, reason, send)
}

// EndLocked is End with the lock held.
func (c *Core) EndLocked(code int, reason string, send bool) {
	if c.ended {
		return
	}
	c.ended, c.code, c.reason, c.sendClose = true, code, reason, send
	c.WakeLocked()
}

// Ended reports whether how the connection ends is decided.
func (c *Core) Ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// EndedLocked is Ended with the lock held.
func (c *Core) EndedLocked() bool { return c.ended }

// Ending returns how the connection ends; only the writer that Next told
// to Finish calls it.
func (c *Core) Ending() End {
	return End{Code: c.code, Reason: c.reason, SendClose: c.sendClose}
}

// WakeLocked starts a writer for the work just queued, unless one runs.
func (c *Core) WakeLocked() {
	if !c.writing {
		c.writing = true
		go c.t.Write()
	}
}

// Next is a writer's step: under the lock, it returns Finish once the
// connection has ended, else Work if take (the transport's, which moves
// its queue to the writer) took something, else Rest.
func (c *Core) Next(take func() bool) Step {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.ended:
		return Finish
	case take():
		return Work
	default:
		c.writing = false
		return Rest
	}
}

// Heard records that the peer sent something, for the ping deadline.
func (c *Core) Heard() {
	c.lastRead.Store(time.Now().UnixNano())
}

// PingLocked is called when a ping is due. It reports whether the writer
// is to send one: not once the connection has ended, nor, if drop is set,
// when the peer has sent nothing for two ping intervals: that ends the
// connection as Policy.Silent says.
func (c *Core) PingLocked(drop bool) bool {
	switch {
	case c.ended:
		return false
	case drop && time.Since(time.Unix(0, c.lastRead.Load())) > 2*c.p.PingInterval:
		e := c.p.Silent
		c.EndLocked(e.Code, e.Reason, e.SendClose)
		return false
	default:
		return true
	}
}

// ReadStopped records that the peer will send nothing more: it closed,
// or reading failed. The close handshake stops waiting.
func (c *Core) ReadStopped() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.readStopped {
		c.readStopped = true
		close(c.readClosed)
	}
}

// Lost is the reader's when the connection is gone, or unusable, without
// a close handshake: it ends the connection with code and reason and no
// close frame, stops reading, and closes the connection, which unblocks a
// writer stuck on a dead peer.
func (c *Core) Lost(code int, reason string) {
	c.End(code, reason, false)
	c.ReadStopped()
	_ = c.t.Close()
}

// Finish is the last writer's last act, once Next has returned Finish: it
// sends the close frame if the end calls for one and gives the peer
// Policy.CloseTimeout to answer it (the transport reads on meanwhile),
// closes the connection, has the transport stop and report (Transport.Closed),
// and counts the connection out of its group.
func (c *Core) Finish() {
	e := c.Ending()
	if e.SendClose && c.t.WriteClose(e.Code, e.Reason) == nil {
		t := time.NewTimer(c.p.CloseTimeout)
		select {
		case <-c.readClosed:
		case <-t.C:
		}
		t.Stop()
	}
	_ = c.t.Close()
	c.t.Closed(CloseInfo{Code: e.Code, Reason: e.Reason, Duration: time.Since(c.start)})
	c.p.Group.leave(c)
}

// shutdown ends the connection as Policy.Shutdown says, for the group's
// context has ended.
func (c *Core) shutdown() {
	e := c.p.Shutdown
	c.End(e.Code, e.Reason, e.SendClose)
}
