package plainws

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// pingSlots is how many groups the sockets' pings are spread over: each
// group is pinged once per interval, a slot's length after the one before,
// so that ten thousand sockets do not all write a ping at the same moment
// (make bench saw delivery stall for up to 1.5 s when they did).
const pingSlots = 32

// tracker counts the open sockets and, while there is any, runs the one
// ticker that tells the writers when to ping. The first socket's join
// starts the ticker goroutine; the last socket's leave stops it and waits
// for it.
type tracker struct {
	interval time.Duration

	mu   sync.Mutex
	n    int           // open sockets
	next int           // the slot the next socket to join gets
	stop chan struct{} // closed to stop the ticker goroutine
	done chan struct{} // closed by the ticker goroutine when it returns
	idle chan struct{} // closed when n drops to 0

	// ticks[i] is the channel that the ticker closes at slot i's next tick,
	// when it puts a new one in its place.
	ticks [pingSlots]atomic.Pointer[chan struct{}]
}

// join counts a socket in and returns its ping slot.
func (t *tracker) join() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	slot := t.next
	t.next = (t.next + 1) % pingSlots
	if t.n > 1 {
		return slot
	}
	t.idle = make(chan struct{})
	for i := range t.ticks {
		tick := make(chan struct{})
		t.ticks[i].Store(&tick)
	}
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	go t.run(t.stop, t.done)
	return slot
}

func (t *tracker) leave() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n > 0 {
		return
	}
	// run never takes t.mu, so it can be waited for here.
	close(t.stop)
	<-t.done
	close(t.idle)
}

// tick returns the channel that is closed at slot's next tick, once per
// interval. Only a socket between its join and its leave may call it.
func (t *tracker) tick(slot int) <-chan struct{} {
	return *t.ticks[slot].Load()
}

func (t *tracker) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tk := time.NewTicker(max(t.interval/pingSlots, time.Millisecond))
	defer tk.Stop()
	for slot := 0; ; slot = (slot + 1) % pingSlots {
		select {
		case <-stop:
			return
		case <-tk.C:
			tick := make(chan struct{})
			close(*t.ticks[slot].Swap(&tick))
		}
	}
}

// wait blocks until no socket is open, or ctx is done.
func (t *tracker) wait(ctx context.Context) error {
	t.mu.Lock()
	if t.n == 0 {
		t.mu.Unlock()
		return nil
	}
	idle := t.idle
	t.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
