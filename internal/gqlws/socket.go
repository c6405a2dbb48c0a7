package gqlws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"
	"github.com/gorilla/websocket"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/internal/wsconn"
)

// socket is one open GraphQL socket. Its reader is a goroutine that waits
// for the client's messages and hands anything that needs the store or
// the executor to a goroutine of its own, so that its stack stays small.
// Its writer runs only while there is something to write (an answer, the
// events of a subscription, a ping, the close frame) and returns when
// nothing is left; at most one runs at a time. The last writer closes the
// socket (see close).
type socket struct {
	t           *Transport
	conn        *websocket.Conn
	exec        graphql.GraphExecutor
	transportWS bool // graphql-transport-ws, not the legacy protocol
	start       time.Time
	ctx         context.Context // ends when the socket closes, or at shutdown
	cancel      context.CancelFunc
	closed      func(CloseInfo) // Config.Opened's, or nil
	unwatch     func() bool     // stops watching for shutdown
	lastRead    atomic.Int64    // when the client last sent something, UnixNano
	// readClosed is closed when the reader returns: the client will send
	// nothing more.
	readClosed chan struct{}
	// workers counts the goroutines the reader starts (connection_init,
	// operations); they are waited for once the reader has returned.
	workers sync.WaitGroup

	mu         sync.Mutex
	initState  uint8           // initNone, initDone
	opCtx      context.Context // Config.Init's, from connection_ack on
	ops        map[string]*operation
	out        [][]byte     // messages for the writer, at most Config.QueueSize
	ready      []*operation // subscriptions with events for the writer
	pingDue    bool
	writing    bool // a writer runs, or the last one is closing the socket
	initTimer  *time.Timer
	pingTimer  *time.Timer
	timersDone bool // the socket has closed: no timer is to be set
	ended      bool // how it ends is decided; the writer acts on it
	code       int
	reason     string
	sendClose  bool // the writer is to send a close frame with code and reason
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
		start:       time.Now(),
		readClosed:  make(chan struct{}),
		ops:         make(map[string]*operation),
		writing:     true, // until open has set the socket going
	}
	var values context.Context
	if t.cfg.Values != nil {
		values = t.cfg.Values(r)
	} else {
		values = context.WithoutCancel(r.Context())
	}
	ctx, cancel := context.WithCancel(wsconn.SocketContext(t.cfg.Sockets.ctx, values))
	s.ctx, s.cancel = context.WithValue(ctx, socketKey{}, s), cancel
	return s
}

// open sets the socket going: its reader, the timeout of connection_init,
// and its end at shutdown.
func (s *socket) open() {
	s.conn.SetReadLimit(s.t.cfg.ReadLimit)
	s.lastRead.Store(time.Now().UnixNano())
	// Set before any writer may run: the last one calls it.
	s.unwatch = context.AfterFunc(s.t.cfg.Sockets.ctx, func() {
		s.end(websocket.CloseGoingAway, "server shutting down", true)
	})
	s.mu.Lock()
	s.initTimer = time.AfterFunc(s.t.cfg.InitTimeout, s.initTimedOut)
	s.writing = false
	if s.ended {
		s.wakeLocked()
	}
	s.mu.Unlock()
	go s.read()
}

// Close closes the socket that ctx belongs to (ctx is the socket's, or
// derived from it, such as the context of Config.Init and of the socket's
// resolvers) with a close frame with code and reason (cut to 123 bytes).
// It reports whether it did: false if ctx belongs to no socket, or if the
// socket was already closing. It is safe to call from any goroutine and
// never blocks: the socket's writer sends the frame.
func Close(ctx context.Context, code int, reason string) bool {
	s, _ := ctx.Value(socketKey{}).(*socket)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return false
	}
	s.endLocked(code, reason, true)
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
	if s.ended {
		return false
	}
	for id, op := range s.ops {
		s.stopLocked(op)
		// Past Config.QueueSize if need be: one message per operation,
		// once, and the writer sends them before the close frame.
		s.out = append(s.out, appendMessage(nil, id, typeError, payload))
	}
	s.endLocked(code, reason, true)
	return true
}

// read is the socket's reader: it handles the client's messages until the
// connection ends.
func (s *socket) read() {
	defer close(s.readClosed)
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
		s.lastRead.Store(time.Now().UnixNano())
		switch {
		case s.isEnded(): // once ending, only the client's close frame matters
		case typ == websocket.TextMessage && !utf8.Valid(b):
			s.end(websocket.CloseInvalidFramePayloadData, "invalid utf-8", true)
		default:
			s.message(b)
		}
	}
}

