package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/metrics"
)

// TestOperationMetrics checks pulse_graphql_operations_total: operations by
// root field and outcome, over HTTP and websocket, and requests refused
// before they ran as "invalid", each once, with the code of its first error.
func TestOperationMetrics(t *testing.T) {
	m := metrics.New()
	s := MustServerOpts(t, ServerOptions{Configure: func(c *httpapi.Config) { c.Metrics = m }})
	token, _ := s.MustRegister(t, "Alice")
	s.MustDo(t, token, `{me{username}}`, nil, "me", nil)
	// A parse error with two errors' worth of garbage, and a validation
	// error: two invalid requests.
	if r := s.Do(t, token, `{me{username}`, nil); r.Code() == "" {
		t.Fatalf("parse error: %+v", r)
	}
	if r := s.Do(t, token, `{me{nope} you{nope}}`, nil); r.Code() == "" {
		t.Fatalf("validation error: %+v", r)
	}
	// Over a websocket: an invalid subscription, then one that runs and
	// counts at its first event.
	ws := s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": token})
	ws.MustAck()
	ws.Subscribe("bad", `subscription{nope}`, nil)
	if m, err := ws.next(); err != nil || m.ID != "bad" || m.Type != "error" {
		t.Fatalf("invalid subscription: got %+v, %v; want error", m, err)
	}
	ws.Subscribe("u", `subscription{unreadCount}`, nil)
	var n int
	ws.MustData("u", "unreadCount", &n)

	want := []string{
		`pulse_graphql_operations_total{operation="invalid",outcome="GRAPHQL_PARSE_FAILED"} 1`,
		`pulse_graphql_operations_total{operation="invalid",outcome="GRAPHQL_VALIDATION_FAILED"} 2`,
		`pulse_graphql_operations_total{operation="mutation register",outcome="ok"} 1`,
		`pulse_graphql_operations_total{operation="query me",outcome="ok"} 1`,
		`pulse_graphql_operations_total{operation="subscription unreadCount",outcome="ok"} 1`,
	}
	var got string
	for deadline := time.Now().Add(5 * time.Second); ; {
		got = scrapeOperations(t, m)
		if got == strings.Join(want, "\n") || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got != strings.Join(want, "\n") {
		t.Fatalf("operations counted:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// scrapeOperations returns the lines of pulse_graphql_operations_total.
func scrapeOperations(tb testing.TB, m *metrics.Metrics) string {
	tb.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	var lines []string
	for l := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "pulse_graphql_operations_total{") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
