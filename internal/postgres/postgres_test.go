package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pulse-social/pulse/internal/postgres"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/storetest"
)

// defaultURL is the test server unless PULSE_TEST_POSTGRES names another.
const defaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// serverURL returns the URL of the PostgreSQL server the tests use.
func serverURL() string {
	if u := os.Getenv("PULSE_TEST_POSTGRES"); u != "" {
		return u
	}
	return defaultURL
}

// reachable connects to the test server once per test binary and returns
// why it could not, or nil.
var reachable = sync.OnceValue(func() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL())
	if err != nil {
		return err
	}
	return conn.Close(ctx)
})

// MustServer returns the test server's URL. When the server is unreachable
// it fails tb if the environment variable CI is set (CI must run these
// tests), and skips tb otherwise.
func MustServer(tb testing.TB) string {
	tb.Helper()
	if err := reachable(); err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("PostgreSQL test server unreachable (CI is set, so this fails): %v", err)
		}
		tb.Skipf("no PostgreSQL server (%v); to run these tests, start PostgreSQL for %s or set PULSE_TEST_POSTGRES to a server's URL", err, defaultURL)
	}
	return serverURL()
}

// MustExec runs one statement on a connection of its own to databaseURL.
// It runs in a context of its own, so that it works in a Cleanup too.
func MustExec(tb testing.TB, databaseURL, sql string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
}

