package social

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// newToken returns a fresh access token (32 random bytes, base64url) and the
// SHA-256 hash under which it is stored.
func newToken() (token string, hash []byte) {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	token = base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token)
}

// HashToken returns the SHA-256 of an access token, the form in which
// sessions are stored and revocations are published.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}
