package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// checkpointInterval is how often the checkpointer copies what the WAL
// holds into the database file.
const checkpointInterval = 100 * time.Millisecond

// walRestartFrames is the WAL's length, in frames (pages), past which the
// committer finishes the checkpoint so that the WAL starts over: 256 MiB of
// 4 KiB pages, journal_size_limit. Each restart pauses the writer for a
// copy and two fsyncs (12-35 ms measured under W3 with 10,000 sockets);
// at 64 MiB that came every 1.3 s at 1,000 actions a second and was most
// of the load generator's p99, at 256 MiB every 5 s or so.
const walRestartFrames = 65536

// checkpointer copies committed pages from the WAL into the database file
// on a connection of its own, so that no commit waits for it. By default
// SQLite checkpoints in whichever commit makes the WAL pass 1,000 pages:
// that commit, and every Update in its group, then waits for the copy and
// two fsyncs. The writer connection runs with wal_autocheckpoint(0).
//
// Its checkpoints are PASSIVE: they never wait for the writer or for
// readers, and copy what they can. The writer starts the WAL over only at a
// transaction that finds everything in it copied, which under a steady
// stream of commits never happens: each commit lands while a checkpoint
// copies the ones before. The WAL then grew by every page every commit
// wrote (1 GB in 20 s of W3 at 1,000 actions a second), and each commit
// and read cost more as it grew. So when a checkpoint finds the WAL longer
// than walFrames, it tells the committer (walFull), which checkpoints
// again between two of its transactions: that copies only the few commits
// since, and the next transaction starts the WAL over unless a reader still
// reads from it (then the next tick tries again). journal_size_limit trims
// the file after a burst.
type checkpointer struct {
	db        *sql.DB
	walFrames int
	walFull   chan<- struct{} // the committer's; never closed
	stopOnce  sync.Once
	stop      chan struct{} // closed by close
	stopped   chan struct{} // closed by the goroutine as it ends
}

func newCheckpointer(db *sql.DB, walFrames int, walFull chan<- struct{}) *checkpointer {
	c := &checkpointer{db: db, walFrames: walFrames, walFull: walFull,
		stop: make(chan struct{}), stopped: make(chan struct{})}
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer close(c.stopped)
	tick := time.NewTicker(checkpointInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			// A failure (the disk, say) shows in the commits too; the next
			// tick tries again.
			var busy, frames, copied int
			err := c.db.QueryRowContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
			if err == nil && frames > c.walFrames {
				select {
				case c.walFull <- struct{}{}:
				default: // the committer has not taken the last one yet
				}
			}
		case <-c.stop:
			return
		}
	}
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.stopped
	return c.db.Close()
}
