package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/sqlite"
	"github.com/pulse-social/pulse/internal/storetest"
)

// MustOpen opens a Store on dsn and closes it when the test ends.
func MustOpen(tb testing.TB, dsn string) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), dsn)
	if err != nil {
		tb.Fatalf("Open(%q): %v", dsn, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// MustOpenRaw opens the database file at path with database/sql (the
// driver is registered by package sqlite) and closes it when the test ends.
func MustOpenRaw(tb testing.TB, path string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatalf("sql.Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	t.Run("Memory", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) social.Store { return MustOpen(t, ":memory:") })
	})
	t.Run("File", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) social.Store {
			return MustOpen(t, filepath.Join(t.TempDir(), "pulse.db"))
		})
	})
}

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn, want string
	}{
		{"data/pulse.db", "data/pulse.db"},
		{"/var/lib/pulse/pulse.db", "/var/lib/pulse/pulse.db"},
		{"pulse.db", "pulse.db"},
		{"sqlite://data/pulse.db", "data/pulse.db"},
		{"sqlite://./pulse.db", "./pulse.db"},
		{"sqlite:///var/lib/pulse/pulse.db", "/var/lib/pulse/pulse.db"},
		{"sqlite:data/pulse.db", "data/pulse.db"},
		{"sqlite:/var/lib/pulse/pulse.db", "/var/lib/pulse/pulse.db"},
		{":memory:", ":memory:"},
		{"sqlite://:memory:", ":memory:"},
		{"sqlite::memory:", ":memory:"},
		{"my data/pulse?.db", "my data/pulse?.db"},
	} {
		got, err := sqlite.ParseDSN(tc.dsn)
		if err != nil || got != tc.want {
			t.Errorf("ParseDSN(%q) = %q, %v; want %q", tc.dsn, got, err, tc.want)
		}
	}
	for _, dsn := range []string{"", "sqlite://", "sqlite:", "postgres://localhost/pulse", "file://pulse.db"} {
		if got, err := sqlite.ParseDSN(dsn); err == nil {
			t.Errorf("ParseDSN(%q) = %q, want an error", dsn, got)
		}
	}
}

// migrations returns the rows of schema_migrations.
func migrations(tb testing.TB, db *sql.DB) []string {
	tb.Helper()
	rows, err := db.QueryContext(tb.Context(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	if err != nil {
		tb.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v, at int64
		var name string
		if err := rows.Scan(&v, &name, &at); err != nil {
			tb.Fatalf("read schema_migrations: %v", err)
		}
		out = append(out, fmt.Sprintf("%d %s %d", v, name, at))
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("read schema_migrations: %v", err)
	}
	return out
}

func TestOpen(t *testing.T) {
	t.Run("Reopen", func(t *testing.T) {
		// The parent directories do not exist yet.
		path := filepath.Join(t.TempDir(), "a", "b", "pulse.db")
		dsns := []string{path, "sqlite://" + path, "sqlite:" + path}
		for i, dsn := range dsns {
			s, err := sqlite.Open(t.Context(), dsn)
			if err != nil {
				t.Fatalf("Open(%q): %v", dsn, err)
			}
			err = s.Update(t.Context(), func(tx social.Tx) error {
				_, err := tx.CreateUser(t.Context(), social.User{Username: fmt.Sprintf("user%d", i), CreatedAt: time.Now()}, []byte("hash"))
				return err
			})
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		before := migrations(t, MustOpenRaw(t, path))
		if len(before) == 0 {
			t.Fatalf("schema_migrations is empty")
		}
		s := MustOpen(t, path)
		for i := range dsns {
			name := fmt.Sprintf("user%d", i)
			if _, err := s.UserByUsername(t.Context(), name); err != nil {
				t.Fatalf("UserByUsername(%q) after reopening: %v", name, err)
			}
		}
		if after := migrations(t, MustOpenRaw(t, path)); !slices.Equal(after, before) {
			t.Fatalf("schema_migrations after reopening = %q, want %q", after, before)
		}
	})

	t.Run("WAL", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "pulse.db")
		MustOpen(t, path)
		var mode string
		if err := MustOpenRaw(t, path).QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatalf("PRAGMA journal_mode: %v", err)
		}
		if mode != "wal" {
			t.Fatalf("journal_mode = %q, want wal", mode)
		}
	})

	t.Run("BadDSN", func(t *testing.T) {
		if s, err := sqlite.Open(t.Context(), "postgres://localhost/pulse"); err == nil {
			s.Close()
			t.Fatalf("Open of a postgres URL succeeded")
		}
	})

	t.Run("NotADatabase", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "pulse.db")
		if err := os.WriteFile(path, []byte("this is not a database, but it is long enough to look like a header of one"), 0o600); err != nil {
			t.Fatal(err)
		}
		if s, err := sqlite.Open(t.Context(), path); err == nil {
			s.Close()
			t.Fatalf("Open of a file that is not a database succeeded")
		}
	})
}

