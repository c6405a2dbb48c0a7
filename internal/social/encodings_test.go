package social_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pulse-social/pulse/internal/social"
)

// countingEncoder counts its calls; its pointer is its key.
type countingEncoder struct{ calls atomic.Int32 }

func (e *countingEncoder) Encode(ev *social.Event) []byte {
	e.calls.Add(1)
	return []byte(ev.Message)
}

// TestEncodingsOncePerEvent checks that many subscribers reading one
// event's encoding at once encode it once, and share the bytes.
func TestEncodingsOncePerEvent(t *testing.T) {
	ev := social.Event{Kind: social.EventMessage, Message: "hi", Encodings: new(social.Encodings)}
	a, b := new(countingEncoder), new(countingEncoder)
	var wg sync.WaitGroup
	got := make([][]byte, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = ev.Encodings.Get(a, &ev)
			ev.Encodings.Get(b, &ev)
		}()
	}
	wg.Wait()
	if a.calls.Load() != 1 || b.calls.Load() != 1 {
		t.Fatalf("encoded %d and %d times, want once each", a.calls.Load(), b.calls.Load())
	}
	for _, g := range got {
		if &g[0] != &got[0][0] {
			t.Fatalf("the subscribers got copies, not the shared encoding")
		}
	}
	var none *social.Encodings
	if string(none.Get(a, &ev)) != "hi" || a.calls.Load() != 2 {
		t.Fatalf("nil Encodings did not encode afresh")
	}
}