// readFailed ends the socket when its connection ended: the client's close
// frame (which gorilla/websocket has answered), a message over the read
// limit or a broken frame (which it has closed with 1009 or 1002), or a
// lost connection.
func (s *socket) readFailed(err error) {
	var ce *websocket.CloseError
	// 1006 is gorilla/websocket's name for a connection that ended without
	// a close frame.
	if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure {
		s.end(ce.Code, ce.Text, false)
		return
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		s.end(websocket.CloseMessageTooBig, "message too big", false)
	} else {
		s.end(websocket.CloseAbnormalClosure, "connection lost", false)
	}
	// Unblocks a writer stuck on a dead peer.
	_ = s.conn.Close()
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
	}
	s.mu.Unlock()
	if state != initNone {
		s.end(wsconn.CloseTooMany, "Too many initialisation requests", true)
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
		s.endLocked(CloseInitTimeout, "Connection initialisation timeout", true)
	}
}

// ping is the keepalive timer's: it has the writer send a ping (or a
// legacy ka), or drops a graphql-transport-ws client that has sent
// nothing, not even a pong, for two intervals.
func (s *socket) ping() {
	s.mu.Lock()
	defer s.mu.Unlock()
	iv := s.t.cfg.PingInterval
	switch {
	case s.ended || s.timersDone:
	case s.transportWS && time.Since(time.Unix(0, s.lastRead.Load())) > 2*iv:
		s.endLocked(websocket.CloseAbnormalClosure, "no pong", false)
	default:
		s.pingDue = true
		s.wakeLocked()
		s.pingTimer.Reset(iv)
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
	case s.ended:
	case len(s.out) >= s.t.cfg.QueueSize:
		s.endLocked(wsconn.CloseTooSlow, "too slow", true)
	default:
		s.out = append(s.out, msg)
		s.wakeLocked()
	}
}

// end decides how the socket ends, unless that is decided, and has a
// writer act on it. send says whether the writer is to send a close frame
// with code and reason.
func (s *socket) end(code int, reason string, send bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(code, reason, send)
}

func (s *socket) endLocked(code int, reason string, send bool) {
	if s.ended {
		return
	}
	s.ended, s.code, s.reason, s.sendClose = true, code, reason, send
	s.wakeLocked()
}

func (s *socket) isEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// wakeLocked starts a writer for the work just added, unless one runs.
// The caller holds mu.
func (s *socket) wakeLocked() {
	if !s.writing {
		s.writing = true
		go s.write()
	}
}

// write is a writer: it does the work queued for it until none is left,
// and then returns, or, once the socket has ended, closes it.
func (s *socket) write() {
	for {
		s.mu.Lock()
		if s.ended {
			// What was queued before the end (a connection_error, the
			// answer to a terminate) goes before the close frame.
			out, flush := s.out, s.sendClose && s.code != wsconn.CloseTooSlow
			s.out = nil
			s.mu.Unlock()
			for _, msg := range out {
				if !flush || !s.send(msg) {
					break
				}
			}
			s.close()
			return
		}
		out, ready, ping := s.out, s.ready, s.pingDue
		s.out, s.ready, s.pingDue = nil, nil, false
		for _, op := range ready {
			op.taken, op.pending, op.queued = op.pending, 0, false
		}
		if len(out) == 0 && len(ready) == 0 && !ping {
			s.writing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.work(out, ready, ping)
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

// close is the last writer's last act, once the socket has ended: it
// sends the close frame if the end calls for one and gives the client
// CloseTimeout to answer it (reading goes on meanwhile), closes the
// connection, ends the socket's context (and with it every operation),
// waits for the reader and the goroutines it started, and counts the
// socket out.
func (s *socket) close() {
	if s.sendClose {
		err := s.conn.WriteControl(websocket.CloseMessage, wsconn.FormatClose(s.code, s.reason), time.Now().Add(s.t.cfg.Websocket.WriteTimeout))
		if err == nil {
			t := time.NewTimer(s.t.cfg.CloseTimeout)
			select {
			case <-s.readClosed:
			case <-t.C:
			}
			t.Stop()
		}
	}
	_ = s.conn.Close()
	// Before waiting for the reader, which may be waiting for Init's
	// store calls: they end with the socket.
	s.cancel()
	<-s.readClosed
	s.unwatch()
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
		s.closed(CloseInfo{Code: s.code, Reason: s.reason, Duration: time.Since(s.start)})
	}
	s.t.cfg.Sockets.done()
}
