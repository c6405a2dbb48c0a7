package main

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/pulse-social/pulse/internal/social"
)

// account is a user created by the set-up, with a live access token.
type account struct {
	id    int64
	name  string
	token string
}

// population is everything the set-up created in one database.
type population struct {
	// users are the connected users: users[i] holds one socket and owns
	// the post posts[i], the target of W3's reactions.
	users []account
	posts []int64
	// order is a random permutation of the users' indexes: W3 reacts to
	// their posts in this order.
	order []int
	// authors[n] is followed by users[:n]; W2 has it post. authors[len(users)]
	// always exists: its post reaches every socket (the liveness probe).
	authors map[int]account
	// reactors react in W3, each to each post at most once.
	reactors []account
}

// populationSpec says how many of each the set-up creates.
type populationSpec struct {
	users    int
	w2Sizes  []int
	reactors int
}

// populate creates the spec's users, sessions, follows and posts directly
// in the store, in a few transactions (nothing it creates notifies
// anyone), then closes the store.
func populate(ctx context.Context, store social.Store, spec populationSpec) (_ *population, err error) {
	defer func() {
		if cerr := store.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	sizes := slices.Clone(spec.w2Sizes)
	if !slices.Contains(sizes, spec.users) {
		sizes = append(sizes, spec.users)
	}
	for _, n := range sizes {
		if n > spec.users {
			return nil, fmt.Errorf("W2 size %d is more than the %d connected users", n, spec.users)
		}
	}

	now := time.Now().UTC()
	expires := now.Add(7 * 24 * time.Hour)
	// Nobody logs in with a password: any bytes do as the hash.
	hash := []byte("$2a$10$bench.bench.bench.bench.bench.bench.bench.bench.bench")

	p := &population{authors: make(map[int]account)}
	create := func(tx social.Tx, name string) (account, error) {
		u, err := tx.CreateUser(ctx, social.User{Username: name, CreatedAt: now}, hash)
		if err != nil {
			return account{}, fmt.Errorf("create user %s: %w", name, err)
		}
		tok := newToken()
		s := social.Session{TokenHash: social.HashToken(tok), UserID: u.ID, CreatedAt: now, ExpiresAt: expires}
		if err := tx.CreateSession(ctx, s); err != nil {
			return account{}, fmt.Errorf("create session: %w", err)
		}
		return account{id: u.ID, name: name, token: tok}, nil
	}

	// Update may run fn again after a lost race, so each fn starts afresh.
	err = store.Update(ctx, func(tx social.Tx) error {
		p.users, p.reactors = nil, nil
		clear(p.authors)
		for i := range spec.users {
			a, err := create(tx, fmt.Sprintf("u%05d", i))
			if err != nil {
				return err
			}
			p.users = append(p.users, a)
		}
		for _, n := range sizes {
			a, err := create(tx, fmt.Sprintf("author%d", n))
			if err != nil {
				return err
			}
			p.authors[n] = a
		}
		for i := range spec.reactors {
			a, err := create(tx, fmt.Sprintf("r%04d", i))
			if err != nil {
				return err
			}
			p.reactors = append(p.reactors, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	err = store.Update(ctx, func(tx social.Tx) error {
		for _, n := range sizes {
			author := p.authors[n]
			for _, u := range p.users[:n] {
				f := social.Follow{FollowerID: u.id, FolloweeID: author.id, CreatedAt: now}
				if _, err := tx.CreateFollow(ctx, f); err != nil {
					return fmt.Errorf("create follow: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	err = store.Update(ctx, func(tx social.Tx) error {
		p.posts = p.posts[:0]
		for _, u := range p.users {
			post, err := tx.CreatePost(ctx, social.Post{AuthorID: u.id, Body: "a post to react to", CreatedAt: now})
			if err != nil {
				return fmt.Errorf("create post: %w", err)
			}
			p.posts = append(p.posts, post.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.order = rand.Perm(len(p.users))
	return p, nil
}

// newToken returns an access token as the server makes them: 32 random
// bytes, base64url.
func newToken() string {
	var b [32]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b[:])
}
