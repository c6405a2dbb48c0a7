// Package playground serves a GraphiQL page for the GraphQL API, able to run
// queries, mutations and subscriptions, with every file it needs embedded:
// the page loads nothing from any other host.
//
// The page is GraphiQL 3 (its UMD build, on React 18) with a fetcher of its
// own (assets/playground.js): queries and mutations are POSTed to the
// endpoint with the headers of GraphiQL's Headers editor; subscriptions run
// over a websocket to the same URL (ws: or wss:, following the page) with the
// graphql-transport-ws protocol of the graphql-ws library, and the
// Authorization header of the Headers editor goes in the connection_init
// payload as {"authorization": "Bearer <token>"}. The websocket client is
// re-created when that header changes.
//
// The Headers editor starts as {}: a placeholder token would be sent, and the
// server refuses a bad token with 401 before anything runs, schema
// introspection included. The default document explains, in comments, how to
// get a token with the register or login mutation and where to put it.
// Headers are not kept in localStorage unless the person turns that on in
// GraphiQL's settings.
//
// The page has no inline script, so it is served with a strict
// Content-Security-Policy (see ContentSecurityPolicy). The third-party files
// in assets/ are copied unchanged from npm packages of pinned versions by
// update-assets.sh; assets/README.md lists them.
//
// See Handler for the paths it serves and how to mount it.
package playground
