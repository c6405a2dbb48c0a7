package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/testlog"
)

// TestRequestTimeout runs queries that wait on the store past the
// operation deadline, over HTTP and over a GraphQL socket: each is cut
// with one TIMEOUT error and no ERROR line. A subscription outlives the
// deadline.
func TestRequestTimeout(t *testing.T) {
	var logs testlog.Buffer
	_, wrap := MustBlockingStore()
	const deadline = 200 * time.Millisecond
	s := MustServerOpts(t, ServerOptions{Store: wrap, Configure: func(c *httpapi.Config) {
		logTo(&logs)(c)
		c.RequestTimeout = deadline
	}})
	alice, _ := s.MustRegister(t, "alice")
	bob, _ := s.MustRegister(t, "bob")

	t.Run("HTTP", func(t *testing.T) {
		// A client that would wait for ever on a server without a deadline
		// gives up long after the deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/query",
			strings.NewReader(`{"query":"{a:user(username:\"block\"){id} b:user(username:\"block\"){id}}"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		defer resp.Body.Close()
		var r gqlResponse
		mustDecode(t, resp.Body, &r)
		if len(r.Errors) != 1 || r.Code() != "TIMEOUT" {
			t.Fatalf("status %d, errors %+v; want one TIMEOUT", resp.StatusCode, r.Errors)
		}
	})
	t.Run("Socket", func(t *testing.T) {
		ws := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": alice})
		ws.MustAck()
		ws.Subscribe("u", `subscription{unreadCount}`, nil)
		var n int
		ws.MustData("u", "unreadCount", &n)
		ws.Subscribe("q", `{user(username:"block"){id}}`, nil)
		m, err := ws.nextWithin(20 * time.Second)
		if err != nil || m.ID != "q" || !strings.Contains(string(m.Payload), `"TIMEOUT"`) {
			t.Fatalf("got %+v %s, %v; want a TIMEOUT result", m, m.Payload, err)
		}
		if m, err := ws.next(); err != nil || m.ID != "q" || m.Type != "complete" {
			t.Fatalf("got %+v, %v; want complete", m, err)
		}
		// The subscription, older than the deadline, still runs.
		time.Sleep(2 * deadline)
		s.MustFollow(t, bob, "alice")
		ws.MustData("u", "unreadCount", &n)
		if n != 1 {
			t.Fatalf("unreadCount %d, want 1", n)
		}
	})
	mustNoErrorLines(t, &logs)
}
