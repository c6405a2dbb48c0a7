package gqlsse

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/internal/social"
)

// Defaults of Config's zero values.
const (
	DefaultKeepAlive    = 15 * time.Second
	DefaultWriteTimeout = 10 * time.Second
)

// Config tunes a Transport. The zero value serves every operation with the
// defaults.
type Config struct {
	// Subscribe runs for each subscription once gqlgen has validated it,
	// before it starts, with the request's context (End finds the stream
	// through it, and through any context derived from it). The context it
	// returns is the one the subscription runs in; it must be derived from
	// the one it was given. A *Refusal refuses the request with its status
	// before the stream starts; another error with 500. Nil starts every
	// subscription.
	Subscribe func(ctx context.Context) (context.Context, error)

	// KeepAlive is how often a stream gets a comment line (": ping") while
	// it has nothing else to send, so that proxies keep it open. 0 means
	// DefaultKeepAlive.
	KeepAlive time.Duration

	// WriteTimeout bounds each write to a stream: a client that does not
	// take it within that time is too slow, and its stream ends. 0 means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration

	// Opened, if set, is called when a stream starts (its headers are
	// about to be sent), with its context; the function it returns, if not
	// nil, is called once the stream has ended, with how.
	Opened func(ctx context.Context) func(Ended)

	// Logger gets the errors that are the server's fault; nil discards
	// them.
	Logger *slog.Logger
}

// Ended says how a stream ended, for Config.Opened's function.
type Ended struct {
	// Reason is "complete" (the operation's last result was sent), End's
	// reason, "client gone" (the request's context ended: the client
	// left, or the server shuts down) or "write failed" (a write failed or
	// timed out: the client is gone or too slow).
	Reason   string
	Duration time.Duration
}

// Refusal is an error of Config.Subscribe that refuses the request, before
// the stream starts, with Status and a JSON body {"errors":[Err]}.
type Refusal struct {
	Status int
	Err    *gqlerror.Error
}

func (r *Refusal) Error() string { return r.Err.Message }

// Transport serves GraphQL over server-sent events for gqlgen: add it to a
// gqlgen handler.Server with AddTransport, before its POST transport. It
// is safe for concurrent use.
type Transport struct{ cfg Config }

var _ graphql.Transport = (*Transport)(nil)

// New returns a Transport.
func New(cfg Config) *Transport {
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Transport{cfg: cfg}
}

// Supports reports whether r is for this transport (see Accepts).
func (t *Transport) Supports(r *http.Request) bool { return Accepts(r) }

// Accepts reports whether r asks for GraphQL over server-sent events: a
// POST of JSON, no websocket upgrade, and an Accept header that lists
// text/event-stream and no JSON type. A client that accepts JSON too (urql
// sends "application/json, text/event-stream" with its queries) gets the
// plain POST transport.
func Accepts(r *http.Request) bool {
	if r.Method != http.MethodPost || r.Header.Get("Upgrade") != "" || !acceptsEventStream(r.Header) {
		return false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return false
	}
	stream := false
	for _, v := range r.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil || params["q"] == "0" {
				continue
			}
			switch mt {
			case "text/event-stream":
				stream = true
			case "application/json", "application/graphql-response+json", "application/graphql+json":
				return false
			}
		}
	}
	return stream
}

// acceptsEventStream reports whether an Accept header names
// text/event-stream at all: the check that most requests, the ones that
// are not streams, stop at, without parsing a media type (Accepts runs on
// every POST /query, more than once).
func acceptsEventStream(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		if strings.Contains(strings.ToLower(v), "text/event-stream") {
			return true
		}
	}
	return false
}

// Do runs the operation of r and streams its results until it completes,
// End ends it, or the client leaves.
func (t *Transport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	start := graphql.Now()
	s := &stream{t: t, w: w, rc: http.NewResponseController(w), wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.WithValue(r.Context(), streamKey{}, s))
	defer cancel()
	ctx = graphql.StartOperationTrace(ctx)

	params := &graphql.RawParams{}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	if err := dec.Decode(params); err != nil {
		s.answer(ctx, &graphql.Response{Errors: gqlerror.List{{Message: "the request body is not a JSON GraphQL request"}}})
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}
	oc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		s.answer(ctx, exec.DispatchError(graphql.WithOperationContext(ctx, oc), errs))
		return
	}
	if oc.Operation.Operation == ast.Subscription && t.cfg.Subscribe != nil {
		sctx, err := t.cfg.Subscribe(ctx)
		if err != nil {
			t.refuse(ctx, w, err)
			return
		}
		ctx = sctx
	}
	defer s.closed()
	if !s.open(ctx) {
		return
	}
	responses, rctx := exec.DispatchOperation(graphql.WithOperationContext(ctx, oc), oc)
	if s.notified() {
		s.stream(ctx, responses, rctx)
		return
	}
	for {
		resp := responses(rctx)
		if resp == nil {
			break
		}
		if !s.next(resp) {
			return
		}
	}
	s.finish()
}

// refuse answers a request that Config.Subscribe refused.
func (t *Transport) refuse(ctx context.Context, w http.ResponseWriter, err error) {
	var ref *Refusal
	if !errors.As(err, &ref) {
		t.cfg.Logger.ErrorContext(ctx, "graphql stream: subscribe", "err", err)
		ref = &Refusal{Status: http.StatusInternalServerError, Err: &gqlerror.Error{Message: "internal error", Extensions: map[string]any{"code": string(social.CodeInternal)}}}
	}
	body, jerr := json.Marshal(map[string]any{"errors": gqlerror.List{ref.Err}})
	if jerr != nil {
		body = []byte(`{"errors":[{"message":"internal error"}]}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(ref.Status)
	_, _ = w.Write(append(body, '\n'))
}
