package gqlws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/internal/pushconn"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// socket is one open GraphQL socket. Its reader is a goroutine that waits
// for the client's messages and hands anything that needs the store or
// the executor to a goroutine of its own, so that its stack stays small.
// Its writer runs only while there is something to write (an answer, the
// events of a subscription, a ping, the close frame) and returns when
// nothing is left; at most one runs at a time. The last writer closes the
// socket. The core (see pushconn) holds how the socket ends and starts
// its writers.
type socket struct {
	t           *Transport
	conn        *websocket.Conn
	exec        graphql.GraphExecutor
	transportWS bool            // graphql-transport-ws, not the legacy protocol
	ctx         context.Context // ends when the socket closes, or at shutdown
	cancel      context.CancelFunc
	closed      func(pushconn.CloseInfo) // Config.Opened's, or nil
	// workers counts the reader and the goroutines it starts
	// (connection_init, operations); they are waited for once the
	// connection is closed.
	workers sync.WaitGroup

	mu         sync.Mutex // guards core and the fields below
	core       pushconn.Core
	initState  uint8           // initNone, initDone
	opCtx      context.Context // Config.Init's, from connection_ack on
	ops        map[string]*operation
	out        [][]byte     // messages for the writer, at most Config.QueueSize
	ready      []*operation // subscriptions with events for the writer
	pingDue    bool
	initTimer  *time.Timer
	pingTimer  *time.Timer
	timersDone bool // the socket has closed: no timer is to be set
}

const (
	initNone    uint8 = iota
	initRunning       // Config.Init runs, or refused the socket
	initDone
)

type socketKey struct{}

func newSocket(t *Transport, conn *websocket.Conn, exec graphql.GraphExecutor, r *http.Request) *socket {
	s := &socket{
		t:           t,
		conn:        conn,
		exec:        exec,
		transportWS: conn.Subprotocol() == subprotocolTransportWS,
		ops:         make(map[string]*operation),
	}
	s.core.Init(&s.mu, s, &t.policy, time.Now())
	var values context.Context
	if t.cfg.Values != nil {
		values = t.cfg.Values(r)
	} else {
		values = context.WithoutCancel(r.Context())
	}
	ctx, cancel := context.WithCancel(wspolicy.SocketContext(t.cfg.Sockets.Context(), values))
	s.ctx, s.cancel = context.WithValue(ctx, socketKey{}, s), cancel
	return s
}

// open sets the socket going: its reader, the timeout of connection_init,
// and its end at shutdown.
func (s *socket) open() {
	s.conn.SetReadLimit(s.t.cfg.ReadLimit)
	s.mu.Lock()
	s.initTimer = time.AfterFunc(s.t.cfg.InitTimeout, s.initTimedOut)
	s.mu.Unlock()
	s.core.Open(false)
	s.workers.Add(1)
	go s.read()
}

// Close closes the socket that ctx belongs to (ctx is the socket's, or
// derived from it, such as the context of Config.Init and of the socket's
// resolvers) with a close frame with code and reason (cut to 123 bytes).
// It reports whether it did: false if ctx belongs to no socket, or if the
// socket was already closing. It is safe to call from any goroutine and
// never blocks: the socket's writer sends the close frame.
func Close(ctx context.Context, code int, reason string) bool {
	s, _ := ctx.Value(socketKey{}).(*socket)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.core.EndedLocked() {
		return false
	}
	s.core.EndLocked(code, reason, true)
	return true
}

