package plainws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/wsconn"
)

// socket is one open plain socket. Its own goroutine reads (run). Every
// write is made by its writer: a goroutine started when there is something
// to write (a notification, a reply, a ping, the close frame) and gone
// when nothing is left, so that an idle socket holds no goroutine for it.
// At most one writer runs at a time; it owns the feed.
type socket struct {
	h         *Handler
	conn      *websocket.Conn
	ctx       context.Context // ends at server shutdown; see socketContext
	start     time.Time       // when the handshake began
	userID    int64
	tokenHash []byte
	pingSlot  *map[*socket]struct{} // the tracker's, between join and leave
	feed      *social.Feed          // the writer's
	releases  []func()              // the socket's slots under the caps

	// finished is closed by the last writer, once it has sent the close
	// frame (if the end calls for one) and closed the feed.
	finished chan struct{}

	mu sync.Mutex
	// The writer's work, guarded by mu: live events from the feed (at most
	// Config.EventQueue), replies to the client's frames (at most
	// Config.ReplyQueue), a ping that is due.
	events  []social.Event
	replies []reply
	pingDue bool
	writing bool // a writer runs, or the last one has finished
	// How the socket ends, set once by end: whichever side sees it first
	// decides. sendClose says whether the writer must still send the close
	// frame.
	ended     bool
	code      int
	reason    string
	sendClose bool
	// closing is set once the close frame is sent: the read deadline is
	// then the short wait for the client's answer, and no pong may extend
	// it.
	closing bool
}

// reply is a frame the reader asks the writer to send: a text frame, or a
// pong control frame answering the client's ping.
type reply struct {
	pong bool
	data []byte
}

// socketContext is the context of a socket, whose handler call returns
// before it ends: the values of the socket's own upgrade request (the
// request id in the logs), and the end of Config.Context, which comes at
// server shutdown.
type socketContext struct {
	context.Context                 // Config.Context
	values          context.Context // the socket's own, without its end
}

func (c socketContext) Value(key any) any { return c.values.Value(key) }

// AfterFunc lets a context derived from c follow its end without a
// goroutine of its own (see context.AfterFunc).
func (c socketContext) AfterFunc(f func()) (stop func() bool) {
	return context.AfterFunc(c.Context, f)
}

// run serves the socket: it starts the first writer, which sends the
// backlog, reads on the goroutine it is called on, and waits for the last
// writer. Then it counts the socket out: metrics, log line, slots under
// the caps, and the tracker.
func (s *socket) run() {
	closed := s.h.metrics.SocketOpened(metrics.Plain)
	stopShutdown := context.AfterFunc(s.h.ctx, func() {
		s.end(websocket.CloseGoingAway, reasonShuttingDown, true)
	})
	go s.write(true)
	err := s.read()
	tooBig := errors.Is(err, websocket.ErrReadLimit)
	s.mu.Lock()
	sendClose := s.sendClose
	s.mu.Unlock()
	if !sendClose && !tooBig {
		// No close frame is coming: unblock a writer stuck on a dead peer.
		_ = s.conn.Close()
	}
	<-s.finished
	stopShutdown()
	if tooBig {
		s.drain()
	}
	_ = s.conn.Close()

	closed()
	if s.code == closeTooSlow {
		s.h.metrics.SlowCutoff(metrics.Plain)
	}
	s.h.log.InfoContext(s.ctx, "plain socket closed", "path", redactedPath, "user_id", s.userID,
		"code", s.code, "reason", s.reason, "duration", time.Since(s.start))
	for _, release := range s.releases {
		release()
	}
	s.h.sockets.leave(s)
}

// end records how the socket ends and has a writer act on it; the first
// call wins. send says whether the writer is to send a close frame with
// code and reason.
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

// wakeLocked starts a writer for the work just added, unless one runs.
// The caller holds mu.
func (s *socket) wakeLocked() {
	if !s.writing {
		s.writing = true
		go s.write(false)
	}
}

