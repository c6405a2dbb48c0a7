package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
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
//
// A notification lives as long as its cause (undo and delete, issue 15):
// the model keeps, per user, the notifications still there (expect), which
// every socket must receive, and those removed since (removed), which a
// socket received only if it was open when they were added and before
// they were removed; so a socket gets each key at least expect and at most
// expect+removed times.
type world struct {
	s     *server
	rng   *rand.Rand
	names []string
	token []string

	follows  []map[int]bool // follows[a][b]: a follows b
	posts    []post
	comments []comment
	reaction map[string]reaction // "user|POST|id" -> the user's reaction there
	expect   []map[string]int    // per user: notification key -> count, still there
	removed  []map[string]int    // per user: notification key -> count, removed
	caused   map[string][]told   // cause ("REACTION|id", "FOLLOWING|a|b", ...) -> what it told
	actions  int
}

type reaction struct{ id, kind string }

// told is one notification the model expects: its user and key.
type told struct {
	user int
	key  string
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
	w := &world{s: s, rng: rand.New(rand.NewPCG(seed, uint64(id))), reaction: map[string]reaction{}, caused: map[string][]told{}}
	for i := range users {
		name := fmt.Sprintf("%sw%du%d", prefix, id, i)
		w.names = append(w.names, name)
		w.token = append(w.token, s.MustRegister(tb, name))
		w.follows = append(w.follows, map[int]bool{})
		w.expect = append(w.expect, map[string]int{})
		w.removed = append(w.removed, map[string]int{})
	}
	return w
}

// tell expects user to be told of actor's action, until cause is undone.
func (w *world) tell(user int, action, actionID string, actor int, content, affected, affectedID *string, cause string) {
	if user == actor {
		return
	}
	key := notificationKey(action, actionID, w.names[actor], content, affected, affectedID)
	w.expect[user][key]++
	w.caused[cause] = append(w.caused[cause], told{user, key})
}

// untell removes what cause told.
func (w *world) untell(cause string) {
	for _, t := range w.caused[cause] {
		w.expect[t.user][t.key]--
		w.removed[t.user][t.key]++
	}
	delete(w.caused, cause)
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
			w.untell(fmt.Sprintf("FOLLOWING|%d|%d", a, b))
			return nil
		}
		if w.follows[a][b] {
			return nil
		}
		if err := w.s.Do(tok, `mutation($u:String!){follow(username:$u){id}}`, map[string]any{"u": w.names[b]}, "follow", nil); err != nil {
			return err
		}
		w.follows[a][b] = true
		w.tell(b, "FOLLOWING", "*", a, nil, nil, nil, fmt.Sprintf("FOLLOWING|%d|%d", a, b))
	case r < 35 || len(w.posts) == 0: // post
		body := w.body("post")
		var p struct{ ID string }
		if err := w.s.Do(tok, `mutation($b:String!){createPost(body:$b){id}}`, map[string]any{"b": body}, "createPost", &p); err != nil {
			return err
		}
		w.posts = append(w.posts, post{p.ID, a})
		for f := range w.names {
			if w.follows[f][a] {
				w.tell(f, "POST", p.ID, a, ptr(body), nil, nil, "POST|"+p.ID)
			}
		}
	case r < 60: // comment or reply
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
			w.tell(parent.author, "COMMENT", c.ID, a, ptr(body), ptr("COMMENT"), ptr(parent.id), "COMMENT|"+c.ID)
		}
		if parent == nil || parent.author != p.author {
			w.tell(p.author, "COMMENT", c.ID, a, ptr(body), ptr("POST"), ptr(p.id), "COMMENT|"+c.ID)
		}
		w.comments = append(w.comments, nc)
	case r < 92: // delete a comment: its author or the post's
		return w.deleteComment(a)
	case r < 95: // delete a post of one's own
		return w.deletePost(a)
	default: // react, or take a reaction back
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
		key := strconv.Itoa(a) + "|" + target + "|" + targetID
		if old, ok := w.reaction[key]; ok && w.rng.IntN(3) == 0 {
			field = "removeReactionFrom" + map[string]string{"POST": "Post", "COMMENT": "Comment"}[target]
			arg := map[string]string{"POST": "postId", "COMMENT": "commentId"}[target]
			var had bool
			if err := w.s.Do(tok, `mutation($t:ID!){`+field+`(`+arg+`:$t)}`, map[string]any{"t": targetID}, field, &had); err != nil {
				return err
			}
			if !had {
				return fmt.Errorf("%s of an existing reaction = false", field)
			}
			delete(w.reaction, key)
			w.untell("REACTION|" + old.id)
			return nil
		}
		var re struct{ ID string }
		if err := w.s.Do(tok, query, map[string]any{"t": targetID, "k": kind}, field, &re); err != nil {
			return err
		}
		if w.reaction[key].kind == kind {
			return nil // the same kind again: nobody is told
		}
		// Another kind replaces the notification of the old one.
		w.untell("REACTION|" + re.ID)
		w.reaction[key] = reaction{re.ID, kind}
		w.tell(author, "REACTION", re.ID, a, ptr(strings.ToLower(kind)), ptr(target), ptr(targetID), "REACTION|"+re.ID)
	}
	return nil
}

