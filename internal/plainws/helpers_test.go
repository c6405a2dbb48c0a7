package plainws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/inproc"
	"github.com/pulse-social/pulse/internal/plainws"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/sqlite"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// readTimeout bounds every read of a test client.
const readTimeout = 10 * time.Second

// Env is a real server: a Service on in-memory SQLite and the in-process
// broker, and the plain socket on an httptest server on 127.0.0.1 whose
// base context Shutdown cancels.
type Env struct {
	Svc      *social.Service
	Store    social.Store
	Broker   *inproc.Broker
	Handler  *plainws.Handler
	Server   *httptest.Server
	Shutdown context.CancelFunc
}

// EnvOptions tunes MustEnv.
type EnvOptions struct {
	Plain    plainws.Config
	Fanout   fanout.Config // the broker's: its QueueSize is the socket's
	NoPoller bool          // see plainws.WithoutPoller
	TokenTTL time.Duration // the service's; 0 is its default
}

// MustEnv starts an Env. Its cleanup shuts the server down, waits for every
// socket to end, and closes the broker and the store.
func MustEnv(tb testing.TB, opts EnvOptions) *Env {
	tb.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	broker := inproc.New(opts.Fanout)
	svc := social.NewService(store, broker, social.Config{PasswordCost: bcrypt.MinCost, TokenTTL: opts.TokenTTL})
	base, cancel := context.WithCancel(context.Background())
	opts.Plain.Context = base
	h := plainws.New(svc, opts.Plain)
	if opts.NoPoller {
		plainws.WithoutPoller(h)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	tb.Cleanup(func() {
		cancel()
		wctx, stop := context.WithTimeout(context.Background(), 10*time.Second)
		defer stop()
		if err := h.Wait(wctx); err != nil {
			tb.Errorf("sockets still open after shutdown: %v", err)
		}
		srv.Close()
		broker.Close()
		if err := store.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return &Env{Svc: svc, Store: store, Broker: broker, Handler: h, Server: srv, Shutdown: cancel}
}

// User is a registered user and its access token.
type User struct {
	social.User
	Token string
}

// MustRegister registers a user.
func (e *Env) MustRegister(tb testing.TB, username string) User {
	tb.Helper()
	u, token, err := e.Svc.Register(context.Background(), username, "password123")
	if err != nil {
		tb.Fatalf("register %s: %v", username, err)
	}
	return User{User: u, Token: token}
}

// URL returns the socket's URL for token, with the trailing slash, and
// query (like "?after=3") if not empty.
func (e *Env) URL(token, query string) string {
	return "ws" + strings.TrimPrefix(e.Server.URL, "http") + "/ws/" + token + "/" + query
}

// MustDial opens a socket and fails the test if the handshake fails. The
// socket may not be subscribed yet when it returns; see MustConnect.
func MustDial(tb testing.TB, url string) *websocket.Conn {
	tb.Helper()
	c, err := dial(url)
	if err != nil {
		tb.Fatalf("dial: %v", err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

func dial(url string) (*websocket.Conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(url, nil)
	if err != nil && resp != nil {
		return nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
	}
	return c, err
}

// MustConnect opens user's socket (with query, if not empty) and waits
// until it is live: it pings and waits for the pong, which the server sends
// only once the socket is subscribed and has sent its backlog. The backlog
// frames, if any, are returned.
func (e *Env) MustConnect(tb testing.TB, u User, query string) (*websocket.Conn, []map[string]any) {
	tb.Helper()
	c := MustDial(tb, e.URL(u.Token, query))
	MustSend(tb, c, `{"type":"ping"}`)
	var backlog []map[string]any
	for {
		m := MustReadJSON(tb, c)
		if m["type"] == "pong" {
			return c, backlog
		}
		backlog = append(backlog, m)
	}
}

// MustSend writes a text frame.
func MustSend(tb testing.TB, c *websocket.Conn, frame string) {
	tb.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		tb.Fatalf("write: %v", err)
	}
}

// MustReadJSON reads one frame and decodes it as a JSON object.
func MustReadJSON(tb testing.TB, c *websocket.Conn) map[string]any {
	tb.Helper()
	_ = c.SetReadDeadline(time.Now().Add(readTimeout))
	typ, b, err := c.ReadMessage()
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		tb.Fatalf("frame type %d, want text", typ)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatalf("frame %s: %v", b, err)
	}
	return m
}

// MustPong pings and checks that the next frame is the pong: nothing else
// was waiting for this socket.
func MustPong(tb testing.TB, c *websocket.Conn) {
	tb.Helper()
	MustSend(tb, c, `{"type":"ping"}`)
	if m := MustReadJSON(tb, c); len(m) != 1 || m["type"] != "pong" {
		tb.Fatalf("got %v, want only the pong", m)
	}
}

// RecordPongs returns a channel that gets the data of the next pong
// control frame that c reads.
func RecordPongs(c *websocket.Conn) <-chan string {
	pongs := make(chan string, 1)
	c.SetPongHandler(func(data string) error {
		pongs <- data
		return nil
	})
	return pongs
}

// MustHavePong checks that a pong control frame with data has been read.
func MustHavePong(tb testing.TB, pongs <-chan string, data string) {
	tb.Helper()
	select {
	case got := <-pongs:
		if got != data {
			tb.Fatalf("pong data %q, want %q", got, data)
		}
	default:
		tb.Fatalf("no pong control frame")
	}
}

// MustCloseError reads until the server closes the socket and returns its
// close frame.
func MustCloseError(tb testing.TB, c *websocket.Conn) *websocket.CloseError {
	tb.Helper()
	ce, err := readClose(c)
	if err != nil {
		tb.Fatalf("read: %v, want a close frame", err)
	}
	return ce
}

func readClose(c *websocket.Conn) (*websocket.CloseError, error) {
	_ = c.SetReadDeadline(time.Now().Add(readTimeout))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			return nil, err
		}
		return ce, nil
	}
}

// MustClose checks that the server closes c with this code and reason.
func MustClose(tb testing.TB, c *websocket.Conn, code int, reason string) {
	tb.Helper()
	ce := MustCloseError(tb, c)
	if ce.Code != code || ce.Text != reason {
		tb.Fatalf("closed with %d %q, want %d %q", ce.Code, ce.Text, code, reason)
	}
}

// MustAuth returns a context authenticated by token, as a request with it
// would be.
func MustAuth(tb testing.TB, svc *social.Service, token string) context.Context {
	tb.Helper()
	a, err := svc.Authenticate(ctx, token)
	if err != nil {
		tb.Fatalf("authenticate: %v", err)
	}
	return social.WithAuth(ctx, a)
}
