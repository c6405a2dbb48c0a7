// Command bench is pulse's load generator. It builds the server, starts it
// as its own process on a fresh database, creates the users, sessions,
// follows and posts it needs directly in the store, opens thousands of
// sockets and runs three workloads through the public API:
//
//   - W1: server memory (RSS) per idle authenticated socket, plain and
//     GraphQL (with one notifications subscription each);
//   - W2: one createPost by a user whom n connected users follow, from the
//     mutation's start to the last follower's receipt;
//   - W3: reactToPost on posts owned by connected users, open-loop at
//     increasing rates: achieved rate, latency from the mutation's start to
//     the owner's receipt, and the highest rate held.
//
// Every payload carries a token (W2: the post body; W3: the reaction id) so
// receipts are matched exactly: anything lost, duplicated or misrouted is
// counted. It prints progress on stderr, then on stdout a table and one JSON
// line per figure. The exit status is 1 if anything was lost, duplicated or
// misrouted or the tool failed, never because of a speed target.
//
//	go run ./bench                  # the full run on SQLite (minutes)
//	go run ./bench -stores sqlite,postgres
//	go run ./bench -quick           # small and fast, for CI
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pulse-social/pulse/internal/postgres"
	"github.com/pulse-social/pulse/internal/sqlite"
)

// config is the command line.
type config struct {
	quick        bool
	stores       []string
	transports   []string
	workloads    []string
	users        int
	w2Sizes      []int
	w2Runs       int
	w2Pause      time.Duration
	rates        []int
	stepDuration time.Duration
	workers      int
	minReactors  int
	timeout      time.Duration
	drain        time.Duration
	dialParallel int
	pgAdmin      string
	redisURL     string
	serverArgs   []string
	serverBin    string
	processes    []int
	keep         bool
	cpuProfile   string
	memProfile   string
}

func parseFlags(args []string) (*config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	c := &config{}
	var stores, transports, workloads, sizes, rates, serverArgs, processes string
	fs.BoolVar(&c.quick, "quick", false, "small sizes and short steps, to prove the tool works (CI); asserts nothing about speed")
	fs.StringVar(&stores, "stores", "sqlite", "comma-separated: sqlite (embedded store, in-process broker), postgres (PostgreSQL store, Redis broker)")
	fs.StringVar(&transports, "transports", "plain,graphql,sse", "comma-separated socket transports: plain, graphql, sse (event streams)")
	fs.StringVar(&workloads, "workloads", "w1,w2,w3", "comma-separated workloads; W1 always runs, since it opens the sockets")
	fs.IntVar(&c.users, "n", 10000, "connected users, one socket each (quick: 200)")
	fs.StringVar(&sizes, "w2-sizes", "1000,10000", "W2: follower counts (quick: 50,200)")
	fs.IntVar(&c.w2Runs, "w2-runs", 20, "W2: measured runs per size, after one warm-up (quick: 3)")
	fs.DurationVar(&c.w2Pause, "w2-pause", 200*time.Millisecond, "W2: pause between runs (quick: 50ms)")
	fs.StringVar(&rates, "rates", "250,500,1000,1500,2000,3000,4000,6000,8000,10000,12000,15000", "W3: step rates, actions per second; stepping stops after a step that fails badly (quick: 200)")
	fs.DurationVar(&c.stepDuration, "step", 10*time.Second, "W3: duration of each step (quick: 1s)")
	fs.IntVar(&c.workers, "workers", 256, "W3: HTTP workers, each with a keep-alive connection (quick: 16)")
	fs.IntVar(&c.minReactors, "reactors", 1000, "W3: users who react, at least (more if the steps need them); actions rotate over them (quick: 20)")
	fs.DurationVar(&c.drain, "drain", 10*time.Second, "how long to wait for notifications still due after the last mutation (quick: 5s)")
	fs.IntVar(&c.dialParallel, "dial-parallel", 64, "sockets opened at once")
	fs.StringVar(&c.pgAdmin, "pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres store: a database URL to create (and drop) a fresh database with; the servers get the fresh database's URL with the same parameters")
	fs.StringVar(&c.redisURL, "redis", "redis://127.0.0.1:6379/0", "postgres store: the Redis broker URL; empty for the in-process broker")
	fs.StringVar(&serverArgs, "server-args", "", "extra server flags, space-separated (e.g. to raise rate limits)")
	fs.StringVar(&c.serverBin, "server-bin", "", "run this server binary instead of building ./server")
	fs.StringVar(&processes, "processes", "1", "postgres store: comma-separated counts of server processes on the one database and Redis, with the sockets and the actions spread over them; each count runs on a fresh database (sqlite: always 1)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Minute, "give up after this long (quick: 3m)")
	fs.BoolVar(&c.keep, "keep", false, "keep the temporary directory (database, server logs)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the load generator's CPU profile to this file")
	fs.StringVar(&c.memProfile, "memprofile", "", "write the load generator's heap profile to this file")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if c.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]string{"n": "200", "w2-sizes": "50,200", "w2-runs": "3", "w2-pause": "50ms",
			"rates": "200", "step": "1s", "workers": "16", "drain": "5s", "reactors": "20", "timeout": "3m"}
		for name, v := range quick {
			if !set[name] {
				_ = fs.Set(name, v)
			}
		}
	}
	var err error
	c.stores = splitList(stores)
	c.transports = splitList(transports)
	c.workloads = splitList(workloads)
	c.serverArgs = strings.Fields(serverArgs)
	if c.w2Sizes, err = parseInts(sizes); err != nil {
		return nil, fmt.Errorf("-w2-sizes: %w", err)
	}
	if c.rates, err = parseInts(rates); err != nil {
		return nil, fmt.Errorf("-rates: %w", err)
	}
	if c.processes, err = parseInts(processes); err != nil {
		return nil, fmt.Errorf("-processes: %w", err)
	}
	for _, s := range c.stores {
		if s != "sqlite" && s != "postgres" {
			return nil, fmt.Errorf("-stores: unknown store %q", s)
		}
	}
	for _, t := range c.transports {
		if t != plain && t != graphql && t != sse {
			return nil, fmt.Errorf("-transports: unknown transport %q", t)
		}
	}
	for _, n := range c.w2Sizes {
		if n > c.users {
			return nil, fmt.Errorf("-w2-sizes: %d is more than -n %d", n, c.users)
		}
	}
	if c.users < 1 || c.w2Runs < 1 || c.workers < 1 || c.dialParallel < 1 || c.stepDuration <= 0 || len(c.processes) == 0 {
		return nil, errors.New("-n, -w2-runs, -workers, -dial-parallel and -step must be positive, and -processes must give a count")
	}
	return c, nil
}

