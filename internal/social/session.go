package social

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"
)

// DefaultTokenRefreshGrace is how long a session's older tokens keep
// working after RefreshToken unless configured.
const DefaultTokenRefreshGrace = 60 * time.Second

// TicketTTL is how long a socket ticket is valid.
const TicketTTL = 60 * time.Second

// touchEvery is how often at most Authenticate writes a session's
// LastUsedAt: a coarse value that costs no store write per request.
const touchEvery = time.Minute

// touch marks the session used at now if it was last marked touchEvery or
// more before. LastUsedAt is a hint: a write that fails is left for the
// next request to retry, and does not fail this one.
func (s *Service) touch(ctx context.Context, hash []byte, id int64, lastUsed, now time.Time) {
	if now.Sub(lastUsed) < touchEvery {
		return
	}
	if s.sessions != nil && hash != nil {
		s.sessions.used(hash, now)
	}
	_ = s.store.Update(ctx, func(tx Tx) error {
		return tx.TouchSession(ctx, id, now, now.Add(-touchEvery))
	})
}

// RefreshToken gives the caller's session a new access token with a fresh
// expiry, and returns it. The session's other tokens keep working for
// Config.TokenRefreshGrace (or until they expire, if sooner); the
// session's sockets, on every process, now expire with the new token
// (EventRefresh). Without a caller, or after the session ended, it is
// CodeUnauthenticated.
func (s *Service) RefreshToken(ctx context.Context) (User, string, error) {
	a, ok := AuthFrom(ctx)
	if !ok {
		return User{}, "", errSignIn
	}
	token, hash := newToken()
	now := s.now()
	r := Refresh{
		SessionID: a.SessionID, TokenHash: hash, ExpiresAt: now.Add(s.cfg.TokenTTL),
		GraceUntil: now.Add(s.cfg.TokenRefreshGrace), Now: now,
	}
	err := s.changeSessions(a.User.ID, func() error {
		return s.store.Update(ctx, func(tx Tx) error { return tx.RefreshSession(ctx, r) })
	})
	if ErrorCode(err) == CodeNotFound {
		return User{}, "", errInvalidToken
	}
	if err != nil {
		return User{}, "", err
	}
	s.publish(ctx, Event{Kind: EventRefresh, UserID: a.User.ID, SessionID: a.SessionID, ExpiresAt: r.ExpiresAt})
	return a.User, token, nil
}

// EndSession ends one of the caller's sessions: its tokens and tickets
// stop working and its sockets close, on every process (EventRevoke). It
// reports false if the caller has no live session with this id. Without
// a caller it is CodeUnauthenticated.
func (s *Service) EndSession(ctx context.Context, id int64) (bool, error) {
	u, err := RequireUser(ctx)
	if err != nil {
		return false, err
	}
	if id <= 0 {
		return false, nil // 0 would end them all
	}
	ended, err := s.endSessions(ctx, u.ID, id)
	return len(ended) > 0, err
}

// LogoutAll ends every session of the caller, as EndSession ends one, and
// returns how many were live. Without a caller it is CodeUnauthenticated.
func (s *Service) LogoutAll(ctx context.Context) (int, error) {
	u, err := RequireUser(ctx)
	if err != nil {
		return 0, err
	}
	ended, err := s.endSessions(ctx, u.ID, 0)
	return len(ended), err
}

// endSessions ends the user's session id, or all of them if id is 0, and
// tells their sockets. It returns the ids of those that were live.
func (s *Service) endSessions(ctx context.Context, userID, id int64) ([]int64, error) {
	var ended []int64
	err := s.changeSessions(userID, func() error {
		return s.store.Update(ctx, func(tx Tx) error {
			var err error
			ended, err = tx.EndSessions(ctx, userID, id, s.now())
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	if len(ended) > 0 {
		events := make([]Event, len(ended))
		for i, sid := range ended {
			events[i] = Event{Kind: EventRevoke, UserID: userID, SessionID: sid}
		}
		s.publish(ctx, events...)
	}
	return ended, nil
}

// changeSessions runs update, which changes the user's sessions, with the
// cache forgetting the user's tokens before and again after: a read that
// began before the commit is not remembered.
func (s *Service) changeSessions(userID int64, update func() error) error {
	if s.sessions == nil {
		return update()
	}
	s.sessions.forgetUser(userID)
	defer s.sessions.forgetUser(userID)
	return update()
}

// Sessions lists the caller's live sessions, newest first. Without a
// caller it is CodeUnauthenticated.
func (s *Service) Sessions(ctx context.Context) ([]Session, error) {
	u, err := RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.UserSessions(ctx, u.ID, s.now())
}

// SocketTicket issues a ticket for the caller's session: it opens one
// socket in place of the access token, once, within TicketTTL. It is
// stored hashed, like tokens. Without a caller it is CodeUnauthenticated.
func (s *Service) SocketTicket(ctx context.Context) (string, time.Time, error) {
	a, ok := AuthFrom(ctx)
	if !ok {
		return "", time.Time{}, errSignIn
	}
	ticket := newTicket()
	t := Ticket{Hash: HashToken(ticket), SessionID: a.SessionID, ExpiresAt: s.now().Add(TicketTTL)}
	err := s.store.Update(ctx, func(tx Tx) error { return tx.CreateTicket(ctx, t) })
	if err != nil {
		return "", time.Time{}, err
	}
	return ticket, t.ExpiresAt, nil
}

// AuthenticateTicket uses up a socket ticket and returns the caller of its
// session, which expires when the session does. A used, expired or
// unknown ticket, or one whose session ended, is CodeUnauthenticated, as a
// bad token is. Of sockets that present the same ticket at once, on any
// process, one at most gets it.
func (s *Service) AuthenticateTicket(ctx context.Context, ticket string) (Auth, error) {
	if !IsTicket(ticket) {
		return Auth{}, errInvalidToken
	}
	var su SessionUser
	err := s.store.Update(ctx, func(tx Tx) error {
		var err error
		su, err = tx.ConsumeTicket(ctx, HashToken(ticket), s.now())
		return err
	})
	if ErrorCode(err) == CodeNotFound {
		return Auth{}, errInvalidToken
	}
	if err != nil {
		return Auth{}, err
	}
	s.touch(ctx, nil, su.Session.ID, su.Session.LastUsedAt, s.now())
	return Auth{User: su.User, SessionID: su.Session.ID, ExpiresAt: su.ExpiresAt}, nil
}

// AuthenticateSocket authenticates a socket by what it presents in place
// of a token: a ticket (see IsTicket) or an access token.
func (s *Service) AuthenticateSocket(ctx context.Context, credential string) (Auth, error) {
	if IsTicket(credential) {
		return s.AuthenticateTicket(ctx, credential)
	}
	return s.Authenticate(ctx, credential)
}

// ticketPrefix starts every ticket. Tokens are base64url, which has no
// dot, so no token looks like a ticket.
const ticketPrefix = "tk."

// IsTicket reports whether a credential is a socket ticket rather than an
// access token.
func IsTicket(credential string) bool {
	return strings.HasPrefix(credential, ticketPrefix)
}

// newTicket returns a fresh socket ticket: the prefix and 32 random bytes,
// base64url.
func newTicket() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return ticketPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}
