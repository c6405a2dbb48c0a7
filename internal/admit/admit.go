package admit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/metrics"
	"github.com/pulse-social/pulse/internal/social"
)

// Config is the rules of one transport. Nil caps cap nothing; nil Metrics
// counts nothing.
type Config struct {
	Service *social.Service
	// PerAddress and PerUser cap the connections a client address and a
	// user hold open, with keys limit.Address and limit.UserKey, shared by
	// every transport that is given the same Slots.
	PerAddress *limit.Slots
	PerUser    *limit.Slots
	// Metrics counts refusals by the caps, under Transport's label
	// (metrics.Plain, metrics.GraphQL, metrics.GraphQLSSE, metrics.SSE).
	Metrics   *metrics.Metrics
	Transport string
}

// Admitter admits the connections of one transport. It is safe for
// concurrent use.
type Admitter struct{ cfg Config }

// New returns an Admitter that applies cfg.
func New(cfg Config) *Admitter { return &Admitter{cfg: cfg} }

// Reason is why a connection is refused.
type Reason uint8

// The reasons a connection is refused.
const (
	// TooManyForAddress: its client address holds Config.PerAddress
	// connections already.
	TooManyForAddress Reason = iota + 1
	// TooManyForUser: its user holds Config.PerUser connections already.
	TooManyForUser
	// BadCredential: the token or ticket is not (or no longer) valid.
	BadCredential
	// LoggedOut: the session ended before the subscription went live.
	LoggedOut
	// ShuttingDown: the request's context ended or the broker closed.
	ShuttingDown
	// Failed: the store or the broker failed; Refusal.Err says how.
	Failed
)

// Refusal is the error of a step that refuses the connection.
type Refusal struct {
	Reason Reason
	Err    error // the cause, for the server's log; nil for the caps
}

func (r *Refusal) Error() string {
	if r.Err != nil {
		return r.Err.Error()
	}
	return fmt.Sprintf("connection refused (reason %d)", r.Reason)
}

func (r *Refusal) Unwrap() error { return r.Err }

// ReasonOf returns the Reason of a Refusal in err's chain: 0 for nil,
// Failed for an error that holds none.
func ReasonOf(err error) Reason {
	if err == nil {
		return 0
	}
	var r *Refusal
	if errors.As(err, &r) {
		return r.Reason
	}
	return Failed
}

// failed is the refusal for a failure of the store or the broker.
func failed(ctx context.Context, err error) *Refusal {
	if ctx.Err() != nil {
		return &Refusal{Reason: ShuttingDown, Err: err}
	}
	return &Refusal{Reason: Failed, Err: err}
}

// Conn is one connection on its way in, and then admitted: its slots under
// the caps, its user's session, its feed of the user's events and the hold
// on its session. Its methods other than Observe and Release are for the
// goroutine that admits it, in order.
type Conn struct {
	a           *Admitter
	feed        *social.Feed
	hold        *social.Hold
	releaseAddr func()
	releaseUser func()
	userID      int64
	sessionID   int64
	start       int64

	mu   sync.Mutex // guards the fields below, releaseAddr and hold
	open bool       // Open has taken the feed, the hold and the user's slot; Release has not
	// Before the hold exists, the session events it must see wait here:
	// HoldSession may read the session just before a refresh commits.
	revoked   bool
	refreshed int64 // the latest refresh's ExpiresAt, in Unix nanoseconds
}

// Arrive takes a slot for a connection from the client address addr (a
// limit.Address). It refuses with TooManyForAddress when the address holds
// too many.
func (a *Admitter) Arrive(addr string) (*Conn, error) {
	release, ok := a.cfg.PerAddress.Acquire(addr)
	if !ok {
		a.cfg.Metrics.SocketRefused(a.cfg.Transport, "per_address")
		return nil, &Refusal{Reason: TooManyForAddress}
	}
	return &Conn{a: a, releaseAddr: release}, nil
}

// Credential is what a client presents to authenticate.
type Credential struct {
	value string
	kind  uint8
}

const (
	credToken = iota + 1
	credTicket
	credEither
)

// Token is an access token.
func Token(t string) Credential { return Credential{value: t, kind: credToken} }

// Ticket is a one-time socket ticket, used up by Authenticate.
func Ticket(t string) Credential { return Credential{value: t, kind: credTicket} }

// TokenOrTicket is a ticket if it looks like one (social.IsTicket), else
// an access token.
func TokenOrTicket(v string) Credential { return Credential{value: v, kind: credEither} }

// Authenticate checks cred and returns who it is. It refuses with
// BadCredential, ShuttingDown or Failed.
func (c *Conn) Authenticate(ctx context.Context, cred Credential) (social.Auth, error) {
	svc := c.a.cfg.Service
	var a social.Auth
	var err error
	switch cred.kind {
	case credTicket:
		a, err = svc.AuthenticateTicket(ctx, cred.value)
	case credToken:
		a, err = svc.Authenticate(ctx, cred.value)
	default:
		a, err = svc.AuthenticateSocket(ctx, cred.value)
	}
	switch {
	case social.ErrorCode(err) == social.CodeUnauthenticated:
		return social.Auth{}, &Refusal{Reason: BadCredential, Err: err}
	case err != nil:
		return social.Auth{}, failed(ctx, fmt.Errorf("authenticate: %w", err))
	}
	c.userID, c.sessionID = a.User.ID, a.SessionID
	return a, nil
}

