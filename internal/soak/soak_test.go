//go:build soak

package soak

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/testbin"
)

// Bounds the soak holds the server to once every socket has closed again.
const (
	goroutineSlack = 10       // goroutines over the idle baseline
	liveHeapSlack  = 16 << 20 // bytes of live heap over the idle baseline
)

// TestSoak is `make soak`: thousands of sockets on loopback with constant
// churn (each plain socket drops and resumes every few seconds) while
// 10,000 actions flow (PULSE_SOAK_ACTIONS), bounded by 10 minutes. At the
// end no socket may have lost, duplicated or misordered a notification,
// and the server's goroutines and live heap must come back to their idle
// baseline within the bounds above. It prints its figures.
func TestSoak(t *testing.T) {
	s := MustStart(t, filepath.Join(t.TempDir(), "pulse.db"), append(noLimits, "--log-level", "warn")...)
	sc := scenario{
		worlds:        8,
		usersPerWorld: envInt("PULSE_SOAK_USERS", 480) / 8,
		actions:       envInt("PULSE_SOAK_ACTIONS", 10_000),
		plainPerUser:  4,
		graphqlEvery:  2,
		churn:         5 * time.Second,
		timeout:       10 * time.Minute,
		seed:          uint64(envInt("PULSE_SOAK_SEED", 7)),
	}

	// A warm-up round (a tenth of the actions, as many sockets) fills the
	// server's caches and pools; the baseline is taken after it.
	warm := sc
	warm.actions, warm.prefix, warm.seed = max(sc.actions/10, 1), "warm", sc.seed+1
	warm.run(t, s)
	idle := settle(t, s, 10*time.Second)

	// With every socket open and no action yet: the memory of idle
	// sockets.
	var open figures
	var openSockets float64
	sc.connected = func(n int) {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			m := s.Metrics(t)
			openSockets = m[`pulse_sockets_open{transport="plain"}`] + m[`pulse_sockets_open{transport="graphql"}`]
			if openSockets >= float64(n)*0.95 {
				break
			}
		}
		open = collect(t, s)
	}

	// Sample the server while the scenario runs.
	ctx, stop := context.WithCancel(context.Background())
	var peak struct {
		sync.Mutex
		sockets, goroutines, heap, rss float64
	}
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			m := s.Metrics(t)
			peak.Lock()
			peak.sockets = max(peak.sockets, m[`pulse_sockets_open{transport="plain"}`]+m[`pulse_sockets_open{transport="graphql"}`])
			peak.goroutines = max(peak.goroutines, m["go_goroutines"])
			peak.heap = max(peak.heap, m["go_memstats_heap_inuse_bytes"])
			peak.rss = max(peak.rss, m["process_resident_memory_bytes"])
			peak.Unlock()
		}
	})
	o := sc.run(t, s)
	stop()
	sampler.Wait()

	after := settle(t, s, 10*time.Second)
	m := s.Metrics(t)
	p50 := quantile(m, "pulse_publish_to_write_seconds", `transport="plain"`, 0.5)
	p99 := quantile(m, "pulse_publish_to_write_seconds", `transport="plain"`, 0.99)
	gp99 := quantile(m, "pulse_publish_to_write_seconds", `transport="graphql"`, 0.99)
	mib := func(b float64) float64 { return b / (1 << 20) }

	fmt.Printf(`
soak figures (loopback, one server process, SQLite, in-process broker)
  users                 %d
  sockets               %d (%d plain, %d GraphQL); peak open %.0f
  actions               %d in %v (%.0f/s)
  notifications         %d expected over all sockets, %d received: none lost, duplicated or out of order
  plain socket resumes  %d (drops with churn, resumed with ?after=)
  server counters       (warm-up included) delivered plain %.0f, graphql %.0f; stored %.0f, published %.0f; slow cut-offs plain %.0f, graphql %.0f
  publish-to-write      plain p50 %.2f ms, p99 %.2f ms; graphql p99 %.2f ms
  goroutines            idle %.0f, peak %.0f, after %.0f (bound: idle + %d)
  live heap             idle %.1f MiB, after %.1f MiB (bound: idle + %d MiB); heap in use peak %.1f MiB
  RSS                   idle %.1f MiB, peak %.1f MiB, after %.1f MiB
  per idle socket       %.1f KiB of live heap, %.2f goroutines (%.0f sockets open, no action yet, over idle)
  wall time             %v
`,
		o.users, o.plainSockets+o.graphqlSockets, o.plainSockets, o.graphqlSockets, peak.sockets,
		o.actions, o.actDuration.Round(time.Millisecond), float64(o.actions)/o.actDuration.Seconds(),
		o.expected, o.received, o.resumes,
		m[`pulse_notifications_delivered_total{transport="plain"}`], m[`pulse_notifications_delivered_total{transport="graphql"}`],
		m["pulse_notifications_stored_total"], m["pulse_notifications_published_total"],
		m[`pulse_slow_client_cutoffs_total{transport="plain"}`], m[`pulse_slow_client_cutoffs_total{transport="graphql"}`],
		p50*1000, p99*1000, gp99*1000,
		idle.goroutines, peak.goroutines, after.goroutines, goroutineSlack,
		mib(idle.live), mib(after.live), liveHeapSlack>>20, mib(peak.heap),
		mib(idle.rss), mib(peak.rss), mib(after.rss),
		(open.live-idle.live)/max(openSockets, 1)/1024, (open.goroutines-idle.goroutines)/max(openSockets, 1), openSockets,
		o.total.Round(time.Second))

	if after.goroutines > idle.goroutines+goroutineSlack {
		t.Errorf("goroutines: %.0f after, %.0f idle: more than %d leaked", after.goroutines, idle.goroutines, goroutineSlack)
	}
	if after.live > idle.live+liveHeapSlack {
		t.Errorf("live heap: %.1f MiB after, %.1f MiB idle: grew by more than %d MiB", mib(after.live), mib(idle.live), liveHeapSlack>>20)
	}
}