func TestMigrate(t *testing.T) {
	db := MustOpenRaw(t, filepath.Join(t.TempDir(), "m.db"))
	v1 := fstest.MapFS{"0001_a.sql": {Data: []byte(`CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);`)}}
	v2 := fstest.MapFS{
		"0001_a.sql": v1["0001_a.sql"],
		"0002_b.sql": {Data: []byte(`CREATE TABLE b (y INTEGER);`)},
	}
	for _, step := range []struct {
		fsys fstest.MapFS
		want []int
	}{{v1, []int{1}}, {v1, nil}, {v2, []int{2}}, {v2, nil}} {
		applied, err := sqlite.Migrate(t.Context(), db, step.fsys)
		if err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		if !slices.Equal(applied, step.want) {
			t.Fatalf("Migrate applied %v, want %v", applied, step.want)
		}
	}
	var n int
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM a JOIN b`).Scan(&n); err != nil {
		t.Fatalf("tables a and b: %v", err)
	}
	if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM a`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("table a has %d rows (%v), want 1: migration 0001 ran again", n, err)
	}

	t.Run("FailureRollsBack", func(t *testing.T) {
		bad := fstest.MapFS{
			"0001_a.sql": v1["0001_a.sql"],
			"0002_b.sql": v2["0002_b.sql"],
			"0003_c.sql": {Data: []byte(`CREATE TABLE c (z INTEGER); CREATE TABLE a (x INTEGER);`)},
		}
		if _, err := sqlite.Migrate(t.Context(), db, bad); err == nil {
			t.Fatalf("Migrate of a failing migration succeeded")
		}
		if _, err := db.ExecContext(t.Context(), `SELECT * FROM c`); err == nil {
			t.Fatalf("table c exists after its migration failed")
		}
		if got := migrations(t, db); len(got) != 2 {
			t.Fatalf("schema_migrations = %q, want versions 1 and 2", got)
		}
	})

	t.Run("BadNames", func(t *testing.T) {
		for _, fsys := range []fstest.MapFS{
			{"init.sql": {}},
			{"0_init.sql": {}},
			{"0001_a.sql": {}, "01_b.sql": {}},
		} {
			if _, err := sqlite.Migrate(t.Context(), db, fsys); err == nil {
				t.Errorf("Migrate(%v) succeeded", slices.Sorted(maps.Keys(fsys)))
			}
		}
	})
}

func TestForeignKeys(t *testing.T) {
	for _, dsn := range []string{":memory:", filepath.Join(t.TempDir(), "pulse.db")} {
		s := MustOpen(t, dsn)
		err := s.Update(t.Context(), func(tx social.Tx) error {
			_, err := tx.CreatePost(t.Context(), social.Post{AuthorID: 42, Body: "nobody's", CreatedAt: time.Now()})
			return err
		})
		if err == nil {
			t.Fatalf("%s: a post by an unknown author was stored", dsn)
		}
	}
}

