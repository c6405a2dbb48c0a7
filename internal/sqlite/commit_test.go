package sqlite_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/sqlite"
	"github.com/pulse-social/pulse/internal/storetest"
)

// holdWriter starts an Update that holds the writer until release is
// called, so that the Updates started meanwhile queue up and then run as
// one group.
func holdWriter(t *testing.T, s *sqlite.Store) (release func()) {
	t.Helper()
	started, proceed := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Update(context.Background(), func(social.Tx) error {
			close(started)
			<-proceed
			return nil
		})
	}()
	<-started
	return func() {
		close(proceed)
		if err := <-done; err != nil {
			t.Errorf("holding Update: %v", err)
		}
	}
}

// waitQueued waits until n Updates wait for the committer.
func waitQueued(t *testing.T, s *sqlite.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.Queued() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d Updates queued, want %d", s.Queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommit queues Updates behind a held writer, so that they run as
// one group, half of them failing after they wrote: each caller gets its
// own outcome, the failed ones leave nothing behind (not even a used Seq),
// and the others are all kept.
func TestGroupCommit(t *testing.T) {
	for _, dsn := range []string{":memory:", filepath.Join(t.TempDir(), "group.db")} {
		t.Run(filepath.Base(dsn), func(t *testing.T) {
			s := MustOpen(t, dsn)
			u := storetest.MustCreateUser(t, s, "ada")
			const n = 20
			errFail := errors.New("this action fails")
			release := holdWriter(t, s)
			var wg sync.WaitGroup
			errs := make([]error, n)
			txs := make([]social.Tx, n)
			for i := range n {
				wg.Go(func() {
					errs[i] = s.Update(t.Context(), func(tx social.Tx) error {
						txs[i] = tx
						p, err := tx.CreatePost(t.Context(), social.Post{AuthorID: u.ID, Body: fmt.Sprint(i), CreatedAt: time.Now()})
						if err != nil {
							return err
						}
						_, err = storetest.AddNotifications(t.Context(), tx, []social.Notification{{
							RecipientID: u.ID, Message: "m", Action: social.ActionPost, ActionID: p.ID, ByUser: "bob", CreatedAt: time.Now(),
						}})
						if err != nil {
							return err
						}
						if i%2 == 1 {
							return errFail
						}
						return nil
					})
				})
			}
			waitQueued(t, s, n)
			release()
			wg.Wait()

			for i := 1; i < n; i++ {
				if txs[i] != txs[0] {
					t.Fatalf("the queued Updates ran in more than one transaction")
				}
			}
			for i, err := range errs {
				var want error
				if i%2 == 1 {
					want = errFail
				}
				if err != want {
					t.Errorf("Update %d: %v, want %v", i, err, want)
				}
			}
			ns, err := storetest.AddedAfterSeq(t.Context(), s, u.ID, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(ns) != n/2 {
				t.Fatalf("%d notifications kept, want %d", len(ns), n/2)
			}
			for i, n := range ns {
				if n.Seq != int64(i+1) {
					t.Errorf("notification %d has Seq %d, want %d: a failed action used a Seq", i, n.Seq, i+1)
				}
				p, err := s.PostByID(t.Context(), n.ActionID)
				if err != nil {
					t.Fatalf("post of notification %d: %v", i, err)
				}
				var body int
				if _, err := fmt.Sscan(p.Body, &body); err != nil || body%2 != 0 {
					t.Errorf("post %q was kept, but its Update failed", p.Body)
				}
			}
		})
	}
}

// TestGroupCommitPanicAndConflict: in one group, a function that panics
// panics in its own caller's goroutine, a unique violation is that
// caller's CodeConflict, and the others commit.
func TestGroupCommitPanicAndConflict(t *testing.T) {
	s := MustOpen(t, filepath.Join(t.TempDir(), "group.db"))
	ada := storetest.MustCreateUser(t, s, "ada")
	release := holdWriter(t, s)
	var wg sync.WaitGroup
	var panicValue any
	var conflictErr, okErr error
	wg.Go(func() {
		defer func() { panicValue = recover() }()
		_ = s.Update(t.Context(), func(tx social.Tx) error {
			if _, err := tx.CreatePost(t.Context(), social.Post{AuthorID: ada.ID, Body: "panic", CreatedAt: time.Now()}); err != nil {
				return err
			}
			panic("boom")
		})
	})
	waitQueued(t, s, 1)
	wg.Go(func() {
		conflictErr = s.Update(t.Context(), func(tx social.Tx) error {
			_, err := tx.CreateUser(t.Context(), social.User{Username: "ADA", CreatedAt: time.Now()}, []byte("h"))
			return err
		})
	})
	waitQueued(t, s, 2)
	wg.Go(func() {
		okErr = s.Update(t.Context(), func(tx social.Tx) error {
			_, err := tx.CreatePost(t.Context(), social.Post{AuthorID: ada.ID, Body: "kept", CreatedAt: time.Now()})
			return err
		})
	})
	waitQueued(t, s, 3)
	release()
	wg.Wait()

	if panicValue == nil || !strings.Contains(fmt.Sprint(panicValue), "boom") {
		t.Errorf("the panicking Update's caller recovered %v, want the panic", panicValue)
	}
	if social.ErrorCode(conflictErr) != social.CodeConflict {
		t.Errorf("duplicate username: %v, want CodeConflict", conflictErr)
	}
	if okErr != nil {
		t.Errorf("the good Update: %v", okErr)
	}
	for id, want := range map[int64]string{1: "kept"} {
		p, err := s.PostByID(t.Context(), id)
		if err != nil || p.Body != want {
			t.Errorf("post %d: %+v, %v; want %q (the panicking Update's post rolled back)", id, p, err, want)
		}
	}
}

// TestUpdateSkipsEndedContext: a function whose context ended while it
// waited is not run, and its caller gets the context's error.
func TestUpdateSkipsEndedContext(t *testing.T) {
	s := MustOpen(t, filepath.Join(t.TempDir(), "ctx.db"))
	release := holdWriter(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	ran := false
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, func(social.Tx) error {
			ran = true
			return nil
		})
	}()
	waitQueued(t, s, 1)
	cancel()
	release()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Update: %v, want context.Canceled", err)
	}
	if ran {
		t.Error("the function ran after its context ended")
	}
}

