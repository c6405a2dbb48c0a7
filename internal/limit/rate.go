package limit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a token bucket: Burst requests at once, refilled at PerSecond.
type Rate struct {
	// PerSecond is the sustained rate; 0 (or less) means no limit.
	PerSecond float64
	// Burst is how many requests may come at once; 0 means
	// max(1, ceil(PerSecond)).
	Burst int
}

// Unlimited reports whether r allows everything.
func (r Rate) Unlimited() bool { return r.PerSecond <= 0 }

// sweepEvery is how many new keys a Rates takes between two sweeps, each
// of which forgets the keys whose bucket is full again: a Rates holds about
// the keys active within the time a bucket takes to refill, plus this.
const sweepEvery = 1024

// Rates is one token bucket per key.
type Rates struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	adds    int // keys added since the last sweep
}

// NewRates returns a Rates with the limit r. now nil means time.Now.
func NewRates(r Rate, now func() time.Time) *Rates {
	if now == nil {
		now = time.Now
	}
	burst := r.Burst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(r.PerSecond)))
	}
	l := rate.Limit(r.PerSecond)
	if r.Unlimited() {
		l = rate.Inf
	}
	return &Rates{limit: l, burst: burst, now: now, buckets: make(map[string]*rate.Limiter)}
}

// Allow takes one token from key's bucket. If there is none, it takes
// nothing and returns false and how long until there is.
func (rs *Rates) Allow(key string) (ok bool, retryAfter time.Duration) {
	return rs.AllowN(key, 1)
}

// AllowN is Allow for n tokens at once (n more than the burst never passes;
// its retryAfter is then a minute).
func (rs *Rates) AllowN(key string, n int) (ok bool, retryAfter time.Duration) {
	if rs == nil || rs.limit == rate.Inf || n <= 0 {
		return true, 0
	}
	if n > rs.burst {
		return false, time.Minute
	}
	now := rs.now()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	b, found := rs.buckets[key]
	if !found {
		rs.sweep(now)
		b = rate.NewLimiter(rs.limit, rs.burst)
		rs.buckets[key] = b
		rs.adds++
	}
	res := b.ReserveN(now, n)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep forgets the buckets that are full again (they behave as new ones),
// once every sweepEvery new keys; the caller holds mu.
func (rs *Rates) sweep(now time.Time) {
	if rs.adds < sweepEvery {
		return
	}
	rs.adds = 0
	for k, b := range rs.buckets {
		if b.TokensAt(now) >= float64(rs.burst) {
			delete(rs.buckets, k)
		}
	}
}

// Len returns how many keys rs holds (for tests).
func (rs *Rates) Len() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.buckets)
}

// RetryAfterSeconds rounds d up to whole seconds, at least 1: the value of
// a Retry-After header and of extensions.retryAfter.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
