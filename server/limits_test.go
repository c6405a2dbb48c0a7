package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/httpapi"
)

// TestLimitFlags checks the limits' defaults (generous: a test suite at
// human pace never meets them), their environment variables, and that
// --help lists every one.
func TestLimitFlags(t *testing.T) {
	none := func(string) string { return "" }
	c, err := parseConfig(nil, none, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthPerMinute != 300 || c.AuthBurst != 300 || c.MutationsPerMinute != 600 || c.MutationsBurst != 300 ||
		c.SocketsPerUser != 100 || c.SocketsPerAddress != 1000 || c.OperationsPerSocket != 100 ||
		c.GraphQLMaxDepth != 12 || c.GraphQLMaxComplexity != 5000 || c.MaxBodyBytes != 1<<20 ||
		c.ReadHeaderTimeout != 10*time.Second || c.ReadTimeout != 30*time.Second || c.WriteTimeout != 30*time.Second ||
		c.IdleTimeout != 2*time.Minute || c.ShutdownDelay != 0 || c.GraphQL != defaultCosts {
		t.Fatalf("defaults = %+v", c)
	}
	env := map[string]string{"AUTH_RATE": "0", "MAX_SOCKETS_PER_USER": "3", "GRAPHQL_MAX_DEPTH": "5", "SHUTDOWN_DELAY": "2s", "GRAPHQL_MAX_ALIASES": "9"}
	c, err = parseConfig([]string{"--mutation-burst", "7", "--graphql-max-resolved-fields", "99"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthPerMinute != 0 || c.SocketsPerUser != 3 || c.GraphQLMaxDepth != 5 || c.MutationsBurst != 7 || c.ShutdownDelay != 2*time.Second ||
		c.GraphQL.Document.Aliases != 9 || c.GraphQL.MaxResolvedFields != 99 {
		t.Fatalf("from env and flags: %+v", c)
	}
	for _, bad := range [][]string{
		{"--auth-rate", "-1"}, {"--max-sockets-per-user", "-1"}, {"--graphql-max-depth", "0"},
		{"--max-body-bytes", "0"}, {"--read-timeout", "0s"}, {"--shutdown-delay", "-1s"},
		{"--graphql-max-aliases", "0"}, {"--graphql-max-fields", "0"}, {"--graphql-max-fragments", "0"},
		{"--graphql-max-directives", "0"}, {"--graphql-max-errors", "0"}, {"--graphql-max-resolved-fields", "0"},
		{"--graphql-max-response-bytes", "0"},
	} {
		if _, err := parseConfig(bad, none, io.Discard); err == nil {
			t.Errorf("parseConfig(%v) accepted", bad)
		}
	}
	for name, v := range map[string]string{"AUTH_BURST": "many", "MUTATION_RATE": "fast"} {
		if _, err := parseConfig(nil, func(k string) string {
			if k == name {
				return v
			}
			return ""
		}, io.Discard); err == nil {
			t.Errorf("%s=%s accepted", name, v)
		}
	}

	var help bytes.Buffer
	if _, err := parseConfig([]string{"--help"}, none, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, v := range []string{"AUTH_RATE", "AUTH_BURST", "MUTATION_RATE", "MUTATION_BURST", "MAX_SOCKETS_PER_USER",
		"MAX_SOCKETS_PER_ADDRESS", "MAX_SUBSCRIPTIONS_PER_SOCKET", "GRAPHQL_MAX_DEPTH", "GRAPHQL_MAX_COMPLEXITY",
		"MAX_BODY_BYTES", "READ_HEADER_TIMEOUT", "READ_TIMEOUT", "WRITE_TIMEOUT", "IDLE_TIMEOUT", "SHUTDOWN_DELAY",
		"GRAPHQL_MAX_ALIASES", "GRAPHQL_MAX_FIELDS", "GRAPHQL_MAX_FRAGMENTS", "GRAPHQL_MAX_DIRECTIVES", "GRAPHQL_MAX_ERRORS",
		"GRAPHQL_MAX_RESOLVED_FIELDS", "GRAPHQL_MAX_RESPONSE_BYTES"} {
		if !strings.Contains(help.String(), "env "+v+")") {
			t.Errorf("--help does not mention %s", v)
		}
	}
}

// defaultCosts are the documented defaults of the GraphQL cost flags.
var defaultCosts = httpapi.CostLimits{
	Document:  httpapi.DocumentLimits{Aliases: 100, Fields: 500, Fragments: 100, Directives: 50},
	MaxErrors: 20, MaxResolvedFields: 10_000, MaxResponseBytes: 4 << 20,
}