// UserID returns the authenticated user's ID, or 0.
func (c *Conn) UserID() int64 { return c.userID }

// Options says how an authenticated connection starts.
type Options struct {
	// After is the cursor the client resumes from: the feed starts after
	// that change (0: from the first). Nil starts with the next change.
	After *int64
	// Cursor, with After nil, reads the cursor of the user's newest change
	// (0 for none) for Start: for a transport whose streams start later
	// than the connection, from where the connection started.
	Cursor bool
	// OnEvent and OnEnded get the feed's events and its end by the broker
	// (see social.Feed.SetFunc, whose rules they follow).
	OnEvent func(social.Event)
	OnEnded func()
	// Expired is called, on a goroutine of its own, when the session
	// expires (see social.Service.HoldSession).
	Expired func()
}

// Open takes the user's slot, subscribes to the user's events from the
// start cursor and holds the session. It refuses with TooManyForUser,
// LoggedOut, ShuttingDown or Failed, having released what it took. Call it
// once, after Authenticate.
func (c *Conn) Open(ctx context.Context, opt Options) error {
	release, ok := c.a.cfg.PerUser.Acquire(limit.UserKey(c.userID))
	if !ok {
		c.a.cfg.Metrics.SocketRefused(c.a.cfg.Transport, "per_user")
		return &Refusal{Reason: TooManyForUser}
	}
	svc := c.a.cfg.Service
	feed, err := svc.OpenFeed(ctx, c.userID, opt.After)
	if err != nil {
		release()
		return failed(ctx, err)
	}
	c.feed = feed // for OnEvent
	fail := func(r *Refusal) error {
		feed.Close()
		release()
		return r
	}
	switch {
	case opt.After != nil:
		c.start = *opt.After
	case opt.Cursor:
		if c.start, err = feed.Cursor(ctx); err != nil {
			return fail(failed(ctx, err))
		}
	}
	if err := feed.SetFunc(opt.OnEvent, opt.OnEnded); err != nil {
		if errors.Is(err, social.ErrBrokerClosed) {
			return fail(&Refusal{Reason: ShuttingDown, Err: err})
		}
		return fail(&Refusal{Reason: Failed, Err: err})
	}
	// Now that the feed hears of every end and refresh of the session,
	// check that it did not end before.
	hold, err := svc.HoldSession(ctx, social.Auth{SessionID: c.sessionID}, opt.Expired)
	switch {
	case social.ErrorCode(err) == social.CodeUnauthenticated:
		return fail(&Refusal{Reason: LoggedOut, Err: err})
	case err != nil:
		return fail(failed(ctx, fmt.Errorf("hold the session: %w", err)))
	}
	c.mu.Lock()
	c.hold, c.releaseUser, c.open = hold, release, true
	if c.refreshed != 0 {
		hold.Observe(social.Event{Kind: social.EventRefresh, SessionID: c.sessionID, ExpiresAt: time.Unix(0, c.refreshed)})
	}
	c.mu.Unlock()
	return nil
}

// Feed returns the feed Open opened: the connection's stream of its user's
// events, which its OnEvent gets. It is set before OnEvent is first called.
func (c *Conn) Feed() *social.Feed { return c.feed }

// Hold returns the hold on the session that Open took.
func (c *Conn) Hold() *social.Hold { return c.hold }

// Start returns the cursor the connection starts from: Options.After, or
// with Options.Cursor the user's newest change when it opened.
func (c *Conn) Start() int64 { return c.start }

// Observe hands the connection one of its user's events, from its OnEvent
// or later: it reports whether the event ends the connection's session
// (EventRevoke), and moves the expiry on for an EventRefresh. It may be
// called before Open returns, and never blocks.
func (c *Conn) Observe(ev social.Event) (ended bool) {
	if ev.SessionID != c.sessionID || (ev.Kind != social.EventRevoke && ev.Kind != social.EventRefresh) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.hold != nil:
		return c.hold.Observe(ev)
	case ev.Kind == social.EventRevoke:
		c.revoked = true
	case ev.ExpiresAt.UnixNano() > c.refreshed:
		c.refreshed = ev.ExpiresAt.UnixNano()
	}
	return c.revoked
}

// Release gives back everything the connection holds: its slots, its feed
// and the timer of its session. It may be called more than once, from any
// goroutine (not from OnEvent or OnEnded); a call while Open runs leaves
// what Open takes to the next.
func (c *Conn) Release() {
	c.mu.Lock()
	addr, open := c.releaseAddr, c.open
	c.releaseAddr, c.open = nil, false
	c.mu.Unlock()
	if addr != nil {
		addr()
	}
	if open {
		c.hold.Stop()
		c.feed.Close()
		c.releaseUser()
	}
}

// ParseCursor parses a cursor a client resumes from (Options.After): a
// non-negative decimal integer, digits only.
func ParseCursor(v string) (int64, bool) {
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}
