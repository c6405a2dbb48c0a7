// Package sqlite implements social.Store on an embedded SQLite database,
// with the pure-Go driver modernc.org/sqlite (no cgo).
//
// # Connections
//
// A file database runs in WAL mode with synchronous=NORMAL, foreign keys on
// and a busy timeout of 5s; the driver applies these pragmas to every
// connection it opens. Writes go through a pool of exactly one connection,
// owned by one goroutine, the committer, which holds it from Open to Close
// and runs its transactions as prepared statements on it (writerConn):
// Updates queue for it in the process, so a write transaction never fails
// on upgrading a read lock.
// Those that queue while a transaction runs commit together in the next
// one (group commit), each in a savepoint of its own, so one that fails
// takes nothing of the others with it. Reads outside transactions go
// through a separate pool of read-only connections and do not wait for the
// writer. A connection of its own copies the WAL into the database file
// every 100 ms, off the commit path; when the WAL passes 256 MiB, the
// committer finishes that copy between two transactions, so that the WAL
// starts over rather than growing as long as writes keep coming. A
// ":memory:" database lives in one connection, which serves everything.
// Each connection prepares a statement once and reuses it afterwards, in
// and out of transactions.
//
// # Schema
//
// The schema is versioned: migrations/NNNN_name.sql, embedded in the
// binary. Open applies, in order and each in its own transaction, those not
// recorded in the schema_migrations table yet.
//
// Times are INTEGER unix milliseconds in UTC: a stored time keeps its
// millisecond and comes back in UTC, and the values that the create methods
// return are already in that form. Usernames are unique ignoring case
// (COLLATE NOCASE) and keep their registered case.
//
// # Notifications and inbox changes
//
// Every change to a user's inbox (a notification added, removed or marked
// read) is recorded by AppendChanges in the action's transaction, in four
// tables:
//
//   - notification_events: what happened (message, action, actor, content,
//     what was acted on, time, group key), once per event however many
//     users it notifies: a post to 10,000 followers is one row. Its
//     notifications' ids lie in [first_id, last_id], which finds them
//     without an index entry per notification.
//   - notifications: one row per recipient (id, seq, event, read flag,
//     group key), which is also the ADDED change that added it: it keeps
//     that change's unread count and groups. A post notification's group is
//     the notification alone, derived from the event rather than stored.
//   - inbox_changes: the REMOVED and READ changes, and the ADDED change of a
//     notification removed since, which moves there with the removal.
//   - inbox_groups: each group's totals (notifications, unread ones,
//     distinct actors) and its three most recent actors, in one row, and
//     how many of its notifications each actor caused, in a row per actor
//     beside it. Each change updates the rows of the groups it touches, so
//     that adding to a group costs the same however large it is (a removal
//     that takes a recent actor's newest notification walks the group
//     newest first to the next three actors). A post notification's group
//     is the notification alone and has no rows.
//
// A user's latest Seq and unread count are those of its latest change,
// found by two index lookups: every change is a row of notifications or
// inbox_changes, which keeps the unread count right after it. (A row per
// user, bumped by every change, cost each action one more page.) Ids are
// numbered by the transaction from the high-water mark of notification and
// change ids, and each recipient's Seqs on from its latest change, so they
// are 1, 2, 3, ... without gaps, also when a transaction rolls back: as
// SQLite runs one write transaction at a time, neither can change before
// the commit, and ids increase in commit order. Rows are written with
// multi-row statements of up to 100 rows each. The writer keeps its
// statement journal in memory and has a 32 MiB page cache, so that a large
// fan-out does not go through system calls before its commit.
//
// # Errors
//
// Unique violations become *social.Error with CodeConflict ("username is
// taken", ...), missing rows CodeNotFound ("post not found", ...); other
// errors are wrapped with what was being done.
package sqlite
