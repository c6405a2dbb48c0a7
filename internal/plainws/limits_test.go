package plainws_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/limit/limittest"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/plainws"
	"github.com/pulse-social/pulse/internal/social"
)

func TestSocketsPerUser(t *testing.T) {
	env := MustEnv(t, EnvOptions{Plain: plainws.Config{SocketsPerUser: limit.NewSlots(2)}})
	alice, bob := env.MustRegister(t, "alice"), env.MustRegister(t, "bob")
	first, _ := env.MustConnect(t, alice, "")
	env.MustConnect(t, alice, "")
	over := MustDial(t, env.URL(alice.Token, ""))
	MustClose(t, over, 4429, "too many sockets")
	env.MustConnect(t, bob, "") // bob has his own cap

	// Closing a socket frees its slot.
	first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := MustDial(t, env.URL(alice.Token, ""))
		MustSend(t, c, `{"type":"ping"}`)
		_ = c.SetReadDeadline(time.Now().Add(readTimeout))
		_, b, err := c.ReadMessage()
		if err == nil && strings.Contains(string(b), "pong") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the slot was not freed: %s %v", b, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSocketsPerAddress(t *testing.T) {
	env := MustEnv(t, EnvOptions{Plain: plainws.Config{SocketsPerAddress: limit.NewSlots(2)}})
	alice, bob := env.MustRegister(t, "alice"), env.MustRegister(t, "bob")
	env.MustConnect(t, alice, "")
	env.MustConnect(t, bob, "")
	// The cap is checked before the token: even a bad one is refused so.
	MustClose(t, MustDial(t, env.URL("bad-token", "")), 4429, "too many sockets")
	MustClose(t, MustDial(t, env.URL(alice.Token, "")), 4429, "too many sockets")
}

// TestMetrics checks what the plain socket counts: open sockets, delivered
// notifications (replayed and live, the live ones with their latency), and
// slow clients cut off.
func TestMetrics(t *testing.T) {
	m := metrics.New()
	env := MustEnv(t, EnvOptions{Plain: plainws.Config{Metrics: m}, Fanout: fanout.Config{QueueSize: 4}})
	alice, bob := env.MustRegister(t, "alice"), env.MustRegister(t, "bob")
	post := env.MustPost(t, alice, "post")
	env.MustComment(t, bob, post.ID, "replayed", 0)
	c, backlog := env.MustConnect(t, alice, "?after=0")
	if len(backlog) != 1 {
		t.Fatalf("backlog %v", backlog)
	}
	env.MustComment(t, bob, post.ID, "live", 0)
	MustReadJSON(t, c)
	// The writer counts a frame after writing it, so the client may read it
	// first.
	MustMetrics(t, m,
		`pulse_sockets_open{transport="plain"} 1`,
		`pulse_notifications_delivered_total{transport="plain"} 2`,
		`pulse_publish_to_write_seconds_count{transport="plain"} 1`)

	// alice stops reading and is cut off.
	big := strings.Repeat("x", social.MessageMaxBytes)
	for range 200 {
		if err := env.Svc.SendMessage(ctx, alice.ID, big); err != nil {
			t.Fatal(err)
		}
	}
	MustClose(t, c, 4008, "too slow")
	MustMetrics(t, m,
		`pulse_slow_client_cutoffs_total{transport="plain"} 1`,
		`pulse_sockets_open{transport="plain"} 0`)
}

