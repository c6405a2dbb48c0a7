package plainws_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/limit"
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
	env := MustEnv(t, EnvOptions{Plain: plainws.Config{EventQueue: 4, Metrics: m}})
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
