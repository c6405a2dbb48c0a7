package ssepush

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/pulse-social/pulse/internal/admit"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/plainframe"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// reasonConnectionLost is how a stream ends, in its log line, when a write
// fails or the client goes away: no "event: closed" is sent.
const reasonConnectionLost = "connection lost"

var (
	retryField  = []byte("retry: " + strconv.Itoa(Retry) + "\n\n")
	pingComment = []byte(": ping\n\n")
	eventEnd    = []byte("\n\n")
)

// stream is one open event stream. Its writer is the ServeHTTP call that
// serves it, the only goroutine that writes to it; the feed's function and
// the session's timer queue work for it and wake it.
type stream struct {
	h       *Handler
	adm     *admit.Conn
	w       http.ResponseWriter
	rc      *http.ResponseController
	ctx     context.Context // the request's
	changes bool            // ?changes=1: every change, not additions only
	wake    chan struct{}   // one slot: there is work in the queue
	head    [64]byte        // the writer's: an event's id and event fields

	mu sync.Mutex // guards the fields below
	// events are the feed's live events not yet written, at most its
	// QueueSize.
	events []social.Event
	reason string // why the stream ends, once that is decided
}

func newStream(h *Handler, w http.ResponseWriter, r *http.Request, adm *admit.Conn) *stream {
	return &stream{
		h:       h,
		adm:     adm,
		w:       w,
		rc:      http.NewResponseController(w),
		ctx:     r.Context(),
		changes: r.URL.Query().Get("changes") == "1",
		wake:    make(chan struct{}, 1),
	}
}

// serve writes the stream until it ends, and returns why: the reason of
// its "event: closed", or reasonConnectionLost.
func (s *stream) serve(backlog bool) string {
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
	if !s.write(retryField) {
		return reasonConnectionLost
	}
	if backlog {
		if r := s.read(nil); r != "" {
			return s.close(r)
		}
	}
	ping := time.NewTicker(s.h.pingInterval)
	defer ping.Stop()
	for {
		if !s.flush() {
			return reasonConnectionLost
		}
		select {
		case <-s.wake:
			if r := s.work(); r != "" {
				return s.close(r)
			}
		case <-ping.C:
			if !s.write(pingComment) {
				return reasonConnectionLost
			}
		case <-s.h.shutdown.Done():
			return s.close(wspolicy.ReasonShuttingDown)
		case <-s.ctx.Done():
			// The server's requests end with its shutdown context, at
			// once: which of the two a select sees first is chance.
			if s.h.shutdown.Err() != nil {
				return s.close(wspolicy.ReasonShuttingDown)
			}
			return reasonConnectionLost
		}
	}
}

// work writes the live events queued, or returns why the stream ends.
func (s *stream) work() string {
	s.mu.Lock()
	events, reason := s.events, s.reason
	s.events = nil
	s.mu.Unlock()
	if reason != "" {
		return reason
	}
	for i := range events {
		if r := s.event(&events[i]); r != "" {
			return r
		}
	}
	return ""
}

// event writes what one live event brings; it returns why the stream
// ends, if it does.
func (s *stream) event(ev *social.Event) string {
	switch ev.Kind {
	case social.EventNotification, social.EventChange, social.EventResync:
		return s.read(ev)
	case social.EventRevoke, social.EventRefresh:
		if s.adm.Observe(*ev) {
			return wspolicy.ReasonLoggedOut
		}
	}
	return ""
}

// errLost stops a read once a write failed, and errEnded once the stream
// has ended (see ended).
var (
	errLost  = errors.New("stream lost")
	errEnded = errors.New("stream ended")
)

// read writes what ev brings, or the backlog for nil (see
// social.Feed.Read); it returns why the stream ends, if it does.
func (s *stream) read(ev *social.Event) string {
	err := s.adm.Feed().Read(s.ctx, ev, s)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errEnded):
		return s.ended()
	case s.h.shutdown.Err() != nil:
		return wspolicy.ReasonShuttingDown
	case errors.Is(err, errLost), s.ctx.Err() != nil:
		return reasonConnectionLost
	}
	s.h.log.ErrorContext(s.ctx, "event stream: read notifications", "user_id", s.adm.UserID(), "err", err)
	return reasonInternal
}

