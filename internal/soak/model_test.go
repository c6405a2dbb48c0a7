package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// world is a group of users who only act on each other, with a model of
// what the rules of docs/api.md say each of them must be told. Worlds run
// concurrently; within one, actions run one after the other, so that the
// model is exact.
type world struct {
	s     *server
	rng   *rand.Rand
	names []string
	token []string

	follows  []map[int]bool // follows[a][b]: a follows b
	posts    []post
	comments []comment
	reaction map[string]string // "user|POST|id" -> current kind
	expect   []map[string]int  // per user: notification key -> count
	actions  int
}

type post struct {
	id     string
	author int
}

type comment struct {
	id, post, parent string // parent "" for a top-level comment
	author           int
	postAuthor       int
	parentAuthor     int
}

var kinds = []string{"LIKE", "LOVE", "LAUGH", "WOW", "SAD", "ANGRY"}

func newWorld(tb testing.TB, s *server, prefix string, id, users int, seed uint64) *world {
	w := &world{s: s, rng: rand.New(rand.NewPCG(seed, uint64(id))), reaction: map[string]string{}}
	for i := range users {
		name := fmt.Sprintf("%sw%du%d", prefix, id, i)
		w.names = append(w.names, name)
		w.token = append(w.token, s.MustRegister(tb, name))
		w.follows = append(w.follows, map[int]bool{})
		w.expect = append(w.expect, map[string]int{})
	}
	return w
}

func (w *world) tell(user int, action, actionID string, actor int, content, affected, affectedID *string) {
	if user == actor {
		return
	}
	w.expect[user][notificationKey(action, actionID, w.names[actor], content, affected, affectedID)]++
}

func ptr(s string) *string { return &s }

// body returns a text with characters that need escaping.
func (w *world) body(kind string) string {
	return fmt.Sprintf("%s %d \"quoted\" <b>&</b> é 😀 \\ %d", kind, w.actions, w.rng.IntN(1000))
}

// step does one random action and updates the model.
func (w *world) step() error {
	w.actions++
	a := w.rng.IntN(len(w.names))
	tok := w.token[a]
	switch r := w.rng.IntN(100); {
	case r < 15: // follow or unfollow
		b := w.rng.IntN(len(w.names))
		if b == a {
			return nil
		}
		if w.follows[a][b] && w.rng.IntN(3) == 0 {
			if err := w.s.Do(tok, `mutation($u:String!){unfollow(username:$u){id}}`, map[string]any{"u": w.names[b]}, "unfollow", nil); err != nil {
				return err
			}
			delete(w.follows[a], b)
			return nil
		}
		if w.follows[a][b] {
			return nil
		}
		if err := w.s.Do(tok, `mutation($u:String!){follow(username:$u){id}}`, map[string]any{"u": w.names[b]}, "follow", nil); err != nil {
			return err
		}
		w.follows[a][b] = true
		w.tell(b, "FOLLOWING", "*", a, nil, nil, nil)
	case r < 40 || len(w.posts) == 0: // post
		body := w.body("post")
		var p struct{ ID string }
		if err := w.s.Do(tok, `mutation($b:String!){createPost(body:$b){id}}`, map[string]any{"b": body}, "createPost", &p); err != nil {
			return err
		}
		w.posts = append(w.posts, post{p.ID, a})
		for f := range w.names {
			if w.follows[f][a] {
				w.tell(f, "POST", p.ID, a, ptr(body), nil, nil)
			}
		}
	case r < 70: // comment or reply
		p := w.posts[w.rng.IntN(len(w.posts))]
		var parent *comment
		if w.rng.IntN(2) == 0 {
			var ofPost []*comment
			for i := range w.comments {
				if w.comments[i].post == p.id {
					ofPost = append(ofPost, &w.comments[i])
				}
			}
			if len(ofPost) > 0 {
				parent = ofPost[w.rng.IntN(len(ofPost))]
			}
		}
		body := w.body("comment")
		vars := map[string]any{"p": p.id, "b": body}
		if parent != nil {
			vars["r"] = parent.id
		}
		var c struct{ ID string }
		if err := w.s.Do(tok, `mutation($p:ID!,$b:String!,$r:ID){createComment(postId:$p,body:$b,parentId:$r){id}}`, vars, "createComment", &c); err != nil {
			return err
		}
		nc := comment{id: c.ID, post: p.id, author: a, postAuthor: p.author, parentAuthor: -1}
		// The rules, from docs/api.md: the parent's author is told of a
		// reply; the post's author of a comment, unless they wrote the
		// parent (then the reply says it); nobody of their own action.
		if parent != nil {
			nc.parent, nc.parentAuthor = parent.id, parent.author
			w.tell(parent.author, "COMMENT", c.ID, a, ptr(body), ptr("COMMENT"), ptr(parent.id))
		}
		if parent == nil || parent.author != p.author {
			w.tell(p.author, "COMMENT", c.ID, a, ptr(body), ptr("POST"), ptr(p.id))
		}
		w.comments = append(w.comments, nc)
	default: // react
		kind := kinds[w.rng.IntN(len(kinds))]
		var target, targetID, field, query string
		var author int
		if len(w.comments) > 0 && w.rng.IntN(2) == 0 {
			c := w.comments[w.rng.IntN(len(w.comments))]
			target, targetID, author = "COMMENT", c.id, c.author
			field, query = "reactToComment", `mutation($t:ID!,$k:ReactionKind!){reactToComment(commentId:$t,kind:$k){id}}`
		} else {
			p := w.posts[w.rng.IntN(len(w.posts))]
			target, targetID, author = "POST", p.id, p.author
			field, query = "reactToPost", `mutation($t:ID!,$k:ReactionKind!){reactToPost(postId:$t,kind:$k){id}}`
		}
		var re struct{ ID string }
		if err := w.s.Do(tok, query, map[string]any{"t": targetID, "k": kind}, field, &re); err != nil {
			return err
		}
		key := strconv.Itoa(a) + "|" + target + "|" + targetID
		if w.reaction[key] == kind {
			return nil // the same kind again: nobody is told
		}
		w.reaction[key] = kind
		w.tell(author, "REACTION", re.ID, a, ptr(strings.ToLower(kind)), ptr(target), ptr(targetID))
	}
	return nil
}

