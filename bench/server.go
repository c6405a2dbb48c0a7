package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pulse-social/pulse/internal/procstat"
)

// raiseFileLimit raises this process's soft RLIMIT_NOFILE to its hard limit
// (at most 1<<20) with setrlimit, so that the server started later inherits
// it too (Go raises its own soft limit at start but restores the original
// one in children unless the program sets it itself). It returns the new
// soft limit.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	want := min(lim.Max, 1<<20)
	if lim.Cur < want {
		lim.Cur = want
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("setrlimit: %w", err)
	}
	return lim.Cur, nil
}

// buildServer compiles ./server into dir and returns the binary's path.
func buildServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "pulse")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./server")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build ./server: %w\n%s", err, out.String())
	}
	return bin, nil
}

// limitFlags are the server's abuse limits that the benchmark exceeds by
// design, with values that lift them: 10,000 sockets come from 8 source
// addresses, and W3's reactors each react many times a second.
var limitFlags = []struct{ name, value string }{
	{"max-sockets-per-address", "0"},
	{"mutation-rate", "0"},
}

// liftLimits returns the flags that lift those of limitFlags that the
// server binary has (it lists its flags with --help).
func liftLimits(ctx context.Context, bin string) []string {
	out, _ := exec.CommandContext(ctx, bin, "--help").CombinedOutput()
	has := map[string]bool{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "-") {
			has[strings.TrimLeft(f[0], "-")] = true
		}
	}
	var args []string
	for _, l := range limitFlags {
		if has[l.name] {
			args = append(args, "--"+l.name, l.value)
		}
	}
	return args
}

// server is one running server process. Its stderr goes to a log file,
// where start finds the address it listens on.
type server struct {
	cmd     *exec.Cmd
	addr    string // host:port
	logPath string
	exited  chan struct{} // closed when the process has been waited for
	waitErr error         // set before exited is closed
}

// errServerRefused is returned by startServer when the process exits before
// it listens: typically a flag or a service it does not support.
var errServerRefused = errors.New("server exited before listening")

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServer runs bin with args, its stderr in logPath, and waits (at most
// timeout) until it logs the address it listens on.
func startServer(bin string, args []string, logPath string, timeout time.Duration) (*server, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Should this process die without stopping the server (killed, or its
	// stdout closed), the server gets SIGTERM rather than living on.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start server: %w", err)
	}
	logFile.Close() // the child has its own descriptor
	s := &server{cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()

	deadline := time.Now().Add(timeout)
	for {
		if m := listeningRE.FindSubmatch(readHead(logPath, 1<<16)); m != nil {
			s.addr = string(m[1])
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("%w (%v): %s", errServerRefused, s.waitErr, lastLines(logPath, 3))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop(5 * time.Second)
			return nil, fmt.Errorf("server did not log its address within %v: %s", timeout, lastLines(logPath, 3))
		}
	}
}

// pid returns the server's process id.
func (s *server) pid() int { return s.cmd.Process.Pid }

// alive reports whether the process is still running.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits up to timeout for the process to exit, then
// kills it. It returns the exit error, if the process did not exit cleanly.
func (s *server) stop(timeout time.Duration) error {
	if !s.alive() {
		return s.waitErr
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return s.waitErr
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("server did not stop within %v after SIGTERM; killed", timeout)
	}
}

// runtimeMetrics are the Go runtime gauges of the server's /metrics that
// W1 reads beside RSS, to tell heap from stacks.
var runtimeMetrics = []string{"go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes"}

// readRuntimeMetrics returns those of runtimeMetrics that the server's
// Prometheus endpoint exposes.
func readRuntimeMetrics(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if ok && slices.Contains(runtimeMetrics, name) {
			if v, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil {
				out[name] = v
			}
		}
	}
	return out, sc.Err()
}

// cpuMeter measures a process's CPU use over an interval.
type cpuMeter struct {
	pid   int
	ticks int64
	at    time.Time
}

func startCPU(pid int) cpuMeter {
	t, _ := procstat.CPUTicks(pid)
	return cpuMeter{pid: pid, ticks: t, at: time.Now()}
}

// percent returns the CPU use since startCPU, in percent of one core.
func (m cpuMeter) percent() float64 {
	t, err := procstat.CPUTicks(m.pid)
	el := time.Since(m.at).Seconds()
	if err != nil || el <= 0 {
		return 0
	}
	return float64(t-m.ticks) / procstat.ClockTicks / el * 100
}

// systemTicks reads the busy time of all CPUs together from /proc/stat
// (user, nice, system, irq, softirq, steal), in procstat.ClockTicks.
func systemTicks() (int64, error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("malformed /proc/stat")
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		busy += v
	}
	return busy, nil
}

// serviceNames are the process names of the services a server on
// PostgreSQL and Redis works through: their CPU counts apart from others'.
var serviceNames = []string{"postgres", "redis-server"}

