// Package brokertest is the contract suite that every social.Broker passes:
// the in-process broker and the Redis broker run the same tests. Run runs it;
// the MustX helpers are for a broker's own tests.
//
// # The contract
//
// Beyond what social.Broker and social.Subscription document, the suite
// holds a broker to this:
//
//   - Subscribe returns only once the subscription is live: it receives
//     every event published, from any process, after Subscribe returns. A
//     networked broker waits for its server to confirm the subscription
//     before it returns. With a context that is already done, Subscribe
//     fails with the context's error.
//   - Each subscriber of a user gets each of the user's events exactly once,
//     and events that one goroutine publishes arrive in publish order.
//     Subscribers of other users get nothing of it.
//   - Every field of an Event arrives with the same contents (a networked
//     broker delivers copies; nil and empty byte slices count as equal).
//   - Publish never waits for a subscriber. A subscriber whose bounded queue
//     is full is cut off: its Events channel is closed and Err returns
//     social.ErrSlowConsumer, while the user's other subscribers still get
//     every event. The suite assumes a queue of at least 64 events and
//     expects a subscriber that never reads to be cut off within 65,536
//     events.
//   - Function delivery (social.FuncSubscription, the mode every socket
//     uses): after SetFunc the function gets the events the subscription
//     held, then every later one, in order, and the broker never cuts it
//     off, however many it hands over; ended is called once when the
//     broker closes; SetFunc returns false after Events or Close; after
//     Close returns, the function gets nothing.
//   - QueueSize is positive and the same for every subscription, and a
//     subscriber cut off as too slow held no more than that.
//   - Err and Close may be called at any time, from any goroutine.
//   - When Close returns, Events is closed (a receive never blocks: it
//     yields what was queued before Close, then reports closed), Err returns
//     nil unless the subscription had already ended otherwise, and nothing
//     published afterwards arrives. Close may be called more than once.
//   - If the broker has a Close() or Close() error method: it ends every
//     subscription with social.ErrBrokerClosed, after which Subscribe and
//     Publish return social.ErrBrokerClosed; it may be called more than
//     once.
//   - No goroutine outlives the broker's Close.
//
// # Who closes what
//
// Run closes every subscription it makes. The function passed to Run makes a
// new broker for each test and closes it with t.Cleanup; Run checks for
// leaked goroutines after that cleanup has run.
//
// Run's tests are not parallel and check for goroutine leaks, so the test
// that calls Run must not run in parallel with others of its package. They
// use random user IDs, so brokers of several packages may share one server.
package brokertest