// CloseWithError is Close that first ends each operation running on the
// socket with err, in an error message for its id: the client learns why
// each stopped before the socket closes. Like Close, it never blocks and
// reports whether it closed the socket.
func CloseWithError(ctx context.Context, err *gqlerror.Error, code int, reason string) bool {
	s, _ := ctx.Value(socketKey{}).(*socket)
	if s == nil {
		return false
	}
	payload, jerr := json.Marshal(gqlerror.List{err})
	if jerr != nil {
		payload = []byte(`[{"message":"internal error"}]`)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.core.EndedLocked() {
		return false
	}
	for id, op := range s.ops {
		s.stopLocked(op)
		// Past Config.QueueSize if need be: one message per operation,
		// once, and the writer sends them before the close frame.
		s.out = append(s.out, appendMessage(nil, id, typeError, payload))
	}
	s.core.EndLocked(code, reason, true)
	return true
}

// read is the socket's reader: it handles the client's messages until the
// connection ends.
func (s *socket) read() {
	defer s.workers.Done()
	defer s.core.ReadStopped()
	for {
		typ, r, err := s.conn.NextReader()
		if err != nil {
			s.readFailed(err)
			return
		}
		b, err := io.ReadAll(r)
		if err != nil {
			s.readFailed(err)
			return
		}
		s.core.Heard()
		switch {
		case s.core.Ended(): // once ending, only the client's close frame matters
		case typ == websocket.TextMessage && !utf8.Valid(b):
			s.end(websocket.CloseInvalidFramePayloadData, "invalid utf-8", true)
		default:
			s.message(b)
		}
	}
}

// readFailed ends the socket when its connection ended: the client's close
// frame (which gorilla/websocket has answered), a websocket message over
// the read limit or a broken websocket frame (which it has closed with 1009
// or 1002), or a lost connection.
func (s *socket) readFailed(err error) {
	var ce *websocket.CloseError
	// 1006 is gorilla/websocket's name for a connection that ended without
	// a close frame.
	if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
		s.end(ce.Code, ce.Text, false)
		return
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		s.core.Lost(websocket.CloseMessageTooBig, "message too big")
	} else {
		s.core.Lost(websocket.CloseAbnormalClosure, "connection lost")
	}
}

// message handles one message of the client.
func (s *socket) message(b []byte) {
	var m clientMessage
	if json.Unmarshal(b, &m) != nil {
		s.end(CloseBadRequest, "Invalid message received", true)
		return
	}
	switch kindOf(s.transportWS, m.Type) {
	case kindInit:
		s.init(m.Payload)
	case kindStart:
		s.startOperation(m.ID, m.Payload)
	case kindStop:
		s.stopOperation(m.ID)
	case kindPing:
		if p := bytes.TrimSpace(m.Payload); len(p) > 0 && string(p) != "null" {
			s.queue(appendMessage(nil, "", "pong", p))
		} else {
			s.queue(msgPong)
		}
	case kindPong:
	case kindTerminate:
		s.end(websocket.CloseNormalClosure, "terminated", true)
	default:
		s.end(CloseBadRequest, "Invalid message type", true)
	}
}

// init acknowledges the connection, or closes it, as Config.Init decides.
// The reader waits for it: the client's next messages may need it.
func (s *socket) init(payload json.RawMessage) {
	s.mu.Lock()
	state := s.initState
	if state == initNone {
		s.initState = initRunning
		s.initTimer.Stop()
		s.initTimer = nil // an idle socket keeps no timer it is done with
	}
	s.mu.Unlock()
	if state != initNone {
		s.end(wspolicy.CloseTooMany, "Too many initialisation requests", true)
		return
	}
	var p map[string]any
	if t := bytes.TrimSpace(payload); len(t) > 0 && string(t) != "null" {
		if t[0] != '{' || json.Unmarshal(t, &p) != nil {
			s.end(CloseBadRequest, "connection_init payload must be an object", true)
			return
		}
	}
	// On a goroutine of its own, whose stack goes with it: the store calls
	// of Init would grow the reader's, which the socket keeps while idle.
	done := make(chan struct{})
	s.workers.Add(1)
	go func() {
		defer s.workers.Done()
		defer close(done)
		s.runInit(p)
	}()
	<-done
}

func (s *socket) runInit(payload map[string]any) {
	ctx := s.ctx
	if s.t.cfg.Init != nil {
		var err error
		ctx, err = s.t.cfg.Init(s.ctx, payload)
		if err != nil {
			code, reason := websocket.CloseInternalServerErr, "internal error"
			var ce *CloseError
			if errors.As(err, &ce) {
				code, reason = ce.Code, ce.Reason
				if ce.Message != "" && !s.transportWS {
					msg, _ := json.Marshal(map[string]string{"message": ce.Message})
					s.queue(appendMessage(nil, "", typeConnError, msg))
				}
			}
			s.end(code, reason, true)
			return
		}
	}
	s.mu.Lock()
	s.initState, s.opCtx = initDone, ctx
	s.mu.Unlock()
	s.queue(msgAck)
	if !s.transportWS {
		s.queue(msgKeepAlive)
	}
	if iv := s.t.cfg.PingInterval; iv > 0 {
		s.mu.Lock()
		if !s.timersDone {
			s.pingTimer = time.AfterFunc(iv, s.ping)
		}
		s.mu.Unlock()
	}
}

// initTimedOut closes a socket whose client has not sent connection_init.
func (s *socket) initTimedOut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.initState == initNone {
		s.core.EndLocked(CloseInitTimeout, "Connection initialisation timeout", true)
	}
}

