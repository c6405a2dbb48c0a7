package social

import "context"

type authKey struct{}

type auth struct {
	user      User
	tokenHash []byte
}

// WithAuth returns a context carrying the authenticated user and the hash of
// the access token that authenticated it.
func WithAuth(ctx context.Context, u User, tokenHash []byte) context.Context {
	return context.WithValue(ctx, authKey{}, auth{user: u, tokenHash: tokenHash})
}

// UserFrom returns the authenticated user of ctx, if any.
func UserFrom(ctx context.Context) (User, bool) {
	a, ok := ctx.Value(authKey{}).(auth)
	return a.user, ok
}

// TokenHashFrom returns the hash of the access token that authenticated ctx,
// or nil.
func TokenHashFrom(ctx context.Context) []byte {
	a, _ := ctx.Value(authKey{}).(auth)
	return a.tokenHash
}

// RequireUser returns the authenticated user of ctx, or CodeUnauthenticated.
func RequireUser(ctx context.Context) (User, error) {
	u, ok := UserFrom(ctx)
	if !ok {
		return User{}, Errorf(CodeUnauthenticated, "sign in first: send an access token")
	}
	return u, nil
}
