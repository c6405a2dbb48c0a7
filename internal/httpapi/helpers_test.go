package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/inproc"
	"github.com/pulse-social/pulse/internal/plainws"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/sqlite"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

// testServer is the whole HTTP surface on a real SQLite store and the
// in-process broker, served on 127.0.0.1.
type testServer struct {
	*httptest.Server
	svc    *social.Service
	cancel context.CancelFunc // ends every request, as shutdown does
	broker *inproc.Broker
}

func MustServer(tb testing.TB) *testServer {
	tb.Helper()
	return MustServerWith(tb, fanout.Config{}, wspolicy.Config{})
}

// MustServerWith is MustServer with the broker and websocket policy
// configured by cfg and ws.
func MustServerWith(tb testing.TB, cfg fanout.Config, ws wspolicy.Config) *testServer {
	tb.Helper()
	return MustServerOpts(tb, ServerOptions{Fanout: cfg, Websocket: ws})
}

// ServerOptions configure MustServerOpts; zero values are the defaults.
type ServerOptions struct {
	Fanout    fanout.Config
	Websocket wspolicy.Config
	// Configure, if set, changes the httpapi.Config before the server
	// starts (limits, metrics, logger, ...). PlainSocket is built after it,
	// with the same logger, metrics and socket caps.
	Configure func(*httpapi.Config)
	// Store, if set, wraps the SQLite store the service runs on.
	Store func(social.Store) social.Store
	// Social configures the service (token lifetime, clock); its
	// PasswordCost is always bcrypt.MinCost.
	Social social.Config
	// Broker, if set, wraps the broker the service uses.
	Broker func(social.Broker) social.Broker
	// HTTPServer, if set, configures the server before it starts (its
	// timeouts).
	HTTPServer func(*http.Server)
}

// MustServerOpts starts the whole HTTP surface with opts.
func MustServerOpts(tb testing.TB, opts ServerOptions) *testServer {
	tb.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, ":memory:")
	if err != nil {
		tb.Fatal(err)
	}
	var wrapped social.Store = store
	if opts.Store != nil {
		wrapped = opts.Store(store)
	}
	broker := inproc.New(opts.Fanout)
	var b social.Broker = broker
	if opts.Broker != nil {
		b = opts.Broker(broker)
	}
	opts.Social.PasswordCost = bcrypt.MinCost
	svc := social.NewService(wrapped, b, opts.Social)
	cfg := httpapi.Config{
		Service:       svc,
		Websocket:     opts.Websocket,
		Introspection: true,
	}
	if opts.Configure != nil {
		opts.Configure(&cfg)
	}
	base, cancel := context.WithCancel(context.Background())
	cfg.PlainSocket = plainws.New(svc, plainws.Config{
		Context:           base,
		Websocket:         cfg.Websocket,
		Logger:            cfg.Logger,
		Metrics:           cfg.Metrics,
		SocketsPerUser:    cfg.Limits.SocketsPerUser,
		SocketsPerAddress: cfg.Limits.SocketsPerAddress,
	})
	h := httpapi.New(cfg)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	if opts.HTTPServer != nil {
		opts.HTTPServer(srv.Config)
	}
	srv.Start()
	tb.Cleanup(func() {
		cancel()
		srv.Close()
		broker.Close()
		store.Close()
	})
	return &testServer{Server: srv, svc: svc, cancel: cancel, broker: broker}
}

// gqlResponse is a GraphQL response over HTTP.
type gqlResponse struct {
	Status int
	Data   map[string]json.RawMessage
	Errors []gqlError
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Code returns the extensions.code of the first error, or "".
func (r gqlResponse) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// Do posts a GraphQL operation with an optional bearer token.
func (s *testServer) Do(tb testing.TB, token, query string, vars map[string]any) gqlResponse {
	tb.Helper()
	return s.DoRaw(tb, token, query, vars).gqlResponse
}

// MustDo is Do that fails the test on any GraphQL error and decodes
// data[field] into v.
func (s *testServer) MustDo(tb testing.TB, token, query string, vars map[string]any, field string, v any) {
	tb.Helper()
	r := s.Do(tb, token, query, vars)
	if len(r.Errors) > 0 || r.Status != http.StatusOK {
		tb.Fatalf("%s: status %d, errors %+v", query, r.Status, r.Errors)
	}
	if v != nil {
		if err := json.Unmarshal(r.Data[field], v); err != nil {
			tb.Fatalf("decode %s: %v (%s)", field, err, r.Data[field])
		}
	}
}

// MustRegister registers a user and returns its access token and id.
func (s *testServer) MustRegister(tb testing.TB, username string) (token, id string) {
	tb.Helper()
	var p struct {
		AccessToken string
		User        struct{ ID string }
	}
	s.MustDo(tb, "", `mutation($u:String!,$p:String!){register(username:$u,password:$p){accessToken user{id}}}`,
		map[string]any{"u": username, "p": "password-" + username}, "register", &p)
	return p.AccessToken, p.User.ID
}

// MustPost creates a post and returns its id.
func (s *testServer) MustPost(tb testing.TB, token, body string) string {
	tb.Helper()
	var p struct{ ID string }
	s.MustDo(tb, token, `mutation($b:String!){createPost(body:$b){id}}`, map[string]any{"b": body}, "createPost", &p)
	return p.ID
}

// MustFollow makes token's user follow username.
func (s *testServer) MustFollow(tb testing.TB, token, username string) {
	tb.Helper()
	s.MustDo(tb, token, `mutation($u:String!){follow(username:$u){id}}`, map[string]any{"u": username}, "follow", nil)
}

type notification struct {
	ID            string
	Message       string
	Action        string
	ActionID      string
	ByUser        string
	ActionContent *string
	Affected      *string
	AffectedID    *string
	Read          bool
	CreatedAt     string
}

const notificationFields = `id message action actionId byUser actionContent affected affectedId read createdAt`

// MustNotifications returns token's user's newest notifications.
func (s *testServer) MustNotifications(tb testing.TB, token string) []notification {
	tb.Helper()
	var c struct {
		Edges []struct{ Node notification }
	}
	s.MustDo(tb, token, fmt.Sprintf(`{notifications(first:100){edges{node{%s}}}}`, notificationFields), nil, "notifications", &c)
	out := make([]notification, len(c.Edges))
	for i, e := range c.Edges {
		out[i] = e.Node
	}
	return out
}
