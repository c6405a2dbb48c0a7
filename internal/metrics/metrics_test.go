package metrics_test

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/metrics"
)

func TestMetrics(t *testing.T) {
	m := metrics.New()
	closed := m.SocketOpened(metrics.Plain)
	m.SocketOpened(metrics.GraphQL)
	closed()
	m.Stored(3)
	m.Published(2)
	m.Delivered(metrics.Plain, time.Now().Add(-time.Millisecond))
	m.Delivered(metrics.Plain, time.Time{})
	m.SlowCutoff(metrics.GraphQL)
	m.BrokerReconnected()
	m.GraphQLOperation("mutation createPost", "ok")
	m.RateLimited("auth")
	m.SocketRefused(metrics.Plain, "per_user")
	m.HTTPRequest("/ws/{token}/", "GET", 101)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		`pulse_sockets_open{transport="plain"} 0`,
		`pulse_sockets_open{transport="graphql"} 1`,
		`pulse_notifications_stored_total 3`,
		`pulse_notifications_published_total 2`,
		`pulse_notifications_delivered_total{transport="plain"} 2`,
		`pulse_publish_to_write_seconds_count{transport="plain"} 1`,
		`pulse_slow_client_cutoffs_total{transport="graphql"} 1`,
		`pulse_broker_reconnects_total 1`,
		`pulse_graphql_operations_total{operation="mutation createPost",outcome="ok"} 1`,
		`pulse_rate_limited_total{limit="auth"} 1`,
		`pulse_sockets_refused_total{reason="per_user",transport="plain"} 1`,
		`pulse_http_requests_total{method="GET",route="/ws/{token}/",status="101"} 1`,
		`go_goroutines`,
		`go_gc_heap_live_bytes`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestNil checks that a nil *Metrics counts nothing and fails nothing.
func TestNil(t *testing.T) {
	var m *metrics.Metrics
	m.SocketOpened(metrics.Plain)()
	m.Stored(1)
	m.Published(1)
	m.PublishError()
	m.Delivered(metrics.Plain, time.Now())
	m.SlowCutoff(metrics.Plain)
	m.BrokerReconnected()
	m.GraphQLOperation("query me", "ok")
	m.RateLimited("auth")
	m.SocketRefused(metrics.Plain, "per_user")
	m.HTTPRequest("/", "GET", 200)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 404 {
		t.Fatalf("nil Metrics handler answered %d, want 404", rec.Code)
	}
}

func BenchmarkDelivered(b *testing.B) {
	m := metrics.New()
	published := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		m.Delivered(metrics.GraphQL, published)
	}
}
