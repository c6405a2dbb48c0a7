package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/testlog"
)

// redactRun is the program run by run() on a free port with args, its
// logs collected.
type redactRun struct {
	addr   string
	logs   *testlog.Buffer
	cancel context.CancelFunc
	done   chan error
}

var listeningRE = regexp.MustCompile(`"msg":"listening","addr":"([^"]+)"|msg=listening addr=(\S+)`)

func startRun(t *testing.T, args ...string) *redactRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &redactRun{logs: &testlog.Buffer{}, cancel: cancel, done: make(chan error, 1)}
	db := filepath.Join(t.TempDir(), "pulse.db")
	args = append([]string{"--addr", "127.0.0.1:0", "--db", db}, args...)
	go func() { r.done <- run(ctx, args, func(string) string { return "" }, r.logs) }()
	for deadline := time.Now().Add(10 * time.Second); r.addr == ""; time.Sleep(10 * time.Millisecond) {
		if m := listeningRE.FindStringSubmatch(r.logs.String()); m != nil {
			r.addr = m[1] + m[2]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start: %s", r.logs)
		}
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// waitLog waits until the log holds msg n times.
func (r *redactRun) waitLog(t *testing.T, msg string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); strings.Count(r.logs.String(), msg) < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log does not hold %q %d times: %s", msg, n, r.logs)
		}
	}
}

func (r *redactRun) stop(t *testing.T) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
		r.done <- nil // stop is called again by Cleanup
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
	}
}

// post sends a GraphQL operation with an optional Authorization header
// and returns the status and body.
func (r *redactRun) post(t *testing.T, auth, query string) (int, string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.addr+"/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var (
	tokenRE  = regexp.MustCompile(`"accessToken":"([^"]+)"`)
	ticketRE = regexp.MustCompile(`"ticket":"([^"]+)"`)
)

// ticket returns a socket ticket of token's session.
func (r *redactRun) ticket(t *testing.T, token string) string {
	t.Helper()
	_, body := r.post(t, "Bearer "+token, `mutation{socketTicket{ticket}}`)
	m := ticketRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("socketTicket: %s", body)
	}
	return m[1]
}

func (r *redactRun) token(t *testing.T, mutation string) string {
	t.Helper()
	_, body := r.post(t, "", mutation)
	m := tokenRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s: %s", mutation, body)
	}
	return m[1]
}

// plainClose dials the plain socket at path, sends a frame, and returns
// the close code once the server closes it (or 0 after wait if it does
// not).
func (r *redactRun) plainClose(t *testing.T, path string, wait time.Duration) int {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+r.addr+path, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	defer c.Close()
	_ = c.WriteMessage(websocket.TextMessage, []byte(`not json`))
	_ = c.SetReadDeadline(time.Now().Add(wait))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				return ce.Code
			}
			return 0
		}
	}
}

