package gqlws_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/pulse-social/pulse/internal/gqlws"
)

func TestSubscription(t *testing.T) {
	for _, p := range protocols {
		t.Run("Events/"+p.name, func(t *testing.T) {
			e := MustEnv(t, gqlws.Config{})
			c := e.MustConnect(t, p)
			sub := c.MustSubscribe(t, e, "1")
			for _, v := range []string{`{"n":1}`, `{"n":2}`, `{"n":3}`} {
				sub.Send(v)
			}
			c.MustEvent(t, "1", `{"n":1}`)
			c.MustEvent(t, "1", `{"n":2}`)
			c.MustEvent(t, "1", `{"n":3}`)
			sub.Send(`{"n":4}`)
			c.MustEvent(t, "1", `{"n":4}`)
			sub.End()
			c.MustReadType(t, "1", "complete")
			sub.MustEnded(t)
		})
	}

	// A resolver may put a value on its channel before it returns it, as
	// one that starts with the current value does.
	t.Run("ValueBeforeDispatch", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{})
		c := e.MustConnect(t, transportWS)
		c.MustStart(t, "1", "subscription initial { events }")
		sub := e.Exec.MustSub(t)
		c.MustEvent(t, "1", `{"n":0}`)
		sub.Send(`{"n":1}`)
		c.MustEvent(t, "1", `{"n":1}`)
	})

	for _, p := range protocols {
		t.Run("AddError/"+p.name, func(t *testing.T) {
			e := MustEnv(t, gqlws.Config{})
			c := e.MustConnect(t, p)
			sub := c.MustSubscribe(t, e, "1")
			sub.Send(`{"n":1}`)
			c.MustEvent(t, "1", `{"n":1}`)
			if !gqlws.AddError(sub.Ctx, &gqlerror.Error{Message: "feed ended", Extensions: map[string]any{"code": "GONE"}}) {
				t.Fatalf("AddError = false, want true")
			}
			sub.End()
			errs := c.MustErrors(t, "1")
			if len(errs) != 1 || errs[0].Message != "feed ended" || errs[0].Extensions["code"] != "GONE" {
				t.Fatalf("errors %v, want only the one AddError added", errs)
			}
			// No complete after the error: the next message answers the
			// next request.
			c.MustStart(t, "q", "{ hello }")
			c.MustResult(t, "q", `{"data":{"hello":"world"}}`)
		})
	}

	for _, p := range protocols {
		t.Run("ClientStops/"+p.name, func(t *testing.T) {
			e := MustEnv(t, gqlws.Config{})
			c := e.MustConnect(t, p)
			sub := c.MustSubscribe(t, e, "1")
			sub.Send(`{"n":1}`)
			c.MustEvent(t, "1", `{"n":1}`)
			c.MustStop(t, "1")
			if p.legacy {
				c.MustReadType(t, "1", "complete")
			}
			sub.MustEnded(t)
			// The resolver has not seen the end yet: it sends one more,
			// and ends.
			sub.Send(`{"n":2}`)
			sub.End()
			// The next message is another subscription's: nothing more
			// came for 1.
			other := c.MustSubscribe(t, e, "2")
			other.Send(`{"n":"other"}`)
			c.MustEvent(t, "2", `{"n":"other"}`)
			// Stopping an operation that is not running does nothing.
			c.MustStop(t, "1")
			c.MustStop(t, "unknown")
			other.Send(`{"n":"again"}`)
			c.MustEvent(t, "2", `{"n":"again"}`)
		})
	}

	// The socket's close ends every subscription's context.
	t.Run("SocketCloses", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{})
		c := e.MustConnect(t, transportWS)
		subs := []*Sub{c.MustSubscribe(t, e, "1"), c.MustSubscribe(t, e, "2")}
		c.Close()
		for _, sub := range subs {
			sub.MustEnded(t)
			sub.Send(`{"n":1}`) // too late: nothing happens
		}
		MustWait(t, e.Group)
	})
}

func TestDuplicateID(t *testing.T) {
	t.Run(transportWS.name, func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{})
		c := e.MustConnect(t, transportWS)
		sub := c.MustSubscribe(t, e, "a")
		c.MustStart(t, "a", "subscription { events }")
		MustClose(t, c.Conn, codeDuplicateID, "Subscriber for a already exists")
		sub.MustEnded(t)
	})

	// The legacy protocol has no such rule: the new operation replaces the
	// old one.
	t.Run(legacyWS.name, func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{})
		c := e.MustConnect(t, legacyWS)
		old := c.MustSubscribe(t, e, "a")
		old.Send(`{"v":"old"}`)
		c.MustEvent(t, "a", `{"v":"old"}`)
		sub := c.MustSubscribe(t, e, "a")
		old.MustEnded(t)
		old.Send(`{"v":"stale"}`)
		sub.Send(`{"v":"new"}`)
		c.MustEvent(t, "a", `{"v":"new"}`)
		sub.End()
		c.MustReadType(t, "a", "complete")
		if err := sub.Ctx.Err(); err == nil {
			t.Fatalf("the subscription's context is still alive after its complete")
		}
	})
}

