package gqlws_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/gqlws"
	"github.com/pulse-social/pulse/internal/pushconn"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

func TestClose(t *testing.T) {
	for _, p := range protocols {
		t.Run("FromInit/"+p.name, func(t *testing.T) {
			e := MustEnv(t, gqlws.Config{})
			c := e.MustConnect(t, p)
			ctx := e.MustInitContext(t)
			if !gqlws.Close(ctx, 4401, "Unauthorized") {
				t.Fatalf("Close = false, want true")
			}
			if gqlws.Close(ctx, 4401, "again") {
				t.Fatalf("second Close = true, want false")
			}
			MustClose(t, c.Conn, 4401, "Unauthorized")
			info := e.MustClosed(t)
			if info.Code != 4401 || info.Reason != "Unauthorized" || info.Duration <= 0 {
				t.Fatalf("CloseInfo %+v, want 4401 Unauthorized and a duration", info)
			}
			if gqlws.Close(ctx, 4401, "after") {
				t.Fatalf("Close after the socket closed = true, want false")
			}
			if err := ctx.Err(); err == nil {
				t.Fatalf("Init's context is alive after the socket closed")
			}
		})
	}

	t.Run("NoSocket", func(t *testing.T) {
		if gqlws.Close(context.Background(), 4401, "Unauthorized") {
			t.Fatalf("Close of a context of no socket = true, want false")
		}
	})

	t.Run("FromOperation", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{})
		c := e.MustConnect(t, transportWS)
		sub := c.MustSubscribe(t, e, "1")
		if !gqlws.Close(sub.Ctx, 4000, "bye") {
			t.Fatalf("Close = false, want true")
		}
		MustClose(t, c.Conn, 4000, "bye")
		sub.MustEnded(t)
	})

	// Close's reason is cut to what a close frame holds.
	t.Run("LongReason", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{})
		c := e.MustConnect(t, transportWS)
		gqlws.Close(e.MustInitContext(t), 4000, strings.Repeat("x", 200))
		MustClose(t, c.Conn, 4000, strings.Repeat("x", 123))
	})
}

func TestOpened(t *testing.T) {
	type opened struct {
		r    *http.Request
		info chan pushconn.CloseInfo
	}
	opens := make(chan opened, 10)
	e := MustEnv(t, gqlws.Config{Opened: func(r *http.Request) func(pushconn.CloseInfo) {
		o := opened{r: r, info: make(chan pushconn.CloseInfo, 1)}
		opens <- o
		return func(info pushconn.CloseInfo) { o.info <- info }
	}})
	mustOpened := func(t *testing.T) opened {
		t.Helper()
		select {
		case o := <-opens:
			if o.r.URL.Path != "/graphql" {
				t.Fatalf("Opened got a request for %q, want /graphql", o.r.URL.Path)
			}
			return o
		case <-time.After(readTimeout):
			t.Fatalf("Opened not called")
			return opened{}
		}
	}
	mustInfo := func(t *testing.T, o opened, code int, reason string) {
		t.Helper()
		select {
		case info := <-o.info:
			if info.Code != code || (reason != "" && info.Reason != reason) {
				t.Fatalf("CloseInfo %+v, want %d %q", info, code, reason)
			}
		case <-time.After(readTimeout):
			t.Fatalf("the socket's end was not reported")
		}
	}

	t.Run("ClientCloses", func(t *testing.T) {
		c := e.MustConnect(t, transportWS)
		o := mustOpened(t)
		msg := websocket.FormatCloseMessage(4000, "bye")
		if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(readTimeout)); err != nil {
			t.Fatalf("write close: %v", err)
		}
		// The server answers the close frame (gorilla/websocket echoes
		// the code only).
		MustClose(t, c.Conn, 4000, "")
		mustInfo(t, o, 4000, "bye")
	})
	t.Run("ConnectionLost", func(t *testing.T) {
		c := e.MustConnect(t, transportWS)
		o := mustOpened(t)
		c.NetConn().Close()
		mustInfo(t, o, websocket.CloseAbnormalClosure, "")
	})
	t.Run("NotUpgraded", func(t *testing.T) {
		d := websocket.Dialer{HandshakeTimeout: readTimeout}
		if c, _, err := d.Dial(e.URL(), http.Header{"Origin": {"https://evil.example"}}); err == nil {
			c.Close()
			t.Fatalf("dial succeeded, want 403")
		}
		select {
		case <-opens:
			t.Fatalf("Opened called for a refused handshake")
		default:
		}
	})
}