// TestTokensNeverLogged runs the program with debug logs, in both formats,
// uses every path a token takes (register, login, the plain socket with
// and without a trailing slash, with ?after=, with a bad and a revoked
// token, over its cap, the GraphQL socket with the token in
// connection_init and in the upgrade's header, a bad bearer token on HTTP,
// logout; socket tickets on both sockets and on /events, used and used
// again; /events with a bad token), scrapes
// /metrics, stops it, and greps the logs and the metrics for every token
// and ticket it used.
func TestTokensNeverLogged(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			r := startRun(t, "--log-level", "debug", "--log-format", format, "--max-sockets-per-user", "2")
			alice := r.token(t, `mutation{register(username:"alice",password:"password-alice"){accessToken}}`)
			bob := r.token(t, `mutation{register(username:"bob",password:"password-bob"){accessToken}}`)
			alice2 := r.token(t, `mutation{login(username:"alice",password:"password-alice"){accessToken}}`)
			badToken := "bad-token-Zq8vN3xR7tLp2Wm5"
			tokens := []string{alice, bob, alice2, badToken}

			// The plain socket: open ones, a bad token, a malformed
			// after, one over the user's cap.
			open1, _, err := websocket.DefaultDialer.Dial("ws://"+r.addr+"/ws/"+alice+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer open1.Close()
			open2, _, err := websocket.DefaultDialer.Dial("ws://"+r.addr+"/ws/"+alice2+"?after=0", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer open2.Close()
			r.waitLog(t, "plain socket open", 2) // both subscribed
			if code := r.plainClose(t, "/ws/"+alice+"/", 5*time.Second); code != 4429 {
				t.Fatalf("over the cap: close %d, want 4429", code)
			}
			if code := r.plainClose(t, "/ws/"+badToken+"/", 5*time.Second); code != 4401 {
				t.Fatalf("bad token: close %d, want 4401", code)
			}
			if code := r.plainClose(t, "/ws/"+bob+"/?after=x", 5*time.Second); code != 1008 {
				t.Fatalf("bad after: close %d, want 1008", code)
			}
			resp, err := http.Get("http://" + r.addr + "/ws/" + bob + "/extra")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()

			// The GraphQL socket: token in connection_init and in the header.
			d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}}
			g1, _, err := d.Dial("ws://"+r.addr+"/query", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer g1.Close()
			_ = g1.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"authorization": "Bearer " + bob}})
			g2, _, err := d.Dial("ws://"+r.addr+"/query", http.Header{"Authorization": {"Bearer " + badToken}})
			if err != nil {
				t.Fatal(err)
			}
			defer g2.Close()
			_ = g2.WriteJSON(map[string]any{"type": "connection_init"})
			_ = g2.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, _, err := g2.ReadMessage(); err != nil {
					break
				}
			}

			// Socket tickets: one opens bob's plain socket and is then
			// refused; another opens a GraphQL socket.
			plainTicket, gqlTicket := r.ticket(t, bob), r.ticket(t, bob)
			tokens = append(tokens, plainTicket, gqlTicket)
			if code := r.plainClose(t, "/ws/"+plainTicket+"/", time.Second); code != 0 {
				t.Fatalf("a ticket's plain socket: close %d, want it open", code)
			}
			if code := r.plainClose(t, "/ws/"+plainTicket+"/", 5*time.Second); code != 4401 {
				t.Fatalf("a used ticket: close %d, want 4401", code)
			}
			// The ticket's socket has freed its slot under bob's cap: five
			// plain sockets have closed (over the cap, bad token, bad
			// after, the ticket's, the used ticket's).
			r.waitLog(t, "plain socket closed", 5)
			g3, _, err := d.Dial("ws://"+r.addr+"/query", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer g3.Close()
			_ = g3.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"ticket": gqlTicket}})
			_ = g3.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, b, err := g3.ReadMessage(); err != nil || !strings.Contains(string(b), "connection_ack") {
				t.Fatalf("a ticket's GraphQL socket: %s, %v", b, err)
			}

			// HTTP: a bad bearer token, then logout of alice2, whose
			// socket closes with 4401.
			if status, _ := r.post(t, "Bearer "+badToken, `{me{id}}`); status != http.StatusUnauthorized {
				t.Fatalf("bad token: status %d", status)
			}
			if status, body := r.post(t, "Bearer "+alice2, `mutation{logout}`); status != 200 || !strings.Contains(body, "true") {
				t.Fatalf("logout: %d %s", status, body)
			}
			_ = open2.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, _, err := open2.ReadMessage(); err != nil {
					break
				}
			}
			if code := r.plainClose(t, "/ws/"+alice2+"/", 5*time.Second); code != 4401 {
				t.Fatalf("revoked token: close %d, want 4401", code)
			}

			// Event streams: a ticket opens one and is then refused; a
			// bad token is refused. Alice's stream needs the slot that
			// alice2's socket held under her cap of 2: seven plain sockets
			// have closed by now (alice2's and the revoked token's too).
			r.waitLog(t, "plain socket closed", 7)
			sseTicket := r.ticket(t, alice)
			tokens = append(tokens, sseTicket)
			var sse sseDialer
			stream := sse.dial(t, r.addr, "ticket="+sseTicket, nil)
			if ev := stream.Next(t, 5*time.Second); ev.Retry == "" {
				t.Fatalf("a ticket's event stream: %+v", ev)
			}
			wantRefused(t, "a used ticket's event stream", sse.dial(t, r.addr, "ticket="+sseTicket, nil), http.StatusUnauthorized, "UNAUTHENTICATED")
			wantRefused(t, "a bad token's event stream", sse.dial(t, r.addr, "", bearer(badToken)), http.StatusUnauthorized, "UNAUTHENTICATED")

			mresp, err := http.Get("http://" + r.addr + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			metricsText, _ := io.ReadAll(mresp.Body)
			mresp.Body.Close()
			if !strings.Contains(string(metricsText), `route="/ws/{token}`) {
				t.Errorf("metrics have no plain socket route: %s", metricsText)
			}

			open1.Close()
			g1.Close()
			r.stop(t)
			logs := r.logs.String()
			for _, want := range []string{"plain socket open", "plain socket closed", "graphql socket open", "graphql socket closed",
				"event stream open", "event stream closed", "request_id", "/ws/<redacted>/"} {
				if !strings.Contains(logs, want) {
					t.Errorf("the logs lack %q", want)
				}
			}
			// A plain socket's close line, written after its upgrade
			// request ended, still names the request.
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, "plain socket closed") && !strings.Contains(line, "request_id") {
					t.Errorf("a plain socket's close line lacks its request_id: %s", line)
				}
			}
			for _, tok := range tokens {
				if strings.Contains(logs, tok) {
					t.Errorf("a token appears in the logs:\n%s", logs)
				}
				if strings.Contains(string(metricsText), tok) {
					t.Errorf("a token appears in the metrics")
				}
			}
		})
	}
}
