package limit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/limit/limittest"
)

func TestRates(t *testing.T) {
	c := limittest.NewClock(time.Unix(1_000_000, 0))
	rs := limit.NewRates(limit.Rate{PerSecond: 2, Burst: 3}, c.Now)
	for i := range 3 {
		if ok, _ := rs.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, retry := rs.Allow("a")
	if ok || retry <= 0 || retry > 500*time.Millisecond {
		t.Fatalf("4th request: ok %v, retry %v; want refused with retry in (0, 500ms]", ok, retry)
	}
	if got := limit.RetryAfterSeconds(retry); got != 1 {
		t.Fatalf("RetryAfterSeconds(%v) = %d, want 1", retry, got)
	}
	// A refused request takes no token: after the retry delay one passes.
	c.Add(retry)
	if ok, _ := rs.Allow("a"); !ok {
		t.Fatal("refused after waiting the retry delay")
	}
	// Keys are independent.
	if ok, _ := rs.Allow("b"); !ok {
		t.Fatal("another key refused")
	}
}

func TestRatesUnlimited(t *testing.T) {
	rs := limit.NewRates(limit.Rate{}, nil)
	for range 10_000 {
		if ok, _ := rs.Allow("a"); !ok {
			t.Fatal("an unlimited Rates refused")
		}
	}
	var nilRates *limit.Rates
	if ok, _ := nilRates.Allow("a"); !ok {
		t.Fatal("a nil Rates refused")
	}
}

// TestRatesForget checks that a flood of distinct keys does not grow a
// Rates without bound once their buckets have refilled.
func TestRatesForget(t *testing.T) {
	c := limittest.NewClock(time.Unix(1_000_000, 0))
	rs := limit.NewRates(limit.Rate{PerSecond: 10, Burst: 10}, c.Now)
	for i := range 10_000 {
		rs.Allow(fmt.Sprint("key", i))
		c.Add(10 * time.Millisecond)
	}
	if n := rs.Len(); n > 2100 {
		t.Fatalf("holds %d keys after 10000 distinct ones, want about 1000-2000", n)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {59 * time.Second, 59}} {
		if got := limit.RetryAfterSeconds(tc.d); got != tc.want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

func TestSlots(t *testing.T) {
	s := limit.NewSlots(2)
	r1, ok1 := s.Acquire("a")
	_, ok2 := s.Acquire("a")
	if !ok1 || !ok2 {
		t.Fatal("the first two slots refused")
	}
	if _, ok := s.Acquire("a"); ok {
		t.Fatal("a third slot granted")
	}
	if _, ok := s.Acquire("b"); !ok {
		t.Fatal("another key refused")
	}
	r1()
	r1() // releasing twice gives back one slot only
	if s.Held("a") != 1 {
		t.Fatalf("held %d after one release, want 1", s.Held("a"))
	}
	if _, ok := s.Acquire("a"); !ok {
		t.Fatal("refused after a release")
	}
	if _, ok := s.Acquire("a"); ok {
		t.Fatal("released twice, counted twice")
	}

	unlimited := limit.NewSlots(0)
	for range 1000 {
		if _, ok := unlimited.Acquire("a"); !ok {
			t.Fatal("uncapped Slots refused")
		}
	}
}

func TestAddress(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"127.0.0.1:5000", "127.0.0.1"},
		{"[::ffff:10.0.0.1]:80", "10.0.0.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:1", "fe80::/64"},
		{"10.1.2.3", "10.1.2.3"},
		{"not an address", "not an address"},
	} {
		if got := limit.Address(tc.in); got != tc.want {
			t.Errorf("Address(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRatesAllowN(t *testing.T) {
	c := limittest.NewClock(time.Unix(1_000_000, 0))
	rs := limit.NewRates(limit.Rate{PerSecond: 1, Burst: 5}, c.Now)
	if ok, _ := rs.AllowN("a", 4); !ok {
		t.Fatal("4 of a burst of 5 refused")
	}
	if ok, retry := rs.AllowN("a", 2); ok || retry != time.Second {
		t.Fatalf("2 more: ok %v retry %v, want refused, 1s", ok, retry)
	}
	if ok, _ := rs.AllowN("a", 1); !ok {
		t.Fatal("the last token refused")
	}
	if ok, _ := rs.AllowN("b", 6); ok {
		t.Fatal("more than the burst passed")
	}
}