func TestReadLimit(t *testing.T) {
	const limit = 1024
	e := MustEnv(t, gqlws.Config{ReadLimit: limit})
	c := e.MustConnect(t, transportWS)
	// A ping whose payload makes the message exactly the limit.
	ping := func(size int) string {
		head, tail := `{"type":"ping","payload":{"p":"`, `"}}`
		return head + strings.Repeat("x", size-len(head)-len(tail)) + tail
	}
	c.MustSendRaw(t, ping(limit))
	m := c.MustReadType(t, "", "pong")
	MustJSONEqual(t, m.Payload, `{"p":"`+strings.Repeat("x", limit-len(`{"type":"ping","payload":{"p":"`)-3)+`"}`)
	c.MustSendRaw(t, ping(limit+1))
	MustClose(t, c.Conn, websocket.CloseMessageTooBig, "")
	if info := e.MustClosed(t); info.Code != websocket.CloseMessageTooBig {
		t.Fatalf("CloseInfo %+v, want 1009", info)
	}
}

// TestInvalidUTF8 checks that a text message that is not UTF-8 closes the
// socket with 1007 (RFC 6455, section 8.1).
func TestInvalidUTF8(t *testing.T) {
	e := MustEnv(t, gqlws.Config{})
	c := e.MustConnect(t, transportWS)
	c.MustSendRaw(t, "{\"type\":\"ping\",\"payload\":\"\xff\"}")
	MustClose(t, c.Conn, websocket.CloseInvalidFramePayloadData, "invalid utf-8")
	if info := e.MustClosed(t); info.Code != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("CloseInfo %+v, want 1007", info)
	}
}

func TestKeepalive(t *testing.T) {
	const interval = 100 * time.Millisecond
	t.Run("Pong", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{PingInterval: interval})
		start := time.Now() // before connection_ack, which starts the pings
		c := e.MustConnect(t, transportWS)
		for range 6 {
			if m := c.MustRead(t); m.String() != `{"type":"ping"}` {
				t.Fatalf("got %v, want a ping", m)
			}
			c.MustSend(t, map[string]any{"type": "pong"})
		}
		if d := time.Since(start); d < 6*interval {
			t.Fatalf("six pings in %v, want one per %v", d, interval)
		}
		// Still open: a query is answered (between pings).
		c.MustStart(t, "q", "{ hello }")
		for {
			m := c.MustRead(t)
			if m.Type == "ping" {
				c.MustSend(t, map[string]any{"type": "pong"})
				continue
			}
			if m.ID != "q" || m.Type != "next" {
				t.Fatalf("got %v, want the query's result", m)
			}
			break
		}
		select {
		case info := <-e.Closed:
			t.Fatalf("socket ended: %+v", info)
		default:
		}
	})

	t.Run("NoPong", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{PingInterval: interval})
		start := time.Now() // before connection_init, the client's last word
		c := e.MustConnect(t, transportWS)
		pings := 0
		_ = c.SetReadDeadline(time.Now().Add(readTimeout))
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("a client that answers no ping still open after %v", readTimeout)
				}
				break
			}
			if string(b) != `{"type":"ping"}` {
				t.Fatalf("got %s, want pings only", b)
			}
			pings++
		}
		if d := time.Since(start); d < 2*interval {
			t.Fatalf("dropped after %v, want two intervals (%v) at least", d, 2*interval)
		}
		t.Logf("dropped after %v and %d pings", time.Since(start), pings)
		if info := e.MustClosed(t); info.Code != websocket.CloseAbnormalClosure || info.Reason != "no pong" {
			t.Fatalf("CloseInfo %+v, want 1006 no pong", info)
		}
	})

	t.Run("Legacy", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{PingInterval: interval})
		// From before connection_ack; MustConnect reads it and the first ka.
		start := time.Now()
		c := e.MustConnect(t, legacyWS)
		for range 5 {
			if m := c.MustRead(t); m.String() != `{"type":"ka"}` {
				t.Fatalf("got %v, want a ka", m)
			}
		}
		if d := time.Since(start); d < 5*interval {
			t.Fatalf("five ka after the first in %v, want one per %v", d, interval)
		}
		// The client answered nothing, and the socket is open.
		c.MustStart(t, "q", "{ hello }")
		for {
			m := c.MustRead(t)
			if m.Type == "ka" {
				continue
			}
			if m.ID != "q" || m.Type != "data" {
				t.Fatalf("got %v, want the query's result", m)
			}
			break
		}
	})

	t.Run("NoPingBeforeAck", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{PingInterval: 20 * time.Millisecond})
		c := e.MustDial(t, transportWS)
		time.Sleep(150 * time.Millisecond)
		c.MustInit(t) // connection_ack is the first message
	})
}

