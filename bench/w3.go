package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// W3 targets, at w3TargetRate actions per second.
const (
	w3TargetRate  = 10000
	w3TargetP99ms = 25
	// w3Held is the share of the target rate a step must achieve to count
	// as held.
	w3Held = 0.95
)

// action is one reactToPost of a W3 step.
type action struct {
	owner   int   // index of the post and of its owner in population.users
	reactor int   // index in population.reactors
	id      int64 // the reaction's id; 0 if the mutation was not sent or failed
	start   time.Time
	done    time.Time
	sent    bool
	err     error
}

// stepResult sums up one W3 step.
type stepResult struct {
	rate                        int
	achieved                    float64 // successful actions per second
	p50, p99, max               time.Duration
	lost, duplicated, misrouted int
	errors, skipped             int
	cpu                         cpuUse // during the step
	firstErr                    error
}

// held reports whether the step sustained its rate with nothing lost, and
// whether it also met the p99 target.
func (r stepResult) held() (sustained, strict bool) {
	sustained = r.achieved >= w3Held*float64(r.rate) && r.lost == 0 && r.duplicated == 0 &&
		r.misrouted == 0 && r.errors == 0
	return sustained, sustained && ms(r.p99) <= w3TargetP99ms
}

// failedBadly reports a step so far off that higher rates are pointless.
func (r stepResult) failedBadly() bool {
	return r.achieved < 0.8*float64(r.rate) || r.lost > 0 || r.p99 > time.Second ||
		r.errors > r.rate/100
}

// runW3 reacts to posts owned by connected users at increasing open-loop
// rates, each for cfg.stepDuration, and matches each reaction's id with the
// notification its post's owner receives.
func runW3(ctx context.Context, ph *phase) error {
	heldAny, heldStrict := 0, 0
	for _, rate := range ph.cfg.rates {
		res, err := w3Step(ctx, ph, rate)
		if err != nil {
			return fmt.Errorf("W3 %d/s: %w", rate, err)
		}
		sc := ph.scope.with("W3", len(ph.fleet.clients), rate)
		atTarget := rate == w3TargetRate
		if atTarget {
			sc.target("achieved_per_s", res.achieved, ">=", w3Held*w3TargetRate)
			sc.add("p50_ms", ms(res.p50))
			sc.target("p99_ms", ms(res.p99), "<=", w3TargetP99ms)
		} else {
			sc.add("achieved_per_s", res.achieved)
			sc.add("p50_ms", ms(res.p50))
			sc.add("p99_ms", ms(res.p99))
		}
		sc.add("max_ms", ms(res.max))
		sc.count("lost", res.lost)
		sc.count("duplicated", res.duplicated)
		sc.count("misrouted", res.misrouted)
		sc.count("errors", res.errors)
		if res.skipped > 0 {
			sc.add("not_sent", float64(res.skipped))
		}
		ph.addCPU(sc, res.cpu, fmt.Sprintf("W3 %d/s", rate))
		if res.achieved > 0 {
			sc.add("server_cpu_us_per_action", res.cpu.server*1e4/res.achieved)
			if ph.store != "sqlite" {
				sc.add("services_cpu_us_per_action", res.cpu.services*1e4/res.achieved)
				sc.add("postgres_cpu_us_per_action", res.cpu.postgres*1e4/res.achieved)
			}
		}
		if res.firstErr != nil {
			ph.rep.note("%s: W3 %d/s: first mutation error: %v", ph.name(), rate, res.firstErr)
			if errors.Is(res.firstErr, errRateLimited) {
				ph.rep.note("the server rate-limited the benchmark: raise its limits with -server-args")
			}
		}
		a, s := res.held()
		if a {
			heldAny = rate
		}
		if s {
			heldStrict = rate
		}
		if res.failedBadly() {
			logf("%s: W3 stops stepping after %d/s", ph.name(), rate)
			break
		}
		if !sleepCtx(ctx, time.Second) {
			return ctx.Err()
		}
	}
	sc := ph.scope.with("W3", len(ph.fleet.clients), 0)
	sc.target("held_rate_per_s", float64(heldStrict), ">=", w3TargetRate)
	sc.add("held_rate_any_p99_per_s", float64(heldAny))
	return nil
}

