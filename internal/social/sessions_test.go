package social

import (
	"testing"
	"time"
)

// TestSessionCacheEpoch checks that a session read from the store while a
// logout was under way is not remembered, and that a full cache stays at
// its size.
func TestSessionCacheEpoch(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u := User{ID: 1, Username: "ann"}
	hash := HashToken("token")
	c := newSessionCache(2)

	_, epoch, _ := c.get(hash, now) // a read of the store begins
	c.forgetUser(u.ID)              // a logout
	c.put(hash, su(u, now.Add(time.Hour)), epoch)
	_, epoch, ok := c.get(hash, now)
	if ok {
		t.Fatalf("a read that began before a logout was remembered")
	}

	c.put(hash, su(u, now.Add(time.Hour)), epoch)
	if got, _, ok := c.get(hash, now); !ok || got.user != u {
		t.Fatalf("get = %+v, %v; want the session", got, ok)
	}
	if _, _, ok := c.get(hash, now.Add(time.Hour)); ok {
		t.Fatalf("a session was live at its expiry")
	}

	for _, tok := range []string{"a", "b", "c", "d"} {
		_, epoch, _ := c.get(HashToken(tok), now)
		c.put(HashToken(tok), su(u, now.Add(time.Hour)), epoch)
	}
	if n := len(c.entries); n != 2 {
		t.Fatalf("%d sessions kept, want at most 2", n)
	}
}

// TestSessionCacheSweep checks that sweep drops the expired sessions, and
// only those, even if nobody asks for them again.
func TestSessionCacheSweep(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newSessionCache(10)
	for tok, expires := range map[string]time.Time{"past": now.Add(-time.Second), "now": now, "later": now.Add(time.Second)} {
		_, epoch, _ := c.get(HashToken(tok), now.Add(-time.Hour))
		c.put(HashToken(tok), su(User{ID: 1}, expires), epoch)
	}
	c.sweep(now)
	if _, ok := c.entries[[32]byte(HashToken("later"))]; !ok || len(c.entries) != 1 {
		t.Fatalf("%d sessions kept after the sweep, want only the live one", len(c.entries))
	}
}

// su is a session of u whose token expires at expires.
func su(u User, expires time.Time) SessionUser {
	return SessionUser{User: u, Session: Session{ID: 1, UserID: u.ID, ExpiresAt: expires}, ExpiresAt: expires}
}
