package plainws

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/admit"
	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/plainframe"
	"github.com/pulse-social/pulse/internal/pushconn"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// socket is one open plain socket. It has no goroutine of its own while
// idle. Its reader runs when the client has sent something: started by
// the handler's poller (see poller), it reads what has come and returns.
// Its writer runs when there is something to write (the backlog, a
// notification, a reply, a ping, the close frame) and returns when nothing
// is left; at most one runs at a time, and it owns the feed. The last
// writer closes the socket. The core (see pushconn) holds how the socket
// ends and starts its writers.
type socket struct {
	h        *Handler
	conn     *websocket.Conn
	raw      syscall.RawConn // conn's, for reads that do not wait
	ctx      context.Context // ends at server shutdown; see wspolicy.SocketContext
	userID   int64
	pingSlot *map[*socket]struct{} // the tracker's, between join and leave
	changes  bool                  // ?changes=1: every change, not additions only
	opened   func()                // counts the socket out of the metrics
	adm      *admit.Conn           // its slots, session and feed (the writer's)
	pollID   uint64                // the socket's key at the poller; 0 if none

	frames  frameReader // the reader's
	out     *[]byte     // the writer's: text frames not yet written, from outBufs
	refused int         // the reader's: messages refused in a row
	// readers counts the running readers; it is waited for once reading
	// has stopped.
	readers sync.WaitGroup

	mu   sync.Mutex // guards core and the fields below
	core pushconn.Core
	// The writer's work: the backlog (the first writer's), live events
	// from the feed (at most its QueueSize), replies to the client's
	// frames (at most Config.ReplyQueue), a ping that is due.
	backlog bool
	events  []social.Event
	replies []reply
	pingDue bool
	// readDone is set once the connection is closed: no reader starts
	// after.
	readDone bool
}

// reply is what the reader asks the writer to send: a frame, or a pong
// websocket frame answering the client's ping.
type reply struct {
	pong bool
	data []byte
}

// open starts serving the socket: it counts it in, has the poller (or,
// without one, a goroutine of the socket's) read, has the server's
// shutdown end it, and starts the first writer, which sends the backlog.
// Nothing can close the socket before: only a writer does.
func (s *socket) open() {
	s.opened = s.h.metrics.SocketOpened(metrics.Plain)
	if p := s.h.sockets.join(s); p == nil || p.add(s) != nil {
		s.readers.Add(1)
		go s.readLoop()
	}
	s.core.Open(true)
}

// readLoop is the socket's reader when there is no poller: a goroutine
// that waits in Read for as long as the socket is open.
func (s *socket) readLoop() {
	defer s.readers.Done()
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	for {
		n, err := s.conn.NetConn().Read(*bp)
		if n > 0 && !s.received((*bp)[:n]) {
			return
		}
		if err != nil {
			s.readFailed()
			return
		}
	}
}

// readBufs holds the buffers that readers read into.
var readBufs = sync.Pool{New: func() any {
	b := make([]byte, 4096)
	return &b
}}

// received handles bytes from the client; it returns false when the
// client will send nothing more that matters.
func (s *socket) received(b []byte) bool {
	s.core.Heard()
	keep := true
	if err := s.frames.read(b, func(op byte, payload []byte) bool {
		keep = s.frame(op, payload)
		return keep
	}); err != nil {
		// Anything more is dropped until the client closes: the close
		// frame answers it.
		s.end(err.code, err.reason, true)
	}
	return keep
}

// frame handles one complete websocket message or control frame of the
// client; it returns false after the client's close frame.
func (s *socket) frame(op byte, payload []byte) bool {
	switch op {
	case opClose:
		code, reason, err := parseClose(payload)
		if err != nil {
			s.end(err.code, err.reason, true)
		} else {
			// Echo the client's code.
			s.end(code, reason, true)
		}
		s.core.ReadStopped()
		return false
	case opPing:
		s.reply(reply{pong: true, data: bytes.Clone(payload)})
	case opPong:
	default:
		if !s.core.Ended() { // once ending, only the client's close frame matters
			s.handle(int(op), payload)
		}
	}
	return true
}

