package wspolicy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/pulse-social/pulse/internal/wspolicy"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// MustServer starts an httptest server on 127.0.0.1 whose cleanup waits for
// every handler, hijacked ones included (httptest does not wait for those).
func MustServer(tb testing.TB, h http.Handler) *httptest.Server {
	tb.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		h.ServeHTTP(w, r)
	}))
	tb.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return srv
}

func wsURL(srv *httptest.Server) string {
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// MustDial opens a websocket with the given request headers and fails the
// test if the handshake does not succeed.
func MustDial(tb testing.TB, url string, header http.Header, subprotocols ...string) *websocket.Conn {
	tb.Helper()
	d := websocket.Dialer{Subprotocols: subprotocols, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, header)
	if err != nil {
		tb.Fatalf("dial %s: %v (response %v)", url, err, resp)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// plainHandler upgrades with Config.Upgrader and waits for the client to
// close.
func plainHandler(cfg wspolicy.Config) http.Handler {
	up := cfg.Upgrader()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			if _, _, err := c.NextReader(); err != nil {
				return
			}
		}
	})
}

func TestOrigin(t *testing.T) {
	app := []string{"https://app.example.com"}
	tests := []struct {
		name    string
		allowed []string
		host    string // the request's Host, if not the server's address
		origin  string // "" sends no Origin header; %s is the server's address
		ok      bool
	}{
		{name: "NoOrigin", ok: true},
		{name: "SameHost", origin: "http://%s", ok: true},
		{name: "SameHostOtherScheme", origin: "https://%s", ok: true},
		{name: "SameHostIgnoringCase", host: "Pulse.Example:8000", origin: "http://pulse.EXAMPLE:8000", ok: true},
		{name: "SameHostOtherPort", host: "pulse.example:8000", origin: "http://pulse.example:9000"},
		{name: "OtherHost", origin: "http://evil.example"},
		{name: "NullOrigin", origin: "null"},
		{name: "Garbage", origin: "::not a url::"},
		{name: "Listed", allowed: app, origin: "https://app.example.com", ok: true},
		{name: "ListedIgnoringCase", allowed: app, origin: "HTTPS://App.Example.com", ok: true},
		{name: "ListedWithSlash", allowed: []string{"https://app.example.com/"}, origin: "https://app.example.com", ok: true},
		{name: "ListedOtherPort", allowed: app, origin: "https://app.example.com:8443"},
		{name: "ListedOtherScheme", allowed: app, origin: "http://app.example.com"},
		{name: "ListedOtherHost", allowed: app, origin: "https://evil.example"},
		{name: "Star", allowed: []string{"*"}, origin: "https://evil.example", ok: true},
	}
	for _, tt := range tests {
		cfg := wspolicy.Config{AllowedOrigins: tt.allowed}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%s: Validate: %v", tt.name, err)
		}
		srv := MustServer(t, plainHandler(cfg))
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.host != "" {
				header.Set("Host", tt.host)
			}
			if tt.origin != "" {
				header.Set("Origin", strings.ReplaceAll(tt.origin, "%s", srv.Listener.Addr().String()))
			}
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			c, resp, err := d.Dial(wsURL(srv), header)
			if tt.ok {
				if err != nil {
					t.Fatalf("dial: %v, want success", err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("dial succeeded, want 403")
			}
			if resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("dial: %v (response %v), want 403", err, resp)
			}
			body, _ := io.ReadAll(resp.Body)
			if string(body) != "Forbidden\n" {
				t.Fatalf("body = %q, want only %q", body, "Forbidden\n")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		origin string
		ok     bool
	}{
		{"*", true},
		{"https://app.example.com", true},
		{"http://localhost:3000", true},
		{"https://app.example.com/", true},
		{"app.example.com", false},
		{"https://", false},
		{"https://app.example.com/path", false},
		{"https://app.example.com?q=1", false},
	}
	for _, tt := range tests {
		err := wspolicy.Config{AllowedOrigins: []string{tt.origin}}.Validate()
		if (err == nil) != tt.ok {
			t.Fatalf("Validate(%q) = %v, want ok %v", tt.origin, err, tt.ok)
		}
	}
}

func TestFormatClose(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	p := wspolicy.FormatClose(4401, long)
	if len(p) > 125 {
		t.Fatalf("payload is %d bytes, want at most 125", len(p))
	}
	if got := string(p[2:]); got != strings.Repeat("é", 61) {
		t.Fatalf("reason = %q, want 61 whole characters", got)
	}
}

// TestUpgrader checks that Config.Upgrader negotiates no subprotocol, even
// when the client offers some, and that the socket it opens works.
func TestUpgrader(t *testing.T) {
	srv := MustServer(t, plainHandler(wspolicy.Config{}))
	for _, offered := range [][]string{nil, {"graphql-transport-ws", "graphql-ws"}} {
		c := MustDial(t, wsURL(srv), nil, offered...)
		if got := c.Subprotocol(); got != "" {
			t.Fatalf("offered %q: subprotocol %q, want none", offered, got)
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatalf("write: %v", err)
		}
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		if err := c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(5*time.Second)); err != nil {
			t.Fatalf("write close: %v", err)
		}
	}
}

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   wspolicy.Config
		want wspolicy.Config
	}{
		{"Zero", wspolicy.Config{}, wspolicy.Config{WriteBufferSize: wspolicy.DefaultWriteBufferSize, WriteTimeout: wspolicy.DefaultWriteTimeout}},
		{"NegativeReadBuffer", wspolicy.Config{ReadBufferSize: -1}, wspolicy.Config{WriteBufferSize: wspolicy.DefaultWriteBufferSize, WriteTimeout: wspolicy.DefaultWriteTimeout}},
		{"Set", wspolicy.Config{ReadBufferSize: 256, WriteBufferSize: 2048, WriteTimeout: time.Second}, wspolicy.Config{ReadBufferSize: 256, WriteBufferSize: 2048, WriteTimeout: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.WithDefaults()
			if got.ReadBufferSize != tt.want.ReadBufferSize || got.WriteBufferSize != tt.want.WriteBufferSize || got.WriteTimeout != tt.want.WriteTimeout {
				t.Fatalf("WithDefaults() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestSocketContext checks that a socket's context has the request's
// values and ends with the server, and so do the contexts derived from it,
// even after the request's own context has ended.
func TestSocketContext(t *testing.T) {
	type key struct{}
	request, endRequest := context.WithCancel(context.WithValue(context.Background(), key{}, "from the request"))
	server, shutdown := context.WithCancel(context.Background())
	ctx := wspolicy.SocketContext(server, context.WithoutCancel(request))
	derived, cancel := context.WithCancel(ctx)
	defer cancel()
	endRequest()
	if got := derived.Value(key{}); got != "from the request" {
		t.Fatalf("value = %v, want the request's", got)
	}
	if derived.Err() != nil {
		t.Fatalf("ended with the request: %v", derived.Err())
	}
	shutdown()
	select {
	case <-derived.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("a derived context did not end with the server")
	}
}
