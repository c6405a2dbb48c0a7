package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/testlog"
)

// logTo configures a server to log at debug level into buf, each line
// with its request_id, as the program does.
func logTo(buf *testlog.Buffer) func(*httpapi.Config) {
	return func(c *httpapi.Config) {
		h := slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})
		c.Logger = slog.New(httpapi.LogHandler(h))
	}
}

// blockingStore is a store whose UserByUsername("block") waits until its
// context ends, as a slow query would; it counts every UserByUsername.
type blockingStore struct {
	social.Store
	lookups atomic.Int64
	entered chan struct{}
}

// MustBlockingStore returns the store and the ServerOptions.Store that
// puts it in front of the server's.
func MustBlockingStore() (*blockingStore, func(social.Store) social.Store) {
	b := &blockingStore{entered: make(chan struct{}, 1)}
	return b, func(s social.Store) social.Store {
		b.Store = s
		return b
	}
}

func (b *blockingStore) UserByUsername(ctx context.Context, username string) (social.User, error) {
	b.lookups.Add(1)
	if username != "block" {
		return b.Store.UserByUsername(ctx, username)
	}
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return social.User{}, fmt.Errorf("user by username: %w", ctx.Err())
}

// waitForLine returns the first line of buf that contains every one of
// want, waiting for it up to 10 s.
func waitForLine(tb testing.TB, buf *testlog.Buffer, want ...string) string {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	lines:
		for line := range strings.SplitSeq(buf.String(), "\n") {
			for _, w := range want {
				if !strings.Contains(line, w) {
					continue lines
				}
			}
			return line
		}
	}
	tb.Fatalf("no log line with %q in:\n%s", want, buf)
	return ""
}

// mustNoErrorLines fails the test if buf has a line at level ERROR.
func mustNoErrorLines(tb testing.TB, buf *testlog.Buffer) {
	tb.Helper()
	for line := range strings.SplitSeq(buf.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			tb.Fatalf("an ERROR line: %s", line)
		}
	}
}

// mustDecode decodes the JSON in r into v.
func mustDecode(tb testing.TB, r io.Reader, v any) {
	tb.Helper()
	if err := json.NewDecoder(r).Decode(v); err != nil {
		tb.Fatalf("decode: %v", err)
	}
}

// rawGet sends GET target with the extra header lines as written, on a
// connection of its own (no client normalises the target), and returns
// the response's status line.
func rawGet(tb testing.TB, s *testServer, target string, header ...string) string {
	tb.Helper()
	c, err := net.Dial("tcp", s.Listener.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	req := "GET " + target + " HTTP/1.1\r\nHost: pulse\r\nConnection: close\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	if _, err := c.Write([]byte(req + "\r\n")); err != nil {
		tb.Fatal(err)
	}
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		tb.Fatalf("GET %q: %v", target, err)
	}
	return strings.TrimSpace(status)
}

// TestNearMissSocketPathsRedacted requests paths that a client, a proxy
// or a router could take for the plain socket's, and checks that the
// token is in no log line and that each access line says <redacted>.
func TestNearMissSocketPathsRedacted(t *testing.T) {
	var logs testlog.Buffer
	s := MustServerOpts(t, ServerOptions{Configure: logTo(&logs)})
	const token = "tok-Zq8vN3xR7tLp2Wm5Kd9Hs4Yb6Fc1Jg0"
	escaped := url.PathEscape(token)
	allEscaped := ""
	for _, b := range []byte(token) {
		allEscaped += fmt.Sprintf("%%%02X", b)
	}
	tests := []struct{ name, path string }{
		{"Exact", "/ws/" + token + "/"},
		{"NoTrailingSlash", "/ws/" + token},
		{"DoubleLeadingSlash", "//ws/" + token + "/"},
		{"UpperCase", "/WS/" + token + "/"},
		{"MixedCase", "/wS/" + token},
		{"Dot", "/./ws/" + token + "/"},
		{"DotDot", "/a/../ws/" + token},
		{"DoubleSlashAfter", "/ws//" + token + "/"},
		{"DotAfter", "/ws/./" + token},
		{"Prefixed", "/api/v1/ws/" + token + "/"},
		{"Extra", "/ws/" + token + "/extra"},
		{"EscapedW", "/%77s/" + token + "/"},
		{"EscapedUpper", "/%57%53/" + token},
		{"DoubleEscaped", "/%2577s/" + token + "/"},
		{"EscapedSlash", "/ws%2F" + token + "/"},
		{"Backslash", "/ws%5C" + token},
		{"Semicolon", "/ws;jsessionid=1/" + token + "/"},
		{"EscapedToken", "/ws/" + escaped + "/"},
		{"AllEscapedToken", "/ws/" + allEscaped + "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "near-miss-" + tt.name
			rawGet(t, s, tt.path, "X-Request-Id: "+id)
			line := waitForLine(t, &logs, `msg="http request"`, "request_id="+id)
			if strings.Contains(line, token) || strings.Contains(line, escaped) || !strings.Contains(line, "<redacted>") {
				t.Fatalf("access line for %s: %s", tt.path, line)
			}
		})
	}
	if strings.Contains(logs.String(), token) {
		t.Fatalf("the token is in the logs:\n%s", logs.String())
	}
}