// readFailed ends the socket when its connection failed or the client
// closed it without a close frame (or after it, if the socket ended
// first).
func (s *socket) readFailed() {
	s.core.Lost(websocket.CloseAbnormalClosure, reasonConnectionLost)
}

// end records how the socket ends and has a writer act on it; the first
// call wins (see pushconn.Core.End).
func (s *socket) end(code int, reason string, send bool) {
	s.core.End(code, reason, send)
}

// onEvent is the feed's function: it queues a live event for the writer,
// or ends the socket as too slow when the queue is full. It is called with
// the broker's lock held and never blocks.
func (s *socket) onEvent(ev social.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.core.EndedLocked() {
		return
	}
	if len(s.events) >= s.adm.Feed().QueueSize() {
		s.core.EndLocked(wspolicy.CloseTooSlow, reasonTooSlow, true)
		return
	}
	s.events = append(s.events, ev)
	s.core.WakeLocked()
}

// expired is called by the timer of the session's expiry.
func (s *socket) expired() {
	s.end(wspolicy.CloseTokenExpired, wspolicy.ReasonTokenExpired, true)
}

// onFeedEnded is called, under the broker's lock, when the broker ends
// the feed's subscription: it is shutting down.
func (s *socket) onFeedEnded() {
	s.end(wspolicy.CloseShuttingDown, wspolicy.ReasonShuttingDown, true)
}

// ping is called by the tracker when the socket's ping is due. A client
// that has sent nothing, not even a pong, for two ping intervals is
// dropped (see pushconn.Core.PingLocked).
func (s *socket) ping() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.core.PingLocked(true) {
		s.pingDue = true
		s.core.WakeLocked()
	}
}

// reply queues a frame for the writer; a full queue means the client does
// not read, and the socket is closed as too slow.
func (s *socket) reply(r reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.core.EndedLocked():
	case len(s.replies) >= s.h.replyQueue:
		s.core.EndLocked(wspolicy.CloseTooSlow, reasonTooSlow, true)
	default:
		s.replies = append(s.replies, r)
		s.core.WakeLocked()
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
		if !s.allowMessage(f.text) {
			return
		}
		if err := s.h.svc.SendMessage(s.ctx, s.userID, f.text); err != nil {
			s.replyError(errorFrame{Error: social.ErrorMessage(err)})
		}
	case framePing:
		s.reply(reply{data: pongFrame})
	default:
		s.replyError(errorFrame{Error: f.text})
	}
}

// The close reason of a socket whose client goes on sending messages past
// the budget.
const reasonTooManyMessages = "too many messages"

// allowMessage charges a message to its user's budgets (Config.Messages
// and MessageBytes). Past them it answers RATE_LIMITED, or closes the
// socket when the client has gone on sending. Text over
// social.MessageMaxBytes passes, for SendMessage to refuse.
func (s *socket) allowMessage(text string) bool {
	if len(text) > social.MessageMaxBytes {
		return true
	}
	key := limit.UserKey(s.userID)
	why := "too many messages"
	ok, wait := s.h.messages.Allow(key)
	if ok {
		why = "too much message text"
		ok, wait = s.h.messageBytes.AllowN(key, len(text))
	}
	if ok {
		s.refused = 0
		return true
	}
	s.h.metrics.RateLimited("message")
	if s.refused++; s.refused > s.h.refusedMax {
		s.end(wspolicy.CloseTooMany, reasonTooManyMessages, true)
		return false
	}
	secs := limit.RetryAfterSeconds(wait)
	s.replyError(errorFrame{
		Error:      fmt.Sprintf("rate limited: %s; try again in %d s", why, secs),
		Code:       string(social.CodeRateLimited),
		RetryAfter: secs,
	})
	return false
}

