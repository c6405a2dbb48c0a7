// Package gqlsse serves GraphQL over server-sent events for gqlgen, in the
// graphql-sse protocol's distinct connections mode: a POST of the usual
// JSON request that accepts text/event-stream is answered with an event
// stream of the operation's results, one `next` event each (data: the
// result as one JSON line), then a `complete` event, and the response
// ends. Transport is a gqlgen graphql.Transport: add it to a
// handler.Server with AddTransport, before gqlgen's POST transport, which
// keeps every other POST; gqlgen still parses, validates and executes
// every operation.
//
// It is written beside gqlws rather than taken from gqlgen, whose SSE
// transport routes any request whose Accept merely mentions
// text/event-stream (urql's queries do), keeps a goroutine per stream for
// its keepalive, logs request bodies, bounds no write and cannot be ended
// from outside.
//
// # The stream
//
// Errors found before the operation runs (invalid JSON, parse, validation,
// complexity) come as a `next` event whose data holds them, then
// `complete`, as the protocol asks: a client's EventSource-like reader
// learns nothing from an HTTP error. Config.Subscribe may still refuse a
// subscription with an HTTP status (a *Refusal) before the stream starts.
//
// A stream holds the goroutine of its request, which is its only writer:
// it waits for the subscription's events (its resolver calls the function
// Notifier gives it each time it has put one on its channel, and once
// when it has closed it), the keepalive (a comment line, ": ping", every
// Config.KeepAlive) and End. Each write has Config.WriteTimeout: a client
// that does not take what it is sent is too slow, and its stream ends.
// That per-write deadline replaces the server's write timeout, meant for
// a whole response; its read timeout net/http lifts itself once the body
// is read.
//
// # Ending a stream
//
// A stream ends with `complete` after its last result, or when End is
// called with its context (logout, the token's expiry): End's error comes
// in one last `next` event, then `complete`. A client that leaves, and
// the server's shutdown (the request's context), end it without a word;
// the graphql-sse client then connects again.
package gqlsse
