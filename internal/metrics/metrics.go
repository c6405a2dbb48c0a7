// Package metrics is the server's Prometheus instrumentation: one Metrics
// value owns a registry of its own (never the global one) and the
// collectors the other packages count on, through methods that are no-ops on
// a nil *Metrics, so that packages can be used and tested without it.
//
// Label values come from small fixed sets (a transport, a route pattern, a
// schema field, an error code): never a path, a token or anything else a
// client chooses.
package metrics

import (
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The transports, as the transport label names them.
const (
	Plain      = "plain"       // the /ws/{token}/ socket
	GraphQL    = "graphql"     // the GraphQL websocket at /query
	GraphQLSSE = "graphql_sse" // GraphQL over server-sent events at /query
	SSE        = "sse"         // the server-sent event stream at /events
)

// Metrics holds the collectors. Create it with New.
type Metrics struct {
	reg *prometheus.Registry

	socketsOpen      *prometheus.GaugeVec
	socketsRefused   *prometheus.CounterVec
	stored           prometheus.Counter
	published        prometheus.Counter
	publishErrors    prometheus.Counter
	delivered        *prometheus.CounterVec
	slowCutoffs      *prometheus.CounterVec
	brokerReconnects prometheus.Counter
	latency          *prometheus.HistogramVec
	graphqlOps       *prometheus.CounterVec
	rateLimited      *prometheus.CounterVec
	httpRequests     *prometheus.CounterVec

	// byTransport holds the delivered and latency series of each
	// transport, looked up once: Delivered runs for every notification
	// written, and WithLabelValues hashes the label and takes a lock each
	// time. Read-only after New.
	byTransport map[string]transportSeries
}

// transportSeries are one transport's series of the per-write metrics.
type transportSeries struct {
	delivered prometheus.Counter
	latency   prometheus.Observer
}

// New returns Metrics registered on a new registry, with the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		socketsOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "pulse_sockets_open",
			Help: "Open websockets and event streams by transport (plain: /ws/{token}/, graphql: /query, graphql_sse: /query over server-sent events, sse: /events).",
		}, []string{"transport"}),
		socketsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_sockets_refused_total",
			Help: "Websockets closed at once, and event streams refused, because their user or client address holds too many (reason: per_user, per_address).",
		}, []string{"transport", "reason"}),
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_notifications_stored_total",
			Help: "Notifications committed to the store.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_notifications_published_total",
			Help: "Notifications handed to the broker after their commit.",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_publish_errors_total",
			Help: "Publishes the broker refused (subscribers catch up from the store).",
		}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_notifications_delivered_total",
			Help: "Notifications written to a client socket or stream, live or replayed, by transport.",
		}, []string{"transport"}),
		slowCutoffs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_slow_client_cutoffs_total",
			Help: "Sockets (plain), subscriptions (graphql, graphql_sse) or event streams (sse) cut off because the client did not keep up.",
		}, []string{"transport"}),
		brokerReconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pulse_broker_reconnects_total",
			Help: "Times the broker lost and regained its connection (Redis).",
		}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "pulse_publish_to_write_seconds",
			Help:    "From a live notification's publish to its write on a client socket or stream, by transport.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"transport"}),
		graphqlOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_graphql_operations_total",
			Help: "GraphQL operations by root field (e.g. \"mutation createPost\") and outcome (ok, or the first error's code).",
		}, []string{"operation", "outcome"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_rate_limited_total",
			Help: "Requests refused by a rate limit (limit: auth, mutation, subscriptions).",
		}, []string{"limit"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pulse_http_requests_total",
			Help: "HTTP requests by route pattern (the plain socket's is /ws/{token}), method and status.",
		}, []string{"route", "method", "status"}),
	}
	m.reg.MustRegister(
		// The default Go metrics, plus the live heap after the last GC
		// (go_gc_heap_live_bytes): what memory growth is judged by.
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.socketsOpen, m.socketsRefused, m.stored, m.published, m.publishErrors, m.delivered,
		m.slowCutoffs, m.brokerReconnects, m.latency, m.graphqlOps, m.rateLimited, m.httpRequests,
	)
	// Make the transport series exist from the start, at zero.
	m.byTransport = make(map[string]transportSeries, 4)
	for _, t := range []string{Plain, GraphQL, GraphQLSSE, SSE} {
		m.socketsOpen.WithLabelValues(t)
		m.slowCutoffs.WithLabelValues(t)
		m.byTransport[t] = transportSeries{delivered: m.delivered.WithLabelValues(t), latency: m.latency.WithLabelValues(t)}
	}
	return m
}

// Registry returns the registry, to register more collectors on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// SocketOpened counts a socket of the transport as open; call the function
// it returns, once, when the socket closes.
func (m *Metrics) SocketOpened(transport string) (closed func()) {
	if m == nil {
		return func() {}
	}
	g := m.socketsOpen.WithLabelValues(transport)
	g.Inc()
	return g.Dec
}

// SocketRefused counts a socket closed at once for holding too many
// (reason "per_user" or "per_address").
func (m *Metrics) SocketRefused(transport, reason string) {
	if m != nil {
		m.socketsRefused.WithLabelValues(transport, reason).Inc()
	}
}

// Stored counts n notifications committed.
func (m *Metrics) Stored(n int) {
	if m != nil {
		m.stored.Add(float64(n))
	}
}

// Published counts n notifications handed to the broker.
func (m *Metrics) Published(n int) {
	if m != nil {
		m.published.Add(float64(n))
	}
}

// PublishError counts a publish the broker refused.
func (m *Metrics) PublishError() {
	if m != nil {
		m.publishErrors.Inc()
	}
}

// Delivered counts one notification written to a socket of the transport;
// publishedAt, when not zero, is when it was published (a live one), and
// its latency goes into the histogram.
func (m *Metrics) Delivered(transport string, publishedAt time.Time) {
	if m == nil {
		return
	}
	ts, ok := m.byTransport[transport]
	if !ok {
		ts = transportSeries{delivered: m.delivered.WithLabelValues(transport), latency: m.latency.WithLabelValues(transport)}
	}
	ts.delivered.Inc()
	if !publishedAt.IsZero() {
		ts.latency.Observe(time.Since(publishedAt).Seconds())
	}
}

// SlowCutoff counts a socket or subscription cut off as too slow.
func (m *Metrics) SlowCutoff(transport string) {
	if m != nil {
		m.slowCutoffs.WithLabelValues(transport).Inc()
	}
}

// BrokerReconnected counts a broker reconnect.
func (m *Metrics) BrokerReconnected() {
	if m != nil {
		m.brokerReconnects.Inc()
	}
}

// GraphQLOperation counts one GraphQL operation: operation is its type and
// root field ("mutation createPost"), outcome "ok" or an error code.
func (m *Metrics) GraphQLOperation(operation, outcome string) {
	if m != nil {
		m.graphqlOps.WithLabelValues(operation, outcome).Inc()
	}
}

// RateLimited counts a request refused by the named limit.
func (m *Metrics) RateLimited(limit string) {
	if m != nil {
		m.rateLimited.WithLabelValues(limit).Inc()
	}
}

// HTTPRequest counts an HTTP request; route must be a route pattern, never
// a request's path.
func (m *Metrics) HTTPRequest(route, method string, status int) {
	if m != nil {
		m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	}
}