func TestMaxOperations(t *testing.T) {
	type userKey struct{}
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			var refused atomic.Int32
			e := MustEnv(t, gqlws.Config{
				MaxOperations: 2,
				Init: func(ctx context.Context, _ map[string]any) (context.Context, error) {
					return context.WithValue(ctx, userKey{}, "alice"), nil
				},
				OnOperationRefused: func(ctx context.Context) {
					if ctx.Value(userKey{}) != "alice" {
						t.Errorf("OnOperationRefused got a context without Init's values")
					}
					refused.Add(1)
				},
			})
			c := e.MustConnect(t, p)
			sub1 := c.MustSubscribe(t, e, "1")
			c.MustSubscribe(t, e, "2")

			mustRefused := func(id string, n int32) {
				t.Helper()
				errs := c.MustErrors(t, id)
				if errs[0].Extensions["code"] != "RATE_LIMITED" || errs[0].Extensions["limit"] != 2.0 {
					t.Fatalf("errors %v, want RATE_LIMITED with limit 2", errs)
				}
				if got := refused.Load(); got != n {
					t.Fatalf("OnOperationRefused called %d times, want %d", got, n)
				}
			}
			c.MustStart(t, "3", "subscription { events }")
			mustRefused("3", 1)
			c.MustStart(t, "q", "{ hello }")
			mustRefused("q", 2)

			// The socket stays open, its operations run.
			sub1.Send(`{"n":1}`)
			c.MustEvent(t, "1", `{"n":1}`)
			// One ends: there is room for one more.
			sub1.End()
			c.MustReadType(t, "1", "complete")
			sub4 := c.MustSubscribe(t, e, "4")
			sub4.Send(`{"n":4}`)
			c.MustEvent(t, "4", `{"n":4}`)
			if got := refused.Load(); got != 2 {
				t.Fatalf("OnOperationRefused called %d times, want 2", got)
			}
		})
	}
}

func TestQuery(t *testing.T) {
	for _, p := range protocols {
		t.Run("OK/"+p.name, func(t *testing.T) {
			e := MustEnv(t, gqlws.Config{})
			c := e.MustConnect(t, p)
			c.MustStart(t, "q", "{ hello }")
			c.MustResult(t, "q", `{"data":{"hello":"world"}}`)
			c.MustReadType(t, "q", "complete")
		})
	}

	for _, p := range protocols {
		t.Run("ValidationError/"+p.name, func(t *testing.T) {
			e := MustEnv(t, gqlws.Config{})
			c := e.MustConnect(t, p)
			c.MustStart(t, "q", "bad")
			errs := c.MustErrors(t, "q")
			if len(errs) != 1 || errs[0].Message != "bad query" || errs[0].Extensions["code"] != "GRAPHQL_VALIDATION_FAILED" {
				t.Fatalf("errors %v, want the executor's validation error", errs)
			}
			// No complete after the error.
			c.MustStart(t, "q2", "{ hello }")
			c.MustResult(t, "q2", `{"data":{"hello":"world"}}`)
			c.MustReadType(t, "q2", "complete")
		})
	}

	// An error of the user's kind is a result, which complete follows.
	t.Run("UserError", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{})
		c := e.MustConnect(t, transportWS)
		c.MustStart(t, "q", "usererror")
		c.MustResult(t, "q", `{"errors":[{"message":"user error"}],"data":null}`)
		c.MustReadType(t, "q", "complete")
	})

	t.Run("InvalidPayload", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{})
		c := e.MustConnect(t, transportWS)
		c.MustSendRaw(t, `{"id":"q","type":"subscribe","payload":"{ hello }"}`)
		if errs := c.MustErrors(t, "q"); errs[0].Message != "invalid json" {
			t.Fatalf("errors %v, want invalid json", errs)
		}
	})

	t.Run("Panic", func(t *testing.T) {
		e := MustEnv(t, gqlws.Config{})
		c := e.MustConnect(t, transportWS)
		c.MustStart(t, "q", "panic")
		if errs := c.MustErrors(t, "q"); errs[0].Message != "internal error" || errs[0].Extensions["code"] != "INTERNAL" {
			t.Fatalf("errors %v, want internal error", errs)
		}
		// The socket goes on.
		c.MustStart(t, "q2", "{ hello }")
		c.MustResult(t, "q2", `{"data":{"hello":"world"}}`)
	})
}

// TestContext checks the helpers a resolver calls: with a context of no
// socket they do nothing.
func TestContext(t *testing.T) {
	bg := context.Background()
	if gqlws.Notifier(bg) != nil {
		t.Fatalf("Notifier of a context of no socket is not nil")
	}
	if gqlws.AddError(bg, gqlerror.Errorf("x")) {
		t.Fatalf("AddError of a context of no socket = true")
	}
	if gqlws.OnSocket(bg) {
		t.Fatalf("OnSocket of a context of no socket = true")
	}
	if gqlws.Close(bg, 4401, "Unauthorized") {
		t.Fatalf("Close of a context of no socket = true")
	}

	e := MustEnv(t, gqlws.Config{})
	c := e.MustConnect(t, transportWS)
	if gqlws.OnSocket(e.MustInitContext(t)) {
		t.Fatalf("OnSocket of Init's context = true, want false: it runs no operation")
	}
	sub := c.MustSubscribe(t, e, "1")
	if !gqlws.OnSocket(sub.Ctx) {
		t.Fatalf("OnSocket of a subscription's context = false")
	}
}