// ping is the keepalive timer's: it has the writer send a ping (or a
// legacy ka), or drops a graphql-transport-ws client that has sent
// nothing, not even a pong, for two intervals.
func (s *socket) ping() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.timersDone && s.core.PingLocked(s.transportWS) {
		s.pingDue = true
		s.core.WakeLocked()
		s.pingTimer.Reset(s.t.cfg.PingInterval)
	}
}

// queue hands a message to the writer; a full queue means the client does
// not read, and the socket is closed as too slow.
func (s *socket) queue(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queueLocked(msg)
}

func (s *socket) queueLocked(msg []byte) {
	switch {
	case s.core.EndedLocked():
	case len(s.out) >= s.t.cfg.QueueSize:
		s.core.EndLocked(wspolicy.CloseTooSlow, "too slow", true)
	default:
		s.out = append(s.out, msg)
		s.core.WakeLocked()
	}
}

// end decides how the socket ends, unless that is decided (see
// pushconn.Core.End).
func (s *socket) end(code int, reason string, send bool) {
	s.core.End(code, reason, send)
}

// Write is a writer (see pushconn.Transport): it does the work queued for
// it until none is left, and then returns, or, once the socket has ended,
// closes it.
func (s *socket) Write() {
	for {
		var out [][]byte
		var ready []*operation
		var ping bool
		switch s.core.Next(func() bool {
			out, ready, ping = s.out, s.ready, s.pingDue
			s.out, s.ready, s.pingDue = nil, nil, false
			for _, op := range ready {
				op.taken, op.pending, op.queued = op.pending, 0, false
			}
			return len(out) > 0 || len(ready) > 0 || ping
		}) {
		case pushconn.Rest:
			return
		case pushconn.Finish:
			s.flush()
			s.core.Finish()
			return
		}
		s.work(out, ready, ping)
	}
}

// flush sends what was queued before the end (a connection_error, the
// answer to a terminate) before the close frame.
func (s *socket) flush() {
	s.mu.Lock()
	out := s.out
	s.out = nil
	s.mu.Unlock()
	if e := s.core.Ending(); !e.SendClose || e.Code == wspolicy.CloseTooSlow {
		return
	}
	for _, msg := range out {
		if !s.send(msg) {
			return
		}
	}
}

// work writes what a writer took from the queue. A failed write ends the
// socket.
func (s *socket) work(out [][]byte, ready []*operation, ping bool) {
	for _, msg := range out {
		if !s.send(msg) {
			return
		}
	}
	if len(ready) > 0 {
		growStack()
		bp := msgBufs.Get().(*[]byte)
		for _, op := range ready {
			if !op.deliver(bp) {
				break
			}
		}
		msgBufs.Put(bp)
	}
	if ping {
		msg := msgKeepAlive
		if s.transportWS {
			msg = msgPing
		}
		s.send(msg)
	}
}

// msgBufs holds buffers for encoding a subscription's events.
var msgBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// send writes one text message within the write timeout; it reports
// whether it did, and ends the socket if not.
func (s *socket) send(msg []byte) bool {
	err := s.conn.SetWriteDeadline(time.Now().Add(s.t.cfg.Websocket.WriteTimeout))
	if err == nil {
		err = s.conn.WriteMessage(websocket.TextMessage, msg)
	}
	if err != nil {
		s.end(websocket.CloseAbnormalClosure, "write failed", false)
		return false
	}
	return true
}

// WriteClose sends the close frame (see pushconn.Transport).
func (s *socket) WriteClose(code int, reason string) error {
	return s.conn.WriteControl(websocket.CloseMessage, wspolicy.FormatClose(code, reason), time.Now().Add(s.t.cfg.Websocket.WriteTimeout))
}

// Close closes the connection (see pushconn.Transport).
func (s *socket) Close() error {
	return s.conn.Close()
}

// Closed is the last writer's, once the connection is closed: it ends the
// socket's context (and with it every operation's), stops its timers,
// waits for the reader and the goroutines it started, and reports the
// close to Config.Opened's function.
func (s *socket) Closed(info pushconn.CloseInfo) {
	s.cancel()
	s.mu.Lock()
	s.timersDone = true
	if s.initTimer != nil {
		s.initTimer.Stop()
	}
	if s.pingTimer != nil {
		s.pingTimer.Stop()
	}
	s.mu.Unlock()
	s.workers.Wait()
	if s.closed != nil {
		s.closed(info)
	}
}