func (c *config) runs(workload string) bool { return slices.Contains(c.workloads, workload) }

// reactors returns how many reactors W3 needs so that no reactor/post pair
// repeats over every step of every transport, and at least -reactors.
func (c *config) reactors() int {
	total := 0
	for _, r := range c.rates {
		total += int(float64(r) * c.stepDuration.Seconds())
	}
	total *= len(c.transports)
	return max(c.minReactors, total/c.users+1)
}

func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, strings.ToLower(p))
		}
	}
	return out
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range splitList(s) {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", p)
		}
		out = append(out, n)
	}
	return out, nil
}

var started = time.Now()

// logf writes a progress line to stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}

	rep := &report{stream: os.Stderr}
	if busy := machineBusy(ctx); busy > othersLimit {
		rep.note("the machine was busy before the run: other processes used %.0f%% of a core", busy)
	}
	limit, err := raiseFileLimit()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if need := uint64(cfg.users + cfg.workers + 256); limit < need {
		fmt.Fprintf(os.Stderr, "bench: the open-files limit is %d; %d sockets need about %d (lower -n)\n", limit, cfg.users, need)
		return 2
	}
	tmp, err := os.MkdirTemp("", "pulse-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if cfg.keep {
		logf("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}

	bin := cfg.serverBin
	if bin == "" {
		logf("building the server")
		if bin, err = buildServer(ctx, tmp); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	if lifted := liftLimits(ctx, bin); len(lifted) > 0 {
		rep.note("the server's limits that the benchmark exceeds by design are lifted: %s", strings.Join(lifted, " "))
		cfg.serverArgs = append(lifted, cfg.serverArgs...)
	}
	for _, store := range cfg.stores {
		counts := cfg.processes
		if store == "sqlite" {
			counts = []int{1}
		}
		for _, processes := range counts {
			if ctx.Err() != nil || benchStore(ctx, cfg, rep, store, processes, bin, tmp) {
				break
			}
		}
	}
	if err := ctx.Err(); err != nil {
		rep.toolError("stopped early: %v", context.Cause(ctx))
	}

	mode := "full"
	if cfg.quick {
		mode = "quick"
	}
	header := fmt.Sprintf("pulse bench, %s mode, %s: %d sockets per transport, W2 n=%s x %d runs, W3 steps %s/s of %v, %d HTTP workers; %d CPUs, open-files limit %d, %s",
		mode, revision(), cfg.users, joinInts(cfg.w2Sizes), cfg.w2Runs, joinInts(cfg.rates), cfg.stepDuration,
		cfg.workers, runtime.NumCPU(), limit, runtime.Version())
	rep.print(os.Stdout, header, time.Since(started))

	if cfg.memProfile != "" {
		if f, err := os.Create(cfg.memProfile); err == nil {
			runtime.GC()
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	if !rep.ok() {
		return 1
	}
	return 0
}

// revision describes the working tree the server was built from.
func revision() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown revision"
	}
	return "revision " + strings.TrimSpace(string(out))
}

// phase is one store with one transport's sockets, on one server process
// or, with -processes, several on the one database: W1, W2 and W3 run in
// it one after the other.
type phase struct {
	cfg        *config
	rep        *report
	store      string
	transport  string
	pop        *population
	nextAction *int   // W3: the next reactor/post pair, shared by a store's phases
	db         string // the PostgreSQL database's name; "" on SQLite
	srvs       []*server
	apis       []*api // one per server, in the same order
	fleet      *fleet
	scope      scope
}

func (ph *phase) name() string {
	if n := ph.scope.processes; n > 1 {
		return fmt.Sprintf("%s x%d/%s", ph.store, n, ph.transport)
	}
	return ph.store + "/" + ph.transport
}

// pids returns the server processes' ids.
func (ph *phase) pids() []int {
	pids := make([]int, len(ph.srvs))
	for i, s := range ph.srvs {
		pids[i] = s.pid()
	}
	return pids
}

// addrs returns the servers' addresses.
func (ph *phase) addrs() []string {
	addrs := make([]string, len(ph.srvs))
	for i, s := range ph.srvs {
		addrs[i] = s.addr
	}
	return addrs
}

// othersLimit is the CPU (percent of one core) that other processes may use
// during a measurement before the report warns that they skewed it.
const othersLimit = 15

// addCPU records the CPU use during a measurement, and notes one during
// which other processes (not the server, this one, PostgreSQL or Redis)
// used the CPU they share.
func (ph *phase) addCPU(sc scope, u cpuUse, what string) {
	sc.add("server_cpu_pct", u.server)
	sc.add("bench_cpu_pct", u.bench)
	if ph.store == "sqlite" {
		u.others += u.services // this server uses neither: someone else does
	} else {
		sc.add("services_cpu_pct", u.services)
		sc.add("postgres_cpu_pct", u.postgres)
	}
	sc.add("others_cpu_pct", u.others)
	if u.others > othersLimit {
		ph.rep.note("%s: %s: other processes used %.0f%% of a core meanwhile; its figures are skewed", ph.name(), what, u.others)
	}
}

// benchStore prepares one store's database and runs a phase per transport,
// each on processes servers. A store whose services are down, or that the
// server does not support, is skipped with a note (skipped).
func benchStore(ctx context.Context, cfg *config, rep *report, store string, processes int, bin, tmp string) (skipped bool) {
	spec := populationSpec{users: cfg.users, w2Sizes: cfg.w2Sizes, reactors: cfg.reactors()}
	var (
		pop    *population
		args   []string
		broker string
		db     string
		err    error
	)
	t := time.Now()
	switch store {
	case "sqlite":
		path := filepath.Join(tmp, "sqlite", "pulse.db")
		logf("sqlite: populating %s", path)
		var store *sqlite.Store
		if store, err = sqlite.Open(ctx, path); err == nil {
			pop, err = populate(ctx, store, spec)
		}
		args = []string{"--db", path}
		broker = "inproc"
	case "postgres":
		broker = "inproc"
		if cfg.redisURL != "" {
			broker = "redis"
			if err := pingRedis(ctx, cfg.redisURL); err != nil {
				rep.note("postgres+redis: skipped: Redis at %s: %v", cfg.redisURL, err)
				return true
			}
		}
		url, drop, err := createPostgresDB(ctx, cfg.pgAdmin)
		if err != nil {
			rep.note("postgres+%s: skipped: %v", broker, err)
			return true
		}
		db = databaseName(url)
		defer drop()
		logf("postgres: populating %s", redactURL(url))
		var store *postgres.Store
		if store, err = postgres.Open(ctx, url); err == nil {
			pop, err = populate(ctx, store, spec)
		}
		if err != nil {
			rep.note("postgres+%s: skipped: set-up: %v", broker, err)
			return true
		}
		args = []string{"--db", url}
		if cfg.redisURL != "" {
			args = append(args, "--broker", cfg.redisURL)
		}
	}
	if err != nil {
		rep.toolError("%s: set-up: %v", store, err)
		return false
	}
	logf("%s: set-up took %v: %d users with sessions, %d W2 authors, %d reactors, %d posts",
		store, time.Since(t).Round(time.Millisecond), len(pop.users), len(pop.authors), len(pop.reactors), len(pop.posts))

	next := 0
	for i, tr := range cfg.transports {
		ph := &phase{cfg: cfg, rep: rep, store: store, transport: tr, pop: pop, nextAction: &next, db: db}
		ph.scope = scope{rep: rep, transport: tr, store: store, broker: broker, processes: processes,
			targets: store == "sqlite" && !cfg.quick}
		logPath := filepath.Join(tmp, fmt.Sprintf("server-%s-%d-%s.log", store, processes, tr))
		err := runPhase(ctx, ph, bin, append(append([]string{"--addr", "127.0.0.1:0"}, args...), cfg.serverArgs...), logPath, processes)
		if errors.Is(err, errServerRefused) && store != "sqlite" && i == 0 {
			rep.note("%s+%s: skipped: the server refused it: %v", store, broker, err)
			return true
		}
		if err != nil {
			var tails []string
			for _, path := range serverLogs(logPath, processes) {
				tails = append(tails, lastLines(path, 2))
			}
			rep.toolError("%s: %v (server log: %s)", ph.name(), err, strings.Join(tails, "; "))
		}
		if ctx.Err() != nil {
			return false
		}
	}
	return false
}

// serverLogs returns the log files of processes servers: logPath for one,
// logPath with ".i" before the extension for server i of several.
func serverLogs(logPath string, processes int) []string {
	if processes == 1 {
		return []string{logPath}
	}
	paths := make([]string, processes)
	for i := range paths {
		paths[i] = strings.TrimSuffix(logPath, ".log") + fmt.Sprintf(".%d.log", i+1)
	}
	return paths
}

// runPhase starts processes servers, runs the workloads on one transport
// and stops the servers, which log to serverLogs(logPath, processes).
func runPhase(ctx context.Context, ph *phase, bin string, args []string, logPath string, processes int) (err error) {
	defer func() {
		if ph.fleet != nil {
			ph.fleet.close()
			n, first, user := ph.fleet.failure()
			ph.scope.with("sockets", len(ph.fleet.clients), 0).count("failures", int(n))
			if n > 0 {
				// The fleet's sockets are the population's users, in order.
				id := ph.pop.users[user].id
				ph.rep.note("%s: %d socket failures, the first: %s; the server's last line about user id %d: %s",
					ph.name(), n, first, id, lastLineAbout(serverLogs(logPath, processes), id))
			}
		}
		for _, a := range ph.apis {
			a.close()
		}
		for _, srv := range ph.srvs {
			if serr := srv.stop(20 * time.Second); serr != nil && err == nil {
				err = fmt.Errorf("server: %w", serr)
			}
		}
	}()
	for _, path := range serverLogs(logPath, processes) {
		srv, err := startServer(bin, args, path, time.Minute)
		if err != nil {
			return err
		}
		ph.srvs = append(ph.srvs, srv)
		logf("%s: server pid %d on %s: %s", ph.name(), srv.pid(), srv.addr, strings.Join(redactArgs(args), " "))
		ph.apis = append(ph.apis, newAPI(srv.addr, ph.cfg.workers))
	}

	steps := []struct {
		name string
		run  func(context.Context, *phase) error
	}{{"w1", runW1}, {"w2", runW2}, {"w3", runW3}}
	for _, s := range steps {
		if s.name != "w1" && !ph.cfg.runs(s.name) {
			continue
		}
		logf("%s: %s", ph.name(), strings.ToUpper(s.name))
		if err := s.run(ctx, ph); err != nil {
			return err
		}
		for _, srv := range ph.srvs {
			if !srv.alive() {
				return fmt.Errorf("the server exited during %s", s.name)
			}
		}
	}
	return nil
}

// redactArgs hides passwords in database URLs for the log.
func redactArgs(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if strings.Contains(a, "://") {
			out[i] = redactURL(a)
		}
	}
	return out
}