// WriteChange writes c as one event (see social.ChangeWriter): its cursor
// as the id, its kind as the event type, and its plain socket frame as
// the data (see plainframe.Write).
func (s *stream) WriteChange(c *social.Change, live *social.Event) error {
	if s.ended() != "" {
		return errEnded // a backlog being written stops there
	}
	err := plainframe.Write(c, live, s.changes, func(frame []byte) error {
		head := append(s.head[:0], "id: "...)
		head = strconv.AppendInt(head, c.ID, 10)
		head = append(head, "\nevent: "...)
		switch c.Kind {
		case social.ChangeAdded:
			head = append(head, "notification"...)
		case social.ChangeRemoved:
			head = append(head, "removed"...)
		default:
			head = append(head, "read"...)
		}
		head = append(head, "\ndata: "...)
		if !s.write(head, frame, eventEnd) {
			return errLost
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.Kind == social.ChangeAdded {
		s.h.metrics.Delivered(metrics.SSE, plainframe.LiveNotification(live, c).Published())
	}
	return nil
}

// close writes "event: closed" with reason, and returns reason; a lost
// connection gets nothing.
func (s *stream) close(reason string) string {
	if reason == reasonConnectionLost {
		return reason
	}
	data, _ := json.Marshal(struct {
		Reason string `json:"reason"`
	}{reason})
	b := append([]byte("event: closed\ndata: "), data...)
	if s.write(append(b, eventEnd...)) {
		s.flush()
	}
	return reason
}

// write writes parts, one event, within the write timeout, which replaces
// the server's (that bounds a whole response); it reports whether it did.
func (s *stream) write(parts ...[]byte) bool {
	if !s.deadline() {
		return false
	}
	for _, b := range parts {
		if _, err := s.w.Write(b); err != nil {
			return false
		}
	}
	return true
}

// flush sends what was written within the write timeout; it reports
// whether it did.
func (s *stream) flush() bool {
	return s.deadline() && s.rc.Flush() == nil
}

// deadline sets the write timeout from now; it reports false when the
// connection is gone. A ResponseWriter that cannot set deadlines (a
// wrapper without Unwrap) keeps the server's, as in gqlsse.
func (s *stream) deadline() bool {
	err := s.rc.SetWriteDeadline(time.Now().Add(s.h.writeTimeout))
	return err == nil || errors.Is(err, http.ErrNotSupported)
}

// onEvent is the feed's function: it queues a live event for the writer,
// or ends the stream as too slow when the queue is full. It is called with
// the broker's lock held and never blocks.
func (s *stream) onEvent(ev social.Event) {
	if ev.Kind == social.EventMessage { // the plain socket's, not the stream's
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.reason != "":
	case len(s.events) >= s.adm.Feed().QueueSize():
		s.h.metrics.SlowCutoff(metrics.SSE)
		s.endLocked(reasonTooSlow)
	default:
		s.events = append(s.events, ev)
		s.signal()
	}
}

// expired is called by the timer of the session's expiry.
func (s *stream) expired() { s.end(wspolicy.ReasonTokenExpired) }

// onFeedEnded is called, under the broker's lock, when the broker ends
// the feed's subscription: it is shutting down.
func (s *stream) onFeedEnded() { s.end(wspolicy.ReasonShuttingDown) }

// ended returns why the stream ends, once that is decided ("" until then):
// the reason end recorded, or the server's shutdown.
func (s *stream) ended() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reason == "" && s.h.shutdown.Err() != nil {
		return wspolicy.ReasonShuttingDown
	}
	return s.reason
}

// end decides why the stream ends, unless that is decided, and wakes the
// writer to say so.
func (s *stream) end(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(reason)
}

func (s *stream) endLocked(reason string) {
	if s.reason == "" {
		s.reason = reason
		s.signal()
	}
}

// signal wakes the writer, unless it is woken already.
func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