// mustFeed puts big events on sub's channel, as fast as the socket takes
// them, until the subscription or the test ends.
func mustFeed(tb testing.TB, sub *Sub) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		big := `{"s":"` + strings.Repeat("x", 64<<10) + `"}`
		for {
			select {
			case sub.ch <- big:
				sub.notify()
			case <-sub.Ctx.Done():
				return
			case <-stop:
				return
			}
		}
	}()
	tb.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
}

// mustNotRead shrinks c's receive buffer: a client that never reads.
func mustNotRead(tb testing.TB, c *Client) {
	tb.Helper()
	if err := c.NetConn().(*net.TCPConn).SetReadBuffer(4096); err != nil {
		tb.Fatalf("set read buffer: %v", err)
	}
}

func TestSlowClient(t *testing.T) {
	t.Run("WriteTimeout", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{Websocket: wspolicy.Config{WriteTimeout: 200 * time.Millisecond}})
		c := e.MustConnect(t, transportWS)
		mustNotRead(t, c)
		sub := c.MustSubscribe(t, e, "1")
		mustFeed(t, sub)
		info := e.MustClosed(t)
		if info.Code != websocket.CloseAbnormalClosure || info.Reason != "write failed" {
			t.Fatalf("CloseInfo %+v, want 1006 write failed", info)
		}
		sub.MustEnded(t)
		MustWait(t, e.Group)
	})

	// A client that stops reading and then goes away without a close
	// frame: the reader's end of the connection unblocks the writer, long
	// before its write timeout.
	t.Run("ConnectionLost", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{Websocket: wspolicy.Config{WriteTimeout: time.Minute}})
		c := e.MustConnect(t, transportWS)
		mustNotRead(t, c)
		sub := c.MustSubscribe(t, e, "1")
		mustFeed(t, sub)
		time.Sleep(100 * time.Millisecond) // for the writer to block
		if err := c.NetConn().(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatalf("close write: %v", err)
		}
		info := e.MustClosed(t)
		if info.Code != websocket.CloseAbnormalClosure || info.Reason != "connection lost" {
			t.Fatalf("CloseInfo %+v, want 1006 connection lost", info)
		}
		sub.MustEnded(t)
		MustWait(t, e.Group)
	})

	// A client that does not read but keeps asking (pings) fills the queue
	// of answers while the writer waits: the socket ends as too slow.
	t.Run("QueueFull", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{QueueSize: 2, Websocket: wspolicy.Config{WriteTimeout: time.Second}})
		c := e.MustConnect(t, transportWS)
		mustNotRead(t, c)
		sub := c.MustSubscribe(t, e, "1")
		mustFeed(t, sub)
		ping := []byte(`{"type":"ping"}`)
		var info pushconn.CloseInfo
	loop:
		for {
			select {
			case info = <-e.Closed:
				break loop
			case <-time.After(2 * time.Millisecond):
			}
			_ = c.SetWriteDeadline(time.Now().Add(readTimeout))
			if err := c.WriteMessage(websocket.TextMessage, ping); err != nil {
				info = e.MustClosed(t)
				break
			}
		}
		if info.Code != codeTooSlow || info.Reason != "too slow" {
			t.Fatalf("CloseInfo %+v, want 4008 too slow", info)
		}
		MustWait(t, e.Group)
	})
}

