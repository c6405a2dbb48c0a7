package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/social"
)

var protocols = []string{"graphql-transport-ws", "graphql-ws"}

// TestGraphQLSocketTokenExpiry checks that when a socket's token expires,
// its running subscription ends with an UNAUTHENTICATED error and then the
// socket closes with 4401 "token expired": not before the expiry, and soon
// after.
func TestGraphQLSocketTokenExpiry(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			s := MustServerOpts(t, ServerOptions{Social: social.Config{TokenTTL: ttl}})
			// The session expires ttl after this, or later (the store keeps
			// times to the millisecond).
			registered := time.Now().Truncate(time.Millisecond)
			token, _ := s.MustRegister(t, "Alice")
			ws := s.MustDial(t, protocol, nil, map[string]any{"authorization": token})
			ws.MustAck()
			ws.Subscribe("u", `subscription{unreadCount}`, nil)
			var n int
			ws.MustData("u", "unreadCount", &n)

			m, err := ws.nextWithin(10 * time.Second)
			ended := time.Now()
			if err != nil || m.Type != "error" || m.ID != "u" {
				t.Fatalf("got %+v (%s), %v; want an error for the subscription", m, m.Payload, err)
			}
			mustExpiredError(t, m.Payload)
			if code, reason := ws.MustClose(); code != 4401 || reason != "token expired" {
				t.Fatalf("closed with %d %q, want 4401 \"token expired\"", code, reason)
			}
			if ended.Before(registered.Add(ttl)) || ended.After(registered.Add(ttl+5*time.Second)) {
				t.Fatalf("the subscription ended %v after registering, want soon after the token's expiry (%v)", ended.Sub(registered), ttl)
			}
		})
	}
}

// mustExpiredError checks that payload is an error message's list of
// errors saying that the token expired.
func mustExpiredError(tb testing.TB, payload json.RawMessage) {
	tb.Helper()
	var errs []gqlError
	if err := json.Unmarshal(payload, &errs); err != nil || len(errs) != 1 {
		tb.Fatalf("errors %s: %v, want one", payload, err)
	}
	if code := errs[0].Extensions["code"]; code != "UNAUTHENTICATED" || !strings.Contains(errs[0].Message, "expired") {
		tb.Fatalf("error %+v, want UNAUTHENTICATED saying the token expired", errs[0])
	}
}

// TestGraphQLOperationAfterExpiry moves the service's clock past the
// token's expiry before the socket's timer is due: operations sent then do
// not run with the expired identity, and the socket closes with 4401.
func TestGraphQLOperationAfterExpiry(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			var ahead atomic.Int64
			now := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
			s := MustServerOpts(t, ServerOptions{Social: social.Config{TokenTTL: time.Hour, Now: now}})
			token, _ := s.MustRegister(t, "Alice")
			last, err := strconv.Atoi(s.MustPost(t, token, "before"))
			if err != nil {
				t.Fatal(err)
			}
			ws := s.MustDial(t, protocol, nil, map[string]any{"authorization": token})
			ws.MustAck()
			ws.Subscribe("me", `{me{username}}`, nil)
			var me struct{ Username string }
			ws.MustData("me", "me", &me)
			if me.Username != "Alice" {
				t.Fatalf("me = %+v", me)
			}

			ahead.Store(int64(2 * time.Hour))
			ws.Subscribe("late", `{me{username}}`, nil)
			ws.Subscribe("post", `mutation{createPost(body:"after expiry"){id}}`, nil)
			var ce *websocket.CloseError
			for {
				m, err := ws.next()
				if err != nil {
					if !errors.As(err, &ce) {
						t.Fatalf("read: %v, want a close frame", err)
					}
					break
				}
				if m.ID != "me" && bytes.Contains(m.Payload, []byte(`"data":{`)) {
					t.Fatalf("operation %s ran after the expiry: %s", m.ID, m.Payload)
				}
				if m.Type == "error" {
					mustExpiredError(t, m.Payload)
				}
			}
			if ce.Code != 4401 || ce.Text != "token expired" {
				t.Fatalf("closed with %d %q, want 4401 \"token expired\"", ce.Code, ce.Text)
			}
			r := s.Do(t, "", `query($id:ID!){post(id:$id){id}}`, map[string]any{"id": strconv.Itoa(last + 1)})
			if string(r.Data["post"]) != "null" {
				t.Fatalf("a post was created after the expiry: %s", r.Data["post"])
			}
		})
	}
}

// logoutBeforeSubscribe is a broker that, once armed, logs out before the
// next subscription goes live: the revocation is published while no
// socket listens yet.
type logoutBeforeSubscribe struct {
	social.Broker
	logout atomic.Pointer[func()]
}

func (b *logoutBeforeSubscribe) Subscribe(ctx context.Context, userID int64) (social.FuncSubscription, error) {
	if f := b.logout.Swap(nil); f != nil {
		(*f)()
	}
	return b.Broker.Subscribe(ctx, userID)
}

// logout logs token out over HTTP; it may run on any goroutine.
func logout(serverURL, token string) error {
	req, _ := http.NewRequest(http.MethodPost, serverURL+"/query", strings.NewReader(`{"query":"mutation{logout}"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r gqlResponse
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || len(r.Errors) > 0 || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("logout: status %d, errors %+v, %v", resp.StatusCode, r.Errors, err)
	}
	return nil
}

// TestLogoutRace logs a token out after a socket has authenticated with it
// and before the socket has subscribed to revocations: the socket still
// closes with 4401, on both transports.
func TestLogoutRace(t *testing.T) {
	for _, transport := range []string{"GraphQL", "Plain"} {
		t.Run(transport, func(t *testing.T) {
			broker := new(logoutBeforeSubscribe)
			s := MustServerOpts(t, ServerOptions{Broker: func(b social.Broker) social.Broker {
				broker.Broker = b
				return broker
			}})
			token, _ := s.MustRegister(t, "Alice")
			loggedOut := make(chan error, 1)
			f := func() { loggedOut <- logout(s.URL, token) }
			broker.logout.Store(&f)

			switch transport {
			case "GraphQL":
				ws := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": token})
				if code, _ := ws.MustClose(); code != 4401 {
					t.Fatalf("closed with %d, want 4401", code)
				}
			case "Plain":
				c, _, err := websocketDial(s.URL, token)
				if err != nil {
					t.Fatal(err)
				}
				if code := readCloseCode(t, c); code != 4401 {
					t.Fatalf("closed with %d, want 4401", code)
				}
			}
			if err := <-loggedOut; err != nil {
				t.Fatal(err)
			}
		})
	}
}
