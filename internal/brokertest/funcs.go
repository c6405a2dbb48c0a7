package brokertest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

// recorder is the function side of a social.FuncSubscription: what the
// broker hands it, under the broker's lock, without ever blocking.
type recorder struct {
	mu     sync.Mutex
	events []social.Event
	ended  int
	// changed has a value after each call; it wakes a test that waits.
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) event(ev social.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.wake()
}

func (r *recorder) end() {
	r.mu.Lock()
	r.ended++
	r.mu.Unlock()
	r.wake()
}

func (r *recorder) wake() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// state returns a copy of what r has been given so far.
func (r *recorder) state() ([]social.Event, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]social.Event(nil), r.events...), r.ended
}

// mustWait waits, within Timeout, until done holds for r's state, and
// returns that state.
func (r *recorder) mustWait(tb testing.TB, what string, done func(evs []social.Event, ended int) bool) ([]social.Event, int) {
	tb.Helper()
	timeout := time.NewTimer(Timeout)
	defer timeout.Stop()
	for {
		evs, ended := r.state()
		if done(evs, ended) {
			return evs, ended
		}
		select {
		case <-r.changed:
		case <-timeout.C:
			tb.Fatalf("%s: not within %v (the function got %d events, ended %d times)", what, Timeout, len(evs), ended)
		}
	}
}

// testFuncDelivery checks the mode every socket uses: the events held
// before SetFunc, then every later one, reach the function in order, and
// a function's subscriber is never cut off, however many events it is
// handed; after Close returns, the function gets nothing more.
func testFuncDelivery(t *testing.T, b social.Broker) {
	u := NewUsers(1)[0]
	sub := MustSubscribe(t, b, u)
	held := int64(chunk)
	MustPublish(t, b, notices(u, 1, int(held))...)
	// Events published before SetFunc may not have arrived yet (a
	// networked broker): either way they come first and in order.
	r := newRecorder()
	if !sub.SetFunc(r.event, r.end) {
		t.Fatalf("SetFunc on a new subscription returned false (Err: %v)", sub.Err())
	}
	total := held + 4*int64(sub.QueueSize())
	for seq := held + 1; seq <= total; seq += chunk {
		MustPublish(t, b, notices(u, seq, int(min(chunk, total-seq+1)))...)
	}
	evs, _ := r.mustWait(t, "every event reaches the function", func(evs []social.Event, _ int) bool {
		return int64(len(evs)) >= total
	})
	mustSeqsFrom(t, evs, 1)
	if err := sub.Err(); err != nil {
		t.Fatalf("a function's subscription handed %d events (queue size %d) ended with %v, want it open", total, sub.QueueSize(), err)
	}
	sub.Close()
	MustPublish(t, b, notice(u, total+1))
	time.Sleep(Quiet)
	if evs, ended := r.state(); int64(len(evs)) != total || ended != 0 {
		t.Fatalf("after Close the function has %d events (want %d) and ended %d times (want 0)", len(evs), total, ended)
	}
	if err := sub.Err(); err != nil {
		t.Fatalf("Err() after Close = %v, want nil", err)
	}
}

// testFuncRefused checks that SetFunc changes nothing once Events has been
// called or the subscription has ended.
func testFuncRefused(t *testing.T, b social.Broker) {
	u := NewUsers(1)[0]
	read := MustSubscribe(t, b, u)
	read.Events()
	if read.SetFunc(newRecorder().event, nil) {
		t.Fatalf("SetFunc after Events returned true")
	}
	ev := notice(u, 1)
	MustPublish(t, b, ev)
	mustEqualEvents(t, MustReceive(t, read, 1), []social.Event{ev})

	closed := MustSubscribe(t, b, u)
	closed.Close()
	if closed.SetFunc(newRecorder().event, nil) {
		t.Fatalf("SetFunc after Close returned true")
	}
}

// testFuncQueueSize checks that every subscription of a broker reports the
// same positive slow-consumer limit, and that one that never reads is cut
// off holding no more than that.
func testFuncQueueSize(t *testing.T, b social.Broker) {
	u := NewUsers(1)[0]
	slow, other := MustSubscribe(t, b, u), MustSubscribe(t, b, u)
	size := slow.QueueSize()
	if size <= 0 || other.QueueSize() != size {
		t.Fatalf("QueueSize() = %d and %d, want the same positive limit", size, other.QueueSize())
	}
	other.Close()
	if got := mustCutOff(t, b, u, slow); len(got) > size {
		t.Fatalf("the cut-off subscriber held %d events, more than QueueSize() = %d", len(got), size)
	}
}

// testFuncBrokerClose checks that closing the broker ends a function's
// subscription: ended is called once, Err says why, and the function gets
// nothing more.
func testFuncBrokerClose(t *testing.T, b social.Broker) {
	closeBroker := brokerCloser(t, b)
	u := NewUsers(1)[0]
	sub := MustSubscribe(t, b, u)
	r := newRecorder()
	if !sub.SetFunc(r.event, r.end) {
		t.Fatalf("SetFunc on a new subscription returned false (Err: %v)", sub.Err())
	}
	ev := notice(u, 1)
	MustPublish(t, b, ev)
	r.mustWait(t, "the event reaches the function", func(evs []social.Event, _ int) bool { return len(evs) == 1 })
	if err := closeBroker(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	r.mustWait(t, "closing the broker calls ended", func(_ []social.Event, ended int) bool { return ended > 0 })
	if err := sub.Err(); !errors.Is(err, social.ErrBrokerClosed) {
		t.Fatalf("Err() after the broker closed = %v, want %v", err, social.ErrBrokerClosed)
	}
	sub.Close()
	time.Sleep(Quiet)
	if evs, ended := r.state(); len(evs) != 1 || ended != 1 {
		t.Fatalf("the function got %d events (want 1), ended was called %d times (want 1)", len(evs), ended)
	}
}
