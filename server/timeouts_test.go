package main

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestTimeoutsSpareWebsockets runs the program with short read and write
// timeouts and checks that both sockets, and an event stream, outlive
// them. (The write timeout
// bounds a whole HTTP request, register's bcrypt included, hence 3 s.)
func TestTimeoutsSpareWebsockets(t *testing.T) {
	r := startRun(t, "--read-timeout", "1s", "--write-timeout", "3s", "--read-header-timeout", "1s")
	tok := r.token(t, `mutation{register(username:"alice",password:"password-alice"){accessToken}}`)

	plain, _, err := websocket.DefaultDialer.Dial("ws://"+r.addr+"/ws/"+tok+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
	gql, _, err := d.Dial("ws://"+r.addr+"/query", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer gql.Close()
	stream := sseDialer{}.dial(t, r.addr, "", bearer(tok))
	if ev := stream.Next(t, 5*time.Second); ev.Retry == "" {
		t.Fatalf("event stream: %+v", ev)
	}
	if err := gql.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"authorization": tok}}); err != nil {
		t.Fatal(err)
	}
	var ack struct{ Type string }
	if err := gql.ReadJSON(&ack); err != nil || ack.Type != "connection_ack" {
		t.Fatalf("ack: %+v %v", ack, err)
	}

	time.Sleep(3500 * time.Millisecond)

	if err := plain.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	_ = plain.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := plain.ReadMessage(); err != nil || string(b) != `{"type":"pong"}` {
		t.Fatalf("plain socket after the timeouts: %s %v", b, err)
	}
	// The stream is open: a notification reaches it.
	bob := r.token(t, `mutation{register(username:"bob",password:"password-bob"){accessToken}}`)
	if status, body := r.post(t, "Bearer "+bob, `mutation{follow(username:"alice"){id}}`); status != http.StatusOK {
		t.Fatalf("follow: %d %s", status, body)
	}
	if ev := stream.Notification(t, 5*time.Second); ev.Event != "notification" || mustFrame(t, ev)["action"] != "following" {
		t.Fatalf("event stream after the timeouts: %+v", ev)
	}
	if err := gql.WriteJSON(map[string]any{"id": "1", "type": "subscribe", "payload": map[string]any{"query": "subscription{unreadCount}"}}); err != nil {
		t.Fatal(err)
	}
	_ = gql.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m struct {
			Type    string
			Payload json.RawMessage
		}
		if err := gql.ReadJSON(&m); err != nil {
			t.Fatalf("GraphQL socket after the timeouts: %v", err)
		}
		if m.Type == "next" {
			break
		}
	}
}

// TestShutdownDelay checks that on SIGTERM (here: the context's end) the
// program reports not ready on /readyz, while still serving, for the
// shutdown delay, and then stops.
func TestShutdownDelay(t *testing.T) {
	r := startRun(t, "--shutdown-delay", "1500ms")
	ready := func() int {
		resp, err := http.Get("http://" + r.addr + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := ready(); got != http.StatusOK {
		t.Fatalf("/readyz before shutdown: %d", got)
	}
	r.cancel()
	time.Sleep(300 * time.Millisecond)
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz while draining: %d, want 503", got)
	}
	resp, err := http.Get("http://" + r.addr + "/healthz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz while draining: %v %v", resp, err)
	}
	resp.Body.Close()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatal(err)
		}
		r.done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after the delay")
	}
}