// w3Step runs one step: rate reactions per second for cfg.stepDuration,
// dispatched on schedule to a pool of HTTP workers; an action whose time
// comes while every worker is busy and the queue is full is not sent.
func w3Step(ctx context.Context, ph *phase, rate int) (stepResult, error) {
	res := stepResult{rate: rate}
	users, reactors := len(ph.pop.users), len(ph.pop.reactors)
	total := int(float64(rate) * ph.cfg.stepDuration.Seconds())
	first := *ph.nextAction
	if rounds := (first + total + users - 1) / users; rounds > reactors {
		return res, fmt.Errorf("the set-up made %d reactors, this step needs %d", reactors, rounds)
	}
	*ph.nextAction += total
	// Action g is reactor (g/users + g%users) % reactors reacting to the
	// post of users[order[g%users]]: consecutive actions go to different
	// posts and come from different reactors, and as long as g/users stays
	// below the number of reactors no reactor/post pair repeats.
	actions := make([]action, total)
	for k := range actions {
		g := first + k
		actions[k].owner = ph.pop.order[g%users]
		actions[k].reactor = (g/users + g%users) % reactors
	}
	ph.fleet.reset()

	jobs := make(chan int, ph.cfg.workers)
	var wg sync.WaitGroup
	for range ph.cfg.workers {
		wg.Go(func() {
			for k := range jobs {
				a := &actions[k]
				a.start = time.Now()
				a.id, a.err = ph.apis[k%len(ph.apis)].reactToPost(ctx, ph.pop.reactors[a.reactor].token, ph.pop.posts[a.owner])
				a.done = time.Now()
			}
		})
	}

	use := startUsage(ph.pids(), ph.db)
	t0 := time.Now()
	for sent := 0; sent < total; {
		due := min(total, int(time.Since(t0).Seconds()*float64(rate))+1)
		for ; sent < due; sent++ {
			select {
			case jobs <- sent:
				actions[sent].sent = true
			default: // every worker busy and the queue full
			}
		}
		if !sleepCtx(ctx, 500*time.Microsecond) {
			break
		}
	}
	close(jobs)
	wg.Wait()
	res.cpu = use.use()
	if err := ctx.Err(); err != nil {
		return res, err
	}

	var ok int
	var lastDone time.Time
	byID := make(map[int64]int, total)
	for k := range actions {
		a := &actions[k]
		switch {
		case !a.sent:
			res.skipped++
		case a.err != nil:
			res.errors++
			if res.firstErr == nil {
				res.firstErr = a.err
			}
		default:
			ok++
			byID[a.id] = k
			if a.done.After(lastDone) {
				lastDone = a.done
			}
		}
	}
	if ok > 0 {
		res.achieved = float64(ok) / max(lastDone.Sub(t0).Seconds(), ph.cfg.stepDuration.Seconds())
	}
	ph.fleet.waitReceived(ctx, int64(ok), ph.cfg.drain)
	sleepCtx(ctx, 100*time.Millisecond) // for copies that should not come at all

	count := make([]uint8, total)
	lat := make([]time.Duration, 0, ok)
	for _, c := range ph.fleet.clients {
		for _, r := range c.take() {
			k, found := byID[r.actionID]
			if r.action != "reaction" || !found || c.user != actions[k].owner {
				res.misrouted++
				continue
			}
			if count[k]++; count[k] == 1 {
				lat = append(lat, r.at.Sub(actions[k].start))
			} else {
				res.duplicated++
			}
		}
	}
	for k := range actions {
		if actions[k].sent && actions[k].err == nil && count[k] == 0 {
			res.lost++
		}
	}
	slices.Sort(lat)
	res.p50, res.p99 = percentile(lat, 50), percentile(lat, 99)
	if len(lat) > 0 {
		res.max = lat[len(lat)-1]
	}
	logf("%s: W3 %d/s: achieved %.0f/s, p50 %.1f ms, p99 %.1f ms, max %.1f ms, lost %d, dup %d, misrouted %d, errors %d, not sent %d, CPU: server %.0f%%, bench %.0f%%, services %.0f%% (PostgreSQL %.0f%%), others %.0f%%",
		ph.name(), rate, res.achieved, ms(res.p50), ms(res.p99), ms(res.max), res.lost, res.duplicated,
		res.misrouted, res.errors, res.skipped, res.cpu.server, res.cpu.bench, res.cpu.services, res.cpu.postgres, res.cpu.others)
	return res, nil
}
