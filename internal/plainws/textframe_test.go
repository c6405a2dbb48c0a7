package plainws_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/plainws"
)

// TestAppendTextFrame checks the frames a writer gathers, in each of the
// three length encodings and several to one write, against
// gorilla/websocket's reader.
func TestAppendTextFrame(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 65535, 65536, 70000}
	var out []byte
	for i, n := range sizes {
		out = plainws.AppendTextFrame(out, bytes.Repeat([]byte{'a' + byte(i)}, n))
	}
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.NetConn().Write(out) // in one write, as a writer's flush
		_, _, _ = c.ReadMessage()     // until the client closes
	}))
	defer srv.Close()
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, n := range sizes {
		typ, got, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("frame %d (%d bytes): %v", i, n, err)
		}
		if typ != websocket.TextMessage || !bytes.Equal(got, bytes.Repeat([]byte{'a' + byte(i)}, n)) {
			t.Fatalf("frame %d: type %d, %d bytes, want a text frame of %d bytes of %q", i, typ, len(got), n, 'a'+byte(i))
		}
	}
}