func (s *socket) ending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// onEvent is the feed's function: it queues a live event for the writer,
// or ends the socket as too slow when the queue is full. It is called with
// the broker's lock held and never blocks.
func (s *socket) onEvent(ev social.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if len(s.events) >= s.h.eventQueue {
		s.endLocked(closeTooSlow, reasonTooSlow, true)
		return
	}
	s.events = append(s.events, ev)
	s.wakeLocked()
}

// onFeedEnded is called, under the broker's lock, when the broker ends
// the feed's subscription: it is shutting down.
func (s *socket) onFeedEnded() {
	s.end(websocket.CloseGoingAway, reasonShuttingDown, true)
}

// ping is called by the tracker when the socket's ping is due.
func (s *socket) ping() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.pingDue = true
		s.wakeLocked()
	}
}

// read is the reader loop. It returns the error that ended it, after
// recording how the socket ends.
func (s *socket) read() error {
	s.conn.SetReadLimit(ReadLimit)
	s.conn.SetPongHandler(func(string) error {
		s.extendDeadline()
		return nil
	})
	s.conn.SetPingHandler(func(data string) error {
		s.reply(reply{pong: true, data: []byte(data)})
		return nil
	})
	// The writer answers the client's close frame; see readFailed.
	s.conn.SetCloseHandler(func(int, string) error { return nil })
	s.extendDeadline()
	for {
		typ, r, err := s.conn.NextReader()
		if err != nil {
			s.readFailed(err)
			return err
		}
		s.extendDeadline()
		if s.ending() {
			continue // only the client's close frame matters now
		}
		b, err := io.ReadAll(r)
		if err != nil {
			continue // NextReader returns the error again
		}
		// The frame is answered on a goroutine of its own, which the
		// reader waits for: what that takes (JSON, the service) would grow
		// the reader's stack for good, and an idle socket would hold it.
		handled := make(chan struct{})
		go func() {
			defer close(handled)
			s.handle(typ, b)
		}()
		<-handled
	}
}

// extendDeadline gives the client two ping intervals to send something,
// unless the socket is closing.
func (s *socket) extendDeadline() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		_ = s.conn.SetReadDeadline(time.Now().Add(2 * s.h.pingInterval))
	}
}

func (s *socket) readFailed(err error) {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		// The client closed, or answered our close (then end is a no-op):
		// echo its code.
		s.end(ce.Code, ce.Text, true)
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has sent 1009.
		s.end(websocket.CloseMessageTooBig, reasonMessageTooBig, false)
	case errors.As(err, &ne) && ne.Timeout():
		s.end(websocket.CloseAbnormalClosure, reasonNoPong, false)
	default:
		s.end(websocket.CloseAbnormalClosure, reasonConnectionLost, false)
	}
}

// drain reads and drops what the client still sends, until it closes or
// CloseTimeout passes, so that closing the connection with unread data does
// not reset it before the client has read the close frame.
func (s *socket) drain() {
	nc := s.conn.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(s.h.closeTimeout))
	_, _ = io.Copy(io.Discard, nc)
}

// reply queues a frame for the writer; a full queue means the client does
// not read, and the socket is closed as too slow.
func (s *socket) reply(r reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ended:
	case len(s.replies) >= s.h.replyQueue:
		s.endLocked(closeTooSlow, reasonTooSlow, true)
	default:
		s.replies = append(s.replies, r)
		s.wakeLocked()
	}
}

var pongFrame = []byte(`{"type":"pong"}`)

// frameKind is what a client's frame asks for.
type frameKind uint8

const (
	frameInvalid frameKind = iota // answered with {"error": why}
	frameMessage                  // {"message": text}: send text to the user's sockets
	framePing                     // {"type": "ping"}: answer with a pong
)

// clientFrame is a client's frame, understood.
type clientFrame struct {
	kind frameKind
	// text is the message for frameMessage, and why the frame is not
	// understood for frameInvalid.
	text string
}

