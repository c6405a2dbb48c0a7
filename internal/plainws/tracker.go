package plainws

import (
	"sync"
	"time"
)

// pingSlots is how many groups the sockets' pings are spread over: each
// group is pinged once per interval, a slot's length after the one before,
// so that ten thousand sockets do not all write a ping at the same moment
// (make bench saw delivery stall for up to 1.5 s when they did).
const pingSlots = 32

// tracker counts the open sockets and, while there is any, runs the one
// ticker that pings them (at each tick it asks the sockets of one slot to
// ping) and the poller that tells them when to read. The first socket's
// join starts both; the last socket's leave stops them and waits for them.
type tracker struct {
	interval time.Duration

	mu    sync.Mutex
	n     int           // open sockets
	next  int           // the slot the next socket to join gets
	stop  chan struct{} // closed to stop the ticker goroutine
	done  chan struct{} // closed by the ticker goroutine when it returns
	slots [pingSlots]map[*socket]struct{}
	// poller is nil when the system has none (see newPoller), or with
	// noPoller (set by tests); the sockets then read on goroutines of
	// their own.
	poller   *poller
	noPoller bool
}

// join counts a socket in and puts it in a ping slot until leave. It
// returns the poller, if any.
func (t *tracker) join(s *socket) *poller {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	slot := &t.slots[t.next]
	t.next = (t.next + 1) % pingSlots
	if *slot == nil {
		*slot = make(map[*socket]struct{})
	}
	(*slot)[s] = struct{}{}
	s.pingSlot = slot
	if t.n > 1 {
		return t.poller
	}
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	go t.run(t.stop, t.done)
	if !t.noPoller {
		t.poller, _ = newPoller() // without one, sockets read on their own
	}
	return t.poller
}

// unpoll has the poller, if any, forget s; a socket calls it before it
// closes its connection.
func (t *tracker) unpoll(s *socket) {
	t.mu.Lock()
	p := t.poller
	t.mu.Unlock()
	if p != nil {
		p.remove(s)
	}
}

// leave counts out a socket that joined; the last one stops the ticker
// and the poller and waits for them.
func (t *tracker) leave(s *socket) {
	t.mu.Lock()
	delete(*s.pingSlot, s)
	t.n--
	if t.n > 0 {
		t.mu.Unlock()
		return
	}
	// run takes t.mu to ping, so it is waited for without the lock. A
	// socket that joins meanwhile starts a ticker of its own.
	done, p := t.done, t.poller
	close(t.stop)
	t.poller = nil
	t.mu.Unlock()
	<-done
	if p != nil {
		p.close()
	}
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
			t.ping(slot)
		}
	}
}

// ping asks every socket of slot to ping. socket.ping never blocks.
func (t *tracker) ping(slot int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for s := range t.slots[slot] {
		s.ping()
	}
}
