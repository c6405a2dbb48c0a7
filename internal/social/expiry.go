package social

import (
	"context"
	"fmt"
	"time"
)

// The end of a session, for the connections that outlive the request that
// opened them (the sockets of both transports). A session ends when it is
// revoked (the connection hears of it from its subscription to the user's
// events: EventRevoke) or when its token expires (HoldSession's timer).

// ErrTokenExpired is what an operation gets when its caller's session has
// expired since its connection opened.
var ErrTokenExpired = Errorf(CodeUnauthenticated, "token expired: log in again")

// HoldSession is for a connection that has authenticated a and subscribed
// to its user's events, and so hears of every revocation from then on. It
// checks again that the session is live, which catches a logout that
// committed before the subscription went live (CodeUnauthenticated), and
// arms a timer that calls expired, on a goroutine of its own, when the
// session expires. The timer holds no goroutine while it waits; the
// connection calls stop when it closes.
func (s *Service) HoldSession(ctx context.Context, a Auth, expired func()) (stop func() bool, err error) {
	live, err := s.liveSession(ctx, a.TokenHash)
	if err != nil {
		return nil, err
	}
	return time.AfterFunc(live.ExpiresAt.Sub(s.now()), expired).Stop, nil
}

// Expired reports whether a's session has expired: its connections must
// not act for it any more.
func (s *Service) Expired(a Auth) bool {
	return !s.now().Before(a.ExpiresAt)
}

// sweepBatch is how many expired sessions one transaction of SweepSessions
// deletes.
const sweepBatch = 1000

// SweepSessions deletes the sessions expired by now, from the store (in
// transactions of at most sweepBatch sessions each) and from the cache, and
// returns how many it deleted from the store.
func (s *Service) SweepSessions(ctx context.Context) (int, error) {
	now := s.now()
	if s.sessions != nil {
		s.sessions.sweep(now)
	}
	total := 0
	for {
		var n int
		err := s.store.Update(ctx, func(tx Tx) error {
			var err error
			n, err = tx.DeleteExpiredSessions(ctx, now, sweepBatch)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("sweep sessions: %w", err)
		}
		total += n
		if n < sweepBatch {
			return total, nil
		}
	}
}
