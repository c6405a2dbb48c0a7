package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"

	"github.com/pulse-social/pulse/internal/social"
)

// Group commit. SQLite writes one transaction at a time, and most of a
// small transaction's cost is fixed: BEGIN, COMMIT, and writing to the WAL
// every page it touched, pages that the next small transaction touches
// again (the last leaf of each table and index). So Updates that arrive
// while the writer is busy wait in a queue, and the committer runs all the
// waiting ones, up to maxBatch, in one transaction, each in a savepoint of
// its own: a function that fails rolls back to its savepoint and leaves
// the others' work in place. BenchmarkUpdateParallel measures it.
//
// What each caller sees is what it would see alone: its function ran in a
// transaction that committed (nil) or not (its error), after the functions
// queued before it. If the batch as a whole cannot go on (a savepoint
// statement or COMMIT fails), it is rolled back and each function that had
// not failed runs again, alone: social.Store allows a function to run more
// than once.

// maxBatch is the most Updates one transaction carries. A batch of
// maxBatch small actions takes a few milliseconds.
const maxBatch = 64

// queueSize bounds the Updates waiting for the committer; callers block
// (until their context ends) when it is full.
const queueSize = 256

// errClosed is what Update returns once the store is closed.
var errClosed = errors.New("sqlite: store is closed")

// request is one Update waiting for the committer.
type request struct {
	ctx  context.Context
	fn   func(social.Tx) error
	done chan result // buffered: the committer never waits for the caller
}

// result is how a request ended: err, or a panic in its function.
type result struct {
	err      error
	panicked *panicked
}

// panicked is a panic in an Update's function, carried to the caller's
// goroutine with the stack where it happened.
type panicked struct {
	value any
	stack []byte
}

func (p *panicked) String() string {
	return fmt.Sprintf("%v [recovered in the sqlite committer]\n\n%s", p.value, p.stack)
}

// committer owns the writer connection: one goroutine, started by Open and
// stopped by Close, runs every write transaction.
type committer struct {
	// write is the writer's pool of one connection. The committer holds it
	// from Open to Close (held) for a file database; for :memory:, whose one
	// connection also serves the reads, it takes it for each batch.
	write    *sql.DB
	held     *writerConn
	closeErr error // of held; set by the goroutine before stopped closes
	requests chan *request
	// walFull is how the checkpointer asks for a checkpoint between two
	// transactions (see checkpointer); nil for :memory:.
	walFull  chan struct{}
	stopOnce sync.Once
	stop     chan struct{} // closed by close
	stopped  chan struct{} // closed by the committer's goroutine as it ends
}

// newCommitter starts the committer of the writer pool write; with hold,
// it holds the pool's connection until it stops.
func newCommitter(write *sql.DB, hold bool, walFull chan struct{}) (*committer, error) {
	c := &committer{
		write:    write,
		requests: make(chan *request, queueSize),
		walFull:  walFull,
		stop:     make(chan struct{}),
		stopped:  make(chan struct{}),
	}
	if hold {
		w, err := takeWriterConn(write)
		if err != nil {
			return nil, err
		}
		c.held = w
	}
	go c.run()
	return c, nil
}

// update queues fn and waits for its outcome. Once queued, it waits for
// the outcome whatever ctx does: a caller that gave up could otherwise miss
// that its function committed. The committer skips a function whose
// context ended before its turn.
func (c *committer) update(ctx context.Context, fn func(social.Tx) error) error {
	r := &request{ctx: ctx, fn: fn, done: make(chan result, 1)}
	select {
	case c.requests <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.stop:
		return errClosed
	}
	var res result
	select {
	case res = <-r.done:
	case <-c.stopped:
		select {
		case res = <-r.done:
		default:
			return errClosed // queued after the committer's last look
		}
	}
	if res.panicked != nil {
		panic(res.panicked)
	}
	return res.err
}

// close stops the committer after the batch it is running, and gives the
// connection it holds back to the pool; requests still queued fail with
// errClosed.
func (c *committer) close() error {
	c.stopOnce.Do(func() { close(c.stop) })
	<-c.stopped
	return c.closeErr
}

