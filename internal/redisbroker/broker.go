package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/social"
)

var _ social.Broker = (*Broker)(nil)

// DefaultChannelPrefix is the prefix of the Redis channel of each user when
// no WithChannelPrefix option is given: user 42's events travel on
// "pulse:user:42".
const DefaultChannelPrefix = "pulse:user:"

// errNotStarted is returned by Subscribe before Start.
var errNotStarted = errors.New("redisbroker: Subscribe before Start")

// Option configures a Broker; pass options to New.
type Option func(*Broker)

// WithChannelPrefix sets the prefix of every user's channel name (the user
// ID follows it); the default is DefaultChannelPrefix. Every process that
// shares users must use the same prefix; processes with different prefixes
// do not see each other's events, even on the same Redis.
func WithChannelPrefix(prefix string) Option {
	return func(b *Broker) { b.prefix = prefix }
}

// WithReconnectHook sets a function called each time the pub/sub
// connection is replaced after a loss (not for the first connection), for
// a metric. It runs with the connection's lock held: it must be quick and
// must not call the Broker.
func WithReconnectHook(f func()) Option {
	return func(b *Broker) { b.onReconnect = f }
}

// Broker is a social.Broker on Redis pub/sub, for several server processes
// that share users. Its methods are safe for concurrent use. Create one with
// New, then call Start; see the package documentation for who owns what.
type Broker struct {
	prefix      string
	onReconnect func() // nil: none; see WithReconnectHook
	hub         *fanout.Hub
	// pub sends PUBLISH and PING commands from its pool of connections;
	// sub only makes the one pub/sub connection, ps, and tells onConnect
	// about each new one.
	pub, sub *redis.Client
	ps       *redis.PubSub

	// ctx is canceled by Close: it stops the goroutines and aborts their
	// commands.
	ctx    context.Context
	cancel context.CancelFunc

	runMu     sync.Mutex // guards the start of the goroutines against Close
	started   atomic.Bool
	wg        sync.WaitGroup // the goroutines that Start starts
	closeOnce sync.Once

	// wake tells the control goroutine that users changed.
	wake chan struct{}

	// mu guards the fields below. It is taken inside the Hub's locks (in
	// onFirst and onLast) and inside the PubSub's (in onConnect), so
	// nothing holding it calls either.
	mu    sync.Mutex
	users map[int64]*user
	dirty []int64 // users whose want changed, or whose SUBSCRIBE failed
	// gen counts the pub/sub connections made so far: a new connection
	// loses the replies of the old one.
	gen uint64
}

// user is the state of one user's channel. An entry exists while the user
// has local subscribers or its channel still needs work.
type user struct {
	// want: the user has local subscribers (between the Hub's OnFirst and
	// OnLast).
	want bool
	// subscribed: SUBSCRIBE was sent (or is being sent), and no UNSUBSCRIBE
	// since.
	subscribed bool
	// resend: the last SUBSCRIBE failed and must be sent again.
	resend bool
	// dirty: the user is in Broker.dirty.
	dirty bool
	// pending counts the SUBSCRIBEs sent on connection generation gen whose
	// confirmation has not been read; counts of older generations are void.
	pending int
	gen     uint64
	// ready is closed, and confirmed set, when Redis has confirmed the
	// current subscription (subscribed, no SUBSCRIBE pending). An
	// UNSUBSCRIBE replaces a closed ready with an open one.
	ready     chan struct{}
	confirmed bool
}

// inflight returns how many SUBSCRIBEs of u on connection generation gen
// await their confirmation.
func (u *user) inflight(gen uint64) int {
	if u.gen != gen {
		return 0
	}
	return u.pending
}

// New returns a Broker on the Redis server at url, a redis:// or rediss://
// URL as redis.ParseURL reads it (e.g. "redis://:password@host:6379/0";
// query parameters such as dial_timeout, max_retries and client_name tune
// the client). cfg tunes the local subscriptions (see fanout.Config; its
// OnFirst and OnLast are the Broker's own and are overwritten).
//
// New checks with a PING, within ctx, that the server answers. It starts no
// goroutines: call Start before Subscribe, and Close when done.
func New(ctx context.Context, url string, cfg fanout.Config, opts ...Option) (*Broker, error) {
	pubOpt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redisbroker: %w", err)
	}
	subOpt, _ := redis.ParseURL(url) // parsed above without error
	b := &Broker{
		prefix: DefaultChannelPrefix,
		wake:   make(chan struct{}, 1),
		users:  make(map[int64]*user),
	}
	for _, opt := range opts {
		opt(b)
	}
	subOpt.OnConnect = b.onConnect
	b.pub, b.sub = redis.NewClient(pubOpt), redis.NewClient(subOpt)
	if err := b.pub.Ping(ctx).Err(); err != nil {
		_ = b.pub.Close()
		_ = b.sub.Close()
		return nil, fmt.Errorf("redisbroker: ping %s: %w", pubOpt.Addr, err)
	}
	// Without channels, Subscribe neither connects nor starts anything.
	b.ps = b.sub.Subscribe(context.Background())
	cfg.OnFirst, cfg.OnLast = b.onFirst, b.onLast
	b.hub = fanout.New(cfg)
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// Start starts the Broker's two goroutines: one receives from the pub/sub
// connection and delivers to the local subscribers, the other sends
// SUBSCRIBE and UNSUBSCRIBE as users come and go, and a PING now and then.
// Close stops them and waits for them. Call Start once, before Subscribe;
// calling it again, or after Close, does nothing.
func (b *Broker) Start() {
	b.runMu.Lock()
	defer b.runMu.Unlock()
	if b.started.Load() || b.ctx.Err() != nil {
		return
	}
	b.started.Store(true)
	b.wg.Add(2)
	go b.receive()
	go b.control()
}

