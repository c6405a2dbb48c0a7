// Package graph is the GraphQL API: gqlgen's generated executor
// (*.generated.go), the models (model/) and thin resolvers that convert
// arguments, call the social.Service and convert results.
package graph

//go:generate go run github.com/99designs/gqlgen generate

import (
	"context"
	"log/slog"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
)

// Resolver holds the resolvers' dependencies; it has no state of its own.
type Resolver struct {
	Service *social.Service
	Logger  *slog.Logger
	// Metrics counts the notifications subscriptions deliver; nil counts
	// nothing.
	Metrics *metrics.Metrics
	// Streams is the transports that read subscriptions' channels
	// themselves (the GraphQL websocket, GraphQL over SSE); nil when gqlgen
	// reads them all.
	Streams Streams
}

// Streams is what a transport that reads subscriptions' channels itself
// offers their resolvers; the resolvers know no transport by name.
type Streams interface {
	// Notifier returns the function a subscription's resolver calls each
	// time it has put a value on its channel, and once when it has closed
	// it; nil if ctx's subscription is not the transport's. The function
	// never blocks.
	Notifier(ctx context.Context) func()
	// AddError adds an error that ctx's subscription ends with; it reports
	// false if the subscription is not the transport's.
	AddError(ctx context.Context, err *gqlerror.Error) bool
	// Transport returns the transport label (metrics.GraphQL,
	// metrics.GraphQLSSE) that ctx's subscription counts its deliveries
	// and cutoffs under.
	Transport(ctx context.Context) string
}
