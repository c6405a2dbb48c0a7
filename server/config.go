package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/plainws"
	"github.com/pulse-social/pulse/internal/social"
)

// config is the program's configuration: flags, each with an environment
// variable that sets its default.
type config struct {
	Addr            string
	DB              string
	Broker          string
	AllowedOrigins  []string
	LogLevel        slog.Level
	LogFormat       string
	TokenTTL        time.Duration
	RefreshGrace    time.Duration // how long a refreshed session's older tokens keep working
	SessionSweep    time.Duration // how often expired sessions are deleted
	Introspection   bool
	ShutdownTimeout time.Duration
	ShutdownDelay   time.Duration
	PprofAddr       string

	// Abuse limits; 0 turns a limit off.
	AuthPerMinute        float64 // register and login, per client address
	AuthBurst            int
	MutationsPerMinute   float64 // other mutations, per user
	MutationsBurst       int
	SocketsPerUser       int
	SocketsPerAddress    int
	OperationsPerSocket  int
	MessagesPerMinute    float64 // plain socket messages, per user in each process
	MessageBurst         int
	MessageBytes         int // bytes of plain socket messages per minute, per user in each process
	RefusedMessages      int
	GraphQLMaxDepth      int
	GraphQLMaxComplexity int
	GraphQL              httpapi.CostLimits
	MaxBodyBytes         int64
	RequestTimeout       time.Duration // per query or mutation
	MaxAuthPerRequest    int           // register and login fields per request
	ReadHeaderTimeout    time.Duration
	ReadTimeout          time.Duration
	WriteTimeout         time.Duration
	IdleTimeout          time.Duration
}

// defaultDB is the embedded SQLite file used when --db is not given.
const defaultDB = "data/pulse.db"

// parseConfig reads the flags in args, with defaults from the environment.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	e := envDefaults{getenv: getenv}
	var c config
	var origins, logLevel string
	fs := flags(&c, &origins, &logLevel, &e)
	fs.SetOutput(stderr)
	if e.err != nil {
		return config{}, e.err
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	if err := c.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return config{}, fmt.Errorf("-log-level: %w", err)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return config{}, fmt.Errorf("-log-format: want text or json, got %q", c.LogFormat)
	}
	if c.TokenTTL <= 0 || c.ShutdownTimeout <= 0 || c.SessionSweep <= 0 || c.RefreshGrace <= 0 {
		return config{}, fmt.Errorf("-token-ttl, -token-refresh-grace, -session-sweep-interval and -shutdown-timeout must be positive")
	}
	if c.AuthPerMinute < 0 || c.AuthBurst < 0 || c.MutationsPerMinute < 0 || c.MutationsBurst < 0 ||
		c.SocketsPerUser < 0 || c.SocketsPerAddress < 0 || c.OperationsPerSocket < 0 || c.ShutdownDelay < 0 ||
		c.MessagesPerMinute < 0 || c.MessageBurst < 0 || c.MessageBytes < 0 {
		return config{}, fmt.Errorf("limits and -shutdown-delay must not be negative")
	}
	if err := checkCosts(c.GraphQL); err != nil {
		return config{}, err
	}
	if c.GraphQLMaxDepth <= 0 || c.GraphQLMaxComplexity <= 0 || c.MaxBodyBytes <= 0 || c.MaxAuthPerRequest <= 0 || c.RefusedMessages <= 0 ||
		c.ReadHeaderTimeout <= 0 || c.ReadTimeout <= 0 || c.WriteTimeout <= 0 || c.IdleTimeout <= 0 || c.RequestTimeout <= 0 {
		return config{}, fmt.Errorf("-graphql-max-depth, -graphql-max-complexity, -max-body-bytes, -max-auth-per-request, -max-refused-messages and the timeouts must be positive")
	}
	return c, nil
}

