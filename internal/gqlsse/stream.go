package gqlsse

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/internal/social"
)

type streamKey struct{}

// stream is one request's event stream. The request's goroutine is its one
// writer; the fields under mu are what other goroutines (the
// subscription's resolver, End) hand it, with a token on wake.
type stream struct {
	t    *Transport
	w    http.ResponseWriter
	rc   *http.ResponseController
	wake chan struct{} // holds a token while the writer has something to take

	// The writer's.
	started time.Time
	ended   func(Ended) // Config.Opened's
	reason  string      // how the stream ended

	mu       sync.Mutex
	notifier bool // the subscription's resolver took a Notifier
	// pending counts the values the resolver has put on its channel (and
	// its close) that the writer has not taken. It stays small: the
	// resolver's channel holds one value, and it puts the next only once
	// the writer has taken one.
	pending   int
	errs      gqlerror.List   // AddError's: the operation ends with them
	endErr    *gqlerror.Error // End's: the stream ends with it
	endReason string
	over      bool // the stream has ended
}

// Server-sent events that never change.
var (
	msgOpen     = []byte(":\n\n")
	msgPing     = []byte(": ping\n\n")
	msgComplete = []byte("event: complete\ndata:\n\n")
)

// open starts the stream: it sends the headers. It reports whether the
// client took them; either way, the caller calls closed. The server's read
// deadline needs no lifting: net/http lifts it once the body is read.
func (s *stream) open(ctx context.Context) bool {
	s.started = time.Now()
	if s.t.cfg.Opened != nil {
		s.ended = s.t.cfg.Opened(ctx)
	}
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	s.w.WriteHeader(http.StatusOK)
	return s.write(msgOpen)
}

// answer streams the one response of a request refused before its
// operation ran (bad JSON, parse or validation errors), then complete.
func (s *stream) answer(ctx context.Context, resp *graphql.Response) {
	defer s.closed()
	if s.open(ctx) && s.next(resp) {
		s.complete()
	}
}

// stream is the writer of a subscription whose resolver took a Notifier:
// it sends each value the resolver hands it, the keepalive, and End's
// error, until the subscription ends or the client leaves.
func (s *stream) stream(ctx context.Context, responses graphql.ResponseHandler, rctx context.Context) {
	ping := time.NewTicker(s.t.cfg.KeepAlive)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			s.reason = "client gone"
			return
		case <-ping.C:
			if !s.write(msgPing) {
				return
			}
		case <-s.wake:
			if ctx.Err() != nil {
				// The resolver ended because the stream's context did:
				// no complete, which would tell the client not to
				// connect again.
				s.reason = "client gone"
				return
			}
			n, end, reason := s.take()
			if end != nil {
				if s.next(&graphql.Response{Errors: gqlerror.List{end}}) && s.complete() {
					s.reason = reason
				}
				return
			}
			for range n {
				resp := responses(rctx)
				if resp == nil && ctx.Err() != nil {
					s.reason = "client gone"
					return
				}
				if resp == nil {
					s.finish()
					return
				}
				if !s.next(resp) {
					return
				}
			}
			ping.Reset(s.t.cfg.KeepAlive)
		}
	}
}

// take returns what the writer is to do: the values pending, or End's
// error and reason.
func (s *stream) take() (n int, end *gqlerror.Error, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, s.pending = s.pending, 0
	return n, s.endErr, s.endReason
}

// finish ends an operation whose results have all been sent: with the
// errors given to AddError in one more next event, then complete.
func (s *stream) finish() {
	s.mu.Lock()
	errs := s.errs
	s.mu.Unlock()
	if len(errs) > 0 && !s.next(&graphql.Response{Errors: errs}) {
		return
	}
	s.complete()
}

