package main

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestProfiler checks that the profiler answers on its own address and that
// stop closes it.
func TestProfiler(t *testing.T) {
	addr, stop, err := startProfiler("127.0.0.1:0", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr.String() + "/debug/pprof/goroutine?debug=1"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile:") {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	stop()
	if _, err := http.Get(url); err == nil {
		t.Fatal("the profiler still answers after stop")
	}
}