// serviceTicks returns utime+stime of every running process named in
// serviceNames, by pid, and which of them are PostgreSQL's. Of PostgreSQL's
// processes it counts only those whose title names database db, when db
// is not "": the backends (and autovacuum workers) that serve it, not those
// of others sharing the server, nor its WAL writer and checkpointer.
func serviceTicks(db string) (ticks map[int]int64, postgres map[int]bool) {
	ticks, postgres = map[int]int64{}, map[int]bool{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
		if open < 0 || end < open {
			continue
		}
		name := string(data[open+1 : end])
		if !slices.Contains(serviceNames, name) {
			continue
		}
		if name == "postgres" && db != "" {
			title, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err != nil || !bytes.Contains(title, []byte(" "+db+" ")) {
				continue
			}
		}
		if t, err := procstat.CPUTicks(pid); err == nil {
			ticks[pid], postgres[pid] = t, name == "postgres"
		}
	}
	return ticks, postgres
}

// usage measures the CPU use of the servers (summed), of this process, of
// PostgreSQL and Redis, and of the whole machine over an interval, to tell
// what others used meanwhile: the server and the load generator share the
// machine with whatever else runs.
type usage struct {
	servers  []cpuMeter
	bench    cpuMeter
	db       string
	services map[int]int64
	system   int64
	at       time.Time
}

// cpuUse is CPU use over an interval, each in percent of one core.
type cpuUse struct {
	server, bench float64
	services      float64 // PostgreSQL (the database's backends) and Redis
	postgres      float64 // of services, PostgreSQL's
	others        float64 // everything else on the machine
}

// startUsage starts measuring; db names the PostgreSQL database whose
// backends count as the servers' (see serviceTicks).
func startUsage(serverPIDs []int, db string) usage {
	sys, _ := systemTicks()
	ticks, _ := serviceTicks(db)
	u := usage{bench: startCPU(os.Getpid()), db: db, services: ticks, system: sys, at: time.Now()}
	for _, pid := range serverPIDs {
		u.servers = append(u.servers, startCPU(pid))
	}
	return u
}

// use returns the CPU use since startUsage.
func (u usage) use() cpuUse {
	c := cpuUse{bench: u.bench.percent()}
	for _, m := range u.servers {
		c.server += m.percent()
	}
	el := time.Since(u.at).Seconds()
	var svc, pg int64
	ticks, postgres := serviceTicks(u.db)
	for pid, t := range ticks {
		d := t - u.services[pid] // a process started meanwhile counts whole
		svc += d
		if postgres[pid] {
			pg += d
		}
	}
	c.services = float64(svc) / procstat.ClockTicks / el * 100
	c.postgres = float64(pg) / procstat.ClockTicks / el * 100
	sys, err := systemTicks()
	if err != nil || el <= 0 {
		return c
	}
	total := float64(sys-u.system) / procstat.ClockTicks / el * 100
	c.others = max(0, total-c.server-c.bench-c.services)
	return c
}

// machineBusy returns the CPU that processes other than this one use, in
// percent of one core, over one second.
func machineBusy(ctx context.Context) float64 {
	self := startCPU(os.Getpid())
	sys0, err := systemTicks()
	start := time.Now()
	if err != nil || !sleepCtx(ctx, time.Second) {
		return 0
	}
	sys1, err := systemTicks()
	if err != nil {
		return 0
	}
	return max(0, float64(sys1-sys0)/procstat.ClockTicks/time.Since(start).Seconds()*100-self.percent())
}

// settle waits until the process is idle (under 4% of a core over half a
// second) or until timeout, so that memory readings are not taken while it
// still works through what came before. It reports whether it settled.
func settle(ctx context.Context, pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		m := startCPU(pid)
		if !sleepCtx(ctx, 500*time.Millisecond) {
			return false
		}
		if m.percent() < 4 {
			return true
		}
	}
	return false
}

// sleepCtx sleeps for d or until ctx is done, and reports whether it slept
// the whole time.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// readHead returns at most n bytes from the start of a file.
func readHead(path string, n int) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	buf := make([]byte, n)
	k, _ := f.Read(buf)
	return buf[:k]
}

// eachLine calls fn with each non-empty line of the file at path, trimmed,
// lines of up to 1 MiB.
func eachLine(path string, fn func(string)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			fn(l)
		}
	}
	return sc.Err()
}

// lastLines returns the last n non-empty lines of a file, joined by " | ".
func lastLines(path string, n int) string {
	var lines []string
	err := eachLine(path, func(l string) {
		lines = append(lines, l)
		if len(lines) > n {
			lines = lines[1:]
		}
	})
	if err != nil {
		return err.Error()
	}
	return strings.Join(lines, " | ")
}

// lastLineAbout returns the last line of the server logs at paths that is
// about user's socket or stream (user_id=N), or says there is none: a
// socket that ended unexpectedly has its close logged with a code and
// reason.
func lastLineAbout(paths []string, user int64) string {
	mark := fmt.Sprintf("user_id=%d ", user)
	last := "none"
	for _, path := range paths {
		err := eachLine(path, func(l string) {
			if strings.Contains(l+" ", mark) {
				last = l
			}
		})
		if err != nil {
			return err.Error()
		}
	}
	return last
}
