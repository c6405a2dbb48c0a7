package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// W2 targets: milliseconds from sending createPost to the last follower's
// receipt (median of the runs), by number of followers.
var w2Targets = map[int]float64{1000: 30, 10000: 250}

// broadcastResult is one createPost and its deliveries.
type broadcastResult struct {
	last       time.Duration // mutation sent → last follower's receipt
	mutation   time.Duration // mutation sent → HTTP response
	lost       int           // followers that got nothing
	duplicated int           // extra copies a follower got
	misrouted  int           // notifications on sockets that should have got none
}

// broadcast has authors[n] post a body with a fresh token, so that receipts
// match exactly, and waits until each of its n followers (users[:n], all
// connected) has the notification, or until the timeout.
func broadcast(ctx context.Context, ph *phase, n int) (broadcastResult, error) {
	f := ph.fleet
	f.reset()
	author := ph.pop.authors[n]
	token := fmt.Sprintf("w2 %s n=%d %s", ph.transport, n, newToken()[:22])

	t0 := time.Now()
	postID, err := ph.apis[0].createPost(ctx, author.token, token)
	var res broadcastResult
	res.mutation = time.Since(t0)
	if err != nil {
		return res, err
	}
	f.waitReceived(ctx, int64(n), ph.cfg.drain)
	// A little longer, for copies that should not come at all.
	sleepCtx(ctx, 20*time.Millisecond)

	var last time.Time
	for _, c := range f.clients {
		got := 0
		for _, r := range c.take() {
			if r.action != "post" || r.content != token || r.actionID != postID || c.user >= n {
				res.misrouted++
				continue
			}
			got++
			if got > 1 {
				res.duplicated++
				continue
			}
			if r.at.After(last) {
				last = r.at
			}
		}
		if got == 0 && c.user < n {
			res.lost++
		}
	}
	res.last = last.Sub(t0)
	return res, nil
}

// runW2 times one post by a user whom n others follow, each connected, from
// the mutation's start to the last follower's receipt: one warm-up run,
// then cfg.w2Runs measured ones, for each n of cfg.w2Sizes.
func runW2(ctx context.Context, ph *phase) error {
	for _, n := range ph.cfg.w2Sizes {
		var lasts, muts []time.Duration
		var lost, dup, mis int
		use := startUsage(ph.pids(), ph.db)
		for run := range ph.cfg.w2Runs + 1 {
			res, err := broadcast(ctx, ph, n)
			if err != nil {
				return fmt.Errorf("W2 n=%d: %w", n, err)
			}
			lost += res.lost
			dup += res.duplicated
			mis += res.misrouted
			if run > 0 && res.lost == 0 {
				lasts = append(lasts, res.last)
				muts = append(muts, res.mutation)
			}
			if !sleepCtx(ctx, ph.cfg.w2Pause) {
				return ctx.Err()
			}
		}
		cpu := use.use()
		sc := ph.scope.with("W2", n, 0)
		logf("%s: W2 n=%d: %d runs, last delivery p50 %.1f ms, mutation p50 %.1f ms; lost %d, duplicated %d, misrouted %d",
			ph.name(), n, len(lasts), ms(median(slices.Clone(lasts))), ms(median(slices.Clone(muts))), lost, dup, mis)
		if len(lasts) == 0 {
			ph.rep.note("%s: W2 n=%d: no run delivered to every follower", ph.name(), n)
		} else {
			slices.Sort(lasts)
			p50 := median(slices.Clone(lasts))
			if t, ok := w2Targets[n]; ok {
				sc.target("p50_ms", ms(p50), "<=", t)
			} else {
				sc.add("p50_ms", ms(p50))
			}
			sc.add("p95_ms", ms(percentile(lasts, 95)))
			sc.add("max_ms", ms(lasts[len(lasts)-1]))
			sc.add("mutation_p50_ms", ms(median(muts)))
			sc.add("runs", float64(len(lasts)))
		}
		ph.addCPU(sc, cpu, fmt.Sprintf("W2 n=%d", n))
		sc.count("lost", lost)
		sc.count("duplicated", dup)
		sc.count("misrouted", mis)
	}
	return nil
}
