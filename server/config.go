package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
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
	Introspection   bool
	ShutdownTimeout time.Duration
}

// defaultDB is the embedded SQLite file used when --db is not given.
const defaultDB = "data/pulse.db"

// parseConfig reads the flags in args, with defaults from the environment.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("pulse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	e := envDefaults{getenv: getenv}
	var c config
	var origins, logLevel string
	fs.StringVar(&c.Addr, "addr", e.str("ADDR", "127.0.0.1:8000"), "listen address (env ADDR)")
	fs.StringVar(&c.DB, "db", e.str("DATABASE_URL", ""), "store: a SQLite file path or sqlite://path, or postgres://... (env DATABASE_URL; default: the embedded SQLite file "+defaultDB+")")
	fs.StringVar(&c.Broker, "broker", e.str("BROKER_URL", ""), "broker: empty for in-process, redis://... to fan out across processes (env BROKER_URL)")
	fs.StringVar(&origins, "allowed-origins", e.str("ALLOWED_ORIGINS", ""), "comma-separated browser origins allowed besides this server's own, e.g. https://app.example.com; * allows any (env ALLOWED_ORIGINS)")
	fs.StringVar(&logLevel, "log-level", e.str("LOG_LEVEL", "info"), "debug, info, warn or error (env LOG_LEVEL)")
	fs.StringVar(&c.LogFormat, "log-format", e.str("LOG_FORMAT", "text"), "text or json (env LOG_FORMAT)")
	fs.DurationVar(&c.TokenTTL, "token-ttl", e.duration("TOKEN_TTL", 720*time.Hour), "access token lifetime (env TOKEN_TTL)")
	fs.BoolVar(&c.Introspection, "introspection", e.boolean("INTROSPECTION", true), "allow GraphQL introspection; the playground needs it (env INTROSPECTION)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", e.duration("SHUTDOWN_TIMEOUT", 10*time.Second), "how long a graceful shutdown may take (env SHUTDOWN_TIMEOUT)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: pulse [flags]\n\nThe realtime notification server. Each flag's default comes from the environment variable named with it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
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
	if c.TokenTTL <= 0 || c.ShutdownTimeout <= 0 {
		return config{}, fmt.Errorf("-token-ttl and -shutdown-timeout must be positive")
	}
	return c, nil
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

func newLogger(c config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