func TestShutdown(t *testing.T) {
	e := MustEnv(t, gqlws.Config{PingInterval: time.Hour})
	a := e.MustConnect(t, transportWS)
	sub := a.MustSubscribe(t, e, "1")
	b := e.MustConnect(t, legacyWS)
	notInit := e.MustDial(t, transportWS)
	e.Shutdown()
	for _, c := range []*Client{a, b, notInit} {
		MustClose(t, c.Conn, websocket.CloseGoingAway, "server shutting down")
	}
	sub.MustEnded(t)
	MustWait(t, e.Group)
	for range 3 {
		if info := e.MustClosed(t); info.Code != websocket.CloseGoingAway {
			t.Fatalf("CloseInfo %+v, want 1001", info)
		}
	}

	// A socket that opens after the shutdown is closed at once.
	late := e.MustDial(t, transportWS)
	MustClose(t, late.Conn, websocket.CloseGoingAway, "server shutting down")
	MustWait(t, e.Group)
}

// TestIdleGoroutines checks that an idle socket with a subscription holds
// one goroutine (its reader): no writer, no goroutine per operation, none
// left of net/http's.
func TestIdleGoroutines(t *testing.T) {
	const n = 50
	e := MustEnv(t, gqlws.Config{})
	// One socket first, so that what only the first one starts is in the
	// baseline.
	warm := e.MustConnect(t, transportWS)
	warm.MustSubscribe(t, e, "1")
	base := settled(t)
	for i := range n {
		c := e.MustConnect(t, transportWS)
		sub := c.MustSubscribe(t, e, "1")
		if i%10 == 0 {
			sub.Send(`{"n":1}`)
			c.MustEvent(t, "1", `{"n":1}`)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		extra := runtime.NumGoroutine() - base
		if extra < 2*n {
			t.Logf("%d sockets: %d more goroutines", n, extra)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle sockets hold %d goroutines, want about one each (under %d)", n, extra, 2*n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// transient are the goroutines a socket runs only while it has work, and
// net/http's, which ends when the upgraded handler returns.
var transient = []string{"gqlws.(*socket).write(", "gqlws.(*socket).runInit(", "gqlws.(*operation).run(", "net/http.(*conn).serve("}

// settled waits until none of the transient goroutines runs, and returns
// the number of goroutines then.
func settled(tb testing.TB) int {
	tb.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(readTimeout); ; time.Sleep(5 * time.Millisecond) {
		n := runtime.NumGoroutine()
		stacks := string(buf[:runtime.Stack(buf, true)])
		i := slices.IndexFunc(transient, func(f string) bool { return strings.Contains(stacks, f) })
		if i < 0 {
			return n
		}
		if time.Now().After(deadline) {
			tb.Fatalf("a goroutine still runs %s after %v", transient[i], readTimeout)
		}
	}
}

// TestValues checks what a socket keeps of its upgrade request's context:
// all of it by default, what Config.Values returns if set; never its end,
// which comes when Do returns.
func TestValues(t *testing.T) {
	type valueKey struct{}
	t.Run("Default", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{})
		c := e.MustConnect(t, transportWS)
		ctx := e.MustInitContext(t)
		if got := ctx.Value(requestKey{}); got != "from the request" {
			t.Fatalf("Init's context has %v, want the request's value", got)
		}
		sub := c.MustSubscribe(t, e, "1")
		if got := sub.Ctx.Value(requestKey{}); got != "from the request" {
			t.Fatalf("the operation's context has %v, want the request's value", got)
		}
		if ctx.Err() != nil || sub.Ctx.Err() != nil {
			t.Fatalf("contexts ended with the request")
		}
	})
	t.Run("Config", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{Values: func(r *http.Request) context.Context {
			return context.WithValue(context.Background(), valueKey{}, r.URL.Path)
		}})
		c := e.MustConnect(t, transportWS)
		ctx := e.MustInitContext(t)
		if got := ctx.Value(valueKey{}); got != "/graphql" {
			t.Fatalf("Init's context has %v, want Values's", got)
		}
		if got := ctx.Value(requestKey{}); got != nil {
			t.Fatalf("Init's context has the request's value %v, want only Values's", got)
		}
		sub := c.MustSubscribe(t, e, "1")
		if got := sub.Ctx.Value(valueKey{}); got != "/graphql" {
			t.Fatalf("the operation's context has %v, want Values's", got)
		}
		// The socket's own value is there too: Close works.
		if !gqlws.Close(sub.Ctx, 4000, "bye") {
			t.Fatalf("Close = false")
		}
		MustClose(t, c.Conn, 4000, "bye")
	})
}

