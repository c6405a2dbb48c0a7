package httpapi_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/idlebench"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
)

// BenchmarkReactToPost measures one reactToPost request, as the load
// generator's W3 sends it, end to end through the router (every
// middleware, gqlgen, the service, a real in-memory SQLite store and the
// in-process broker) but without a network: the handler is called
// directly. The service caches sessions, as the server does on SQLite.
// Its logger formats every access line as the server's does, into
// io.Discard. allocs/op and B/op are the figures to compare; ns/op
// includes the store.
//
//	go test -run '^$' -bench ReactToPost -benchmem ./internal/httpapi/
func BenchmarkReactToPost(b *testing.B) {
	const reactors = 64
	s := MustServerOpts(b, ServerOptions{
		Social: social.Config{CacheSessions: true},
		Configure: func(c *httpapi.Config) {
			c.Logger = slog.New(httpapi.LogHandler(slog.NewTextHandler(io.Discard, nil)))
			c.Metrics = metrics.New()
		},
	})
	owner, _ := s.MustRegister(b, "owner")
	post := s.MustPost(b, owner, "react to me")
	tokens := make([]string, reactors)
	for i := range tokens {
		tokens[i], _ = s.MustRegister(b, fmt.Sprintf("reactor%d", i))
	}
	body := []byte(`{"query":"mutation($p: ID!) { reactToPost(postId: $p, kind: LIKE) { id } }","variables":{"p":"` + post + `"}}`)
	h := s.Config.Handler
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		req := httptest.NewRequest(http.MethodPost, "/query", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tokens[i%reactors])
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || bytes.Contains(rec.Body.Bytes(), []byte(`"errors"`)) {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkIdleGraphQLSockets opens 2,000 idle GraphQL sockets (of 200
// users), each with one notifications subscription as the load
// generator's W1 starts it, and reports what they cost the server: heap
// and goroutine stack bytes per socket, measured with runtime.ReadMemStats
// after GC, before and after, and goroutines per socket. The clients are
// bare TCP connections in this process that speak graphql-transport-ws by
// hand and hold no buffer; their share of the figure is the Go side of a
// TCP connection (about 250 bytes). It is the in-process counterpart of
// plainws's BenchmarkIdleSockets; RSS, which the load generator reads,
// is about the heap in use plus stacks plus what the collector has not
// returned yet.
//
//	go test -run '^$' -bench IdleGraphQLSockets -benchtime 1x ./internal/httpapi/
func BenchmarkIdleGraphQLSockets(b *testing.B) {
	const sockets, users = 2000, 200
	s := MustServer(b)
	tokens := make([]string, users)
	for i := range tokens {
		tokens[i], _ = s.MustRegister(b, fmt.Sprintf("user%d", i))
	}
	addr := s.Listener.Addr().String()
	idlebench.Measure(b, sockets, func(i int) net.Conn { return mustRawGraphQLSocket(b, addr, tokens[i%users]) })
}

// mustRawGraphQLSocket opens a graphql-transport-ws socket with a
// hand-made handshake, authenticates it, subscribes to notifications and
// waits until the subscription is live (a ping sent after it is answered,
// and the server's socket has no operation left starting), keeping
// nothing but the connection.
func mustRawGraphQLSocket(tb testing.TB, addr, token string) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /query HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n", addr)
	br := bufio.NewReaderSize(c, 512)
	status, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 101") {
		tb.Fatalf("handshake: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			tb.Fatalf("handshake: %v", err)
		}
		if line == "\r\n" {
			break
		}
	}
	mustWriteMasked(tb, c, `{"type":"connection_init","payload":{"authorization":"Bearer `+token+`"}}`)
	mustReadText(tb, br, `{"type":"connection_ack"}`)
	mustWriteMasked(tb, c, `{"id":"1","type":"subscribe","payload":{"query":"subscription { notifications { id action actionId actionContent } }"}}`)
	mustWriteMasked(tb, c, `{"type":"ping"}`)
	mustReadText(tb, br, `{"type":"pong"}`)
	if br.Buffered() > 0 {
		tb.Fatalf("unexpected data after the pong")
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

// mustWriteMasked writes msg in one masked text frame, with a zero mask.
func mustWriteMasked(tb testing.TB, c net.Conn, msg string) {
	tb.Helper()
	var frame []byte
	switch n := len(msg); {
	case n < 126:
		frame = []byte{0x81, 0x80 | byte(n)}
	default:
		frame = []byte{0x81, 0x80 | 126, byte(n >> 8), byte(n)}
	}
	frame = append(append(frame, 0, 0, 0, 0), msg...)
	if _, err := c.Write(frame); err != nil {
		tb.Fatalf("write %s: %v", msg, err)
	}
}

// mustReadText reads one unmasked text frame and checks that it is want.
func mustReadText(tb testing.TB, br *bufio.Reader, want string) {
	tb.Helper()
	head := make([]byte, 2)
	if _, err := io.ReadFull(br, head); err != nil {
		tb.Fatalf("read, waiting for %s: %v", want, err)
	}
	got := make([]byte, head[1]&0x7f)
	if _, err := io.ReadFull(br, got); err != nil || head[0] != 0x81 || string(got) != want {
		tb.Fatalf("got %x %q (%v), want %s", head, got, err, want)
	}
}
