package plainws_test

import (
	"bufio"
	"bytes"
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
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /ws/%s/ HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", token, addr)
	br := bufio.NewReaderSize(c, 256)
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
	// {"type":"ping"} in a masked text frame, with a zero mask.
	ping := []byte(`{"type":"ping"}`)
	frame := append([]byte{0x81, 0x80 | byte(len(ping)), 0, 0, 0, 0}, ping...)
	if _, err := c.Write(frame); err != nil {
		tb.Fatalf("ping: %v", err)
	}
	want := append([]byte{0x81, byte(len(`{"type":"pong"}`))}, `{"type":"pong"}`...)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil || !bytes.Equal(got, want) {
		tb.Fatalf("pong: %q %v", got, err)
	}
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
