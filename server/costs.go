package main

import (
	"flag"
	"fmt"

	"github.com/pulse-social/pulse/internal/httpapi"
)

// costFlags defines the flags of the GraphQL cost limits beyond depth and
// complexity, into g: the document caps checked before validation, the
// errors of one response, the resolver budget and the response size.
func costFlags(fs *flag.FlagSet, e *envDefaults, g *httpapi.CostLimits) {
	fs.IntVar(&g.Document.Aliases, "graphql-max-aliases", e.integer("GRAPHQL_MAX_ALIASES", httpapi.DefaultMaxAliases), "aliased fields in one GraphQL document; more is refused before validation with GRAPHQL_VALIDATION_FAILED, HTTP 422 (env GRAPHQL_MAX_ALIASES)")
	fs.IntVar(&g.Document.Fields, "graphql-max-fields", e.integer("GRAPHQL_MAX_FIELDS", httpapi.DefaultMaxFields), "fields in one GraphQL document, each fragment counted where it is spread; more is refused as --graphql-max-aliases says (env GRAPHQL_MAX_FIELDS)")
	fs.IntVar(&g.Document.Fragments, "graphql-max-fragments", e.integer("GRAPHQL_MAX_FRAGMENTS", httpapi.DefaultMaxFragments), "fragment definitions, spreads and inline fragments in one GraphQL document; more is refused as --graphql-max-aliases says (env GRAPHQL_MAX_FRAGMENTS)")
	fs.IntVar(&g.Document.Directives, "graphql-max-directives", e.integer("GRAPHQL_MAX_DIRECTIVES", httpapi.DefaultMaxDirectives), "directives in one GraphQL document; more is refused as --graphql-max-aliases says (env GRAPHQL_MAX_DIRECTIVES)")
	fs.IntVar(&g.MaxErrors, "graphql-max-errors", e.integer("GRAPHQL_MAX_ERRORS", httpapi.DefaultMaxErrors), "errors in one GraphQL response, validation errors included; the last one kept says how many were left out (env GRAPHQL_MAX_ERRORS)")
	fs.IntVar(&g.MaxResolvedFields, "graphql-max-resolved-fields", e.integer("GRAPHQL_MAX_RESOLVED_FIELDS", httpapi.DefaultMaxResolvedFields), "fields one GraphQL response (one subscription event) may resolve; more replaces the response with RESOURCE_LIMIT_EXCEEDED (env GRAPHQL_MAX_RESOLVED_FIELDS)")
	fs.IntVar(&g.MaxResponseBytes, "graphql-max-response-bytes", e.integer("GRAPHQL_MAX_RESPONSE_BYTES", httpapi.DefaultMaxResponseBytes), "largest GraphQL response (one subscription event) in bytes; a bigger one is replaced with RESOURCE_LIMIT_EXCEEDED (env GRAPHQL_MAX_RESPONSE_BYTES)")
}

// checkCosts requires every cost limit to be positive: turning one off
// would reopen the attack it stops.
func checkCosts(g httpapi.CostLimits) error {
	for _, v := range []int{g.Document.Aliases, g.Document.Fields, g.Document.Fragments, g.Document.Directives,
		g.MaxErrors, g.MaxResolvedFields, g.MaxResponseBytes} {
		if v <= 0 {
			return fmt.Errorf("the -graphql-max-* limits must be positive")
		}
	}
	return nil
}
