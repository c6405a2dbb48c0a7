package social

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// Auth is an authenticated caller: its user, the hash of the access token
// that proved it (nil for a socket ticket), its session, and when the
// credential expires.
type Auth struct {
	User      User
	TokenHash []byte
	SessionID int64
	ExpiresAt time.Time
	// Hold is set for a connection that holds its session (see
	// HoldSession): it expires with the session, which refreshes move on.
	Hold *Hold
}

type authKey struct{}

// WithAuth returns a context carrying the authenticated caller.
func WithAuth(ctx context.Context, a Auth) context.Context {
	return context.WithValue(ctx, authKey{}, a)
}

// AuthFrom returns the authenticated caller of ctx, if any.
func AuthFrom(ctx context.Context) (Auth, bool) {
	a, ok := ctx.Value(authKey{}).(Auth)
	return a, ok
}

// UserFrom returns the authenticated user of ctx, if any.
func UserFrom(ctx context.Context) (User, bool) {
	a, ok := AuthFrom(ctx)
	return a.User, ok
}

var errSignIn = Errorf(CodeUnauthenticated, "sign in first: send an access token")

// RequireUser returns the authenticated user of ctx, or CodeUnauthenticated.
func RequireUser(ctx context.Context) (User, error) {
	u, ok := UserFrom(ctx)
	if !ok {
		return User{}, errSignIn
	}
	return u, nil
}

type userAgentKey struct{}

// WithUserAgent returns a context carrying the User-Agent of the request,
// which a login records with its session.
func WithUserAgent(ctx context.Context, ua string) context.Context {
	return context.WithValue(ctx, userAgentKey{}, ua)
}

// UserAgentMaxLen is how many characters of a User-Agent a session keeps.
const UserAgentMaxLen = 200

// userAgentFrom returns ctx's User-Agent, valid UTF-8 and cut to
// UserAgentMaxLen characters.
func userAgentFrom(ctx context.Context) string {
	ua, _ := ctx.Value(userAgentKey{}).(string)
	ua = strings.ToValidUTF8(ua, "\uFFFD")
	if utf8.RuneCountInString(ua) > UserAgentMaxLen {
		ua = string([]rune(ua)[:UserAgentMaxLen])
	}
	return ua
}
