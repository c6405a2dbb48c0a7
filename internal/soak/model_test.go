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
// concurrently; within one, actions run one after the other, each through
// one of the servers at random, so that the model is exact.
//
// A notification lives as long as its cause (undo and delete, issue 15):
// the model keeps, per user, the notifications still there (expect), which
// every socket must receive, and those removed since (removed), which a
// socket received only if it was open when they were added and before
// they were removed; so a socket gets each key at least expect and at most
// expect+removed times. Each user's inbox is modelled too, change by
// change, with its read state and groups (inbox_test.go).
type world struct {
	servers []*server
	s       *server // the one the action under way goes through
	rng     *rand.Rand
	names   []string
	token   []string
	inbox   []*inbox
	// followedOn is the UTC day of the follow under way's notification.
	followedOn time.Time

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

// told is one notification the model expects: its user, key and note.
type told struct {
	user int
	key  string
	n    *note
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

func newWorld(tb testing.TB, servers []*server, prefix string, id, users int, seed uint64) *world {
	s := servers[id%len(servers)]
	w := &world{servers: servers, s: s, rng: rand.New(rand.NewPCG(seed, uint64(id))), reaction: map[string]reaction{}, caused: map[string][]told{}}
	for i := range users {
		name := fmt.Sprintf("%sw%du%d", prefix, id, i)
		w.names = append(w.names, name)
		w.token = append(w.token, s.MustRegister(tb, name))
		w.follows = append(w.follows, map[int]bool{})
		w.expect = append(w.expect, map[string]int{})
		w.removed = append(w.removed, map[string]int{})
		w.inbox = append(w.inbox, &inbox{})
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
	n := &note{
		key:     key,
		group:   groupKey(action, actionID, affected, affectedID, w.followedOn),
		actor:   w.names[actor],
		message: w.names[actor] + " " + verbOf(action, affected),
	}
	w.inbox[user].pending = append(w.inbox[user].pending, op{"ADDED", n})
	w.caused[cause] = append(w.caused[cause], told{user, key, n})
}

// untell removes what cause told.
func (w *world) untell(cause string) {
	for _, t := range w.caused[cause] {
		w.expect[t.user][t.key]--
		w.removed[t.user][t.key]++
		w.inbox[t.user].pending = append(w.inbox[t.user].pending, op{"REMOVED", t.n})
	}
	delete(w.caused, cause)
}

func ptr(s string) *string { return &s }

// body returns a text with characters that need escaping.
func (w *world) body(kind string) string {
	return fmt.Sprintf("%s %d \"quoted\" <b>&</b> é 😀 \\ %d", kind, w.actions, w.rng.IntN(1000))
}

// step does one random action, through one of the servers, and updates
// the model.
func (w *world) step() error {
	w.actions++
	w.s = w.servers[w.rng.IntN(len(w.servers))]
	err := w.act()
	for _, ib := range w.inbox {
		ib.flush()
	}
	return err
}

// act does one random action.
func (w *world) act() error {
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
		before := time.Now().UTC()
		if err := w.s.Do(tok, `mutation($u:String!){follow(username:$u){id}}`, map[string]any{"u": w.names[b]}, "follow", nil); err != nil {
			return err
		}
		if err := w.followDay(b, before); err != nil {
			return err
		}
		w.follows[a][b] = true
		w.tell(b, "FOLLOWING", "*", a, nil, nil, nil, fmt.Sprintf("FOLLOWING|%d|%d", a, b))
	case r < 30 || len(w.posts) == 0: // post
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
	case r < 52: // comment or reply
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
	case r < 56: // delete a comment: its author or the post's
		return w.deleteComment(a)
	case r < 58: // delete a post of one's own
		return w.deletePost(a)
	case r < 64:
		return w.markRead(a)
	case r < 68:
		return w.markGroupRead(a)
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

// followDay sets followedOn to the UTC day of the notification that b was
// just told of a follow, begun at before: the client's day, unless the
// follow crossed midnight; then the notification's.
func (w *world) followDay(b int, before time.Time) error {
	w.followedOn = time.Now().UTC()
	if w.followedOn.Format(time.DateOnly) == before.Format(time.DateOnly) {
		return nil
	}
	var c struct {
		Edges []struct{ Node struct{ CreatedAt time.Time } }
	}
	if err := w.s.Do(w.token[b], `{notifications(first:1){edges{node{createdAt}}}}`, nil, "notifications", &c); err != nil {
		return err
	}
	if len(c.Edges) == 0 {
		return fmt.Errorf("%s has no notification of a follow", w.names[b])
	}
	w.followedOn = c.Edges[0].Node.CreatedAt
	return nil
}

// markRead has a mark read every notification up to the k-th newest, as
// a client does that shows the newest k: markNotificationsRead(upTo:)
// leaves the k-1 newer ones unread. It checks that the newest k are the
// model's.
func (w *world) markRead(a int) error {
	var c struct {
		Edges []struct{ Node storedNotification }
	}
	if err := w.s.Do(w.token[a], `query($k:Int!){notifications(first:$k){edges{node{id action actionId byUser actionContent affected affectedId}}}}`,
		map[string]any{"k": 1 + w.rng.IntN(4)}, "notifications", &c); err != nil {
		return err
	}
	ib := w.inbox[a]
	if len(c.Edges) > len(ib.notes) {
		return fmt.Errorf("%s has %d notifications or more, the model %d", w.names[a], len(c.Edges), len(ib.notes))
	}
	if len(c.Edges) == 0 {
		return nil
	}
	for i, e := range c.Edges {
		n := e.Node
		if key, want := notificationKey(n.Action, n.ActionID, n.ByUser, n.ActionContent, n.Affected, n.AffectedID), ib.notes[len(ib.notes)-1-i].key; key != want {
			return fmt.Errorf("%s's notification %d, newest first, is %s; the model's %s", w.names[a], i, key, want)
		}
	}
	var changed int
	if err := w.s.Do(w.token[a], `mutation($u:ID!){markNotificationsRead(all:true,upTo:$u)}`,
		map[string]any{"u": c.Edges[len(c.Edges)-1].Node.ID}, "markNotificationsRead", &changed); err != nil {
		return err
	}
	upTo := ib.notes[len(ib.notes)-len(c.Edges)]
	read := ib.unread(func(n *note) bool { return slices.Index(ib.notes, n) <= slices.Index(ib.notes, upTo) })
	return w.read(a, read, changed, "markNotificationsRead")
}

// markGroupRead has a mark one of their newest groups read.
func (w *world) markGroupRead(a int) error {
	var c struct {
		Edges []struct{ Node struct{ Key string } }
	}
	if err := w.s.Do(w.token[a], `{notificationGroups(first:5){edges{node{key}}}}`, nil, "notificationGroups", &c); err != nil {
		return err
	}
	if len(c.Edges) == 0 {
		return nil
	}
	key := c.Edges[w.rng.IntN(len(c.Edges))].Node.Key
	var changed int
	if err := w.s.Do(w.token[a], `mutation($k:ID!){markNotificationGroupRead(key:$k)}`, map[string]any{"k": key}, "markNotificationGroupRead", &changed); err != nil {
		return err
	}
	ib := w.inbox[a]
	return w.read(a, ib.unread(func(n *note) bool { return n.group == key }), changed, "markNotificationGroupRead("+key+")")
}

// read marks notes read in a's inbox, which call said it changed.
func (w *world) read(a int, notes []*note, changed int, call string) error {
	if changed != len(notes) {
		return fmt.Errorf("%s of %s changed %d notifications; the model %d", call, w.names[a], changed, len(notes))
	}
	for _, n := range notes {
		w.inbox[a].pending = append(w.inbox[a].pending, op{"READ", n})
	}
	return nil
}

// scenario is a run of worlds with sockets.
type scenario struct {
	worlds, usersPerWorld int
	actions               int           // in all
	plainPerUser          int           // plain sockets per user
	changesPerUser        int           // plain sockets with ?changes=1 per user
	graphqlEvery          int           // one GraphQL notifications socket per this many users; 0: none
	inboxChangesEvery     int           // one GraphQL inboxChanges socket per this many users; 0: none
	churn                 time.Duration // mean time between drops of a plain socket; 0: none
	churnGraphQL          bool          // GraphQL sockets drop too
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
	changeSockets                       int // of plainSockets and graphqlSockets, those on the change stream
	actions, expected, received         int
	changes                             int // received by the change sockets
	resumes                             int
	actDuration, total                  time.Duration
}

// userClients are one user's sockets.
type userClients struct {
	w       *world
	u       int
	plain   []*plainClient // additions only
	changes []*plainClient // ?changes=1
	graphql []*graphqlClient
}

// notifications are the sockets that receive notifications alone.
func (uc *userClients) notifications() []*received {
	var out []*received
	for _, c := range uc.plain {
		out = append(out, &c.received)
	}
	for _, c := range uc.graphql {
		if !c.changes {
			out = append(out, &c.received)
		}
	}
	return out
}

// changeStreams are the sockets that receive the change stream.
func (uc *userClients) changeStreams() []*received {
	var out []*received
	for _, c := range uc.changes {
		out = append(out, &c.received)
	}
	for _, c := range uc.graphql {
		if c.changes {
			out = append(out, &c.received)
		}
	}
	return out
}

// run runs the scenario against servers (sockets and actions spread over
// them) and fails t on any lost, extra, duplicated or misordered
// notification or change on any socket, and on any notification, unread
// count or group that the servers store otherwise than the model.
func (sc scenario) run(t *testing.T, servers ...*server) outcome {
	start := time.Now()
	deadline := start.Add(sc.timeout)
	out := outcome{}
	worlds := make([]*world, sc.worlds)
	var wg sync.WaitGroup
	for i := range worlds {
		wg.Go(func() { worlds[i] = newWorld(t, servers, sc.prefix, i, sc.usersPerWorld, sc.seed) })
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var addrs []string
	for _, s := range servers {
		addrs = append(addrs, s.Addr)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var clients sync.WaitGroup
	var all []*userClients
	jitter := rand.New(rand.NewPCG(sc.seed, 99))
	var jmu sync.Mutex
	rnd := func(mean time.Duration) time.Duration {
		jmu.Lock()
		defer jmu.Unlock()
		return time.Duration(jitter.ExpFloat64() * float64(mean))
	}
	n, sockets := 0, 0
	// Each socket starts on the next server, and goes on round them.
	from := func() []string {
		sockets++
		i := sockets % len(addrs)
		return append(slices.Clone(addrs[i:]), addrs[:i]...)
	}
	for _, w := range worlds {
		for u := range w.names {
			uc := &userClients{w: w, u: u}
			for i := range sc.plainPerUser + sc.changesPerUser {
				c := &plainClient{addrs: from(), token: w.token[u], changes: i >= sc.plainPerUser}
				if c.changes {
					uc.changes = append(uc.changes, c)
				} else {
					uc.plain = append(uc.plain, c)
				}
				clients.Go(func() { c.run(ctx, sc.churn, rnd) })
			}
			for i, every := range []int{sc.graphqlEvery, sc.inboxChangesEvery} {
				if every > 0 && n%every == 0 {
					c := &graphqlClient{addrs: from(), token: w.token[u], changes: i == 1}
					uc.graphql = append(uc.graphql, c)
					churn := sc.churn
					if !sc.churnGraphQL {
						churn = 0
					}
					clients.Go(func() { c.run(ctx, churn, rnd) })
				}
			}
			out.plainSockets += len(uc.plain) + len(uc.changes)
			out.graphqlSockets += len(uc.graphql)
			out.changeSockets += len(uc.changeStreams())
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

	// Wait until every socket has every notification still there, or has
	// passed every change, then a little longer, to see that nothing more
	// comes.
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
			for _, r := range uc.notifications() {
				fs, _ := r.snapshot()
				total += len(fs)
				if short(uc.w.expect[uc.u], fs) {
					behind++
				}
			}
			ib := uc.w.inbox[uc.u]
			for _, r := range uc.changeStreams() {
				got := r.snapshotChanges()
				total += len(got)
				if passed, problems := ib.align(got, map[int64]*note{}); passed < len(ib.changes) && len(problems) == 0 {
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
			t.Errorf("%d sockets still short of their notifications or changes after 15 s without progress (or out of time)", behind)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	clients.Wait()

	reported := 0
	report := func(format string, args ...any) {
		if reported++; reported <= 10 {
			t.Errorf(format, args...)
		} else {
			t.Fail()
		}
	}
	for _, uc := range all {
		name := uc.w.names[uc.u]
		for i, r := range uc.notifications() {
			fs, cerrs := r.snapshot()
			out.received += len(fs)
			out.expected += want(uc)
			out.resumes += r.resumes
			got := map[string]int{}
			for _, f := range fs {
				got[f.Key]++
			}
			if diff := diffCounts(uc.w.expect[uc.u], uc.w.removed[uc.u], got); len(diff) > 0 || len(cerrs) > 0 {
				report("notifications socket %d of %s: %d received, %d expected; errors %v; differences:\n%s",
					i, name, len(fs), want(uc), cerrs, strings.Join(diff, "\n"))
			}
		}
		// Every change socket of the user is the model's change list, and
		// they all agree on which id is which notification.
		ib, bound := uc.w.inbox[uc.u], map[int64]*note{}
		for i, r := range uc.changeStreams() {
			got := r.snapshotChanges()
			_, cerrs := r.snapshot()
			out.changes += len(got)
			out.resumes += r.resumes
			passed, problems := ib.align(got, bound)
			if passed < len(ib.changes) {
				problems = append(problems, fmt.Sprintf("it passed %d of the model's %d changes", passed, len(ib.changes)))
			}
			if len(problems) > 0 || len(cerrs) > 0 {
				report("change socket %d of %s: %d changes received; errors %v; differences:\n%s",
					i, name, len(got), cerrs, strings.Join(problems[:min(len(problems), 10)], "\n"))
			}
		}
	}

	// Every inbox is what the model says is still there, read or not, and
	// grouped as the model groups it, on every server.
	for i, uc := range all {
		if reported >= 10 {
			break
		}
		s, name, ib := servers[i%len(servers)], uc.w.names[uc.u], uc.w.inbox[uc.u]
		ns, unread := s.MustInbox(t, uc.w.token[uc.u])
		got, model := map[string]bool{}, map[string]bool{}
		for _, n := range ns {
			got[notificationKey(n.Action, n.ActionID, n.ByUser, n.ActionContent, n.Affected, n.AffectedID)] = n.Read
		}
		for _, n := range ib.notes {
			model[n.key] = n.read
		}
		if fmt.Sprint(got) != fmt.Sprint(model) {
			report("stored notifications of %s (key: read) differ from the model:\n got %v\nwant %v", name, got, model)
		}
		if want := len(ib.unread(func(*note) bool { return true })); unread != want {
			report("unreadCount of %s is %d; the model's %d", name, unread, want)
		}
		var views []groupView
		for _, g := range s.MustGroups(t, uc.w.token[uc.u]) {
			views = append(views, groupView{g.Key, g.NotificationCount, g.ActorCount, g.UnreadCount, g.SampleActors, g.Message})
		}
		if d := diffGroups(ib.groups(), views); d != "" {
			report("notificationGroups of %s differ from the model:\n%s", name, d)
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