// TestGroupCommitCancelledMidway: a caller whose context ends while its
// function runs in a group still gets the group's outcome: its function
// runs to the end (the writer's statements do not take the caller's
// context), commits with the others, and Update returns nil.
func TestGroupCommitCancelledMidway(t *testing.T) {
	s := MustOpen(t, filepath.Join(t.TempDir(), "cancel.db"))
	ada := storetest.MustCreateUser(t, s, "ada")
	post := func(ctx context.Context, tx social.Tx, body string) error {
		_, err := tx.CreatePost(ctx, social.Post{AuthorID: ada.ID, Body: body, CreatedAt: time.Now()})
		return err
	}
	release := holdWriter(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	var cancelledErr, otherErr error
	wg.Go(func() {
		cancelledErr = s.Update(ctx, func(tx social.Tx) error {
			if err := post(ctx, tx, "before"); err != nil {
				return err
			}
			cancel()
			return post(ctx, tx, "after")
		})
	})
	waitQueued(t, s, 1)
	wg.Go(func() {
		otherErr = s.Update(t.Context(), func(tx social.Tx) error { return post(t.Context(), tx, "other") })
	})
	waitQueued(t, s, 2)
	release()
	wg.Wait()

	if cancelledErr != nil || otherErr != nil {
		t.Fatalf("Updates: %v, %v; want nil, nil", cancelledErr, otherErr)
	}
	var bodies []string
	for id := int64(1); id <= 3; id++ {
		p, err := s.PostByID(t.Context(), id)
		if err != nil {
			t.Fatalf("post %d: %v", id, err)
		}
		bodies = append(bodies, p.Body)
	}
	if want := []string{"before", "after", "other"}; !slices.Equal(bodies, want) {
		t.Errorf("posts %q, want %q", bodies, want)
	}
}

// TestUpdateAfterClose: Updates queued when the store closes, and those
// started after, fail rather than hang.
func TestUpdateAfterClose(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "closed.db"))
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, s)
	queued := make(chan error, 1)
	go func() { queued <- s.Update(context.Background(), func(social.Tx) error { return nil }) }()
	waitQueued(t, s, 1)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	release()
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	// Queued before Close: it ran with the held Update's group, or failed.
	<-queued
	if err := s.Update(context.Background(), func(social.Tx) error { return nil }); err == nil {
		t.Error("Update after Close succeeded")
	}
}

// TestCheckpointer: commits do not checkpoint (wal_autocheckpoint is off),
// yet what they wrote reaches the database file while the store is open.
func TestCheckpointer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ckpt.db")
	s := MustOpen(t, path)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	storetest.MustUsers(t, s, 20_000) // a few MiB of pages, all through the WAL
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > before.Size()+1<<20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the database file is %d bytes, %d before the writes: nothing was checkpointed", st.Size(), before.Size())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWALStartsOver: under a steady stream of commits, which never leaves
// the WAL fully copied between two of them, the WAL still starts over
// whenever it passes its limit, instead of growing with every page written.
func TestWALStartsOver(t *testing.T) {
	const (
		frames   = 256      // the limit: 1 MiB of 4 KiB pages
		maxBytes = 32 << 20 // past it by what a few checkpoint intervals write
		restarts = 5
	)
	path := filepath.Join(t.TempDir(), "wal.db")
	s, err := sqlite.OpenFile(t.Context(), path, frames)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	writeErr := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				err := s.Update(ctx, func(tx social.Tx) error {
					_, err := tx.CreateUser(ctx, social.User{Username: fmt.Sprintf("w%d-%d", w, i), CreatedAt: time.Now()}, []byte("hash"))
					return err
				})
				if err != nil && ctx.Err() == nil {
					writeErr <- err
					return
				}
				// A steady stream, not a burst: about 4,000 small
				// transactions a second.
				time.Sleep(time.Millisecond)
			}
		})
	}
	defer wg.Wait()
	defer cancel()

	// The WAL header's checkpoint sequence number (bytes 12-15) grows by
	// one each time the WAL starts over.
	first, seen := uint32(0), -1
	for seen < restarts {
		select {
		case err := <-writeErr:
			t.Fatal(err)
		case <-time.After(5 * time.Millisecond):
		}
		f, err := os.Open(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		var hdr [16]byte
		_, err = io.ReadFull(f, hdr[:])
		st, statErr := f.Stat()
		_ = f.Close()
		if err != nil || statErr != nil {
			continue // not written yet
		}
		if st.Size() > maxBytes {
			t.Fatalf("the WAL is %d bytes after %d restarts (limit %d frames)", st.Size(), max(seen, 0), frames)
		}
		seq := binary.BigEndian.Uint32(hdr[12:])
		if seen < 0 {
			first = seq
		}
		seen = int(seq - first)
	}
}
