package main

import (
	"context"
	"fmt"
	"time"

	"github.com/pulse-social/pulse/internal/procstat"
)

// W1 targets: KiB of server RSS per idle authenticated socket. Event
// streams (sse) have none: a stream holds its handler, by design.
var w1Targets = map[string]float64{plain: 10, graphql: 25}

// runW1 opens one socket per connected user on a fresh server and reports
// the server's RSS per socket (with several servers, their RSS summed), read from /proc when the server is idle
// before and after. A GraphQL socket counts with its notifications
// subscription started. Then one post reaches every socket, which proves
// each is live (neither transport says when its subscription is), and the
// fleet is left open for W2 and W3.
func runW1(ctx context.Context, ph *phase) error {
	pids := ph.pids()
	settleAll(ctx, pids, 15*time.Second)
	before, err := rssKiB(pids)
	if err != nil {
		return err
	}
	goBefore, goErr := sumRuntimeMetrics(ctx, ph.addrs())
	start := time.Now()
	f, err := openFleet(ctx, ph.addrs(), ph.transport, ph.pop.users, ph.cfg.dialParallel)
	if err != nil {
		return fmt.Errorf("open %d %s sockets: %w", len(ph.pop.users), ph.transport, err)
	}
	ph.fleet = f
	opened := time.Since(start)
	logf("%s: opened %d %s sockets in %v", ph.name(), len(f.clients), ph.transport, opened.Round(time.Millisecond))
	if !settleAll(ctx, pids, 30*time.Second) {
		ph.rep.note("%s: the server was not idle 30 s after the sockets opened; W1 read anyway", ph.name())
	}
	after, err := rssKiB(pids)
	if err != nil {
		return err
	}
	var goAfter map[string]float64
	if goErr == nil {
		goAfter, goErr = sumRuntimeMetrics(ctx, ph.addrs())
	}

	n := len(f.clients)
	logf("%s: W1: RSS %.1f MiB before, %.1f MiB after: %.1f KiB per socket", ph.name(),
		float64(before)/1024, float64(after)/1024, float64(after-before)/float64(n))
	sc := ph.scope.with("W1", n, 0)
	sc.add("rss_before_mib", float64(before)/1024)
	sc.add("rss_after_mib", float64(after)/1024)
	if t, ok := w1Targets[ph.transport]; ok {
		sc.target("kib_per_socket", float64(after-before)/float64(n), "<=", t)
	} else {
		sc.add("kib_per_socket", float64(after-before)/float64(n))
	}
	sc.add("open_per_s", float64(n)/opened.Seconds())
	if goErr != nil {
		ph.rep.note("%s: W1: no Go runtime figures from /metrics: %v", ph.name(), goErr)
	} else {
		// The Go runtime's own view, from the server's /metrics: live heap
		// spans and goroutine stacks (RSS also holds garbage not yet
		// collected and memory not yet returned to the system).
		per := func(name string, unit float64) (float64, bool) {
			b, ok1 := goBefore[name]
			a, ok2 := goAfter[name]
			return (a - b) / unit / float64(n), ok1 && ok2
		}
		if v, ok := per("go_memstats_heap_inuse_bytes", 1024); ok {
			sc.add("heap_inuse_kib_per_socket", v)
		}
		if v, ok := per("go_memstats_stack_inuse_bytes", 1024); ok {
			sc.add("stack_kib_per_socket", v)
		}
		if v, ok := per("go_goroutines", 1); ok {
			sc.add("goroutines_per_socket", v)
		}
	}

	res, err := broadcast(ctx, ph, n)
	if err != nil {
		return fmt.Errorf("liveness probe: %w", err)
	}
	sc.count("lost", res.lost)
	sc.count("duplicated", res.duplicated)
	sc.count("misrouted", res.misrouted)
	if res.lost > 0 {
		return fmt.Errorf("liveness probe: %d of %d sockets got nothing", res.lost, n)
	}
	return nil
}

// rssKiB returns the RSS of the processes, summed.
func rssKiB(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		kib, err := procstat.RSSKiB(pid)
		if err != nil {
			return 0, err
		}
		sum += kib
	}
	return sum, nil
}

// settleAll waits until each process is idle (see settle), and reports
// whether every one settled.
func settleAll(ctx context.Context, pids []int, timeout time.Duration) bool {
	ok := true
	for _, pid := range pids {
		ok = settle(ctx, pid, timeout) && ok
	}
	return ok
}

// sumRuntimeMetrics returns readRuntimeMetrics of every server, summed.
func sumRuntimeMetrics(ctx context.Context, addrs []string) (map[string]float64, error) {
	sum := map[string]float64{}
	for _, addr := range addrs {
		m, err := readRuntimeMetrics(ctx, addr)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			sum[k] += v
		}
	}
	return sum, nil
}