type figures struct{ goroutines, live, heapInuse, rss float64 }

// collectGarbage makes the server collect garbage twice (with garbage from
// introspection queries), so that its live heap figure is current.
func collectGarbage(t *testing.T, s *server) {
	const gcs = "go_gc_duration_seconds_count"
	start := s.Metrics(t)[gcs]
	for deadline := time.Now().Add(30 * time.Second); s.Metrics(t)[gcs] < start+2 && time.Now().Before(deadline); {
		for range 20 {
			_ = s.Do("", `{__schema{types{name fields{name args{name type{name ofType{name}}} type{name ofType{name}}}}}}`, nil, "__schema", nil)
		}
	}
}

// collect returns the server's figures after a garbage collection.
func collect(t *testing.T, s *server) figures {
	collectGarbage(t, s)
	m := s.Metrics(t)
	return figures{m["go_goroutines"], m["go_gc_heap_live_bytes"], m["go_memstats_heap_inuse_bytes"], m["process_resident_memory_bytes"]}
}

// settle waits (at most wait) until the server has no socket open and its
// goroutine count stops falling, and returns its figures ("idle" is after
// a warm-up round, with the test's idle keep-alive connections closed).
// The live heap is as of the last garbage collection, so settle first
// makes the server collect twice, with garbage from introspection queries.
func settle(t *testing.T, s *server, wait time.Duration) figures {
	collectGarbage(t, s)
	testbin.HTTPClient.CloseIdleConnections()
	deadline := time.Now().Add(wait)
	var f figures
	for {
		m := s.Metrics(t)
		testbin.HTTPClient.CloseIdleConnections()
		open := m[`pulse_sockets_open{transport="plain"}`] + m[`pulse_sockets_open{transport="graphql"}`]
		prev := f.goroutines
		f = figures{m["go_goroutines"], m["go_gc_heap_live_bytes"], m["go_memstats_heap_inuse_bytes"], m["process_resident_memory_bytes"]}
		if open == 0 && f.goroutines == prev || time.Now().After(deadline) {
			return f
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// quantile estimates a quantile of a Prometheus histogram from its
// cumulative buckets in m (name_bucket{...,le="x"}), by linear
// interpolation within the bucket.
func quantile(m map[string]float64, name, labels string, q float64) float64 {
	type bucket struct{ le, n float64 }
	var bs []bucket
	prefix := name + "_bucket{" + labels
	for k, v := range m {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		i := strings.Index(k, `le="`)
		le, err := strconv.ParseFloat(strings.TrimSuffix(k[i+4:], `"}`), 64)
		if err != nil {
			le = math.Inf(1)
		}
		bs = append(bs, bucket{le, v})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	if len(bs) == 0 || bs[len(bs)-1].n == 0 {
		return 0
	}
	target := q * bs[len(bs)-1].n
	prevLe, prevN := 0.0, 0.0
	for _, b := range bs {
		if b.n >= target {
			if math.IsInf(b.le, 1) {
				return prevLe
			}
			if b.n == prevN {
				return b.le
			}
			return prevLe + (b.le-prevLe)*(target-prevN)/(b.n-prevN)
		}
		prevLe, prevN = b.le, b.n
	}
	return prevLe
}
