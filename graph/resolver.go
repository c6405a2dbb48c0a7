// Package graph is the GraphQL API: gqlgen's generated executor
// (*.generated.go), the models (model/) and thin resolvers that convert
// arguments, call the social.Service and convert results.
package graph

//go:generate go run github.com/99designs/gqlgen generate

import (
	"log/slog"

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
}
