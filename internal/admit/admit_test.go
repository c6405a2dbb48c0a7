package admit

import (
	"errors"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/social"
)

// TestArriveCapsAddress checks the per-address cap and that Release gives
// the slot back once, however often it is called.
func TestArriveCapsAddress(t *testing.T) {
	slots := limit.NewSlots(1)
	a := New(Config{PerAddress: slots})
	c, err := a.Arrive("1.2.3.4")
	if err != nil {
		t.Fatalf("Arrive: %v", err)
	}
	if _, err := a.Arrive("1.2.3.4"); ReasonOf(err) != TooManyForAddress {
		t.Fatalf("second Arrive: %v, want TooManyForAddress", err)
	}
	c.Release()
	c.Release()
	if n := slots.Held("1.2.3.4"); n != 0 {
		t.Fatalf("after Release the address holds %d slots", n)
	}
	if _, err := a.Arrive("1.2.3.4"); err != nil {
		t.Fatalf("Arrive after Release: %v", err)
	}
}

// TestObserveBeforeOpen checks that the session events a connection hears
// before its hold exists are kept: an end ends it, a refresh waits.
func TestObserveBeforeOpen(t *testing.T) {
	c := &Conn{sessionID: 7}
	later := time.Now().Add(time.Hour)
	if c.Observe(social.Event{Kind: social.EventRefresh, SessionID: 7, ExpiresAt: later}) {
		t.Fatalf("a refresh ended the session")
	}
	if c.refreshed != later.UnixNano() {
		t.Fatalf("the refresh was not kept for the hold")
	}
	if c.Observe(social.Event{Kind: social.EventRevoke, SessionID: 8}) {
		t.Fatalf("another session's end ended this one")
	}
	if !c.Observe(social.Event{Kind: social.EventRevoke, SessionID: 7}) {
		t.Fatalf("the session's end did not end it")
	}
}

func TestReasonOf(t *testing.T) {
	if ReasonOf(nil) != 0 || ReasonOf(errors.New("x")) != Failed {
		t.Fatalf("ReasonOf of nil or a plain error")
	}
	wrapped := errors.Join(errors.New("context"), &Refusal{Reason: LoggedOut})
	if ReasonOf(wrapped) != LoggedOut {
		t.Fatalf("ReasonOf missed a wrapped Refusal")
	}
}

func TestParseCursor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true}, {"42", 42, true}, {"007", 7, true},
		{"", 0, false}, {"-1", 0, false}, {"+1", 0, false}, {" 1", 0, false}, {"1e3", 0, false},
		{"99999999999999999999", 0, false},
	} {
		got, ok := ParseCursor(tc.in)
		if ok != tc.ok || ok && got != tc.want {
			t.Errorf("ParseCursor(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
