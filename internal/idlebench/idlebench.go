// Package idlebench measures what idle connections cost the process that
// serves them, for benchmarks that run the server in process: heap and
// goroutine stack bytes and goroutines per connection, read with
// runtime.ReadMemStats after garbage collection, before the connections
// are opened and after.
package idlebench

import (
	"net"
	"runtime"
	"testing"
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
