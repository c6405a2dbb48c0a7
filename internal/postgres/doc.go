// Package postgres implements social.Store on PostgreSQL, with the pgx
// driver (github.com/jackc/pgx/v5) and its connection pool (pgxpool).
//
// # Connections
//
// Open takes a postgres:// or postgresql:// URL. The pool holds at most
// four connections per CPU unless the URL's pool_max_conns says otherwise;
// every pgx and pgxpool URL parameter works. Each connection prepares a
// statement once and reuses it (pgx's statement cache). Reads outside
// transactions run on any pooled connection, each statement seeing what
// was committed when it started; every Store.Update is one READ COMMITTED
// transaction on one connection, whose BEGIN goes with its first statement
// (one pgx batch) and whose last insert goes with its COMMIT. A transaction that PostgreSQL aborts for a
// deadlock or a serialization failure is run again, fn included, a few
// times.
//
// # Schema
//
// The schema is versioned: migrations/NNNN_name.sql, embedded in the
// binary. Open applies those not recorded in the schema_migrations table
// yet, all in one transaction that first takes a transaction-level
// advisory lock (pg_advisory_xact_lock), so that several processes starting
// at once against one database migrate it once, one after another.
//
// Times are timestamptz: a stored time keeps its microsecond and comes
// back in UTC, and the values that the create methods return are already in
// that form. Usernames are unique ignoring case (a unique index on
// lower(username)) and keep their registered case.
//
// # Notifications and inbox changes
//
// Every change to a user's inbox (a notification added, removed or marked
// read) is a row of inbox_changes, written by AppendChanges in the
// action's transaction; an added notification takes its change's id and
// Seq. Each user row has a notification_seq counter, which counts every
// change, and an unread_count counter; change ids come from the sequence
// notification_ids. For each recipient, IDs and Seqs must increase in
// commit order, also when transactions changing the same inbox run
// concurrently: subscribers resume "after ID x", and a change committed
// later with a smaller ID would be skipped. A plain bigserial does not give
// that: ids are taken when rows are inserted, and the transactions commit
// in another order.
//
// AppendChanges therefore, in the calling transaction, first locks the
// recipients' user rows in ID order (a consistent order, so that
// transactions with overlapping recipients do not deadlock: a few rows
// are updated one by one in that order, more are locked with SELECT ...
// ORDER BY id FOR NO KEY UPDATE), moves each recipient's counters, and
// only then takes ids from the sequence. Each row lock is held until
// commit, so of two transactions changing the same inbox, the one that
// locked first commits first, and the other one gets the lock only after
// that commit: it reads the committed counters, so its Seqs come after,
// and it calls nextval after the first one's calls, so its ids are greater
// too. Seqs have no gaps, since the counter rolls back with its
// transaction; ids may have gaps.
//
// All of that, the inserts of the added notifications and the updates and
// reads of the groups the changes touched run in one call of the PL/pgSQL
// function append_changes (migrations 0012 to 0014), with column arrays
// for arguments, and the insert of the changes goes with COMMIT: an action
// takes one round trip for its notifications whether it has one recipient
// or 10,000, and as AppendChanges is the last call of an action, the locks
// are held for that round trip and the commit.
//
// # Groups
//
// Each group keeps its totals (notifications, unread ones, distinct
// actors) and its three most recent actors in a row of inbox_groups, and
// how many of its notifications each actor caused in a row of
// inbox_group_actors; append_changes updates them change by change, under
// the recipient's row lock. An added notification is its group's newest,
// so its actor goes first among the recent ones; after a removal
// group_recent finds them again among the group's 32 newest notifications
// (the whole group only when those hold fewer actors than it needs). So a
// change costs the same however large its group is. A post notification's
// group is the notification alone and has no rows.
//
// # Deletes
//
// A transaction reads a post or comment it acts on FOR KEY SHARE, and
// deleting one locks it and the comments below it FOR UPDATE first, so that
// a reaction or comment racing a delete either commits first and is
// deleted with the rest, or finds its target gone.
//
// # Errors
//
// Missing rows become *social.Error with CodeNotFound ("post not found",
// ...), and conflicts CodeConflict ("username is taken", ...), with the same
// messages as the SQLite store. A conflict is detected with INSERT ... ON
// CONFLICT DO NOTHING rather than by catching a unique violation (23505):
// like a failed statement in SQLite, it leaves the transaction usable, and
// PostgreSQL logs no error. Other errors are wrapped with what was being
// done.
package postgres