// MustMetrics waits (at most 5 s) until m's exposition has every line of
// wants.
func MustMetrics(tb testing.TB, m *metrics.Metrics, wants ...string) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		body := scrape(tb, m)
		missing := ""
		for _, want := range wants {
			if !strings.Contains(body, want) {
				missing = want
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("metrics lack %s: %s", missing, grep(body, "pulse_"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func scrape(tb testing.TB, m *metrics.Metrics) string {
	tb.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func grep(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// MustRead reads n frames and returns the messages' texts, in order, and
// the errors.
func MustRead(tb testing.TB, c *websocket.Conn, n int) (messages []string, errs []map[string]any) {
	tb.Helper()
	for range n {
		m := MustReadJSON(tb, c)
		if text, ok := m["message"].(string); ok {
			messages = append(messages, text)
		} else {
			errs = append(errs, m)
		}
	}
	return messages, errs
}

// MustRateLimited checks that errs are n RATE_LIMITED errors whose text
// says why.
func MustRateLimited(tb testing.TB, errs []map[string]any, n int, why string) {
	tb.Helper()
	if len(errs) != n {
		tb.Fatalf("got %d errors %v, want %d", len(errs), errs, n)
	}
	for _, e := range errs {
		text, _ := e["error"].(string)
		if e["code"] != "RATE_LIMITED" || !strings.HasPrefix(text, "rate limited: "+why+"; try again in ") ||
			e["retry_after"] == nil || e["retry_after"].(float64) < 1 {
			tb.Fatalf("got %v, want RATE_LIMITED for %s", e, why)
		}
	}
}

// TestMessageBudget checks the per-user budget of messages: a burst past
// it is answered with RATE_LIMITED and not sent to the user's sockets; the
// budget is the user's across sockets; it comes back with time; and a
// client that goes on sending while limited is closed with 4429.
func TestMessageBudget(t *testing.T) {
	clock := limittest.NewClock(time.Unix(1e9, 0))
	env := MustEnv(t, EnvOptions{Plain: plainws.Config{
		Messages:        limit.NewRates(limit.Rate{PerSecond: 1.0 / 60, Burst: 3}, clock.Now),
		RefusedMessages: 2,
	}})
	alice, bob := env.MustRegister(t, "alice"), env.MustRegister(t, "bob")
	sender, _ := env.MustConnect(t, alice, "")
	other, _ := env.MustConnect(t, alice, "")
	bobs, _ := env.MustConnect(t, bob, "")

	for _, text := range []string{"m1", "m2", "m3", "m4", "m5"} {
		MustSend(t, sender, `{"message":"`+text+`"}`)
	}
	msgs, errs := MustRead(t, sender, 5)
	if strings.Join(msgs, " ") != "m1 m2 m3" {
		t.Fatalf("sender got %v, want m1 m2 m3", msgs)
	}
	MustRateLimited(t, errs, 2, "too many messages")
	// The budget is alice's, not the socket's.
	MustSend(t, other, `{"message":"from the other"}`)
	msgs, errs = MustRead(t, other, 4)
	if strings.Join(msgs, " ") != "m1 m2 m3" {
		t.Fatalf("the other socket got %v, want m1 m2 m3", msgs)
	}
	MustRateLimited(t, errs, 1, "too many messages")
	// bob has his own.
	MustSend(t, bobs, `{"message":"bob's"}`)
	if msgs, _ := MustRead(t, bobs, 1); len(msgs) != 1 {
		t.Fatalf("bob's message refused")
	}

	// A minute later there is one more, and it is the other socket's next
	// frame: m4 and m5 were never sent.
	clock.Add(time.Minute)
	MustSend(t, sender, `{"message":"later"}`)
	if msgs, _ := MustRead(t, other, 1); len(msgs) != 1 || msgs[0] != "later" {
		t.Fatalf("the other socket got %v, want later", msgs)
	}
	if msgs, _ := MustRead(t, sender, 1); len(msgs) != 1 || msgs[0] != "later" {
		t.Fatalf("sender got %v, want later", msgs)
	}

	// Two refused in a row are answered; the third closes the socket.
	MustSend(t, sender, `{"message":"r1"}`)
	MustSend(t, sender, `{"message":"r2"}`)
	_, errs = MustRead(t, sender, 2)
	MustRateLimited(t, errs, 2, "too many messages")
	MustSend(t, sender, `{"message":"r3"}`)
	MustClose(t, sender, 4429, "too many messages")
	// The user's other socket stays, and got none of them.
	MustPong(t, other)
}

// TestMessageBudgetResets checks that refused messages count only in a
// row: a message sent in between starts the count again.
func TestMessageBudgetResets(t *testing.T) {
	clock := limittest.NewClock(time.Unix(1e9, 0))
	env := MustEnv(t, EnvOptions{Plain: plainws.Config{
		Messages:        limit.NewRates(limit.Rate{PerSecond: 1.0 / 60, Burst: 1}, clock.Now),
		RefusedMessages: 1,
	}})
	c, _ := env.MustConnect(t, env.MustRegister(t, "alice"), "")
	for range 3 {
		MustSend(t, c, `{"message":"sent"}`)
		MustSend(t, c, `{"message":"refused"}`)
		msgs, errs := MustRead(t, c, 2)
		if len(msgs) != 1 || msgs[0] != "sent" {
			t.Fatalf("got %v, want sent", msgs)
		}
		MustRateLimited(t, errs, 1, "too many messages")
		clock.Add(time.Minute)
	}
	MustPong(t, c)
}

// TestMessageByteBudget checks the per-user budget of message bytes: a
// message that would pass it is refused, a smaller one that fits passes.
func TestMessageByteBudget(t *testing.T) {
	clock := limittest.NewClock(time.Unix(1e9, 0))
	env := MustEnv(t, EnvOptions{Plain: plainws.Config{
		MessageBytes: limit.NewRates(limit.Rate{PerSecond: 100_000.0 / 60, Burst: 100_000}, clock.Now),
	}})
	alice := env.MustRegister(t, "alice")
	sender, _ := env.MustConnect(t, alice, "")
	other, _ := env.MustConnect(t, alice, "")
	big := strings.Repeat("x", 40_000)
	for _, text := range []string{big, big, big, "small"} {
		MustSend(t, sender, `{"message":"`+text+`"}`)
	}
	msgs, errs := MustRead(t, sender, 4)
	if len(msgs) != 3 || msgs[0] != big || msgs[1] != big || msgs[2] != "small" {
		t.Fatalf("sender got %d messages, want big, big, small", len(msgs))
	}
	MustRateLimited(t, errs, 1, "too much message text")
	// A message over social.MessageMaxBytes is bad input, not rate limited.
	MustSend(t, sender, `{"message":"`+strings.Repeat("x", social.MessageMaxBytes+1)+`"}`)
	if _, errs := MustRead(t, sender, 1); len(errs) != 1 || errs[0]["code"] != nil {
		t.Fatalf("got %v, want the length error", errs)
	}
	clock.Add(time.Minute)
	MustSend(t, sender, `{"message":"`+big+`"}`)
	msgs, _ = MustRead(t, other, 4)
	if len(msgs) != 4 || msgs[2] != "small" || msgs[3] != big {
		t.Fatalf("the other socket got %d messages, want big, big, small, big", len(msgs))
	}
}