// errorFrame answers a frame the socket does not carry out.
type errorFrame struct {
	Error      string `json:"error"`
	Code       string `json:"code,omitempty"`        // RATE_LIMITED, or none
	RetryAfter int    `json:"retry_after,omitempty"` // seconds, with RATE_LIMITED
}

func (s *socket) replyError(e errorFrame) {
	b, _ := json.Marshal(e)
	s.reply(reply{data: b})
}

// Write is a writer (see pushconn.Transport): it does the work queued for
// it until none is left, and then returns, or, once the socket has ended,
// closes it. The backlog goes before anything else.
func (s *socket) Write() {
	for {
		var backlog, ping bool
		var events []social.Event
		var replies []reply
		switch s.core.Next(func() bool {
			backlog, events, replies, ping = s.backlog, s.events, s.replies, s.pingDue
			s.backlog, s.events, s.replies, s.pingDue = false, nil, nil, false
			return backlog || len(events) > 0 || len(replies) > 0 || ping
		}) {
		case pushconn.Rest:
			return
		case pushconn.Finish:
			s.core.Finish()
			return
		}
		// A socket that ends goes round once more, to Finish.
		if !backlog || s.catchup() {
			s.work(events, replies, ping)
		}
		if s.flush() != nil {
			s.writeFailed()
		}
	}
}

// work writes what a writer took from the queue, until the socket ends.
func (s *socket) work(events []social.Event, replies []reply, ping bool) {
	for _, r := range replies {
		var err error
		if r.pong {
			err = s.control(websocket.PongMessage, r.data)
		} else {
			err = s.send(r.data)
		}
		if err != nil {
			s.writeFailed()
			return
		}
	}
	for i := range events {
		if !s.event(&events[i]) {
			return
		}
	}
	if ping && s.control(websocket.PingMessage, nil) != nil {
		s.writeFailed()
		return
	}
}

// WriteClose sends the close frame (see pushconn.Transport), after the
// text frames queued before it.
func (s *socket) WriteClose(code int, reason string) error {
	return s.control(websocket.CloseMessage, wspolicy.FormatClose(code, reason))
}

// Close stops reading and closes the connection (see pushconn.Transport):
// the poller forgets the socket first, and no reader starts after.
func (s *socket) Close() error {
	s.mu.Lock()
	s.readDone = true
	s.mu.Unlock()
	s.h.sockets.unpoll(s)
	return s.conn.Close()
}

// Closed is the last writer's, once the connection is closed: it waits
// for the readers, releases the feed, the session and the slots under the
// caps, and counts the socket out: metrics, log line and the tracker.
func (s *socket) Closed(info pushconn.CloseInfo) {
	s.readers.Wait()
	s.adm.Release()

	s.opened()
	if info.Code == wspolicy.CloseTooSlow {
		s.h.metrics.SlowCutoff(metrics.Plain)
	}
	s.h.log.InfoContext(s.ctx, "plain socket closed", "path", redactedPath, "user_id", s.userID,
		"code", info.Code, "reason", info.Reason, "duration", info.Duration)
	s.h.sockets.leave(s)
}

// event handles one live event; it returns false when the socket ends.
func (s *socket) event(ev *social.Event) bool {
	switch ev.Kind {
	case social.EventNotification, social.EventChange, social.EventResync:
		return s.read(ev)
	case social.EventMessage:
		if s.send(ev.Encodings.Get(plainframe.Message{}, ev)) != nil {
			s.writeFailed()
			return false
		}
	case social.EventRevoke, social.EventRefresh:
		if s.adm.Observe(*ev) {
			s.finish(wspolicy.CloseLoggedOut, wspolicy.ReasonLoggedOut)
			return false
		}
	}
	return true
}

// catchup sends the stored changes the feed has not returned yet; it
// returns false when the socket ends.
func (s *socket) catchup() bool { return s.read(nil) }

