package gqlws_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/gqlws"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// TestSubprotocol checks which subprotocol the server picks, and that the
// socket then speaks it: graphql-transport-ws answers a ping with a pong,
// the legacy protocol sends a ka after connection_ack and knows no ping.
func TestSubprotocol(t *testing.T) {
	e := MustEnv(t, gqlws.Config{})
	tests := []struct {
		name    string
		offered []string
		want    string // the subprotocol; "" is none, and the legacy protocol
	}{
		{"TransportWS", []string{"graphql-transport-ws"}, "graphql-transport-ws"},
		{"Legacy", []string{"graphql-ws"}, "graphql-ws"},
		{"ClientPrefersTransportWS", []string{"graphql-transport-ws", "graphql-ws"}, "graphql-transport-ws"},
		{"ClientPrefersLegacy", []string{"graphql-ws", "graphql-transport-ws"}, "graphql-ws"},
		{"UnknownFirst", []string{"mqtt", "graphql-transport-ws"}, "graphql-transport-ws"},
		{"UnknownFirstLegacy", []string{"mqtt", "graphql-ws"}, "graphql-ws"},
		{"OnlyUnknown", []string{"mqtt", "wamp"}, ""},
		{"NoHeader", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := websocket.Dialer{Subprotocols: tt.offered, HandshakeTimeout: readTimeout}
			conn, resp, err := d.Dial(e.URL(), nil)
			if err != nil {
				t.Fatalf("dial: %v (response %v)", err, resp)
			}
			defer conn.Close()
			if got := resp.Header.Get("Sec-Websocket-Protocol"); got != tt.want {
				t.Fatalf("Sec-WebSocket-Protocol %q, want %q", got, tt.want)
			}
			if got := conn.Subprotocol(); got != tt.want {
				t.Fatalf("subprotocol %q, want %q", got, tt.want)
			}
			c := &Client{Conn: conn, P: legacyWS}
			if tt.want == transportWS.name {
				c.P = transportWS
			}
			c.MustInit(t) // the legacy protocol's ka included
			c.MustSend(t, map[string]any{"type": "ping"})
			if c.P.legacy {
				MustClose(t, conn, codeBadRequest, "Invalid message type")
				return
			}
			c.MustReadType(t, "", "pong")
		})
	}
}

func TestInit(t *testing.T) {
	for _, p := range protocols {
		t.Run("Ack/"+p.name, func(t *testing.T) {
			e := MustEnv(t, gqlws.Config{})
			c := e.MustDial(t, p)
			c.MustSend(t, map[string]any{"type": "connection_init"})
			if m := c.MustRead(t); m.String() != `{"type":"connection_ack"}` {
				t.Fatalf("got %v, want only connection_ack", m)
			}
			if p.legacy {
				if m := c.MustRead(t); m.String() != `{"type":"ka"}` {
					t.Fatalf("got %v, want a ka right after connection_ack", m)
				}
			}
			// Nothing else came: the next message answers the next request.
			c.MustStart(t, "q", "{ hello }")
			c.MustResult(t, "q", `{"data":{"hello":"world"}}`)
			c.MustReadType(t, "q", "complete")
		})
	}

	t.Run("Payload", func(t *testing.T) {
		payloads := make(chan map[string]any, 1)
		e := MustEnv(t, gqlws.Config{Init: func(ctx context.Context, payload map[string]any) (context.Context, error) {
			payloads <- payload
			return ctx, nil
		}})
		tests := []struct {
			name string
			msg  string
			want map[string]any
		}{
			{"Object", `{"type":"connection_init","payload":{"authorization":"Bearer x","n":1}}`, map[string]any{"authorization": "Bearer x", "n": 1.0}},
			{"Empty", `{"type":"connection_init","payload":{}}`, map[string]any{}},
			{"Null", `{"type":"connection_init","payload":null}`, nil},
			{"None", `{"type":"connection_init"}`, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				c := e.MustDial(t, transportWS)
				c.MustSendRaw(t, tt.msg)
				c.MustReadType(t, "", "connection_ack")
				if got := <-payloads; !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("Init got payload %#v, want %#v", got, tt.want)
				}
			})
		}
	})

	for _, p := range protocols {
		t.Run("CloseError/"+p.name, func(t *testing.T) {
			e := MustEnv(t, gqlws.Config{Init: func(context.Context, map[string]any) (context.Context, error) {
				return nil, &gqlws.CloseError{Code: 4403, Reason: "Forbidden", Message: "invalid access token"}
			}})
			c := e.MustDial(t, p)
			c.MustSend(t, map[string]any{"type": "connection_init"})
			if p.legacy {
				m := c.MustReadType(t, "", "connection_error")
				MustJSONEqual(t, m.Payload, `{"message":"invalid access token"}`)
			}
			MustClose(t, c.Conn, 4403, "Forbidden")
			if info := e.MustClosed(t); info.Code != 4403 || info.Reason != "Forbidden" {
				t.Fatalf("CloseInfo %+v, want 4403 Forbidden", info)
			}
		})
	}

	t.Run("OtherError", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{Init: func(context.Context, map[string]any) (context.Context, error) {
			return nil, errors.New("database is down")
		}})
		c := e.MustDial(t, transportWS)
		c.MustSend(t, map[string]any{"type": "connection_init"})
		MustClose(t, c.Conn, websocket.CloseInternalServerErr, "internal error")
	})

	t.Run("NotAnObject", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{})
		for _, payload := range []string{`"token"`, `[1]`, `1`, `true`, `{"a":`} {
			for _, p := range protocols {
				c := e.MustDial(t, p)
				c.MustSendRaw(t, `{"type":"connection_init","payload":`+payload+`}`)
				if payload == `{"a":` {
					// Not JSON at all.
					MustClose(t, c.Conn, codeBadRequest, "Invalid message received")
					continue
				}
				MustClose(t, c.Conn, codeBadRequest, "connection_init payload must be an object")
			}
		}
	})

	for _, p := range protocols {
		t.Run("TwoInits/"+p.name, func(t *testing.T) {
			e := MustEnv(t, gqlws.Config{})
			c := e.MustConnect(t, p)
			c.MustSend(t, map[string]any{"type": "connection_init"})
			MustClose(t, c.Conn, codeTooManyInits, "Too many initialisation requests")
		})
	}

	for _, p := range protocols {
		t.Run("Timeout/"+p.name, func(t *testing.T) {
			// Pings would start at connection_ack: none comes before the
			// close.
			e := MustEnv(t, gqlws.Config{InitTimeout: 100 * time.Millisecond, PingInterval: 20 * time.Millisecond})
			c := e.MustDial(t, p)
			start := time.Now()
			MustClose(t, c.Conn, codeInitTimeout, "Connection initialisation timeout")
			if d := time.Since(start); d < 50*time.Millisecond {
				t.Fatalf("closed after %v, before the InitTimeout", d)
			}
		})
	}

	t.Run("InitInTime", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{InitTimeout: 100 * time.Millisecond})
		c := e.MustConnect(t, transportWS)
		time.Sleep(300 * time.Millisecond)
		c.MustSend(t, map[string]any{"type": "ping"})
		c.MustReadType(t, "", "pong")
	})

	for _, p := range protocols {
		t.Run("SubscribeFirst/"+p.name, func(t *testing.T) {
			e := MustEnv(t, gqlws.Config{})
			c := e.MustDial(t, p)
			c.MustStart(t, "1", "subscription { events }")
			MustClose(t, c.Conn, codeUnauthorized, "Unauthorized")
		})
	}

	t.Run("UnknownType", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{})
		for _, p := range protocols {
			c := e.MustConnect(t, p)
			c.MustSend(t, map[string]any{"type": "hello"})
			MustClose(t, c.Conn, codeBadRequest, "Invalid message type")
		}
	})
}

