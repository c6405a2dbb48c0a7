package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/idlebench"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/storetest"
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
	c, br := idlebench.Upgrade(tb, addr, "/query", "graphql-transport-ws", 512)
	idlebench.WriteText(tb, c, `{"type":"connection_init","payload":{"authorization":"Bearer `+token+`"}}`)
	idlebench.ReadText(tb, br, `{"type":"connection_ack"}`)
	idlebench.WriteText(tb, c, `{"id":"1","type":"subscribe","payload":{"query":"subscription { notifications { id action actionId actionContent } }"}}`)
	idlebench.WriteText(tb, c, `{"type":"ping"}`)
	idlebench.ReadText(tb, br, `{"type":"pong"}`)
	if br.Buffered() > 0 {
		tb.Fatalf("unexpected data after the pong")
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

// BenchmarkDeliverGraphQL measures delivering notifications on GraphQL
// sockets: 100 sockets of one user, each subscribed to notifications as
// the load generator subscribes, and an op is one post by a user it
// follows (a createPost request through the handler) and every socket's
// client reading its next message. The post's cost is the same in every
// op; the rest is running the subscription's selection for the event on
// each socket's writer and writing it. The clients are bare TCP
// connections in this process; cpu-ns/op is the process's CPU time, theirs
// included.
//
//	go test -run '^$' -bench DeliverGraphQL -benchmem ./internal/httpapi/
func BenchmarkDeliverGraphQL(b *testing.B) {
	const sockets = 100
	s := MustServer(b)
	reader, _ := s.MustRegister(b, "reader")
	poster, _ := s.MustRegister(b, "poster")
	s.MustFollow(b, reader, "poster")
	addr := s.Listener.Addr().String()
	conns := make([]net.Conn, sockets)
	for i := range conns {
		conns[i] = mustRawGraphQLSocket(b, addr, reader)
		defer conns[i].Close()
	}
	buf := make([]byte, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	start := storetest.CPUTime(b)
	for range b.N {
		s.MustPost(b, poster, "hello")
		for _, c := range conns {
			skipFrame(b, c, buf)
		}
	}
	storetest.ReportCPU(b, start)
}

// skipFrame reads one unmasked frame of under 64 KiB from c into buf.
func skipFrame(tb testing.TB, c net.Conn, buf []byte) {
	tb.Helper()
	if _, err := io.ReadFull(c, buf[:2]); err != nil {
		tb.Fatal(err)
	}
	n := int(buf[1] & 0x7f)
	if n == 126 {
		if _, err := io.ReadFull(c, buf[:2]); err != nil {
			tb.Fatal(err)
		}
		n = int(buf[0])<<8 | int(buf[1])
	}
	if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
		tb.Fatal(err)
	}
}
