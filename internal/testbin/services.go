package testbin

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The cluster tests run the binary as several processes sharing one
// PostgreSQL database and one Redis server, as production does behind a
// load balancer. Each test gets a fresh database and a redis-server of its
// own on a free port, so that it can restart Redis without disturbing
// anything else.

// postgresURL is the server the cluster tests create their databases on.
func postgresURL() string {
	if u := os.Getenv("PULSE_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// RequireServices skips the test, or fails it when CI is set, when
// PostgreSQL (PULSE_TEST_POSTGRES's server, default 127.0.0.1:5432) or
// redis-server is missing.
func RequireServices(tb testing.TB) {
	tb.Helper()
	missing := ""
	if _, err := exec.LookPath("redis-server"); err != nil {
		missing = "redis-server is not installed"
	} else if c, err := net.DialTimeout("tcp", "127.0.0.1:5432", time.Second); err != nil {
		missing = "PostgreSQL is not answering on 127.0.0.1:5432"
	} else {
		c.Close()
	}
	if missing == "" {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("%s; CI must run the cluster tests", missing)
	}
	tb.Skipf("%s: start PostgreSQL and install redis-server to run the cluster tests (see docs/scaling.md)", missing)
}

// MustDatabase creates a fresh PostgreSQL database, dropped by the test's
// cleanup, and returns its URL.
func MustDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("pulse_cluster_%d_%d", os.Getpid(), rand.Uint32())
	psql := func(sql string) {
		out, err := exec.Command("psql", postgresURL(), "-v", "ON_ERROR_STOP=1", "-c", sql).CombinedOutput()
		if err != nil {
			tb.Fatalf("psql %s: %v\n%s", sql, err, out)
		}
	}
	psql("CREATE DATABASE " + name)
	tb.Cleanup(func() { psql("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	u := postgresURL()
	i := strings.LastIndex(u, "/")
	q := ""
	if j := strings.Index(u[i:], "?"); j >= 0 {
		q = u[i+j:]
	}
	return u[:i+1] + name + q
}

// Redis is a redis-server process of the test's own.
type Redis struct {
	tb   testing.TB
	port int
	cmd  *exec.Cmd
}

// MustRedis starts a redis-server on a free port of 127.0.0.1, without
// persistence; the test's cleanup stops it.
func MustRedis(tb testing.TB) *Redis {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	r := &Redis{tb: tb, port: l.Addr().(*net.TCPAddr).Port}
	l.Close()
	r.Start()
	tb.Cleanup(r.Stop)
	return r
}

// URL is the server's redis:// URL.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

// Start starts the server again after Stop, on the same port, empty.
func (r *Redis) Start() {
	r.tb.Helper()
	r.cmd = exec.Command("redis-server", "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.tb.TempDir())
	if err := r.cmd.Start(); err != nil {
		r.tb.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("redis-server did not start: %v", err)
		}
	}
}

// Stop kills the server, as a crash would.
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}
