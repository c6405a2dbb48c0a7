package gqlws_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/gqlws"
)

// FuzzSocketMessage sends one message of any content to a socket of either
// protocol, before or after connection_init, and checks that the socket
// then still answers (a ping with its pong on graphql-transport-ws, a
// connection_terminate with 1000 on the legacy protocol) or has closed
// with a code the protocol gives for a bad message.
func FuzzSocketMessage(f *testing.F) {
	for _, seed := range []string{
		`{"type":"connection_init","payload":{"authorization":"x"}}`,
		`{"type":"connection_init","payload":[1]}`,
		`{"id":"1","type":"subscribe","payload":{"query":"subscription { events }"}}`,
		`{"id":"1","type":"start","payload":{"query":"{ hello }"}}`,
		`{"id":"1","type":"subscribe","payload":{"query":"bad"}}`,
		`{"id":"1","type":"complete"}`,
		`{"id":"1","type":"stop"}`,
		`{"type":"ping","payload":{"a":1}}`,
		`{"type":"pong"}`,
		`{"id":"\u0000\"","type":"subscribe","payload":{"query":"panic"}}`,
		`{"type":"connection_terminate"}`,
		`{"type":1}`,
		`[]`,
		`not json`,
	} {
		f.Add(byte(0), true, []byte(seed))
		f.Add(byte(1), false, []byte(seed))
	}
	e := MustEnv(f, gqlws.Config{})
	f.Fuzz(func(t *testing.T, which byte, init bool, msg []byte) {
		p := protocols[int(which)%len(protocols)]
		c := e.MustDial(t, p)
		defer c.Close()
		if init {
			c.MustInit(t)
		}
		if err := c.WriteMessage(websocket.TextMessage, msg); err != nil {
			t.Fatalf("write: %v", err)
		}
		probe := `{"type":"ping","payload":{"probe":true}}`
		if p.legacy {
			probe = `{"type":"connection_terminate"}`
		}
		// The socket may have closed already; the probe's answer or the
		// close frame comes either way.
		_ = c.WriteMessage(websocket.TextMessage, []byte(probe))
		mustAnswerProbe(t, c)
		drain(e)
	})
}

// mustAnswerProbe reads until the socket answers the probe (a pong that
// echoes it, or the legacy terminate's close 1000), or closes with a code
// the protocols give for a bad message.
func mustAnswerProbe(t *testing.T, c *Client) {
	t.Helper()
	allowed := map[int]bool{
		websocket.CloseNormalClosure:           true, // terminate
		codeBadRequest:                         true,
		codeUnauthorized:                       true, // an operation before connection_ack
		codeDuplicateID:                        true,
		codeTooManyInits:                       true,
		websocket.CloseInvalidFramePayloadData: true, // text that is not UTF-8
	}
	_ = c.SetReadDeadline(time.Now().Add(readTimeout))
	for {
		_, b, err := c.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if !allowed[ce.Code] {
				t.Fatalf("closed with %d %q", ce.Code, ce.Text)
			}
			return
		}
		if err != nil {
			t.Fatalf("read: %v, want the probe's answer or a close frame", err)
		}
		var m Msg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("server message %q is not JSON: %v", b, err)
		}
		if m.Type == "pong" && string(m.Payload) == `{"probe":true}` {
			return
		}
	}
}

// drain drops what the Env recorded, so that its channels never fill
// over a long fuzz run.
func drain(e *Env) {
	for {
		select {
		case <-e.Inits:
		case <-e.Exec.subs:
		case <-e.Closed:
		default:
			return
		}
	}
}
