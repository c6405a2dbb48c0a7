package plainws

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// FuzzParseFrame checks the plain socket's understanding of client frames
// on any input: it never panics, every answer is well-formed, a frame is a
// message or a ping only when it says so, and the canonical forms are
// always understood. Seeds: testdata/fuzz/FuzzParseFrame and the f.Add
// calls below; `make fuzz` runs it for a while.
func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		`{"message":"hello"}`, `{"type":"ping"}`, `{"message":""}`, `{"message":"\u00e9\ud83d\ude00"}`,
		`{"message":1}`, `{"type":"pong"}`, `{"type":null}`, `{"Message":"x"}`, `{"message":"a","type":"ping"}`,
		`[]`, `null`, `"message"`, `{`, ``, ` {"message":"x"} `, `{"message":"x","message":2}`,
		`{"message":"\xff"}`, `{"type":"ping","type":"pong"}`, `{"a":{"b":[1,2,{"c":null}]}}`,
	} {
		f.Add(false, []byte(s))
	}
	f.Add(true, []byte(`{"message":"binary"}`))
	f.Fuzz(func(t *testing.T, binary bool, data []byte) {
		typ := websocket.TextMessage
		if binary {
			typ = websocket.BinaryMessage
		}
		got := parseFrame(typ, data)

		// The error reply is always valid JSON.
		if got.kind == frameInvalid {
			if got.text == "" {
				t.Fatalf("%q: invalid without a reason", data)
			}
			b, err := json.Marshal(struct {
				Error string `json:"error"`
			}{got.text})
			if err != nil || !json.Valid(b) {
				t.Fatalf("error reply %q: %v", b, err)
			}
		}
		if binary {
			if got.kind != frameInvalid {
				t.Fatalf("binary frame %q understood as %v", data, got)
			}
			return
		}

		var obj map[string]json.RawMessage
		isObject := json.Valid(data) && strings.HasPrefix(strings.TrimSpace(string(data)), "{") && json.Unmarshal(data, &obj) == nil
		keyValue := func(name string) (json.RawMessage, bool) {
			var v json.RawMessage
			found := false
			for k, raw := range obj {
				if strings.EqualFold(k, name) {
					v, found = raw, true
				}
			}
			return v, found
		}
		switch got.kind {
		case frameMessage:
			raw, ok := keyValue("message")
			if !isObject || !ok {
				t.Fatalf("%q understood as a message", data)
			}
			if !utf8.ValidString(got.text) && utf8.Valid(raw) {
				t.Fatalf("%q: message text %q is not UTF-8", data, got.text)
			}
		case framePing:
			if _, hasMessage := keyValue("message"); !isObject || hasMessage {
				t.Fatalf("%q understood as a ping", data)
			}
			if raw, _ := keyValue("type"); !strings.Contains(string(raw), "ping") {
				t.Fatalf("%q understood as a ping", data)
			}
		}

		// The canonical forms are always understood.
		if isObject && len(obj) == 1 {
			if raw, ok := obj["message"]; ok {
				var text string
				if json.Unmarshal(raw, &text) == nil && (got.kind != frameMessage || got.text != text) {
					t.Fatalf("%q: got %+v, want the message %q", data, got, text)
				}
			}
			if raw, ok := obj["type"]; ok && string(raw) == `"ping"` && got.kind != framePing {
				t.Fatalf("%q: got %+v, want a ping", data, got)
			}
		}
	})
}
