package gqlws

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// operation is one operation a client started on the socket. A query or
// a mutation runs on a goroutine of its own (run), which queues its result
// and ends. A subscription holds no goroutine here: its resolver tells the
// socket, through the function Notifier gives it, each time it has put an
// event on its channel (or closed it), and the socket's writer then has
// gqlgen take that event and encode it, which cannot block.
type operation struct {
	s      *socket
	id     string
	ctx    context.Context
	cancel context.CancelFunc

	// Guarded by s.mu.
	stream    bool                    // its resolver asked for a Notifier
	responses graphql.ResponseHandler // a stream's, once dispatched
	respCtx   context.Context         // what responses is called with
	pending   int                     // events (or the end) not yet taken
	queued    bool                    // in s.ready
	done      bool                    // ended: nothing more is sent for it
	errs      gqlerror.List           // what it ends with (AddError)

	taken int // the writer's: events it took to send
}

type operationKey struct{}

// startOperation starts the client's operation id with the payload of its
// message.
func (s *socket) startOperation(id string, payload json.RawMessage) {
	s.mu.Lock()
	if s.initState != initDone {
		s.mu.Unlock()
		s.end(wspolicy.CloseUnauthorized, "Unauthorized", true)
		return
	}
	if old := s.ops[id]; old != nil {
		if s.transportWS {
			s.mu.Unlock()
			s.end(CloseDuplicateID, "Subscriber for "+id+" already exists", true)
			return
		}
		// The legacy protocol: the new one replaces it.
		s.stopLocked(old)
	}
	if max := s.t.cfg.MaxOperations; max > 0 && len(s.ops) >= max {
		// The hook runs outside the lock, and before the refusal is queued,
		// so that what it counts is counted when the client reads it.
		ctx := s.opCtx
		s.mu.Unlock()
		if s.t.cfg.OnOperationRefused != nil {
			s.t.cfg.OnOperationRefused(ctx)
		}
		s.mu.Lock()
		s.refuseLocked(id, max)
		s.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancel(s.opCtx)
	op := &operation{s: s, id: id, cancel: cancel}
	op.ctx = context.WithValue(ctx, operationKey{}, op)
	s.ops[id] = op
	s.mu.Unlock()

	s.workers.Add(1)
	go op.run(payload, graphql.Now())
}

// refuseLocked answers an operation over MaxOperations with an error
// message; the caller holds s.mu.
func (s *socket) refuseLocked(id string, max int) {
	payload, _ := json.Marshal(gqlerror.List{{
		Message:    fmt.Sprintf("too many operations on this socket: at most %d at once", max),
		Extensions: map[string]any{"code": string(social.CodeRateLimited), "limit": max},
	}})
	s.queueLocked(appendMessage(nil, id, typeError, payload))
}

// stopOperation stops the client's operation id, at its request. The
// legacy protocol answers with complete, as gqlgen's own transport did;
// graphql-transport-ws sends nothing more for it.
func (s *socket) stopOperation(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	op := s.ops[id]
	if op == nil {
		return
	}
	s.stopLocked(op)
	if !s.transportWS {
		s.queueLocked(appendMessage(nil, id, typeComplete, nil))
	}
}

// stopLocked ends op without a word; the caller holds s.mu.
func (s *socket) stopLocked(op *operation) {
	op.done = true
	delete(s.ops, op.id)
	op.cancel()
}

// run parses, validates and dispatches the operation. A subscription
// whose resolver took a Notifier is left to the writer; anything else
// (a query, a mutation, a subscription that failed) is answered here.
func (op *operation) run(payload json.RawMessage, start time.Time) {
	s := op.s
	defer s.workers.Done()
	defer func() {
		if v := recover(); v != nil {
			s.t.cfg.Logger.ErrorContext(op.ctx, "graphql socket: panic in an operation", "panic", v)
			op.finish(internalError())
		}
	}()
	ctx := graphql.StartOperationTrace(op.ctx)
	params := &graphql.RawParams{}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(params); err != nil {
		op.finish(gqlerror.List{{Message: "invalid json"}})
		return
	}
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	rc, errs := s.exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := s.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
		if errcode.GetErrorKind(errs) == errcode.KindProtocol {
			op.finish(resp.Errors)
			return
		}
		op.respond(resp)
		op.finish(nil)
		return
	}
	responses, rctx := s.exec.DispatchOperation(graphql.WithOperationContext(ctx, rc), rc)

	s.mu.Lock()
	if op.stream {
		op.responses, op.respCtx = responses, rctx
		op.readyLocked()
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	for {
		resp := responses(rctx)
		if resp == nil {
			break
		}
		if !op.respond(resp) {
			return
		}
	}
	op.finish(nil)
}

// respond queues one response of a query or mutation; it reports false
// once the operation or the socket has ended.
func (op *operation) respond(resp *graphql.Response) bool {
	b, err := op.encode(nil, resp)
	if err != nil {
		return false
	}
	s := op.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if op.done || s.core.EndedLocked() {
		return false
	}
	s.queueLocked(b)
	return true
}

// encode appends the message that carries resp to b.
func (op *operation) encode(b []byte, resp *graphql.Response) ([]byte, error) {
	typ := typeData
	if op.s.transportWS {
		typ = typeNext
	}
	b = appendHeader(b, op.id, typ)
	b = append(b, `,"payload":`...)
	b, err := appendResponse(b, resp)
	if err != nil {
		op.s.t.cfg.Logger.ErrorContext(op.ctx, "graphql socket: encode a response", "err", err)
		return b, err
	}
	return append(b, '}'), nil
}

// finish ends the operation with errs (an error message), or without
// (complete), unless it has ended already or the socket is closing.
func (op *operation) finish(errs gqlerror.List) {
	s := op.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if op.done {
		return
	}
	op.done = true
	if s.ops[op.id] == op {
		delete(s.ops, op.id)
	}
	op.cancel()
	if s.core.EndedLocked() || s.ctx.Err() != nil {
		return
	}
	errs = append(errs, op.errs...)
	if len(errs) > 0 {
		payload, err := json.Marshal(errs)
		if err != nil {
			payload = []byte(`[{"message":"internal error"}]`)
		}
		s.queueLocked(appendMessage(nil, op.id, typeError, payload))
		return
	}
	s.queueLocked(appendMessage(nil, op.id, typeComplete, nil))
}

// notify is a stream's Notifier: its resolver has put an event on its
// channel, or closed it. It never blocks.
func (op *operation) notify() {
	s := op.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if op.done || s.core.EndedLocked() {
		return
	}
	op.pending++
	op.readyLocked()
}

// readyLocked hands the stream to the writer if it has events and is
// dispatched; the caller holds s.mu.
func (op *operation) readyLocked() {
	if op.pending > 0 && op.responses != nil && !op.queued && !op.done {
		op.queued = true
		op.s.ready = append(op.s.ready, op)
		op.s.core.WakeLocked()
	}
}

// deliver is the writer's: it has gqlgen take and encode the events the
// writer took, and sends them. It returns false when the socket ends.
func (op *operation) deliver(bp *[]byte) (ok bool) {
	s := op.s
	defer func() {
		if v := recover(); v != nil {
			s.t.cfg.Logger.ErrorContext(op.ctx, "graphql socket: panic in a subscription", "panic", v)
			op.finish(internalError())
			ok = true
		}
	}()
	for range op.taken {
		resp := op.responses(op.respCtx)
		if resp == nil {
			op.finish(nil)
			return true
		}
		if op.ctx.Err() != nil {
			return true // stopped by the client since the writer took it
		}
		b, err := op.encode((*bp)[:0], resp)
		*bp = b
		if err != nil {
			op.finish(internalError())
			return true
		}
		if !s.send(b) {
			return false
		}
	}
	return true
}

// Notifier returns the function that the resolver of a subscription
// running on one of this package's sockets calls each time it has put an
// value on the channel it returned, and once when it has closed it; nil if
// ctx (the resolver's) belongs to no such subscription, whose channel
// gqlgen reads itself. The function never blocks.
//
// A resolver that takes it must return its channel, not an error: a
// failure after that closes the channel, with the error given to AddError.
func Notifier(ctx context.Context) func() {
	op, _ := ctx.Value(operationKey{}).(*operation)
	if op == nil {
		return nil
	}
	op.s.mu.Lock()
	op.stream = true
	op.s.mu.Unlock()
	return op.notify
}

// AddError adds an error that the operation of ctx (its resolver's) ends
// with, as an error message instead of complete. It reports false if ctx
// belongs to no operation of this package's sockets.
func AddError(ctx context.Context, err *gqlerror.Error) bool {
	op, _ := ctx.Value(operationKey{}).(*operation)
	if op == nil {
		return false
	}
	op.s.mu.Lock()
	defer op.s.mu.Unlock()
	op.errs = append(op.errs, err)
	return true
}

// OnSocket reports whether ctx belongs to an operation that runs on one of
// this package's sockets.
func OnSocket(ctx context.Context) bool {
	_, ok := ctx.Value(operationKey{}).(*operation)
	return ok
}

// internalError is what an operation that failed on the server's side
// ends with; the cause is logged.
func internalError() gqlerror.List {
	return gqlerror.List{{Message: "internal error", Extensions: map[string]any{"code": string(social.CodeInternal)}}}
}
