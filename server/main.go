// Command pulse is the realtime notification server: GraphQL at /query
// (HTTP and websockets), the plain JSON notification socket at
// /ws/{token}/, server-sent events at /events, the playground at /,
// health at /healthz and /readyz.
//
// With no configuration it runs on an embedded SQLite file and an
// in-process broker; `pulse --help` lists the flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/inproc"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/plainws"
	"github.com/pulse-social/pulse/internal/playground"
	"github.com/pulse-social/pulse/internal/postgres"
	"github.com/pulse-social/pulse/internal/pushconn"
	"github.com/pulse-social/pulse/internal/redisbroker"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/sqlite"
	"github.com/pulse-social/pulse/internal/ssepush"
	"github.com/pulse-social/pulse/internal/wspolicy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "pulse:", err)
		os.Exit(1)
	}
}

// run serves until ctx is cancelled, then shuts down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)

	m := metrics.New()
	store, err := openStore(ctx, cfg.DB)
	if err != nil {
		return err
	}
	defer store.Close()
	broker, closeBroker, err := openBroker(ctx, cfg.Broker, m.BrokerReconnected)
	if err != nil {
		return err
	}
	defer closeBroker()

	svc := social.NewService(store, broker, social.Config{
		TokenTTL:          cfg.TokenTTL,
		TokenRefreshGrace: cfg.RefreshGrace,
		OnPublishError: func(err error) {
			m.PublishError()
			log.Warn("publish failed; subscribers will catch up from the store", "err", err)
		},
		OnStored:    m.Stored,
		OnPublished: m.Published,
		// With the in-process broker the server is the one process on its
		// store (its sockets could not hear another's actions), so every
		// logout passes through it.
		CacheSessions: brokerKind(cfg.Broker) == "inproc",
	})
	// The sweeper stops, and is waited for, before the store closes.
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	swept := make(chan struct{})
	go func() {
		defer close(swept)
		sweepSessions(sweepCtx, svc, cfg.SessionSweep, log)
	}()
	defer func() {
		stopSweep()
		<-swept
	}()
	var draining atomic.Bool
	ws := wspolicy.Config{AllowedOrigins: cfg.AllowedOrigins}
	limits := cfg.limits()
	messages, messageBytes := cfg.messageLimits(nil)
	// Cancelling baseCtx ends every request, including the websockets that
	// http.Server.Shutdown does not touch once they are hijacked.
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	plain := plainws.New(svc, plainws.Config{
		Context:           baseCtx,
		Websocket:         ws,
		Logger:            log,
		LogContext:        httpapi.LogContext,
		Metrics:           m,
		SocketsPerUser:    limits.SocketsPerUser,
		SocketsPerAddress: limits.SocketsPerAddress,
		Messages:          messages,
		MessageBytes:      messageBytes,
		RefusedMessages:   cfg.RefusedMessages,
	})
	events := ssepush.New(svc, ssepush.Config{
		Context:           baseCtx,
		Logger:            log,
		Metrics:           m,
		StreamsPerUser:    limits.SocketsPerUser,
		StreamsPerAddress: limits.SocketsPerAddress,
	})
	graphqlSockets := pushconn.NewGroup(baseCtx)
	handler := httpapi.New(httpapi.Config{
		Service:         svc,
		GraphQLSockets:  graphqlSockets,
		Logger:          log,
		Websocket:       ws,
		PlainSocket:     plain,
		Events:          events,
		Playground:      playground.Handler("/query"),
		Introspection:   cfg.Introspection,
		Limits:          limits,
		Metrics:         m,
		MaxDepth:        cfg.GraphQLMaxDepth,
		ComplexityLimit: cfg.GraphQLMaxComplexity,
		MaxBodyBytes:    cfg.MaxBodyBytes,
		RequestTimeout:  cfg.RequestTimeout,
		MaxAuthFields:   cfg.MaxAuthPerRequest,
		Costs:           cfg.GraphQL,
		Ready: func(ctx context.Context) error {
			if draining.Load() {
				return errors.New("shutting down")
			}
			if err := store.Ping(ctx); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			if p, ok := broker.(interface{ Ping(context.Context) error }); ok {
				if err := p.Ping(ctx); err != nil {
					return fmt.Errorf("broker: %w", err)
				}
			}
			return nil
		},
	})

	if cfg.PprofAddr != "" {
		_, stopProfiler, err := startProfiler(cfg.PprofAddr, log)
		if err != nil {
			return fmt.Errorf("profiler: %w", err)
		}
		defer stopProfiler()
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	var handlers sync.WaitGroup
	srv := &http.Server{
		Handler: tracked(&handlers, handler),
		// The websockets clear the read and write deadlines these set when
		// they take the connection over, and the event streams replace
		// them, so no timeout here cuts them.
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String()+"/", "db", storeKind(cfg.DB), "broker", brokerKind(cfg.Broker))

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	draining.Store(true)
	if cfg.ShutdownDelay > 0 {
		log.Info("draining: not ready, still serving", "delay", cfg.ShutdownDelay)
		select {
		case <-time.After(cfg.ShutdownDelay):
		case err := <-served:
			return err
		}
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	cancelBase()
	err = srv.Shutdown(shutdownCtx)
	<-served
	waitFor(shutdownCtx, &handlers)
	// The sockets run on after their handlers return.
	if werr := plain.Wait(shutdownCtx); werr != nil {
		log.Warn("plain sockets still open at the shutdown timeout", "err", werr)
	}
	if werr := graphqlSockets.Wait(shutdownCtx); werr != nil {
		log.Warn("graphql sockets still open at the shutdown timeout", "err", werr)
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// sweepSessions deletes expired sessions every interval until ctx ends.
func sweepSessions(ctx context.Context, svc *social.Service, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := svc.SweepSessions(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("sweep expired sessions", "deleted", n, "err", err)
		case n > 0:
			log.Info("swept expired sessions", "deleted", n)
		}
	}
}

// tracked counts running handlers, hijacked websockets included, so that
// shutdown can wait for them.
func tracked(wg *sync.WaitGroup, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		next.ServeHTTP(w, r)
	})
}

func waitFor(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func openStore(ctx context.Context, dsn string) (social.Store, error) {
	switch {
	case dsn == "":
		return sqlite.Open(ctx, defaultDB)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return postgres.Open(ctx, dsn)
	default:
		return sqlite.Open(ctx, dsn)
	}
}

// openBroker returns the broker the URL names; onReconnect counts the
// reconnects of a broker that can lose its connection (Redis).
func openBroker(ctx context.Context, url string, onReconnect func()) (social.Broker, func(), error) {
	switch {
	case url == "", url == "inproc":
		b := inproc.New(fanout.Config{})
		return b, b.Close, nil
	case strings.HasPrefix(url, "redis://"), strings.HasPrefix(url, "rediss://"):
		b, err := redisbroker.New(ctx, url, fanout.Config{}, redisbroker.WithReconnectHook(onReconnect))
		if err != nil {
			return nil, nil, fmt.Errorf("--broker: %w", err)
		}
		b.Start()
		return b, b.Close, nil
	default:
		return nil, nil, fmt.Errorf("--broker: unsupported broker %q", url)
	}
}

func storeKind(dsn string) string {
	if strings.HasPrefix(dsn, "postgres") {
		return "postgres"
	}
	return "sqlite"
}

func brokerKind(url string) string {
	if strings.HasPrefix(url, "redis") {
		return "redis"
	}
	return "inproc"
}