// read writes what ev brings, or the backlog for nil (see
// social.Feed.Read); it returns false when the socket ends.
func (s *socket) read(ev *social.Event) bool {
	err := s.adm.Feed().Read(s.ctx, ev, s)
	if err == nil {
		return true
	}
	if !errors.Is(err, errEnded) {
		s.storeFailed(err)
	}
	return false
}

// errEnded stops a read once the socket has ended.
var errEnded = errors.New("socket ended")

// WriteChange sends c (see social.ChangeWriter): every change with
// ?changes=1, else the ADDED ones only, as today's notification frames
// (see plainframe.Write).
func (s *socket) WriteChange(c *social.Change, live *social.Event) error {
	if c.Kind != social.ChangeAdded && !s.changes {
		return nil
	}
	if s.core.Ended() {
		return errEnded
	}
	err := plainframe.Write(c, live, s.changes, func(frame []byte) error {
		if s.send(frame) != nil {
			s.writeFailed()
			return errEnded
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.Kind == social.ChangeAdded {
		s.h.metrics.Delivered(metrics.Plain, plainframe.LiveNotification(live, c).Published())
	}
	return nil
}

// maxPending is how many bytes of websocket text frames a writer gathers
// before it writes them.
const maxPending = 32 << 10

// outBufs holds the buffers in which a writer gathers its websocket text
// frames; an idle socket holds none.
var outBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// send queues one websocket text frame holding payload, a frame, for the
// writer's next flush, which comes before the writer rests,
// before a control frame, and once maxPending bytes are waiting: what one
// wake of the writer sends (a backlog, a burst of notifications) leaves in
// one write system call rather than one each.
func (s *socket) send(payload []byte) error {
	if s.out == nil {
		s.out = outBufs.Get().(*[]byte)
	}
	*s.out = appendTextFrame(*s.out, payload)
	if len(*s.out) >= maxPending {
		return s.flush()
	}
	return nil
}

// flush writes the websocket text frames that send queued, within the
// write timeout, and gives their buffer back.
func (s *socket) flush() error {
	if s.out == nil {
		return nil
	}
	bp := s.out
	s.out = nil
	defer func() {
		if cap(*bp) <= 4*maxPending {
			*bp = (*bp)[:0]
			outBufs.Put(bp)
		}
	}()
	c := s.conn.NetConn()
	if err := c.SetWriteDeadline(time.Now().Add(s.h.writeTimeout)); err != nil {
		return err
	}
	_, err := c.Write(*bp)
	return err
}

// control writes a control frame after the websocket text frames queued
// before it.
func (s *socket) control(typ int, data []byte) error {
	if err := s.flush(); err != nil {
		return err
	}
	return s.conn.WriteControl(typ, data, time.Now().Add(s.h.writeTimeout))
}

// appendTextFrame appends a final, unmasked text frame holding payload, as
// a server sends it (RFC 6455, section 5.2).
func appendTextFrame(b, payload []byte) []byte {
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x81, byte(n))
	case n <= 0xffff:
		b = append(b, 0x81, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x81, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// storeFailed ends the socket after a store error: 1001 if the server is
// shutting down, else 1011 (and the error is logged).
func (s *socket) storeFailed(err error) {
	if s.ctx.Err() != nil {
		s.finish(wspolicy.CloseShuttingDown, wspolicy.ReasonShuttingDown)
		return
	}
	s.h.log.ErrorContext(s.ctx, "plain socket: read notifications", "path", redactedPath, "user_id", s.userID, "err", err)
	s.finish(websocket.CloseInternalServerErr, reasonInternalError)
}

// finish ends the socket from the writer's side with a close frame (or
// as the reader decided, if it did first).
func (s *socket) finish(code int, reason string) {
	s.end(code, reason, true)
}

// writeFailed ends the socket after a failed write: the connection is
// broken, so it is closed without a close frame.
func (s *socket) writeFailed() {
	s.end(websocket.CloseAbnormalClosure, reasonWriteFailed, false)
}