// next sends one result.
func (s *stream) next(resp *graphql.Response) bool {
	data, err := json.Marshal(resp)
	if err != nil {
		s.t.cfg.Logger.Error("graphql stream: encode a response", "err", err)
		data = []byte(`{"errors":[{"message":"internal error","extensions":{"code":"` + string(social.CodeInternal) + `"}}]}`)
	}
	b := make([]byte, 0, len(data)+len("event: next\ndata: \n\n"))
	b = append(b, "event: next\ndata: "...)
	b = append(b, data...)
	return s.write(append(b, "\n\n"...))
}

// complete sends the complete event: the stream has ended.
func (s *stream) complete() bool {
	if !s.write(msgComplete) {
		return false
	}
	s.reason = "complete"
	return true
}

// write sends b within Config.WriteTimeout, and reports whether it did.
func (s *stream) write(b []byte) bool {
	err := s.rc.SetWriteDeadline(time.Now().Add(s.t.cfg.WriteTimeout))
	if errors.Is(err, http.ErrNotSupported) {
		err = nil
	}
	if err == nil {
		_, err = s.w.Write(b)
	}
	if err == nil {
		err = s.rc.Flush()
	}
	if err != nil {
		s.reason = "write failed"
		return false
	}
	return true
}

// closed is the writer's last act: nothing more is taken, and
// Config.Opened's function hears how the stream ended.
func (s *stream) closed() {
	s.mu.Lock()
	s.over = true
	s.mu.Unlock()
	if s.reason == "complete" {
		// net/http sets no new write deadline for the connection's next
		// request when the server has no WriteTimeout: lift the stream's.
		_ = s.rc.SetWriteDeadline(time.Time{})
	}
	if s.ended != nil {
		s.ended(Ended{Reason: s.reason, Duration: time.Since(s.started)})
	}
}

// notify is a subscription's Notifier: its resolver has put a value on its
// channel, or closed it. It never blocks.
func (s *stream) notify() {
	s.mu.Lock()
	s.pending++
	s.mu.Unlock()
	s.signal()
}

// signal hands the writer a token, unless it holds one.
func (s *stream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// notified reports whether the subscription's resolver took a Notifier.
func (s *stream) notified() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notifier
}

func streamOf(ctx context.Context) *stream {
	s, _ := ctx.Value(streamKey{}).(*stream)
	return s
}

// End ends the stream that ctx belongs to (the request's context, or one
// derived from it such as a subscription's): err comes in one last next
// event, then complete, and reason goes to Config.Opened's function. It
// reports whether it did: false if ctx belongs to no stream, or if the
// stream has ended or is ending. It never blocks. A stream whose resolver
// took no Notifier (a query, a mutation) runs to its end regardless.
func End(ctx context.Context, reason string, err *gqlerror.Error) bool {
	s := streamOf(ctx)
	if s == nil {
		return false
	}
	s.mu.Lock()
	if s.over || s.endErr != nil {
		s.mu.Unlock()
		return false
	}
	s.endErr, s.endReason = err, reason
	s.mu.Unlock()
	s.signal()
	return true
}

// Notifier returns the function that the resolver of a subscription
// running on one of this package's streams calls each time it has put a
// value on the channel it returned, and once when it has closed it; nil
// if ctx (the resolver's) belongs to no stream. The function never blocks.
//
// A resolver that takes it must return its channel, not an error: a
// failure after that closes the channel, with the error given to AddError.
func Notifier(ctx context.Context) func() {
	s := streamOf(ctx)
	if s == nil {
		return nil
	}
	s.mu.Lock()
	s.notifier = true
	s.mu.Unlock()
	return s.notify
}

// AddError adds an error that the operation of ctx (its resolver's) ends
// with, in a next event before complete. It reports false if ctx belongs
// to no stream.
func AddError(ctx context.Context, err *gqlerror.Error) bool {
	s := streamOf(ctx)
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
	return true
}

// OnStream reports whether ctx belongs to an operation that runs on one of
// this package's streams.
func OnStream(ctx context.Context) bool { return streamOf(ctx) != nil }