// MustSchema creates an empty schema with a unique name, drops it with
// everything in it when the test ends, and returns a URL of the test
// server whose connections use it (search_path): a fresh, empty database
// as far as a Store can tell, much faster to make than a CREATE DATABASE.
func MustSchema(tb testing.TB) string {
	tb.Helper()
	base := MustServer(tb)
	name := "pulse_test_" + strings.ToLower(rand.Text())
	ident := pgx.Identifier{name}.Sanitize()
	MustExec(tb, base, "CREATE SCHEMA "+ident)
	tb.Cleanup(func() { MustExec(tb, base, "DROP SCHEMA "+ident+" CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("PULSE_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// MustOpen opens a Store on databaseURL and closes it when the test ends.
func MustOpen(tb testing.TB, databaseURL string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(tb.Context(), databaseURL)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// MustConn opens a plain connection to databaseURL and closes it when the
// test ends.
func MustConn(tb testing.TB, databaseURL string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(tb.Context(), databaseURL)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// MustQuery runs a query on conn and returns its rows as values of T.
func MustQuery[T any](tb testing.TB, conn *pgx.Conn, sql string, args ...any) []T {
	tb.Helper()
	rows, err := conn.Query(tb.Context(), sql, args...)
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[T])
	if err != nil {
		tb.Fatalf("%s: %v", sql, err)
	}
	return out
}

func TestStore(t *testing.T) {
	MustServer(t)
	storetest.Run(t, func(t *testing.T) social.Store { return MustOpen(t, MustSchema(t)) })
}

func TestPoolConfig(t *testing.T) {
	const base = "postgres://pulse:secret@db.example.com:5432/pulse"
	cfg, err := postgres.PoolConfig(base)
	if err != nil {
		t.Fatalf("PoolConfig: %v", err)
	}
	if want := int32(max(4, 4*runtime.GOMAXPROCS(0))); cfg.MaxConns != want {
		t.Fatalf("MaxConns = %d, want %d", cfg.MaxConns, want)
	}
	if got := cfg.ConnConfig.RuntimeParams["application_name"]; got != "pulse" {
		t.Fatalf("application_name = %q, want pulse", got)
	}
	cfg, err = postgres.PoolConfig("postgresql://pulse@db.example.com/pulse?pool_max_conns=3&application_name=other")
	if err != nil {
		t.Fatalf("PoolConfig: %v", err)
	}
	if cfg.MaxConns != 3 || cfg.ConnConfig.RuntimeParams["application_name"] != "other" {
		t.Fatalf("MaxConns = %d, application_name = %q; want the URL's 3 and other",
			cfg.MaxConns, cfg.ConnConfig.RuntimeParams["application_name"])
	}
	for _, bad := range []string{
		"", "data/pulse.db", "sqlite://data/pulse.db", "host=localhost dbname=pulse",
		"postgres://pulse:secret@db.example.com/pulse?pool_max_conns=none",
		"postgres://pulse:secret@db.example.com:notaport/pulse",
	} {
		_, err := postgres.PoolConfig(bad)
		if err == nil {
			t.Errorf("PoolConfig(%q) succeeded", bad)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("PoolConfig(%q) = %v: the error shows the password", bad, err)
		}
	}
}

func TestOpen(t *testing.T) {
	MustServer(t)
	t.Run("Reopen", func(t *testing.T) {
		u := MustSchema(t)
		for i := range 2 {
			s, err := postgres.Open(t.Context(), u)
			if err != nil {
				t.Fatalf("Open #%d: %v", i+1, err)
			}
			storetest.MustCreateUser(t, s, fmt.Sprintf("user%d", i))
			for j := range i + 1 {
				if _, err := s.UserByUsername(t.Context(), fmt.Sprintf("user%d", j)); err != nil {
					t.Fatalf("Open #%d: UserByUsername(user%d): %v", i+1, j, err)
				}
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		got := MustQuery[string](t, MustConn(t, u), `SELECT version || ' ' || name FROM schema_migrations ORDER BY version`)
		if want := []string{"1 0001_init.sql", "2 0002_inbox_changes.sql", "10 0010_sessions.sql", "11 0011_notification_groups.sql", "12 0012_append_changes.sql", "13 0013_group_rows.sql", "14 0014_fewer_queries.sql", "15 0015_recipient_checks.sql"}; !slices.Equal(got, want) {
			t.Fatalf("schema_migrations = %q, want %q", got, want)
		}
	})

	t.Run("PostgresqlScheme", func(t *testing.T) {
		u := MustSchema(t)
		s := MustOpen(t, "postgresql://"+strings.TrimPrefix(u, "postgres://"))
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	})

	t.Run("Unreachable", func(t *testing.T) {
		// Port 1 refuses connections; no server is needed.
		s, err := postgres.Open(t.Context(), "postgres://nobody:secret@127.0.0.1:1/pulse?sslmode=disable&connect_timeout=5")
		if err == nil {
			s.Close()
			t.Fatalf("Open of an unreachable server succeeded")
		}
		if strings.Contains(err.Error(), "secret") {
			t.Fatalf("Open = %v: the error shows the password", err)
		}
	})
}

// TestConcurrentOpen opens several Stores on one fresh database at once,
// as several server processes starting together do: the advisory lock
// lets one migrate and the others find the schema done.
func TestConcurrentOpen(t *testing.T) {
	const stores = 4
	u := MustSchema(t)
	start := make(chan struct{})
	errs := make([]error, stores)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Go(func() {
			<-start
			s, err := postgres.Open(t.Context(), u)
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
	}
	got := MustQuery[int32](t, MustConn(t, u), `SELECT version FROM schema_migrations ORDER BY version`)
	if !slices.Equal(got, []int32{1, 2, 10, 11, 12, 13, 14, 15}) {
		t.Fatalf("schema_migrations versions = %v, want [1 2 10 11 12 13 14 15]", got)
	}
}

func TestMigrate(t *testing.T) {
	conn := MustConn(t, MustSchema(t))
	v1 := fstest.MapFS{"0001_a.sql": {Data: []byte(`CREATE TABLE a (x integer); INSERT INTO a VALUES (1);`)}}
	v2 := fstest.MapFS{
		"0001_a.sql": v1["0001_a.sql"],
		"0002_b.sql": {Data: []byte(`CREATE TABLE b (y integer);`)},
	}
	for _, step := range []struct {
		fsys fstest.MapFS
		want []int
	}{{v1, []int{1}}, {v1, nil}, {v2, []int{2}}, {v2, nil}} {
		applied, err := postgres.Migrate(t.Context(), conn, step.fsys)
		if err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		if !slices.Equal(applied, step.want) {
			t.Fatalf("Migrate applied %v, want %v", applied, step.want)
		}
	}
	if got := MustQuery[int32](t, conn, `SELECT x FROM a CROSS JOIN (SELECT count(*) FROM b) b`); !slices.Equal(got, []int32{1}) {
		t.Fatalf("table a holds %v, want [1]: migration 0001 ran again", got)
	}

	t.Run("AllOrNothing", func(t *testing.T) {
		conn := MustConn(t, MustSchema(t))
		bad := fstest.MapFS{
			"0001_a.sql": v1["0001_a.sql"],
			"0002_c.sql": {Data: []byte(`CREATE TABLE c (z integer); CREATE TABLE a (x integer);`)},
		}
		if _, err := postgres.Migrate(t.Context(), conn, bad); err == nil {
			t.Fatalf("Migrate with a failing migration succeeded")
		}
		got := MustQuery[string](t, conn, `SELECT table_name::text FROM information_schema.tables
			WHERE table_schema = current_schema() ORDER BY 1`)
		if len(got) != 0 {
			t.Fatalf("tables %q exist after the migration failed, want none", got)
		}
	})

	t.Run("BadNames", func(t *testing.T) {
		for _, fsys := range []fstest.MapFS{
			{"init.sql": {}},
			{"0_init.sql": {}},
			{"0001_a.sql": {}, "01_b.sql": {}},
		} {
			if _, err := postgres.Migrate(t.Context(), conn, fsys); err == nil {
				t.Errorf("Migrate(%v) succeeded", fsys)
			}
		}
	})
}

// following returns a FOLLOWING notification for recipient.
func following(recipient int64) social.Notification {
	return social.Notification{
		RecipientID: recipient, Message: "Oliver started following you", Action: social.ActionFollowing,
		ActionID: 1, ByUser: "Oliver", CreatedAt: time.Now(),
	}
}

func TestAddNotificationsUnknownRecipient(t *testing.T) {
	s := MustOpen(t, MustSchema(t))
	ann := storetest.MustCreateUser(t, s, "ann")
	for _, in := range [][]social.Notification{
		{following(ann.ID + 1)},                    // one recipient: no lock step
		{following(ann.ID), following(ann.ID + 1)}, // several: locked first
	} {
		err := s.Update(t.Context(), func(tx social.Tx) error {
			_, err := storetest.AddNotifications(t.Context(), tx, in)
			return err
		})
		if social.ErrorCode(err) != social.CodeNotFound {
			t.Fatalf("AddNotifications for an unknown recipient = %v, want NOT_FOUND", err)
		}
		// Even a fn that ignores the error and commits leaves no gap: no
		// counter moves before every recipient is known to exist.
		storetest.MustUpdate(t, s, func(tx social.Tx) error {
			_, err := storetest.AddNotifications(t.Context(), tx, in)
			if social.ErrorCode(err) != social.CodeNotFound {
				t.Errorf("AddNotifications for an unknown recipient = %v, want NOT_FOUND", err)
			}
			return nil
		})
	}
	out := storetest.MustAddNotifications(t, s, following(ann.ID))
	if out[0].Seq != 1 {
		t.Fatalf("Seq after failed AddNotifications = %d, want 1", out[0].Seq)
	}
}

func TestForeignKeys(t *testing.T) {
	s := MustOpen(t, MustSchema(t))
	err := s.Update(t.Context(), func(tx social.Tx) error {
		_, err := tx.CreatePost(t.Context(), social.Post{AuthorID: 42, Body: "nobody's", CreatedAt: time.Now()})
		return err
	})
	if err == nil {
		t.Fatalf("a post by an unknown author was stored")
	}
}

// TestConflictKeepsTransaction checks that a conflict is an error of its
// statement only: the transaction goes on, as in SQLite.
func TestConflictKeepsTransaction(t *testing.T) {
	s := MustOpen(t, MustSchema(t))
	ann := storetest.MustCreateUser(t, s, "ann")
	bob := storetest.MustCreateUser(t, s, "bob")
	storetest.MustUpdate(t, s, func(tx social.Tx) error {
		ctx := t.Context()
		_, err := tx.CreateUser(ctx, social.User{Username: "ANN", CreatedAt: time.Now()}, []byte("hash"))
		if social.ErrorCode(err) != social.CodeConflict || social.ErrorMessage(err) != "username is taken" {
			t.Fatalf("CreateUser of a taken username = %v, want CONFLICT: username is taken", err)
		}
		if _, err := tx.CreateFollow(ctx, social.Follow{FollowerID: ann.ID, FolloweeID: bob.ID, CreatedAt: time.Now()}); err != nil {
			return err
		}
		_, err = tx.CreateFollow(ctx, social.Follow{FollowerID: ann.ID, FolloweeID: bob.ID, CreatedAt: time.Now()})
		if social.ErrorCode(err) != social.CodeConflict || social.ErrorMessage(err) != "you already follow this user" {
			t.Fatalf("CreateFollow again = %v, want CONFLICT: you already follow this user", err)
		}
		_, err = tx.CreateUser(ctx, social.User{Username: "cid", CreatedAt: time.Now()}, []byte("hash"))
		return err
	})
	if _, err := s.UserByUsername(t.Context(), "cid"); err != nil {
		t.Fatalf("UserByUsername(cid): %v", err)
	}
}

func TestUpdateReturnsFnError(t *testing.T) {
	s := MustOpen(t, MustSchema(t))
	errFail := errors.New("fail")
	if err := s.Update(t.Context(), func(social.Tx) error { return errFail }); err != errFail {
		t.Fatalf("Update = %v, want fn's error itself", err)
	}
}

// TestConcurrentNotifications hammers AddNotifications: writers add
// notifications for overlapping recipients, in varying order and number,
// and hold their transactions open a little after, so that commits
// interleave. Meanwhile a reader must never see a notification with a
// smaller ID than one it saw before, nor a gap in Seqs; afterwards, per
// recipient, ordering by ID must give Seq 1 to n.
func TestConcurrentNotifications(t *testing.T) {
	const (
		recipients = 5
		writers    = 8
		updates    = 50
	)
	u := MustSchema(t)
	s := MustOpen(t, u)
	users := make([]int64, recipients)
	for i := range users {
		users[i] = storetest.MustCreateUser(t, s, fmt.Sprintf("user%d", i)).ID
	}
	var added [recipients]atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			rnd := mathrand.New(mathrand.NewPCG(uint64(w), 0))
			for i := range updates {
				// 1 to 4 notifications per recipient for 1 to 5 recipients,
				// in random order.
				var ns []social.Notification
				var counts [recipients]int64
				for _, r := range rnd.Perm(recipients)[:1+rnd.IntN(recipients)] {
					for range 1 + rnd.IntN(4) {
						ns = append(ns, following(users[r]))
						counts[r]++
					}
				}
				rnd.Shuffle(len(ns), func(i, j int) { ns[i], ns[j] = ns[j], ns[i] })
				pause := time.Duration(rnd.IntN(500)) * time.Microsecond
				err := s.Update(t.Context(), func(tx social.Tx) error {
					out, err := storetest.AddNotifications(t.Context(), tx, ns)
					if err != nil {
						return err
					}
					if len(out) != len(ns) {
						return fmt.Errorf("AddNotifications returned %d notifications, want %d", len(out), len(ns))
					}
					for j := range out {
						if out[j].RecipientID != ns[j].RecipientID {
							return fmt.Errorf("#%d is for %d, want %d", j+1, out[j].RecipientID, ns[j].RecipientID)
						}
					}
					time.Sleep(pause)
					return nil
				})
				if err != nil {
					t.Errorf("writer %d, update %d: %v", w, i, err)
					return
				}
				for r, c := range counts {
					added[r].Add(c)
				}
			}
		})
	}
	done := make(chan struct{})
	var reading sync.WaitGroup
	reading.Go(func() {
		for {
			for _, id := range users {
				ns, err := storetest.AddedAfterSeq(t.Context(), s, id, 0, recipients*writers*updates*4)
				if err != nil {
					t.Errorf("NotificationsAfterSeq: %v", err)
					return
				}
				// Seqs are 1, 2, 3, ... in ID order: what a reader saw
				// before is a prefix of what it sees now.
				for i, n := range ns {
					if n.Seq != int64(i+1) || i > 0 && n.ID <= ns[i-1].ID {
						t.Errorf("reader: recipient %d's #%d has ID %d, Seq %d (IDs %v)", id, i+1, n.ID, n.Seq, ids(ns))
						return
					}
				}
			}
			select {
			case <-done:
				return
			default:
			}
		}
	})
	wg.Wait()
	close(done)
	reading.Wait()
	if t.Failed() {
		t.FailNow()
	}
	conn := MustConn(t, u)
	for r, id := range users {
		seqs := MustQuery[int64](t, conn, `SELECT seq FROM notifications WHERE recipient_id = $1 ORDER BY id`, id)
		n := added[r].Load()
		if int64(len(seqs)) != n {
			t.Fatalf("recipient %d has %d notifications, want %d", id, len(seqs), n)
		}
		for i, seq := range seqs {
			if seq != int64(i+1) {
				t.Fatalf("recipient %d's notifications in ID order: #%d has Seq %d (Seqs %v)", id, i+1, seq, seqs)
			}
		}
	}
}

// ids returns the IDs of ns.
func ids(ns []social.Notification) []int64 {
	out := make([]int64, len(ns))
	for i, n := range ns {
		out[i] = n.ID
	}
	return out
}

// TestUpdateRetriesDeadlock makes two transactions lock two recipients in
// opposite orders: PostgreSQL aborts one of them with a deadlock, and
// Update runs its fn again, which then succeeds.
func TestUpdateRetriesDeadlock(t *testing.T) {
	s := MustOpen(t, MustSchema(t))
	ann := storetest.MustCreateUser(t, s, "ann").ID
	bob := storetest.MustCreateUser(t, s, "bob").ID
	var runs atomic.Int32
	var bothLocked sync.WaitGroup
	bothLocked.Add(2)
	notify := func(first, second int64) error {
		var once sync.Once
		return s.Update(t.Context(), func(tx social.Tx) error {
			runs.Add(1)
			if _, err := storetest.AddNotifications(t.Context(), tx, []social.Notification{following(first)}); err != nil {
				return err
			}
			// The first run waits until the other transaction holds its
			// first lock too.
			once.Do(func() {
				bothLocked.Done()
				bothLocked.Wait()
			})
			_, err := storetest.AddNotifications(t.Context(), tx, []social.Notification{following(second)})
			return err
		})
	}
	errs := make(chan error, 2)
	go func() { errs <- notify(ann, bob) }()
	go func() { errs <- notify(bob, ann) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("Update: %v", err)
		}
	}
	if n := runs.Load(); n != 3 {
		t.Fatalf("fn ran %d times, want 3 (one run lost to a deadlock and ran again)", n)
	}
	for _, id := range []int64{ann, bob} {
		if seq, err := s.SeqAtID(t.Context(), id, 0); err != nil || seq != 2 {
			t.Fatalf("SeqAtID(%d) = %d, %v; want 2", id, seq, err)
		}
	}
}

// TestMigrateInboxChanges: migration 0002 gives every notification stored
// before it an ADDED change at its id and Seq, with unread counts rebuilt
// from today's read flags, and the sequence goes on from there.
func TestMigrateInboxChanges(t *testing.T) {
	u := MustSchema(t)
	conn := MustConn(t, u)
	b, err := os.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Migrate(t.Context(), conn, fstest.MapFS{"0001_init.sql": {Data: b}}); err != nil {
		t.Fatal(err)
	}
	// ann has notifications 1, 3 (read) and 4; bob has 2: as
	// AddNotifications numbered them before inbox changes.
	MustExec(t, u, `INSERT INTO users (username, password_hash, notification_seq, created_at)
		VALUES ('ann', '\x00', 3, now()), ('bob', '\x00', 1, now())`)
	for _, row := range []string{`1, 1, false`, `2, 1, false`, `1, 2, true`, `1, 3, false`} {
		MustExec(t, u, `INSERT INTO notifications (id, recipient_id, seq, read, message, action, action_id, by_user, created_at)
			SELECT nextval('notification_ids'), r, s, rd, 'm', 'FOLLOWING', 1, 'x', now() FROM (VALUES (`+row+`)) AS v (r, s, rd)`)
	}
	s := MustOpen(t, u)
	storetest.WantMigratedChanges(t, s)
}

// TestAppendChangesUnknownRecipient: a call naming a user and a recipient
// that is not one fails with CodeNotFound and moves no counter, so that
// the transaction can go on with gapless Seqs.
func TestAppendChangesUnknownRecipient(t *testing.T) {
	s := MustOpen(t, MustSchema(t))
	ann := storetest.MustCreateUser(t, s, "ann")
	bob := storetest.MustCreateUser(t, s, "bob")
	add := func(recipients ...int64) []social.Change {
		var cs []social.Change
		for _, r := range recipients {
			n := social.Notification{RecipientID: r, Message: "x followed you", Action: social.ActionFollowing,
				ActionID: 1, ByUser: "x", CreatedAt: time.Now()}
			cs = append(cs, social.Change{Kind: social.ChangeAdded, Notification: &n})
		}
		return cs
	}
	storetest.MustUpdate(t, s, func(tx social.Tx) error {
		for _, recipients := range [][]int64{{ann.ID, bob.ID + 100}, {bob.ID + 100}, {ann.ID, bob.ID, bob.ID + 100}} {
			if _, err := tx.AppendChanges(t.Context(), add(recipients...)); social.ErrorCode(err) != social.CodeNotFound {
				t.Errorf("AppendChanges to %v = %v, want CodeNotFound", recipients, err)
			}
		}
		cs, err := tx.AppendChanges(t.Context(), add(bob.ID, ann.ID))
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.Seq != 1 || c.UnreadCount != 1 {
				t.Errorf("change for %d: seq %d, unread %d; want 1 and 1", c.RecipientID, c.Seq, c.UnreadCount)
			}
		}
		return nil
	})
}

// TestQueuedInsert: the insert of the changes, which goes with the
// transaction's next statement or its COMMIT, is seen by what the
// transaction reads next, and when it fails, the transaction fails whole.
func TestQueuedInsert(t *testing.T) {
	u := MustSchema(t)
	s := MustOpen(t, u)
	ann := storetest.MustCreateUser(t, s, "ann")
	bob := storetest.MustCreateUser(t, s, "bob")
	added := func(recipient int64) []social.Change {
		n := social.Notification{RecipientID: recipient, Message: "x followed you", Action: social.ActionFollowing,
			ActionID: 1, ByUser: "x", CreatedAt: time.Now()}
		return []social.Change{{Kind: social.ChangeAdded, Notification: &n}}
	}

	storetest.MustUpdate(t, s, func(tx social.Tx) error {
		if _, err := tx.AppendChanges(t.Context(), added(ann.ID)); err != nil {
			return err
		}
		cs, err := tx.ChangesAfterSeq(t.Context(), ann.ID, 0, 10)
		if err == nil && len(cs) != 1 {
			t.Errorf("the transaction reads %d changes after appending one", len(cs))
		}
		return err
	})

	MustExec(t, u, fmt.Sprintf(`ALTER TABLE inbox_changes ADD CONSTRAINT not_bob CHECK (recipient_id <> %d)`, bob.ID))
	err := s.Update(t.Context(), func(tx social.Tx) error {
		if _, err := tx.CreatePost(t.Context(), social.Post{AuthorID: bob.ID, Body: "kept?", CreatedAt: time.Now()}); err != nil {
			return err
		}
		_, err := tx.AppendChanges(t.Context(), added(bob.ID))
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "not_bob") {
		t.Fatalf("Update whose change insert fails = %v, want the constraint's error", err)
	}
	if n, err := s.UnreadCount(t.Context(), bob.ID); err != nil || n != 0 {
		t.Fatalf("bob's unread count after the failed Update = %d, %v; want 0", n, err)
	}
	if ps := MustQuery[int64](t, MustConn(t, u), `SELECT id FROM posts WHERE author_id = $1`, bob.ID); len(ps) != 0 {
		t.Fatalf("posts of the failed Update kept: %v", ps)
	}
	MustExec(t, u, `ALTER TABLE inbox_changes DROP CONSTRAINT not_bob`)
	storetest.MustUpdate(t, s, func(tx social.Tx) error {
		cs, err := tx.AppendChanges(t.Context(), added(bob.ID))
		if err == nil && (cs[0].Seq != 1 || cs[0].UnreadCount != 1) {
			t.Errorf("bob's first change after the failed Update: seq %d, unread %d; want 1 and 1", cs[0].Seq, cs[0].UnreadCount)
		}
		return err
	})
}
