package plainws_test

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/plainws"
)

// FuzzSocketFrame sends any frame to a real socket and checks that the
// server answers it with one well-formed frame (an error, a pong, or the
// message echoed to the sender) and keeps the socket open, or closes it
// with 1009 for a frame over the read limit, or 1007 for text that is not
// UTF-8. Seeds: testdata/fuzz/FuzzSocketFrame and the f.Add calls.
func FuzzSocketFrame(f *testing.F) {
	for _, s := range []string{`{"message":"hi"}`, `{"type":"ping"}`, `nope`, `[1]`, `{"message":7}`, `{}`, `{"type":"x"}`} {
		f.Add(false, []byte(s))
	}
	f.Add(true, []byte{0, 1, 2})
	f.Add(false, []byte("{\"message\":\"\xff\"}"))
	env := MustEnv(f, EnvOptions{})
	alice := env.MustRegister(f, "alice")
	f.Fuzz(func(t *testing.T, binary bool, data []byte) {
		c, _ := env.MustConnect(t, alice, "")
		defer c.Close()
		typ := websocket.TextMessage
		if binary {
			typ = websocket.BinaryMessage
		}
		if err := c.WriteMessage(typ, data); err != nil {
			t.Fatalf("write: %v", err)
		}
		if len(data) > plainws.ReadLimit {
			MustClose(t, c, websocket.CloseMessageTooBig, "message too big")
			return
		}
		if !binary && !utf8.Valid(data) {
			MustClose(t, c, websocket.CloseInvalidFramePayloadData, "invalid utf-8")
			return
		}
		_ = c.SetReadDeadline(time.Now().Add(readTimeout))
		mt, b, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("%q: no answer: %v", data, err)
		}
		var m map[string]any
		if mt != websocket.TextMessage || json.Unmarshal(b, &m) != nil || len(m) != 1 {
			t.Fatalf("%q: answer %q is not one JSON object with one key", data, b)
		}
		_, isErr := m["error"]
		_, isMsg := m["message"]
		if !isErr && !isMsg && m["type"] != "pong" {
			t.Fatalf("%q: answer %q", data, b)
		}
		// The socket is still open and in order.
		MustPong(t, c)
	})
}
