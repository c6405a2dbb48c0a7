package pushconn_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/pulse-social/pulse/internal/pushconn"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// conn is a transport whose queue is a count of messages, written by
// waiting on write (if not nil) for each.
type conn struct {
	mu    sync.Mutex
	core  pushconn.Core
	queue int // guarded by mu

	write      chan struct{} // each write takes one, if not nil
	writers    atomic.Int32  // writing now
	maxWriters atomic.Int32
	written    atomic.Int32
	closeFrame chan pushconn.End // the close frames sent
	closes     atomic.Int32      // calls of Close
	closed     chan pushconn.CloseInfo
}

func newConn(p *pushconn.Policy) *conn {
	c := &conn{closeFrame: make(chan pushconn.End, 1), closed: make(chan pushconn.CloseInfo, 1)}
	c.core.Init(&c.mu, c, p, time.Now())
	return c
}

func (c *conn) send() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.queue++
	c.core.WakeLocked()
}

func (c *conn) Write() {
	for {
		var n int
		switch c.core.Next(func() bool {
			n, c.queue = c.queue, 0
			return n > 0
		}) {
		case pushconn.Rest:
			return
		case pushconn.Finish:
			c.core.Finish()
			return
		}
		w := c.writers.Add(1)
		for m := c.maxWriters.Load(); w > m && !c.maxWriters.CompareAndSwap(m, w); m = c.maxWriters.Load() {
		}
		for range n {
			if c.write != nil {
				<-c.write
			}
			c.written.Add(1)
		}
		c.writers.Add(-1)
	}
}

func (c *conn) WriteClose(code int, reason string) error {
	c.closeFrame <- pushconn.End{Code: code, Reason: reason, SendClose: true}
	return nil
}

func (c *conn) Close() error {
	c.closes.Add(1)
	return nil
}

func (c *conn) Closed(info pushconn.CloseInfo) { c.closed <- info }

func (c *conn) mustClosed(tb testing.TB, code int, reason string) {
	tb.Helper()
	select {
	case info := <-c.closed:
		if info.Code != code || info.Reason != reason {
			tb.Fatalf("closed with %d %q, want %d %q", info.Code, info.Reason, code, reason)
		}
	case <-time.After(5 * time.Second):
		tb.Fatalf("not closed")
	}
	if c.closes.Load() == 0 {
		tb.Fatalf("connection not closed")
	}
}

func policy(ctx context.Context) *pushconn.Policy {
	return &pushconn.Policy{
		Group:        pushconn.NewGroup(ctx),
		CloseTimeout: time.Minute,
		PingInterval: 20 * time.Millisecond,
		Shutdown:     pushconn.End{Code: 1001, Reason: "server shutting down", SendClose: true},
		Silent:       pushconn.End{Code: 1006, Reason: "no pong"},
	}
}

func mustWait(tb testing.TB, g *pushconn.Group) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.Wait(ctx); err != nil {
		tb.Fatalf("wait: %v", err)
	}
}

// TestOneWriter checks that work queued from many goroutines is all
// written, by one writer at a time, and that none runs while idle.
func TestOneWriter(t *testing.T) {
	p := policy(context.Background())
	c := newConn(p)
	c.write = make(chan struct{})
	c.core.Open(false)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.send()
		}()
	}
	for range 50 {
		c.write <- struct{}{}
	}
	wg.Wait()
	for c.writers.Load() != 0 {
		time.Sleep(time.Millisecond)
	}
	if got := c.written.Load(); got != 50 {
		t.Fatalf("%d written, want 50", got)
	}
	if got := c.maxWriters.Load(); got != 1 {
		t.Fatalf("%d writers at once, want 1", got)
	}
	c.core.End(1000, "bye", false)
	c.mustClosed(t, 1000, "bye")
	mustWait(t, p.Group)
}

// TestEnd checks that the first end wins, that the close handshake waits
// for the peer's answer (ReadStopped), and that the group waits for the
// connection.
func TestEnd(t *testing.T) {
	p := policy(context.Background())
	c := newConn(p)
	c.core.End(4008, "too slow", true) // before Open: waits for it
	c.core.End(1000, "bye", true)
	if !c.core.Ended() {
		t.Fatalf("not ended")
	}
	c.core.Open(false)
	if e := <-c.closeFrame; e.Code != 4008 || e.Reason != "too slow" {
		t.Fatalf("close frame %+v, want the first end's", e)
	}
	select {
	case <-c.closed:
		t.Fatalf("closed before the peer answered")
	case <-time.After(20 * time.Millisecond):
	}
	if err := p.Group.Wait(canceled()); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait: %v, want the connection still open", err)
	}
	c.core.ReadStopped()
	c.mustClosed(t, 4008, "too slow")
	mustWait(t, p.Group)
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestLost checks that a lost connection ends without a close frame and
// is closed at once, which unblocks a writer stuck on it.
func TestLost(t *testing.T) {
	p := policy(context.Background())
	c := newConn(p)
	c.core.Open(false)
	c.core.Lost(1006, "connection lost")
	if c.closes.Load() == 0 {
		t.Fatalf("Lost did not close the connection")
	}
	c.mustClosed(t, 1006, "connection lost")
	select {
	case e := <-c.closeFrame:
		t.Fatalf("close frame %+v, want none", e)
	default:
	}
	mustWait(t, p.Group)
}

// TestShutdown checks that the group's context ends its connections as
// Policy.Shutdown says.
func TestShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := policy(ctx)
	c := newConn(p)
	c.core.Open(false)
	cancel()
	if e := <-c.closeFrame; e != p.Shutdown {
		t.Fatalf("close frame %+v, want %+v", e, p.Shutdown)
	}
	c.core.ReadStopped()
	c.mustClosed(t, 1001, "server shutting down")
	mustWait(t, p.Group)
}

// TestPing checks the ping deadline: a ping is due while the peer is
// heard from; two silent intervals drop it, if drop is set.
func TestPing(t *testing.T) {
	p := policy(context.Background())
	c := newConn(p)
	c.core.Open(false)
	ping := func(drop bool) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.core.PingLocked(drop)
	}
	if !ping(true) {
		t.Fatalf("no ping due at once")
	}
	time.Sleep(3 * p.PingInterval)
	if !ping(false) {
		t.Fatalf("no ping due without drop")
	}
	c.core.Heard()
	if !ping(true) {
		t.Fatalf("no ping due after the peer was heard")
	}
	time.Sleep(3 * p.PingInterval)
	if ping(true) {
		t.Fatalf("ping due after two silent intervals")
	}
	c.mustClosed(t, 1006, "no pong")
	if ping(true) {
		t.Fatalf("ping due once ended")
	}
	mustWait(t, p.Group)
}