func (c *committer) run() {
	defer close(c.stopped)
	if c.held != nil {
		defer func() { c.closeErr = c.held.close() }()
	}
	batch := make([]*request, 0, maxBatch)
	for {
		select {
		case r := <-c.requests:
			batch = append(batch[:0], r)
		case <-c.walFull:
			// Only a file database has a WAL, and its connection is held.
			// A failure shows in the commits too; the checkpointer asks
			// again while the WAL stays long.
			_, _ = c.held.ExecContext(context.Background(), `PRAGMA wal_checkpoint(PASSIVE)`)
			continue
		case <-c.stop:
			c.failQueued()
			return
		}
	gather:
		for len(batch) < maxBatch {
			select {
			case r := <-c.requests:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		c.runBatch(batch)
		clear(batch) // let the finished requests go
	}
}

func (c *committer) failQueued() {
	for {
		select {
		case r := <-c.requests:
			r.done <- result{err: errClosed}
		default:
			return
		}
	}
}

// runBatch runs the functions of batch, delivering each request's result.
func (c *committer) runBatch(batch []*request) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- result{err: err}
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	w, release, err := c.conn()
	if err != nil {
		for _, r := range live {
			r.done <- result{err: err}
		}
		return
	}
	defer release()
	if len(live) == 1 {
		live[0].done <- alone(w, live[0])
		return
	}
	together(w, live)
}

// conn returns the writer connection for a batch, and how to give it back.
func (c *committer) conn() (*writerConn, func(), error) {
	if c.held != nil {
		return c.held, func() {}, nil
	}
	w, err := takeWriterConn(c.write)
	if err != nil {
		return nil, nil, err
	}
	// Closing a statement of :memory: or giving its connection back fails
	// only if the store is closing, which Close reports.
	return w, func() { _ = w.close() }, nil
}

// alone runs r's function on w in a transaction of its own.
func alone(w *writerConn, r *request) result {
	t, err := begin(w)
	if err != nil {
		return result{err: err}
	}
	defer t.end()
	res := call(r.fn, t.tx)
	if res.err != nil || res.panicked != nil {
		return res
	}
	if err := t.commit(); err != nil {
		return result{err: fmt.Errorf("commit: %w", err)}
	}
	return result{}
}

// together runs the functions of live on w in one transaction, each in a
// savepoint, and commits what succeeded. If the transaction cannot go on,
// the functions that had not failed run again, alone.
func together(w *writerConn, live []*request) {
	results := make([]result, len(live))
	if err := inSavepoints(w, live, results); err != nil {
		for i, r := range live {
			if results[i].err == nil && results[i].panicked == nil {
				results[i] = alone(w, r)
			}
		}
	}
	for i, r := range live {
		r.done <- results[i]
	}
}

// inSavepoints runs the functions of live in one transaction and records
// their results; it returns an error, with nothing committed, when the
// transaction as a whole failed.
func inSavepoints(w *writerConn, live []*request, results []result) error {
	t, err := begin(w)
	if err != nil {
		return err
	}
	defer t.end()
	ctx := context.Background()
	for i, r := range live {
		if _, err := w.ExecContext(ctx, "SAVEPOINT action"); err != nil {
			return err
		}
		results[i] = call(r.fn, t.tx)
		if results[i].err != nil || results[i].panicked != nil {
			if _, err := w.ExecContext(ctx, "ROLLBACK TO action"); err != nil {
				// SQLite rolled the whole transaction back (disk full, I/O
				// error, ...): the failure may not be this function's own.
				results[i] = result{}
				return err
			}
		}
		if _, err := w.ExecContext(ctx, "RELEASE action"); err != nil {
			return err
		}
	}
	return t.commit()
}

// txRun is one write transaction of the committer, on its connection.
type txRun struct {
	w         *writerConn
	tx        *tx
	committed bool
}

// begin starts a BEGIN IMMEDIATE transaction on w: it takes the write lock
// up front, so that the transaction never fails on upgrading a read lock.
// Its statements run under a context that nobody cancels (see writerConn):
// a caller's cancellation interrupting a statement could make SQLite roll
// back the whole transaction, the other callers' work with it. A function
// runs, or is skipped, as a whole.
func begin(w *writerConn) (*txRun, error) {
	if _, err := w.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		return nil, fmt.Errorf("begin transaction: %w", err)
	}
	return &txRun{w: w, tx: newTx(w)}, nil
}

// commit commits the transaction. If it fails, the transaction is still
// open, for end to roll back.
func (t *txRun) commit() error {
	if _, err := t.w.ExecContext(context.Background(), "COMMIT"); err != nil {
		return err
	}
	t.committed = true
	return nil
}

// end rolls back what was not committed, so that the connection leaves
// the transaction. When ROLLBACK fails, SQLite has rolled the transaction
// back already, or the connection is broken and the next BEGIN says so.
func (t *txRun) end() {
	if !t.committed {
		_, _ = t.w.ExecContext(context.Background(), "ROLLBACK")
	}
}

// call runs fn, turning a panic into a result.
func call(fn func(social.Tx) error, t *tx) (res result) {
	defer func() {
		if v := recover(); v != nil {
			res = result{panicked: &panicked{value: v, stack: debug.Stack()}}
		}
	}()
	return result{err: fn(t)}
}
