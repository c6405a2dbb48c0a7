package httpapi_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/httpapi"
	"github.com/pulse-social/pulse/internal/limit"
	"github.com/pulse-social/pulse/internal/pushconn"
	"github.com/pulse-social/pulse/internal/social"
)

// countingBroker counts each subscription's Close calls. With gate set,
// the next Subscribe closes inGate and waits for gate to close.
type countingBroker struct {
	social.Broker

	mu     sync.Mutex
	subs   []*countedSub
	gate   chan struct{}
	inGate chan struct{}
}

type countedSub struct {
	social.FuncSubscription
	closes atomic.Int32
}

func (s *countedSub) Close() {
	s.closes.Add(1)
	s.FuncSubscription.Close()
}

func (b *countingBroker) Subscribe(ctx context.Context, userID int64) (social.FuncSubscription, error) {
	b.mu.Lock()
	gate, inGate := b.gate, b.inGate
	b.gate = nil
	b.mu.Unlock()
	if gate != nil {
		close(inGate)
		<-gate
	}
	sub, err := b.Broker.Subscribe(ctx, userID)
	if err != nil {
		return nil, err
	}
	c := &countedSub{FuncSubscription: sub}
	b.mu.Lock()
	b.subs = append(b.subs, c)
	b.mu.Unlock()
	return c, nil
}

// live returns how many subscriptions are open, and an error for one
// closed more than once.
func (b *countingBroker) live() (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for i, s := range b.subs {
		switch c := s.closes.Load(); {
		case c == 0:
			n++
		case c > 1:
			return 0, fmt.Errorf("subscription %d closed %d times", i, c)
		}
	}
	return n, nil
}

// TestSocketAdmissionReleased ends GraphQL sockets in every way they end
// and checks that each gives back, once, exactly what it held: its slot
// of its address, its slot of its user and its subscription, while
// another socket of the same user and address keeps its own.
func TestSocketAdmissionReleased(t *testing.T) {
	perAddress, perUser := limit.NewSlots(0), limit.NewSlots(2)
	shutdown, stop := context.WithCancel(context.Background())
	defer stop()
	sockets := pushconn.NewGroup(shutdown)
	broker := new(countingBroker)
	s := MustServerOpts(t, ServerOptions{
		Broker: func(b social.Broker) social.Broker {
			broker.Broker = b
			return broker
		},
		Configure: func(c *httpapi.Config) {
			c.Limits.SocketsPerAddress, c.Limits.SocketsPerUser = perAddress, perUser
			c.GraphQLSockets = sockets
		},
	})
	alice, id := s.MustRegister(t, "alice")
	userKey := limit.UserKey(mustID(t, id))
	// held waits until the sockets hold this many address slots, user
	// slots and subscriptions.
	held := func(t *testing.T, addr, user, subs int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			live, err := broker.live()
			if err != nil {
				t.Fatal(err)
			}
			a, u := perAddress.Held("127.0.0.1"), perUser.Held(userKey)
			if a == addr && u == user && live == subs {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the sockets hold %d address slots, %d user slots and %d subscriptions; want %d, %d and %d", a, u, live, addr, user, subs)
			}
		}
	}
	dial := func(t *testing.T, token string) *gqlSocket {
		return s.MustDial(t, "graphql-transport-ws", nil, map[string]any{"authorization": token})
	}

	other := dial(t, alice)
	other.MustAck()
	held(t, 1, 1, 1)

	t.Run("ClientClose", func(t *testing.T) {
		ws := dial(t, alice)
		ws.MustAck()
		held(t, 2, 2, 2)
		_ = ws.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		if code, _ := ws.MustClose(); code != websocket.CloseNormalClosure {
			t.Fatalf("closed with %d, want the client's 1000 echoed", code)
		}
		held(t, 1, 1, 1)
	})
	t.Run("ConnectionLost", func(t *testing.T) {
		ws := dial(t, alice)
		ws.MustAck()
		held(t, 2, 2, 2)
		ws.conn.Close()
		held(t, 1, 1, 1)
	})
	t.Run("InitRefused/BadToken", func(t *testing.T) {
		ws := dial(t, "nope")
		if code, _ := ws.MustClose(); code != 4403 {
			t.Fatalf("closed with %d, want 4403", code)
		}
		held(t, 1, 1, 1)
	})
	t.Run("InitRefused/TooManyForUser", func(t *testing.T) {
		second := dial(t, alice)
		second.MustAck()
		ws := dial(t, alice)
		if code, _ := ws.MustClose(); code != 4429 {
			t.Fatalf("closed with %d, want 4429", code)
		}
		held(t, 2, 2, 2)
		second.conn.Close()
		held(t, 1, 1, 1)
	})
	// The client goes while connection_init is subscribing: what the
	// init takes after the client left is given back too.
	t.Run("GoneDuringInit", func(t *testing.T) {
		gate, inGate := make(chan struct{}), make(chan struct{})
		broker.mu.Lock()
		broker.gate, broker.inGate = gate, inGate
		broker.mu.Unlock()
		ws := dial(t, alice)
		select {
		case <-inGate:
		case <-time.After(5 * time.Second):
			close(gate)
			t.Fatal("connection_init did not subscribe")
		}
		ws.conn.Close()
		close(gate)
		held(t, 1, 1, 1)
	})
	t.Run("Shutdown", func(t *testing.T) {
		ws := dial(t, alice)
		ws.MustAck()
		held(t, 2, 2, 2)
		stop()
		for _, c := range []*gqlSocket{ws, other} {
			if code, _ := c.MustClose(); code != websocket.CloseGoingAway {
				t.Fatalf("closed with %d, want 1001", code)
			}
		}
		held(t, 0, 0, 0)
	})
}

func mustID(tb testing.TB, id string) int64 {
	tb.Helper()
	var n int64
	if _, err := fmt.Sscan(id, &n); err != nil {
		tb.Fatalf("id %q: %v", id, err)
	}
	return n
}
