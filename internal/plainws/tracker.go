package plainws

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// tracker counts the open sockets and, while there is any, runs the one
// ticker that tells every writer when to ping. The first socket's join
// starts the ticker goroutine; the last socket's leave stops it and waits
// for it.
type tracker struct {
	interval time.Duration

	mu   sync.Mutex
	n    int           // open sockets
	stop chan struct{} // closed to stop the ticker goroutine
	done chan struct{} // closed by the ticker goroutine when it returns
	idle chan struct{} // closed when n drops to 0

	// tick is the channel that the ticker closes at its next tick, when it
	// puts a new one in its place.
	tick atomic.Pointer[chan struct{}]
}

func (t *tracker) join() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n++
	if t.n > 1 {
		return
	}
	t.idle = make(chan struct{})
	tick := make(chan struct{})
	t.tick.Store(&tick)
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	go t.run(t.stop, t.done)
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

// next returns the channel that is closed at the next tick. Only a socket
// between its join and its leave may call it.
func (t *tracker) next() <-chan struct{} {
	return *t.tick.Load()
}

func (t *tracker) run(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tk := time.NewTicker(t.interval)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
			tick := make(chan struct{})
			close(*t.tick.Swap(&tick))
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