// deleteComment has a delete a comment it may delete, if there is one, and
// forgets it, the replies below it and the reactions to them, and what they
// told.
func (w *world) deleteComment(a int) error {
	var mine []comment
	for _, c := range w.comments {
		if c.author == a || c.postAuthor == a {
			mine = append(mine, c)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	c := mine[w.rng.IntN(len(mine))]
	if err := w.s.Do(w.token[a], `mutation($c:ID!){deleteComment(id:$c)}`, map[string]any{"c": c.id}, "deleteComment", nil); err != nil {
		return err
	}
	w.forgetComments(map[string]bool{c.id: true})
	return nil
}

// deletePost has a delete a post of theirs, if there is one, and forgets
// it, its comments, the reactions to them, and what they told.
func (w *world) deletePost(a int) error {
	var mine []post
	for _, p := range w.posts {
		if p.author == a {
			mine = append(mine, p)
		}
	}
	if len(mine) == 0 {
		return nil
	}
	p := mine[w.rng.IntN(len(mine))]
	if err := w.s.Do(w.token[a], `mutation($p:ID!){deletePost(id:$p)}`, map[string]any{"p": p.id}, "deletePost", nil); err != nil {
		return err
	}
	gone := map[string]bool{}
	for _, c := range w.comments {
		if c.post == p.id {
			gone[c.id] = true
		}
	}
	w.forgetComments(gone)
	w.forgetReactions("POST", p.id)
	w.untell("POST|" + p.id)
	w.posts = slices.DeleteFunc(w.posts, func(q post) bool { return q.id == p.id })
	return nil
}

// forgetComments forgets the comments gone and every reply below them, the
// reactions to them and what they all told.
func (w *world) forgetComments(gone map[string]bool) {
	for grew := true; grew; {
		grew = false
		for _, c := range w.comments {
			if c.parent != "" && gone[c.parent] && !gone[c.id] {
				gone[c.id], grew = true, true
			}
		}
	}
	for id := range gone {
		w.forgetReactions("COMMENT", id)
		w.untell("COMMENT|" + id)
	}
	w.comments = slices.DeleteFunc(w.comments, func(c comment) bool { return gone[c.id] })
}

// forgetReactions forgets the reactions to one post or comment and what
// they told.
func (w *world) forgetReactions(target, id string) {
	for key, re := range w.reaction {
		if strings.HasSuffix(key, "|"+target+"|"+id) {
			delete(w.reaction, key)
			w.untell("REACTION|" + re.id)
		}
	}
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

	// Wait until every socket has every notification still there, then a
	// little longer, to see that nothing more comes.
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
				if short(uc.w.expect[uc.u], fs) {
					behind++
				}
			}
			if uc.graphql != nil {
				fs, _ := uc.graphql.snapshot()
				total += len(fs)
				if short(uc.w.expect[uc.u], fs) {
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
		diff := diffCounts(uc.w.expect[uc.u], uc.w.removed[uc.u], got)
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
	// Every inbox is what the model says is still there: removals and
	// deletions removed exactly what they caused.
	for _, uc := range all {
		if reported >= 10 {
			break
		}
		got := map[string]int{}
		for _, n := range s.MustAllNotifications(t, uc.w.token[uc.u]) {
			got[notificationKey(n.Action, n.ActionID, n.ByUser, n.ActionContent, n.Affected, n.AffectedID)]++
		}
		if diff := diffCounts(uc.w.expect[uc.u], nil, got); len(diff) > 0 {
			reported++
			t.Errorf("stored notifications of %s differ from the model:\n%s", uc.w.names[uc.u], strings.Join(diff, "\n"))
		}
	}
	out.total = time.Since(start)
	return out
}

// short reports whether fs lacks a notification of want.
func short(want map[string]int, fs []frame) bool {
	got := map[string]int{}
	for _, f := range fs {
		got[f.Key]++
	}
	for k, n := range want {
		if got[k] < n {
			return true
		}
	}
	return false
}

// diffCounts lists the keys received fewer times than they are there
// (want) or more than they were ever added (want+removed), at most 10.
func diffCounts(want, removed, got map[string]int) []string {
	var out []string
	for k, n := range want {
		if got[k] < n || got[k] > n+removed[k] {
			out = append(out, fmt.Sprintf("  %q: got %d, want %d to %d", k, got[k], n, n+removed[k]))
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok && n > removed[k] {
			out = append(out, fmt.Sprintf("  %q: got %d, want at most %d", k, n, removed[k]))
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
