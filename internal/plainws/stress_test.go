package plainws_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/social"
)

// TestStress has several users act on one recipient's content at once
// while several readers of the recipient disconnect and reconnect with
// ?after= the last id they saw, at random. Each reader must see every
// notification exactly once, in increasing id order.
func TestStress(t *testing.T) {
	const (
		actors    = 4
		actions   = 30 // per actor
		readers   = 4
		maxFrames = 15 // a reader reads 1 to maxFrames frames per connection
	)
	env := MustEnv(t, EnvOptions{})
	alice := env.MustRegister(t, "alice")
	post := env.MustPost(t, alice, "the post")
	comment := env.MustComment(t, alice, post.ID, "the comment", 0)
	// A comment of alice's for each reaction round, so that every reaction
	// is a new one and its notification stays.
	targets := make([]int64, actions/3)
	for i := range targets {
		targets[i] = env.MustComment(t, alice, post.ID, "target"+strconv.Itoa(i), 0).ID
	}

	var actorsDone atomic.Bool
	var wg sync.WaitGroup
	for a := range actors {
		u := env.MustRegister(t, fmt.Sprintf("actor%d", a))
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(a), 7))
			for i := range actions {
				var err error
				switch i % 3 {
				case 0:
					_, err = env.Svc.CreateComment(ctx, u.User, post.ID, "c"+strconv.Itoa(i), 0)
				case 1:
					_, err = env.Svc.CreateComment(ctx, u.User, post.ID, "reply"+strconv.Itoa(i), comment.ID)
				case 2:
					_, err = env.Svc.React(ctx, u.User, social.ContentComment, targets[i/3], social.ReactionLike)
				}
				if err != nil {
					t.Errorf("actor %d action %d: %v", a, i, err)
					return
				}
				time.Sleep(time.Duration(rng.IntN(4)) * time.Millisecond)
			}
		})
	}

	seen := make([][]int64, readers)
	var connections atomic.Int64
	var rwg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	var lastID atomic.Int64 // the greatest id, once the actors are done
	for r := range readers {
		rwg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 42))
			var last int64
			for time.Now().Before(deadline) {
				if actorsDone.Load() && last == lastID.Load() {
					return
				}
				connections.Add(1)
				var err error
				seen[r], last, err = readSome(env.URL(alice.Token, "?after="+strconv.FormatInt(last, 10)), seen[r], last, 1+rng.IntN(maxFrames), rng.IntN(2) == 0)
				if err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
			}
			t.Errorf("reader %d: not done by the deadline; last id %d", r, last)
		})
	}

	wg.Wait()
	all := env.MustNotifications(t, alice)
	if len(all) != actors*actions {
		t.Fatalf("alice has %d notifications, want %d", len(all), actors*actions)
	}
	lastID.Store(all[len(all)-1].ID)
	actorsDone.Store(true)
	rwg.Wait()

	t.Logf("%d notifications, %d connections", len(all), connections.Load())
	want := make([]int64, len(all))
	for i, n := range all {
		want[i] = n.ID
	}
	for r, ids := range seen {
		if !slices.Equal(ids, want) {
			t.Fatalf("reader %d saw %d ids %v, want %d ids %v", r, len(ids), ids, len(want), want)
		}
	}
}

// readSome connects to url, reads up to n notification frames (fewer if
// none comes for a while), checks that their ids go on increasing after
// last, and disconnects: politely or by dropping the connection.
func readSome(url string, seen []int64, last int64, n int, polite bool) ([]int64, int64, error) {
	c, err := dial(url)
	if err != nil {
		return seen, last, err
	}
	defer c.Close()
	for range n {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, b, err := c.ReadMessage()
		if err != nil {
			if websocket.IsUnexpectedCloseError(err) {
				return seen, last, err
			}
			break // quiet for a while: reconnect
		}
		var f struct{ ID string }
		if err := json.Unmarshal(b, &f); err != nil {
			return seen, last, fmt.Errorf("frame %s: %w", b, err)
		}
		id, err := strconv.ParseInt(f.ID, 10, 64)
		if err != nil {
			return seen, last, fmt.Errorf("frame %s: %w", b, err)
		}
		if id <= last {
			return seen, last, fmt.Errorf("got id %d after %d", id, last)
		}
		seen, last = append(seen, id), id
	}
	if polite {
		_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	}
	return seen, last, nil
}
