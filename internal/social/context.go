package social

import (
	"context"
	"time"
)

// Auth is an authenticated caller: its user, the hash of the access token
// that proved it, and when that token's session expires.
type Auth struct {
	User      User
	TokenHash []byte
	ExpiresAt time.Time
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

// TokenHashFrom returns the hash of the access token that authenticated ctx,
// or nil.
func TokenHashFrom(ctx context.Context) []byte {
	a, _ := AuthFrom(ctx)
	return a.TokenHash
}

// RequireUser returns the authenticated user of ctx, or CodeUnauthenticated.
func RequireUser(ctx context.Context) (User, error) {
	u, ok := UserFrom(ctx)
	if !ok {
		return User{}, Errorf(CodeUnauthenticated, "sign in first: send an access token")
	}
	return u, nil
}
