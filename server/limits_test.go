package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/limit/limittest"
	"github.com/pulse-social/pulse/internal/social"
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
		c.IdleTimeout != 2*time.Minute || c.ShutdownDelay != 0 || c.RequestTimeout != 30*time.Second || c.MaxAuthPerRequest != 3 ||
		c.MessagesPerMinute != 120 || c.MessageBurst != 60 || c.MessageBytes != 1<<20 || c.RefusedMessages != 10 || c.GraphQL != defaultCosts {
		t.Fatalf("defaults = %+v", c)
	}
	env := map[string]string{"AUTH_RATE": "0", "MAX_SOCKETS_PER_USER": "3", "GRAPHQL_MAX_DEPTH": "5", "SHUTDOWN_DELAY": "2s",
		"REQUEST_TIMEOUT": "5s", "MAX_AUTH_PER_REQUEST": "1", "MESSAGE_RATE": "30", "MESSAGE_BYTES": "0", "GRAPHQL_MAX_ALIASES": "9"}
	c, err = parseConfig([]string{"--mutation-burst", "7", "--max-refused-messages", "2", "--graphql-max-resolved-fields", "99"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuthPerMinute != 0 || c.SocketsPerUser != 3 || c.GraphQLMaxDepth != 5 || c.MutationsBurst != 7 || c.ShutdownDelay != 2*time.Second ||
		c.RequestTimeout != 5*time.Second || c.MaxAuthPerRequest != 1 ||
		c.MessagesPerMinute != 30 || c.MessageBytes != 0 || c.RefusedMessages != 2 ||
		c.GraphQL.Document.Aliases != 9 || c.GraphQL.MaxResolvedFields != 99 {
		t.Fatalf("from env and flags: %+v", c)
	}
	for _, bad := range [][]string{
		{"--auth-rate", "-1"}, {"--max-sockets-per-user", "-1"}, {"--graphql-max-depth", "0"},
		{"--max-body-bytes", "0"}, {"--read-timeout", "0s"}, {"--shutdown-delay", "-1s"},
		{"--request-timeout", "0s"}, {"--max-auth-per-request", "0"},
		{"--message-rate", "-1"}, {"--message-burst", "-1"}, {"--message-bytes", "-1"}, {"--max-refused-messages", "0"},
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
		"REQUEST_TIMEOUT", "MAX_AUTH_PER_REQUEST", "MESSAGE_RATE", "MESSAGE_BURST", "MESSAGE_BYTES", "MAX_REFUSED_MESSAGES",
		"GRAPHQL_MAX_ALIASES", "GRAPHQL_MAX_FIELDS", "GRAPHQL_MAX_FRAGMENTS", "GRAPHQL_MAX_DIRECTIVES", "GRAPHQL_MAX_ERRORS",
		"GRAPHQL_MAX_RESOLVED_FIELDS", "GRAPHQL_MAX_RESPONSE_BYTES"} {
		if !strings.Contains(help.String(), "env "+v+")") {
			t.Errorf("--help does not mention %s", v)
		}
	}
}

// TestMessageLimitsAtHumanPace checks that the default budgets of plain
// socket messages never refuse a person, even a fast one, for an hour,
// and that they hold an attacker's flood to about a minute's worth.
func TestMessageLimitsAtHumanPace(t *testing.T) {
	c, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	clock := limittest.NewClock(time.Unix(1e9, 0))
	messages, bytes := c.messageLimits(clock.Now)
	key := limit.UserKey(1)
	send := func(size int) bool {
		ok, _ := messages.Allow(key)
		if ok {
			ok, _ = bytes.AllowN(key, size)
		}
		return ok
	}
	// A message every 5 s; every 2 minutes 20 quick ones; every 10 minutes
	// the longest message there is, pasted twice.
	for s := range 3600 {
		clock.Add(time.Second)
		var sizes []int
		switch {
		case s%600 == 0:
			sizes = []int{social.MessageMaxBytes, social.MessageMaxBytes}
		case s%120 == 0:
			sizes = slices.Repeat([]int{100}, 20)
		case s%5 == 0:
			sizes = []int{500}
		}
		for i, size := range sizes {
			if !send(size) {
				t.Fatalf("second %d: message %d of %d bytes refused", s, i, size)
			}
		}
	}

	// Another user sends 400 of the longest messages in 3 s.
	key = limit.UserKey(2)
	sent := 0
	for i := range 400 {
		if i%133 == 0 {
			clock.Add(time.Second)
		}
		if send(social.MessageMaxBytes) {
			sent++
		}
	}
	if sent*social.MessageMaxBytes > c.MessageBytes+social.MessageMaxBytes {
		t.Fatalf("%d of 400 sent, more than a minute's worth of bytes", sent)
	}
}

// TestMessageLimitsWired checks that the flags reach the plain socket: past
// the burst a message is answered with RATE_LIMITED, and the next refused
// one closes the socket with 4429.
func TestMessageLimitsWired(t *testing.T) {
	r := startRun(t, "--message-rate", "1", "--message-burst", "2", "--max-refused-messages", "1")
	tok := r.token(t, `mutation{register(username:"alice",password:"password-alice"){accessToken}}`)
	c, _, err := websocket.DefaultDialer.Dial("ws://"+r.addr+"/ws/"+tok+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 3 {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"message":"hi"}`)); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var limited int
	for range 3 {
		var m map[string]any
		if err := c.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		if m["code"] == "RATE_LIMITED" {
			limited++
		}
	}
	if limited != 1 {
		t.Fatalf("%d of 3 messages rate limited, want 1", limited)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte(`{"message":"hi"}`)); err != nil {
		t.Fatal(err)
	}
	for {
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == 4429 && ce.Text == "too many messages" {
			break
		}
		if err != nil {
			t.Fatalf("read: %v, want close 4429", err)
		}
	}
}

// defaultCosts are the documented defaults of the GraphQL cost flags.
var defaultCosts = httpapi.CostLimits{
	Document:  httpapi.DocumentLimits{Aliases: 100, Fields: 500, Fragments: 100, Directives: 50},
	MaxErrors: 20, MaxResolvedFields: 10_000, MaxResponseBytes: 4 << 20,
}