func TestAddNotificationsUnknownRecipient(t *testing.T) {
	s := MustOpen(t, ":memory:")
	u := storetest.MustCreateUser(t, s, "ann")
	err := s.Update(t.Context(), func(tx social.Tx) error {
		_, err := storetest.AddNotifications(t.Context(), tx, []social.Notification{
			{RecipientID: u.ID, Message: "m", Action: social.ActionFollowing, ActionID: 1, ByUser: "bob", CreatedAt: time.Now()},
			{RecipientID: u.ID + 1, Message: "m", Action: social.ActionFollowing, ActionID: 1, ByUser: "bob", CreatedAt: time.Now()},
		})
		return err
	})
	if social.ErrorCode(err) != social.CodeNotFound {
		t.Fatalf("AddNotifications for an unknown recipient = %v, want NOT_FOUND", err)
	}
}

// TestReadsDoNotWaitForWriter reads through the read pool while a write
// transaction is open.
func TestReadsDoNotWaitForWriter(t *testing.T) {
	s := MustOpen(t, filepath.Join(t.TempDir(), "pulse.db"))
	u := storetest.MustCreateUser(t, s, "ann")
	started, release := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.Update(t.Context(), func(tx social.Tx) error {
			if _, err := tx.CreatePost(t.Context(), social.Post{AuthorID: u.ID, Body: "x", CreatedAt: time.Now()}); err != nil {
				return err
			}
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := s.UserByID(ctx, u.ID)
	close(release)
	if err != nil {
		t.Fatalf("UserByID during a write transaction: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func TestUpdateReturnsFnError(t *testing.T) {
	s := MustOpen(t, ":memory:")
	errFail := errors.New("fail")
	if err := s.Update(t.Context(), func(social.Tx) error { return errFail }); err != errFail {
		t.Fatalf("Update = %v, want fn's error itself", err)
	}
}

// The store's benchmarks, on a file database; see storetest.

func openBench(b *testing.B) *sqlite.Store {
	return MustOpen(b, filepath.Join(b.TempDir(), "bench.db"))
}

func BenchmarkAddNotifications10k(b *testing.B) {
	storetest.BenchmarkAddNotifications10k(b, openBench(b))
}

func BenchmarkCreatePost(b *testing.B) { storetest.BenchmarkCreatePost(b, openBench(b)) }

// BenchmarkCreatePostParallel: concurrent Updates commit in groups.
func BenchmarkCreatePostParallel(b *testing.B) {
	storetest.BenchmarkCreatePostParallel(b, openBench(b))
}

// TestMigrateInboxChanges: migration 0004 gives every notification stored
// before it an ADDED change at its id and Seq, with unread counts rebuilt
// from today's read flags, and the sequence goes on from there.
func TestMigrateInboxChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db := MustOpenRaw(t, path)
	old := fstest.MapFS{}
	for _, name := range []string{"0001_init.sql", "0002_drop_notifications_recipient_id.sql", "0003_drop_users_notification_seq.sql"} {
		b, err := os.ReadFile(filepath.Join("migrations", name))
		if err != nil {
			t.Fatal(err)
		}
		old[name] = &fstest.MapFile{Data: b}
	}
	if _, err := sqlite.Migrate(t.Context(), db, old); err != nil {
		t.Fatal(err)
	}
	// ann has notifications 1, 3 (read) and 4; bob has 2.
	for _, q := range []string{
		`INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'ann', x'00', 0), (2, 'bob', x'00', 0)`,
		`INSERT INTO notifications (id, recipient_id, seq, message, action, action_id, by_user, read, created_at) VALUES
			(1, 1, 1, 'bob started following you', 'FOLLOWING', 1, 'bob', 0, 0),
			(2, 2, 1, 'ann started following you', 'FOLLOWING', 2, 'ann', 0, 0),
			(3, 1, 2, 'bob created a new post', 'POST', 1, 'bob', 1, 0),
			(4, 1, 3, 'bob created a new post', 'POST', 2, 'bob', 0, 0)`,
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s := MustOpen(t, path)
	storetest.WantMigratedChanges(t, s)
}