// TestRequestIDFromClient checks that X-Request-Id is kept when it is
// short visible ASCII, and replaced by a generated id otherwise.
func TestRequestIDFromClient(t *testing.T) {
	var logs testlog.Buffer
	s := MustServerOpts(t, ServerOptions{Configure: logTo(&logs)})
	tests := []struct {
		name, id string
		kept     bool
	}{
		{"OK", "Abc-123_x.y:z", true},
		{"AtTheCap", strings.Repeat("k", 64), true},
		{"OverTheCap", strings.Repeat("o", 65), false},
		{"Huge", strings.Repeat("h", 60_000), false},
		{"NonASCII", "id-\xc3\xa9t\xc3\xa9", false},
		{"Space", "two words", false},
		{"Tab", "tab\there", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rawGet(t, s, "/rid-"+tt.name, "X-Request-Id: "+tt.id)
			line := waitForLine(t, &logs, `msg="http request"`, "path=/rid-"+tt.name+" ")
			got := strings.Contains(line, "request_id="+tt.id+" ") || strings.HasSuffix(line, "request_id="+tt.id)
			if got != tt.kept {
				t.Fatalf("kept %v, want %v: %s", got, tt.kept, line)
			}
			if !tt.kept && (strings.Contains(logs.String(), tt.id) || !strings.Contains(line, "request_id=")) {
				t.Fatalf("the id is not replaced: %s", line)
			}
		})
	}
}

// manyFields returns a query of n aliased root fields user(username:name).
func manyFields(n int, name string) string {
	var q strings.Builder
	q.WriteString("{")
	for i := range n {
		fmt.Fprintf(&q, `u%d:user(username:%q){id} `, i, name)
	}
	q.WriteString("}")
	return q.String()
}

// TestClientGoneIsQuiet sends a query of 50 fields that wait on the
// store, disconnects once the first one runs, and checks that the request
// logs no ERROR line and at most one debug line: a client that leaves is
// not the server's failure, and one line per unfinished field is a flood.
func TestClientGoneIsQuiet(t *testing.T) {
	var logs testlog.Buffer
	store, wrap := MustBlockingStore()
	s := MustServerOpts(t, ServerOptions{Configure: logTo(&logs), Store: wrap})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := fmt.Sprintf(`{"query":%q}`, manyFields(50, "block"))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/query", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "client-gone")
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-store.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the query never reached the store")
	}
	cancel()
	<-done
	waitForLine(t, &logs, `msg="http request"`, "request_id=client-gone")
	mustNoErrorLines(t, &logs)
	var debug []string
	for line := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(line, "request_id=client-gone") && !strings.Contains(line, `msg="http request"`) {
			debug = append(debug, line)
		}
		if strings.Contains(line, "internal error") {
			t.Fatalf("a client that left is logged as an internal error: %s", line)
		}
	}
	if len(debug) > 1 || (len(debug) == 1 && !strings.Contains(debug[0], "level=DEBUG")) {
		t.Fatalf("%d lines besides the access line, want at most one at debug level:\n%s", len(debug), strings.Join(debug, "\n"))
	}
}