func TestPing(t *testing.T) {
	e := MustEnv(t, gqlws.Config{})
	c := e.MustConnect(t, transportWS)
	c.MustSendRaw(t, `{"type":"ping"}`)
	if m := c.MustRead(t); m.String() != `{"type":"pong"}` {
		t.Fatalf("got %v, want a pong without payload", m)
	}
	c.MustSendRaw(t, `{"type":"ping","payload":{"t":42}}`)
	m := c.MustReadType(t, "", "pong")
	MustJSONEqual(t, m.Payload, `{"t":42}`)
	// A pong from the client asks for nothing.
	c.MustSendRaw(t, `{"type":"pong"}`)
	c.MustSendRaw(t, `{"type":"ping"}`)
	c.MustReadType(t, "", "pong")
}

func TestTerminate(t *testing.T) {
	e := MustEnv(t, gqlws.Config{})
	c := e.MustConnect(t, legacyWS)
	sub := c.MustSubscribe(t, e, "1")
	c.MustSend(t, map[string]any{"type": "connection_terminate"})
	MustClose(t, c.Conn, websocket.CloseNormalClosure, "terminated")
	sub.MustEnded(t)
	if info := e.MustClosed(t); info.Code != websocket.CloseNormalClosure || info.Reason != "terminated" {
		t.Fatalf("CloseInfo %+v, want 1000 terminated", info)
	}
}

func TestOrigin(t *testing.T) {
	e := MustEnv(t, gqlws.Config{})
	d := websocket.Dialer{HandshakeTimeout: readTimeout}
	c, resp, err := d.Dial(e.URL(), http.Header{"Origin": {"https://evil.example"}})
	if err == nil {
		c.Close()
		t.Fatalf("dial from another origin succeeded, want 403")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial: %v (response %v), want 403", err, resp)
	}
	// Same host: allowed.
	c, _, err = d.Dial(e.URL(), http.Header{"Origin": {e.Server.URL}})
	if err != nil {
		t.Fatalf("dial from the server's origin: %v", err)
	}
	c.Close()

	// A listed origin: allowed.
	listed := MustEnv(t, gqlws.Config{Websocket: wspolicy.Config{AllowedOrigins: []string{"https://app.example.com"}}})
	c, _, err = d.Dial(listed.URL(), http.Header{"Origin": {"https://app.example.com"}})
	if err != nil {
		t.Fatalf("dial from a listed origin: %v", err)
	}
	c.Close()
}
