package social

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultSessionCacheSize is how many sessions the cache holds when
// Config.SessionCacheSize is 0.
const DefaultSessionCacheSize = 100_000

// sessionCache remembers live tokens so that Authenticate reads the store
// once per token, not once per request. Ending or refreshing a session
// forgets its user's tokens before the change and again after the commit;
// a read of the store that was under way meanwhile (and may have seen the
// old state) is not remembered, since every forget moves the epoch on.
type sessionCache struct {
	max int

	mu      sync.Mutex
	epoch   uint64
	entries map[[sha256.Size]byte]cachedSession
}

type cachedSession struct {
	user      User
	sessionID int64
	expires   time.Time // the token's
	lastUsed  time.Time // the session's, as last written
}

func newSessionCache(max int) *sessionCache {
	return &sessionCache{max: max, entries: make(map[[sha256.Size]byte]cachedSession)}
}

// get returns a session remembered and live at now. If there is none, it
// returns the epoch to give put with what the store says.
func (c *sessionCache) get(hash []byte, now time.Time) (s cachedSession, epoch uint64, ok bool) {
	key := [sha256.Size]byte(hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if ok && now.Before(e.expires) {
		return e, 0, true
	}
	delete(c.entries, key)
	return cachedSession{}, c.epoch, false
}

// put remembers a session read from the store, unless a session was
// forgotten since the read began (epoch). A full cache forgets one
// session, whichever the map gives first.
func (c *sessionCache) put(hash []byte, su SessionUser, epoch uint64) {
	key := [sha256.Size]byte(hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = cachedSession{user: su.User, sessionID: su.Session.ID, expires: su.ExpiresAt, lastUsed: su.Session.LastUsedAt}
}

// used records that the session of a remembered token was marked used at
// now.
func (c *sessionCache) used(hash []byte, now time.Time) {
	key := [sha256.Size]byte(hash)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[key]; ok {
		e.lastUsed = now
		c.entries[key] = e
	}
}

// sweep drops the sessions expired at now, which get would drop only if
// asked for them.
func (c *sessionCache) sweep(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if !now.Before(e.expires) {
			delete(c.entries, k)
		}
	}
}

// forgetUser drops the tokens of every session of the user and moves the
// epoch on. It walks the whole cache: sessions end or refresh far less
// often than requests come.
func (c *sessionCache) forgetUser(userID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.user.ID == userID {
			delete(c.entries, k)
		}
	}
	c.epoch++
}
