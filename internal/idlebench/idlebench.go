// Package idlebench measures what idle connections cost the process that
// serves them, for benchmarks that run the server in process: heap and
// goroutine stack bytes and goroutines per connection, read with
// runtime.ReadMemStats after garbage collection, before the connections
// are opened and after. Its websocket client (Upgrade, WriteText,
// ReadText) is written by hand, so that a client holds nothing but its
// connection.
package idlebench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Measure opens n connections with open (the ith with open(i)), reports
// what they cost per connection as the benchmark's metrics (heap-B/socket,
// heapinuse-B/socket, stack-B/socket, goroutines/socket), and closes them;
// once per b.N. open returns once its connection is idle and holds
// nothing of the client's but the connection.
func Measure(b *testing.B, n int, open func(i int) net.Conn) {
	b.Helper()
	for range b.N {
		before := memStats()
		goroutines := runtime.NumGoroutine()
		conns := make([]net.Conn, n)
		for i := range conns {
			conns[i] = open(i)
		}
		after := memStats()
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "heap-B/socket")
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(n), "heapinuse-B/socket")
		b.ReportMetric(float64(after.StackInuse-before.StackInuse)/float64(n), "stack-B/socket")
		b.ReportMetric(float64(runtime.NumGoroutine()-goroutines)/float64(n), "goroutines/socket")
		for _, c := range conns {
			c.Close()
		}
	}
}

// memStats reads the memory statistics once repeated collections have
// freed what the last opening left.
func memStats() runtime.MemStats {
	var m runtime.MemStats
	for range 6 {
		runtime.GC()
	}
	runtime.ReadMemStats(&m)
	return m
}

// Upgrade opens a websocket to path on addr with a hand-made handshake
// (subprotocol, if not empty, is its Sec-WebSocket-Protocol), so that the
// client holds nothing but the connection and a reader of bufSize bytes.
// The connection has a 10 s deadline until the caller clears it.
func Upgrade(tb testing.TB, addr, path, subprotocol string, bufSize int) (net.Conn, *bufio.Reader) {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var proto string
	if subprotocol != "" {
		proto = "Sec-WebSocket-Protocol: " + subprotocol + "\r\n"
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", path, addr, proto)
	br := bufio.NewReaderSize(c, bufSize)
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
			return c, br
		}
	}
}

// WriteText writes msg in one masked text frame, with a zero mask.
func WriteText(tb testing.TB, c net.Conn, msg string) {
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

// ReadText reads one unmasked text frame of under 126 bytes and checks
// that it is want.
func ReadText(tb testing.TB, br *bufio.Reader, want string) {
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