// scenario is a run of worlds with sockets.
type scenario struct {
	worlds, usersPerWorld int
	actions               int           // in all
	plainPerUser          int           // plain sockets per user
	graphqlEvery          int           // one GraphQL socket per this many users; 0: none
	churn                 time.Duration // mean time between drops of a plain socket; 0: none
	timeout               time.Duration // for the whole run
	seed                  uint64
	prefix                string // of the usernames, to run several scenarios on one server
	// connected, if set, is called once every socket has been started,
	// before the first action, with the number of sockets.
	connected func(sockets int)
}

// outcome is what a scenario did.
type outcome struct {
	users, plainSockets, graphqlSockets int
	actions, expected, received         int
	resumes                             int
	actDuration, total                  time.Duration
}

// run runs the scenario against s and fails t on any lost, extra,
// duplicated or misordered notification on any socket.
func (sc scenario) run(t *testing.T, s *server) outcome {
	start := time.Now()
	deadline := start.Add(sc.timeout)
	out := outcome{}
	worlds := make([]*world, sc.worlds)
	var wg sync.WaitGroup
	for i := range worlds {
		wg.Go(func() { worlds[i] = newWorld(t, s, sc.prefix, i, sc.usersPerWorld, sc.seed) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	ctx, cancel := context.WithCancel(context.Background())
	var clients sync.WaitGroup
	type userClients struct {
		w       *world
		u       int
		plain   []*plainClient
		graphql *graphqlClient
	}
	var all []*userClients
	jitter := rand.New(rand.NewPCG(sc.seed, 99))
	var jmu sync.Mutex
	rnd := func(mean time.Duration) time.Duration {
		jmu.Lock()
		defer jmu.Unlock()
		return time.Duration(jitter.ExpFloat64() * float64(mean))
	}
	n := 0
	for _, w := range worlds {
		for u := range w.names {
			uc := &userClients{w: w, u: u}
			for range sc.plainPerUser {
				c := &plainClient{addr: s.Addr, token: w.token[u]}
				uc.plain = append(uc.plain, c)
				clients.Go(func() { c.run(ctx, sc.churn, rnd) })
			}
			if sc.graphqlEvery > 0 && n%sc.graphqlEvery == 0 {
				uc.graphql = &graphqlClient{addr: s.Addr, token: w.token[u]}
				clients.Go(func() { uc.graphql.run(ctx) })
				out.graphqlSockets++
			}
			out.plainSockets += sc.plainPerUser
			n++
			all = append(all, uc)
		}
	}
	out.users = n
	defer func() {
		cancel()
		clients.Wait()
	}()

	if sc.connected != nil {
		sc.connected(out.plainSockets + out.graphqlSockets)
	}
	actStart := time.Now()
	errs := make(chan error, len(worlds))
	for i, w := range worlds {
		per := sc.actions / len(worlds)
		if i < sc.actions%len(worlds) {
			per++
		}
		wg.Go(func() {
			for range per {
				if err := w.step(); err != nil {
					errs <- fmt.Errorf("world %d action %d: %w", i, w.actions, err)
					return
				}
				if time.Now().After(deadline) {
					errs <- fmt.Errorf("world %d: out of time after %d actions", i, w.actions)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	out.actDuration = time.Since(actStart)
	for _, w := range worlds {
		out.actions += w.actions
	}
	if t.Failed() {
		t.FailNow()
	}

	// Wait until every socket has as many notifications as its user must
	// get, then a little longer, to see that nothing more comes.
	want := func(uc *userClients) int {
		total := 0
		for _, c := range uc.w.expect[uc.u] {
			total += c
		}
		return total
	}
	lastTotal, lastProgress := -1, time.Now()
	for {
		behind, total := 0, 0
		for _, uc := range all {
			for _, c := range uc.plain {
				fs, _ := c.snapshot()
				total += len(fs)
				if len(fs) < want(uc) {
					behind++
				}
			}
			if uc.graphql != nil {
				fs, _ := uc.graphql.snapshot()
				total += len(fs)
				if len(fs) < want(uc) {
					behind++
				}
			}
		}
		if behind == 0 {
			break
		}
		if total != lastTotal {
			lastTotal, lastProgress = total, time.Now()
		}
		if time.Now().After(deadline) || time.Since(lastProgress) > 15*time.Second {
			t.Errorf("%d sockets still short of their notifications after 15 s without progress (or out of time)", behind)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	clients.Wait()

	reported := 0
	check := func(what string, uc *userClients, fs []frame, cerrs []error) {
		out.received += len(fs)
		got := map[string]int{}
		for _, f := range fs {
			got[f.Key]++
		}
		diff := diffCounts(uc.w.expect[uc.u], got)
		if (len(diff) > 0 || len(cerrs) > 0) && reported < 10 {
			reported++
			t.Errorf("%s of %s: %d received, %d expected; errors %v; differences:\n%s",
				what, uc.w.names[uc.u], len(fs), want(uc), cerrs, strings.Join(diff, "\n"))
		} else if len(diff) > 0 || len(cerrs) > 0 {
			t.Fail()
		}
	}
	for _, uc := range all {
		out.expected += want(uc) * len(uc.plain)
		for i, c := range uc.plain {
			fs, cerrs := c.snapshot()
			check(fmt.Sprintf("plain socket %d", i), uc, fs, cerrs)
			out.resumes += c.resumes
		}
		if uc.graphql != nil {
			out.expected += want(uc)
			fs, cerrs := uc.graphql.snapshot()
			check("GraphQL subscription", uc, fs, cerrs)
		}
	}
	out.total = time.Since(start)
	return out
}

// diffCounts lists the keys whose counts differ, at most 10.
func diffCounts(want, got map[string]int) []string {
	var out []string
	for k, n := range want {
		if got[k] != n {
			out = append(out, fmt.Sprintf("  %q: got %d, want %d", k, got[k], n))
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("  %q: got %d, want 0", k, n))
		}
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("  ... and %d more", len(out)-10))
	}
	return out
}

// envInt returns the integer in the environment variable, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
