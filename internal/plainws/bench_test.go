package plainws_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/idlebench"
)

// BenchmarkIdleSockets opens 2,000 idle sockets (of 200 users) and reports
// what they cost the server: heap and goroutine stack bytes per socket,
// measured with runtime.ReadMemStats after GC, before and after, and
// goroutines per socket (one: the reader; the handlers have returned, and
// an idle socket has no writer). The clients are bare TCP connections in
// this process that did the handshake by hand and hold no buffer; their
// share of the figure is the Go side of a TCP connection (about 250
// bytes).
//
//	go test -run '^$' -bench IdleSockets -benchtime 1x ./internal/plainws/
func BenchmarkIdleSockets(b *testing.B) {
	const sockets, users = 2000, 200
	env := MustEnv(b, EnvOptions{})
	tokens := make([]string, users)
	for i := range tokens {
		tokens[i] = env.MustRegister(b, fmt.Sprintf("user%d", i)).Token
	}
	addr := env.Server.Listener.Addr().String()
	idlebench.Measure(b, sockets, func(i int) net.Conn { return mustRawSocket(b, addr, tokens[i%users]) })
}

// mustRawSocket opens a plain socket with a hand-made handshake and waits
// until it is live (its pong came), keeping nothing but the connection.
func mustRawSocket(tb testing.TB, addr, token string) net.Conn {
	tb.Helper()
	c, br := idlebench.Upgrade(tb, addr, "/ws/"+token+"/", "", 256)
	idlebench.WriteText(tb, c, `{"type":"ping"}`)
	idlebench.ReadText(tb, br, `{"type":"pong"}`)
	if br.Buffered() > 0 {
		tb.Fatalf("unexpected data after the pong")
	}
	_ = c.SetDeadline(time.Time{})
	return c
}

// BenchmarkDeliver measures one event delivered to 100 plain sockets of
// one user: a message one of them sent (Service.SendMessage), published
// through the in-process broker, encoded once and written by each
// socket's writer; an op ends when every socket's client has read its
// frame. allocs/op and B/op are the server's and the clients' together
// (the clients, bare TCP connections in this process, allocate nothing
// per frame).
//
//	go test -run '^$' -bench Deliver -benchmem ./internal/plainws/
func BenchmarkDeliver(b *testing.B) {
	const sockets = 100
	env := MustEnv(b, EnvOptions{})
	u := env.MustRegister(b, "reader")
	addr := env.Server.Listener.Addr().String()
	conns := make([]net.Conn, sockets)
	for i := range conns {
		conns[i] = mustRawSocket(b, addr, u.Token)
		defer conns[i].Close()
	}
	text := strings.Repeat("x", 64)
	frame := make([]byte, 128)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := env.Svc.SendMessage(b.Context(), u.ID, text); err != nil {
			b.Fatal(err)
		}
		for _, c := range conns {
			if _, err := io.ReadFull(c, frame[:2]); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(c, frame[:frame[1]&0x7f]); err != nil {
				b.Fatal(err)
			}
		}
	}
}
