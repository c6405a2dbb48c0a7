package social

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// The end of a session, for the connections that outlive the request that
// opened them (the sockets of both transports). A session ends when it is
// ended (logout, endSession, logoutAll: the connection hears of it from
// its subscription to the user's events, EventRevoke) or when it expires
// (the Hold's timer, which EventRefresh moves on).

// ErrTokenExpired is what an operation gets when its caller's session has
// expired since its connection opened.
var ErrTokenExpired = Errorf(CodeUnauthenticated, "token expired: log in again")

// Hold is a connection's hold on its session: a timer for the session's
// expiry that the session's refreshes move on. It holds no goroutine while
// it waits. Its methods are safe for concurrent use.
type Hold struct {
	sessionID int64
	now       func() time.Time

	mu      sync.Mutex
	expires time.Time
	timer   *time.Timer
	stopped bool
}

// HoldSession is for a connection that has authenticated a and subscribed
// to its user's events, and so hears of every end and refresh of its
// session from then on. It checks again that the session is live, which
// catches an end that committed before the subscription went live
// (CodeUnauthenticated), and arms a timer that calls expired, on a
// goroutine of its own, when the session expires. The connection hands the
// Hold its user's events (Observe) and calls Stop when it closes.
func (s *Service) HoldSession(ctx context.Context, a Auth, expired func()) (*Hold, error) {
	live, err := s.store.LiveSession(ctx, a.SessionID, s.now())
	if ErrorCode(err) == CodeNotFound {
		return nil, errInvalidToken
	}
	if err != nil {
		return nil, err
	}
	h := &Hold{sessionID: a.SessionID, now: s.now, expires: live.ExpiresAt}
	h.timer = time.AfterFunc(live.ExpiresAt.Sub(s.now()), expired)
	return h, nil
}

// Observe hands the Hold one of its user's events: a refresh of its
// session moves its expiry (and the timer) on. It reports whether the
// event ends the session. It never blocks.
func (h *Hold) Observe(ev Event) (ended bool) {
	if ev.SessionID != h.sessionID {
		return false
	}
	switch ev.Kind {
	case EventRevoke:
		return true
	case EventRefresh:
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.stopped && ev.ExpiresAt.After(h.expires) {
			h.expires = ev.ExpiresAt
			h.timer.Reset(h.expires.Sub(h.now()))
		}
	}
	return false
}

// ExpiresAt returns when the session expires, as far as the Hold knows.
func (h *Hold) ExpiresAt() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.expires
}

// Stop stops the timer for good: expired is not called after it returns,
// unless it was running already.
func (h *Hold) Stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	h.timer.Stop()
}

// Expired reports whether a's session has expired (or, outside a
// connection that holds it, a's credential): its connections must not act
// for it any more.
func (s *Service) Expired(a Auth) bool {
	expires := a.ExpiresAt
	if a.Hold != nil {
		expires = a.Hold.ExpiresAt()
	}
	return !s.now().Before(expires)
}

// sweepBatch is how many expired sessions, or tokens and tickets, one
// transaction of SweepSessions deletes.
const sweepBatch = 1000

// SweepSessions deletes the sessions expired by now with their tokens and
// tickets, and the tokens and tickets expired by now, from the store (in
// transactions of at most sweepBatch rows each) and from the cache, and
// returns how many it deleted from the store. On PostgreSQL, rows another
// process is sweeping are skipped, not waited for.
func (s *Service) SweepSessions(ctx context.Context) (int, error) {
	now := s.now()
	if s.sessions != nil {
		s.sessions.sweep(now)
	}
	total := 0
	for _, del := range []func(Tx) (int, error){
		func(tx Tx) (int, error) { return tx.DeleteExpiredSessions(ctx, now, sweepBatch) },
		func(tx Tx) (int, error) { return tx.DeleteExpiredCredentials(ctx, now, sweepBatch) },
	} {
		for {
			var n int
			err := s.store.Update(ctx, func(tx Tx) error {
				var err error
				n, err = del(tx)
				return err
			})
			if err != nil {
				return total, fmt.Errorf("sweep sessions: %w", err)
			}
			total += n
			if n < sweepBatch {
				break
			}
		}
	}
	return total, nil
}