// Close ends every subscription with social.ErrBrokerClosed, stops the
// goroutines that Start started and waits for them, and closes the
// connections to Redis. Publish, Subscribe and Ping then fail with
// social.ErrBrokerClosed. It is safe to call more than once.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		b.runMu.Lock()
		b.cancel()
		b.runMu.Unlock()
		b.hub.Close()
		_ = b.ps.Close() // wakes the receiving goroutine from its read
		b.wg.Wait()
		_ = b.sub.Close()
		_ = b.pub.Close()
	})
}

// Publish sends each event to every current subscriber of its UserID in
// every process, with all PUBLISH commands of one call in one round trip. It
// waits for Redis, never for a subscriber (see social.Broker). It returns an
// error if Redis cannot be reached within ctx, and social.ErrBrokerClosed
// after Close.
//
// go-redis retries a command that failed on a broken connection (see
// max_retries in New), so an event can, rarely, arrive twice; the Feed drops
// a notification it has already delivered.
func (b *Broker) Publish(ctx context.Context, events ...social.Event) error {
	if b.ctx.Err() != nil {
		return social.ErrBrokerClosed
	}
	var err error
	switch len(events) {
	case 0:
		return nil
	case 1:
		var payload []byte
		if payload, err = appendEvent(make([]byte, 0, encodedSize(&events[0])), &events[0]); err != nil {
			return fmt.Errorf("redisbroker: publish: %w", err)
		}
		err = b.pub.Publish(ctx, b.channel(events[0].UserID), payload).Err()
	default:
		err = b.publishBatch(ctx, events)
	}
	if err != nil {
		if b.ctx.Err() != nil {
			return social.ErrBrokerClosed
		}
		return fmt.Errorf("redisbroker: publish %d events: %w", len(events), err)
	}
	return nil
}

// publishBatch encodes events into one buffer and publishes them in one
// pipeline.
func (b *Broker) publishBatch(ctx context.Context, events []social.Event) error {
	size := 0
	for i := range events {
		size += encodedSize(&events[i])
	}
	var (
		buf  = make([]byte, 0, size)
		ends = make([]int, len(events))
		err  error
	)
	for i := range events {
		if buf, err = appendEvent(buf, &events[i]); err != nil {
			return err
		}
		ends[i] = len(buf)
	}
	pipe := b.pub.Pipeline()
	start := 0
	for i := range events {
		pipe.Publish(ctx, b.channel(events[i].UserID), buf[start:ends[i]:ends[i]])
		start = ends[i]
	}
	_, err = pipe.Exec(ctx)
	return err
}

// Subscribe returns a subscription to userID's events. It returns once Redis
// has confirmed that this process listens to the user's channel, so the
// subscription receives every event published, by any process, after
// Subscribe returns. It fails with ctx's error if ctx is done first (for
// example while Redis is unreachable), and with social.ErrBrokerClosed after
// Close. The caller must Close the subscription.
func (b *Broker) Subscribe(ctx context.Context, userID int64) (social.FuncSubscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.ctx.Err() != nil {
		return nil, social.ErrBrokerClosed
	}
	if !b.started.Load() {
		return nil, errNotStarted
	}
	sub, err := b.hub.Subscribe(userID)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	var ready chan struct{}
	if u := b.users[userID]; u != nil {
		ready = u.ready
	}
	b.mu.Unlock()
	if ready == nil {
		// sub has ended already, as too slow or by Close: Err says which.
		return sub, nil
	}
	select {
	case <-ready:
		return sub, nil
	case <-ctx.Done():
		sub.Close()
		return nil, ctx.Err()
	case <-b.ctx.Done():
		sub.Close()
		return nil, social.ErrBrokerClosed
	}
}

// Ping checks that Redis answers, within ctx; the server's readiness check
// calls it. It returns social.ErrBrokerClosed after Close.
func (b *Broker) Ping(ctx context.Context) error {
	if b.ctx.Err() != nil {
		return social.ErrBrokerClosed
	}
	if err := b.pub.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redisbroker: ping: %w", err)
	}
	return nil
}

// channel returns the name of userID's channel.
func (b *Broker) channel(userID int64) string {
	return b.prefix + strconv.FormatInt(userID, 10)
}

// userOf returns the user whose channel is named channel.
func (b *Broker) userOf(channel string) (int64, bool) {
	id, ok := strings.CutPrefix(channel, b.prefix)
	if !ok {
		return 0, false
	}
	userID, err := strconv.ParseInt(id, 10, 64)
	return userID, err == nil
}