// parseFrame understands one frame of the client: its websocket message
// type and its payload. It never fails: what it does not understand is
// frameInvalid with the reason.
func parseFrame(typ int, b []byte) clientFrame {
	invalid := func(why string) clientFrame { return clientFrame{kind: frameInvalid, text: why} }
	if typ != websocket.TextMessage {
		return invalid("binary frames are not supported: send JSON text")
	}
	if !json.Valid(b) {
		return invalid("invalid JSON")
	}
	if b = bytes.TrimSpace(b); b[0] != '{' {
		return invalid("expected a JSON object")
	}
	var f struct {
		Message json.RawMessage `json:"message"`
		Type    json.RawMessage `json:"type"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return invalid("invalid JSON")
	}
	switch {
	case f.Message != nil:
		var text string
		if f.Message[0] != '"' || json.Unmarshal(f.Message, &text) != nil {
			return invalid(`"message" must be a string`)
		}
		return clientFrame{kind: frameMessage, text: text}
	case f.Type != nil:
		var typ string
		if f.Type[0] != '"' || json.Unmarshal(f.Type, &typ) != nil {
			return invalid(`"type" must be a string`)
		}
		if typ != "ping" {
			return invalid(`unknown type: the only one is "ping"`)
		}
		return clientFrame{kind: framePing}
	default:
		return invalid(`expected {"message": "..."} or {"type": "ping"}`)
	}
}

// handle answers one frame of the client.
func (s *socket) handle(typ int, b []byte) {
	f := parseFrame(typ, b)
	switch f.kind {
	case frameMessage:
		if err := s.h.svc.SendMessage(s.ctx, s.userID, f.text); err != nil {
			s.replyError(social.ErrorMessage(err))
		}
	case framePing:
		s.reply(reply{data: pongFrame})
	default:
		s.replyError(f.text)
	}
}

func (s *socket) replyError(why string) {
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{why})
	s.reply(reply{data: b})
}

// write is a writer: it does the work queued for it until none is left,
// and then returns, or, once the socket has ended, sends the close frame
// if it is to, closes the feed and finishes the socket. The first writer
// (first) sends the backlog before anything else.
func (s *socket) write(first bool) {
	if first && !s.catchup() {
		s.writerDone()
		return
	}
	for {
		s.mu.Lock()
		if s.ended {
			s.mu.Unlock()
			s.writeClose()
			s.writerDone()
			return
		}
		events, replies, ping := s.events, s.replies, s.pingDue
		s.events, s.replies, s.pingDue = nil, nil, false
		if len(events) == 0 && len(replies) == 0 && !ping {
			s.writing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if !s.work(events, replies, ping) {
			s.writerDone()
			return
		}
	}
}

// work writes what a writer took from the queue; it returns false when
// the socket ends.
func (s *socket) work(events []social.Event, replies []reply, ping bool) bool {
	for _, r := range replies {
		var err error
		if r.pong {
			err = s.conn.WriteControl(websocket.PongMessage, r.data, time.Now().Add(s.h.writeTimeout))
		} else {
			err = s.send(r.data)
		}
		if err != nil {
			s.writeFailed()
			return false
		}
	}
	for _, ev := range events {
		if !s.event(ev) {
			return false
		}
	}
	if ping && s.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.h.writeTimeout)) != nil {
		s.writeFailed()
		return false
	}
	return true
}

// writerDone is the last writer's last act, once the socket has ended and
// its close frame, if any, is sent: the socket writes nothing more.
func (s *socket) writerDone() {
	s.feed.Close()
	close(s.finished)
}

// event handles one live event; it returns false when the socket ends.
func (s *socket) event(ev social.Event) bool {
	switch ev.Kind {
	case social.EventNotification:
		ns, err := s.feed.Admit(s.ctx, ev)
		if !s.sendNotifications(ns, ev) {
			return false
		}
		if err != nil {
			s.storeFailed(err)
			return false
		}
	case social.EventMessage:
		if s.send(ev.Frame) != nil {
			s.writeFailed()
			return false
		}
	case social.EventRevoke:
		if bytes.Equal(ev.TokenHash, s.tokenHash) {
			s.finish(closeInvalidToken, reasonRevoked)
			return false
		}
	case social.EventResync:
		return s.catchup()
	}
	return true
}

// catchup sends the stored notifications the feed has not returned yet,
// until it has none; it returns false when the socket ends.
func (s *socket) catchup() bool {
	for {
		if s.ending() {
			s.writeClose()
			return false
		}
		ns, err := s.feed.Catchup(s.ctx)
		if err != nil {
			s.storeFailed(err)
			return false
		}
		if len(ns) == 0 {
			return true
		}
		if !s.sendNotifications(ns, social.Event{}) {
			return false
		}
	}
}

// frameBufs holds buffers for encoding notifications that come from the
// store; live ones come encoded.
var frameBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// sendNotifications sends ns in order: ev's own notification as ev.Frame,
// encoded once for all of the recipient's sockets, any other one encoded
// here. It returns false when a write failed.
func (s *socket) sendNotifications(ns []social.Notification, ev social.Event) bool {
	if len(ns) == 0 {
		return true
	}
	bp := frameBufs.Get().(*[]byte)
	defer frameBufs.Put(bp)
	for i := range ns {
		n := &ns[i]
		var frame []byte
		if ev.Notification != nil && n.ID == ev.Notification.ID && len(ev.Frame) > 0 {
			frame = ev.Frame
		} else {
			*bp = social.AppendFrame((*bp)[:0], n)
			frame = *bp
		}
		if s.send(frame) != nil {
			s.writeFailed()
			return false
		}
		var publishedAt time.Time
		if ev.Notification != nil && n.ID == ev.Notification.ID {
			publishedAt = ev.PublishedAt
		}
		s.h.metrics.Delivered(metrics.Plain, publishedAt)
	}
	return true
}

// send writes one text frame within the write timeout.
func (s *socket) send(frame []byte) error {
	if err := s.conn.SetWriteDeadline(time.Now().Add(s.h.writeTimeout)); err != nil {
		return err
	}
	return s.conn.WriteMessage(websocket.TextMessage, frame)
}

// storeFailed ends the socket after a store error: 1001 if the server is
// shutting down, else 1011 (and the error is logged).
func (s *socket) storeFailed(err error) {
	if s.ctx.Err() != nil {
		s.finish(websocket.CloseGoingAway, reasonShuttingDown)
		return
	}
	s.h.log.ErrorContext(s.ctx, "plain socket: read notifications", "path", redactedPath, "user_id", s.userID, "err", err)
	s.finish(websocket.CloseInternalServerErr, reasonInternalError)
}

// finish ends the socket from the writer's side and sends the close frame
// (or, if the reader decided first, whatever it decided).
func (s *socket) finish(code int, reason string) {
	s.end(code, reason, true)
	s.writeClose()
}

// writeFailed ends the socket after a failed write: the connection is
// broken, so it is closed without a close frame, which also stops the
// reader.
func (s *socket) writeFailed() {
	s.end(websocket.CloseAbnormalClosure, reasonWriteFailed, false)
	_ = s.conn.Close()
}

// writeClose sends the close frame if the socket's end calls for one, then
// gives the client CloseTimeout to answer it. If the frame cannot be sent
// the connection is closed at once. Only the writer calls it, after end.
func (s *socket) writeClose() {
	if !s.sendClose {
		return
	}
	err := s.conn.WriteControl(websocket.CloseMessage, wsconn.FormatClose(s.code, s.reason), time.Now().Add(s.h.writeTimeout))
	if err != nil {
		_ = s.conn.Close()
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	_ = s.conn.SetReadDeadline(time.Now().Add(s.h.closeTimeout))
}
