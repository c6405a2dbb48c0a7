package limit

import (
	"strconv"
	"sync"
)

// Slots caps how many slots each key holds at once, as a count per key:
// a socket takes one when it opens and gives it back when it closes.
type Slots struct {
	max int

	mu   sync.Mutex
	held map[string]int
}

// NewSlots returns Slots with at most max per key; max 0 (or less) means
// no cap.
func NewSlots(max int) *Slots {
	return &Slots{max: max, held: make(map[string]int)}
}

// Acquire takes a slot for key. It returns false if key holds the maximum
// already; otherwise the caller must call release, once, when done.
func (s *Slots) Acquire(key string) (release func(), ok bool) {
	if s == nil {
		return func() {}, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max > 0 && s.held[key] >= s.max {
		return nil, false
	}
	s.held[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.held[key]--; s.held[key] <= 0 {
				delete(s.held, key)
			}
		})
	}, true
}

// Held returns how many slots key holds.
func (s *Slots) Held(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[key]
}

// UserKey is the key of a user's slots, shared by every transport.
func UserKey(id int64) string { return "user:" + strconv.FormatInt(id, 10) }