// flags defines the program's flags on a new FlagSet, each with its
// default from the environment variable its usage names (e keeps the first
// malformed value's error). Parsing fills c, and origins and logLevel,
// which parseConfig then converts.
func flags(c *config, origins, logLevel *string, e *envDefaults) *flag.FlagSet {
	fs := flag.NewFlagSet("pulse", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", e.str("ADDR", "127.0.0.1:8000"), "listen address (env ADDR)")
	fs.StringVar(&c.DB, "db", e.str("DATABASE_URL", ""), "store: a SQLite file path or sqlite://path, or postgres://... (env DATABASE_URL; default: the embedded SQLite file "+defaultDB+")")
	fs.StringVar(&c.Broker, "broker", e.str("BROKER_URL", ""), "broker: empty for in-process, redis://... to fan out across processes (env BROKER_URL)")
	fs.StringVar(origins, "allowed-origins", e.str("ALLOWED_ORIGINS", ""), "comma-separated browser origins allowed besides this server's own, e.g. https://app.example.com; * allows any (env ALLOWED_ORIGINS)")
	fs.StringVar(logLevel, "log-level", e.str("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", e.str("LOG_FORMAT", "text"), "text or json (env LOG_FORMAT)")
	fs.DurationVar(&c.TokenTTL, "token-ttl", e.duration("TOKEN_TTL", 720*time.Hour), "access token lifetime (env TOKEN_TTL)")
	fs.DurationVar(&c.RefreshGrace, "token-refresh-grace", e.duration("TOKEN_REFRESH_GRACE", social.DefaultTokenRefreshGrace), "how long a session's older token keeps working after refreshToken (env TOKEN_REFRESH_GRACE)")
	fs.DurationVar(&c.SessionSweep, "session-sweep-interval", e.duration("SESSION_SWEEP_INTERVAL", time.Hour), "how often expired sessions are deleted from the store (env SESSION_SWEEP_INTERVAL)")
	fs.BoolVar(&c.Introspection, "introspection", e.boolean("INTROSPECTION", true), "allow GraphQL introspection; the playground needs it (env INTROSPECTION)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", e.duration("SHUTDOWN_TIMEOUT", 10*time.Second), "how long a graceful shutdown may take (env SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", e.str("PPROF_ADDR", ""), "serve Go's profiler (/debug/pprof/) on this address, e.g. 127.0.0.1:6060; empty: off. Keep it private: profiles show the program's memory (env PPROF_ADDR)")
	fs.DurationVar(&c.ShutdownDelay, "shutdown-delay", e.duration("SHUTDOWN_DELAY", 0), "on SIGTERM, how long /readyz reports not ready while the server still serves, before it stops accepting: time for a load balancer to notice (env SHUTDOWN_DELAY)")

	// Limits. Each is generous enough that a person, or a test suite at
	// human pace, never meets it; 0 turns it off.
	fs.Float64Var(&c.AuthPerMinute, "auth-rate", e.float("AUTH_RATE", 300), "register and login calls per minute per client address, sustained; 0: no limit (env AUTH_RATE)")
	fs.IntVar(&c.AuthBurst, "auth-burst", e.integer("AUTH_BURST", 300), "register and login calls one client address may make at once, beyond the sustained rate (env AUTH_BURST)")
	fs.Float64Var(&c.MutationsPerMinute, "mutation-rate", e.float("MUTATION_RATE", 600), "other mutations per minute per user, sustained; 0: no limit (env MUTATION_RATE)")
	fs.IntVar(&c.MutationsBurst, "mutation-burst", e.integer("MUTATION_BURST", 300), "mutations one user may make at once, beyond the sustained rate (env MUTATION_BURST)")
	fs.IntVar(&c.SocketsPerUser, "max-sockets-per-user", e.integer("MAX_SOCKETS_PER_USER", 100), "open websockets (both transports) and event streams (GraphQL over SSE, /events) per user; more sockets are closed with 4429, more streams refused with 429; 0: no cap (env MAX_SOCKETS_PER_USER)")
	fs.IntVar(&c.SocketsPerAddress, "max-sockets-per-address", e.integer("MAX_SOCKETS_PER_ADDRESS", 1000), "open websockets (both transports) and event streams (GraphQL over SSE, /events) per client address (IPv6: per /64); more sockets are closed with 4429, more streams refused with 429; 0: no cap (env MAX_SOCKETS_PER_ADDRESS)")
	fs.IntVar(&c.OperationsPerSocket, "max-subscriptions-per-socket", e.integer("MAX_SUBSCRIPTIONS_PER_SOCKET", 100), "operations one GraphQL websocket runs at once; one more gets a RATE_LIMITED error; 0: no cap (env MAX_SUBSCRIPTIONS_PER_SOCKET)")
	fs.Float64Var(&c.MessagesPerMinute, "message-rate", e.float("MESSAGE_RATE", 120), "plain socket {\"message\"} frames per minute per user (in each server process), sustained; past it a RATE_LIMITED error, and the message is not sent; 0: no limit (env MESSAGE_RATE)")
	fs.IntVar(&c.MessageBurst, "message-burst", e.integer("MESSAGE_BURST", 60), "plain socket messages one user may send at once, beyond the sustained rate (env MESSAGE_BURST)")
	fs.IntVar(&c.MessageBytes, "message-bytes", e.integer("MESSAGE_BYTES", 1<<20), "bytes of plain socket message text per minute per user (in each server process), all of which may come at once; at least one message's worth is allowed; 0: no limit (env MESSAGE_BYTES)")
	fs.IntVar(&c.RefusedMessages, "max-refused-messages", e.integer("MAX_REFUSED_MESSAGES", plainws.DefaultRefusedMessages), "plain socket messages in a row that the message limits may refuse before the socket is closed with 4429; must be positive (env MAX_REFUSED_MESSAGES)")
	fs.IntVar(&c.GraphQLMaxDepth, "graphql-max-depth", e.integer("GRAPHQL_MAX_DEPTH", 12), "how deep a GraphQL operation may nest, introspection not counted (env GRAPHQL_MAX_DEPTH)")
	fs.IntVar(&c.GraphQLMaxComplexity, "graphql-max-complexity", e.integer("GRAPHQL_MAX_COMPLEXITY", httpapi.DefaultComplexityLimit), "a GraphQL operation's complexity: one per field, a list's items counted by its page size; more is COMPLEXITY_LIMIT_EXCEEDED before it runs (env GRAPHQL_MAX_COMPLEXITY)")
	costFlags(fs, e, &c.GraphQL)
	fs.Int64Var(&c.MaxBodyBytes, "max-body-bytes", int64(e.integer("MAX_BODY_BYTES", 1<<20)), "largest GraphQL request body, and GraphQL websocket message, in bytes (env MAX_BODY_BYTES)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", e.duration("REQUEST_TIMEOUT", httpapi.DefaultRequestTimeout), "how long a GraphQL query or mutation may run, over HTTP or a websocket, before it is cut with a TIMEOUT error; subscriptions are not cut (env REQUEST_TIMEOUT)")
	fs.IntVar(&c.MaxAuthPerRequest, "max-auth-per-request", e.integer("MAX_AUTH_PER_REQUEST", httpapi.DefaultMaxAuthFields), "register and login fields one request may hold; one with more is refused before any password is checked (env MAX_AUTH_PER_REQUEST)")
	fs.DurationVar(&c.ReadHeaderTimeout, "read-header-timeout", e.duration("READ_HEADER_TIMEOUT", 10*time.Second), "time to read a request's headers (env READ_HEADER_TIMEOUT)")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", e.duration("READ_TIMEOUT", 30*time.Second), "time to read a whole request; websockets and event streams are not cut by it (env READ_TIMEOUT)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", e.duration("WRITE_TIMEOUT", 30*time.Second), "time to write a response; websockets and event streams are not cut by it (env WRITE_TIMEOUT)")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", e.duration("IDLE_TIMEOUT", 2*time.Minute), "how long an idle keep-alive connection stays open (env IDLE_TIMEOUT)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: pulse [flags]\n\nThe realtime notification server. Each flag's default comes from the environment variable named with it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// envDefaults reads flag defaults from the environment and keeps the first
// malformed value's error.
type envDefaults struct {
	getenv func(string) string
	err    error
}

func (e *envDefaults) str(name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

func (e *envDefaults) duration(name string, def time.Duration) time.Duration {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("%s: %w", name, err)
	}
	return d
}

func (e *envDefaults) integer(name string, def int) int {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("%s: %w", name, err)
	}
	return n
}

func (e *envDefaults) float(name string, def float64) float64 {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("%s: %w", name, err)
	}
	return f
}

func (e *envDefaults) boolean(name string, def bool) bool {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil && e.err == nil {
		e.err = fmt.Errorf("%s: %w", name, err)
	}
	return b
}

// newLogger returns the program's logger: text or JSON lines at the
// configured level, each line logged for a request carrying its
// request_id.
func newLogger(c config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(httpapi.LogHandler(h))
}

// limits builds the abuse limits of c; the socket caps are shared by both
// transports.
func (c config) limits() httpapi.Limits {
	return httpapi.Limits{
		Auth:                perMinute(c.AuthPerMinute, c.AuthBurst, nil),
		Mutations:           perMinute(c.MutationsPerMinute, c.MutationsBurst, nil),
		SocketsPerUser:      limit.NewSlots(c.SocketsPerUser),
		SocketsPerAddress:   limit.NewSlots(c.SocketsPerAddress),
		OperationsPerSocket: c.OperationsPerSocket,
	}
}

// messageLimits builds the plain socket's budgets of messages and of
// message bytes, on the clock now (nil: time.Now). The byte budget's burst
// is a minute's worth, and never less than one message.
func (c config) messageLimits(now func() time.Time) (messages, bytes *limit.Rates) {
	return perMinute(c.MessagesPerMinute, c.MessageBurst, now),
		perMinute(float64(c.MessageBytes), max(c.MessageBytes, social.MessageMaxBytes), now)
}

// perMinute is a rate limit of n a minute with burst, on the clock now.
func perMinute(n float64, burst int, now func() time.Time) *limit.Rates {
	return limit.NewRates(limit.Rate{PerSecond: n / 60, Burst: burst}, now)
}
