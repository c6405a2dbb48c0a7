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

// checkpointer copies committed pages from the WAL into the database file
// on a connection of its own, so that no commit waits for it. By default
// SQLite checkpoints in whichever commit makes the WAL pass 1,000 pages:
// that commit, and every Update in its group, then waits for the copy and
// two fsyncs. The writer connection runs with wal_autocheckpoint(0).
//
// Its checkpoints are PASSIVE: they never wait for the writer or for
// readers, and copy what they can. When one has copied everything, the
// writer starts the WAL over at its next transaction, so the WAL stays
// small; journal_size_limit trims the file after a burst.
type checkpointer struct {
	db       *sql.DB
	stopOnce sync.Once
	stop     chan struct{} // closed by close
	stopped  chan struct{} // closed by the goroutine as it ends
}

func newCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, stop: make(chan struct{}), stopped: make(chan struct{})}
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
			_, _ = c.db.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
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
