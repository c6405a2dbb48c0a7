package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// RedactPath returns the path with the plain socket's token replaced, so
// that access tokens never reach a log line or a metric label. Whatever
// follows a "ws" segment is redacted, the segment matched as loosely as a
// router or a proxy might match it: in any case, percent-decoded (twice
// over too), with a backslash as a separator and ";parameters" ignored. So
// "/ws/t/", "//ws/t/", "/WS/t", "/./ws/t", "/a/../ws/t" and "/%77s/t"
// all lose t.
func RedactPath(path string) string {
	decoded := path
	for range 3 {
		decoded = percentDecode(decoded)
	}
	start := 0
	for i := 0; i <= len(decoded); i++ {
		if i < len(decoded) && decoded[i] != '/' && decoded[i] != '\\' {
			continue
		}
		if isSocketSegment(decoded[start:i]) {
			return decoded[:start] + "ws/<redacted>/"
		}
		start = i + 1
	}
	return path
}

// isSocketSegment reports whether seg names the plain socket: "ws" once
// its parameters are cut and all but its letters and digits dropped.
func isSocketSegment(seg string) bool {
	seg, _, _ = strings.Cut(seg, ";")
	return strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return unicode.ToLower(r)
		}
		return -1
	}, seg) == "ws"
}

// percentDecode decodes every well-formed %XX of s and keeps the rest as
// it is.
func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if c, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(c))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// accessLog logs one line per request, after it ends (for a websocket: when
// the socket closes).
func accessLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww, ok := w.(middleware.WrapResponseWriter) // countRequests's
			if !ok {
				ww = middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			}
			next.ServeHTTP(ww, r)
			status := ww.Status()
			if status == 0 {
				status = http.StatusSwitchingProtocols // hijacked: a websocket
			}
			// The request_id comes from the context (see LogHandler), or is
			// added here when the logger does not add it.
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("path", RedactPath(r.URL.Path)),
				slog.Int("status", status),
				slog.Int("bytes", ww.BytesWritten()),
				slog.Duration("duration", time.Since(start)),
				slog.String("remote", r.RemoteAddr),
			}
			if _, ok := log.Handler().(requestIDHandler); !ok {
				attrs = append(attrs, slog.String("request_id", middleware.GetReqID(r.Context())))
			}
			log.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
		})
	}
}

// recoverer turns a panic in a handler into a 500 and a log line with the
// stack, instead of a dead connection with nothing said.
func recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.ErrorContext(r.Context(), "panic in handler", "path", RedactPath(r.URL.Path), "panic", v, "stack", string(debug.Stack()))
					writeText(w, http.StatusInternalServerError, "internal error")
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// limitBody bounds request bodies: one over n bytes, whether it says so
// (Content-Length) or turns out so (chunked), is answered with 413 before
// anything runs. It reads the body, at most n bytes, and hands it on.
func limitBody(n int64) func(http.Handler) http.Handler {
	tooLarge := fmt.Sprintf("request body too large: at most %d bytes", n)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				writeGraphQLError(w, http.StatusRequestEntityTooLarge, tooLarge, social.CodeBadUserInput)
				return
			}
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			var body bytes.Buffer
			// ReadFrom wants MinRead bytes of room before each read: with
			// them, a body of known length takes one allocation.
			body.Grow(int(max(r.ContentLength, 0)) + bytes.MinRead)
			_, err := body.ReadFrom(http.MaxBytesReader(w, r.Body, n))
			var over *http.MaxBytesError
			switch {
			case errors.As(err, &over):
				writeGraphQLError(w, http.StatusRequestEntityTooLarge, tooLarge, social.CodeBadUserInput)
				return
			case err != nil: // the client left, or sent a broken body
				writeGraphQLError(w, http.StatusBadRequest, "could not read the request body", social.CodeBadUserInput)
				return
			}
			r.Body = io.NopCloser(&body)
			next.ServeHTTP(w, r)
		})
	}
}

// securityHeaders sets the headers every response carries: no MIME
// sniffing, no referrer. The playground sets its own stricter ones
// (Content-Security-Policy, framing) on top.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// cors enforces the origin policy on /query and /events and lets browsers
// on the allowed origins call them. A request with an Origin the policy refuses
// (neither this server's own host nor an allowed origin) is answered with
// 403 before anything runs; so is its preflight. Same-origin pages (the
// playground) need no CORS headers; requests without an Origin (scripts,
// apps) pass. Websocket upgrades are checked by the upgrader, with the
// same policy.
func cors(origins []string) func(http.Handler) http.Handler {
	policy := wspolicy.NewOriginPolicy(origins)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin != "" && r.Header.Get("Upgrade") == "" && !policy.Allow(r) {
				writeText(w, http.StatusForbidden, "origin not allowed")
				return
			}
			if origin != "" && policy.Listed(origin) {
				h := w.Header()
				h.Set("Access-Control-Allow-Origin", origin)
				h.Add("Vary", "Origin")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
				h.Set("Access-Control-Max-Age", "600")
			}
			next.ServeHTTP(w, r)
		})
	}
}