// TestConcurrentEvents runs subscriptions whose resolvers send at once, each
// from its own goroutine: every event arrives, in order for its id, then
// each subscription's complete.
func TestConcurrentEvents(t *testing.T) {
	const subs, events = 8, 200
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := MustEnv(t, gqlws.Config{})
			c := e.MustConnect(t, p)
			var all []*Sub
			for i := range subs {
				all = append(all, c.MustSubscribe(t, e, strconv.Itoa(i)))
			}
			var wg sync.WaitGroup
			defer wg.Wait()
			for _, sub := range all {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range events {
						select {
						case sub.ch <- `{"k":` + strconv.Itoa(k) + `}`:
							sub.notify()
						case <-sub.Ctx.Done():
							return
						}
					}
					sub.End()
				}()
			}
			next := make(map[string]int)
			for completed := 0; completed < subs; {
				m := c.MustRead(t)
				switch m.Type {
				case p.next:
					want := fmt.Sprintf(`{"data":{"k":%d}}`, next[m.ID])
					MustJSONEqual(t, m.Payload, want)
					next[m.ID]++
				case "complete":
					if next[m.ID] != events {
						t.Fatalf("complete for %s after %d events, want %d", m.ID, next[m.ID], events)
					}
					completed++
				default:
					t.Fatalf("got %v", m)
				}
			}
		})
	}
}

// TestCloseDuringInit closes a socket while Config.Init runs: Init's
// context, which "ends when the socket closes", must end, so that an Init
// waiting on the store gives up.
func TestCloseDuringInit(t *testing.T) {
	ctxs := make(chan context.Context, 1)
	e := MustEnv(t, gqlws.Config{Init: func(ctx context.Context, _ map[string]any) (context.Context, error) {
		ctxs <- ctx
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second): // a slow store
			return ctx, nil
		}
	}})
	c := e.MustDial(t, transportWS)
	c.MustSend(t, map[string]any{"type": "connection_init"})
	var ctx context.Context
	select {
	case ctx = <-ctxs:
	case <-time.After(readTimeout):
		t.Fatalf("Init not called")
	}
	if !gqlws.Close(ctx, 4401, "Unauthorized") {
		t.Fatalf("Close = false, want true")
	}
	MustClose(t, c.Conn, 4401, "Unauthorized")
	select {
	case <-ctx.Done():
	case <-time.After(3 * time.Second):
		t.Errorf("Init's context still alive 3s after the socket was closed (CloseTimeout 500ms)")
	}
	if info := e.MustClosed(t); info.Code != 4401 {
		t.Fatalf("CloseInfo %+v, want 4401", info)
	}
}
