package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sseEvent is one event of a server-sent event stream; a comment is one
// with Comment set, the retry field one with Retry set.
type sseEvent struct {
	ID, Event, Data string
	Retry           string
	Comment         string
}

// sseClient reads one /events stream; a goroutine of its own parses it
// until the response ends or the test does.
type sseClient struct {
	Resp   *http.Response
	events chan sseEvent
	done   chan struct{} // closed when the stream has ended
}

// sseDialer opens streams.
type sseDialer struct{}

// dial opens GET /events on addr with query (without "?") and header; it
// returns the client once the response's headers came, whatever its
// status.
func (d sseDialer) dial(t *testing.T, addr, query string, header http.Header) *sseClient {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/events?"+query, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET /events?%s: %v", redactQuery(query), err)
	}
	c := &sseClient{Resp: resp, events: make(chan sseEvent), done: make(chan struct{})}
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		resp.Body.Close()
		<-c.done
	})
	go c.read(stop)
	return c
}

// redactQuery keeps a ticket out of a test's failure message.
func redactQuery(q string) string {
	if i := strings.Index(q, "ticket="); i >= 0 {
		return q[:i] + "ticket=<redacted>"
	}
	return q
}

func (c *sseClient) read(stop chan struct{}) {
	defer close(c.done)
	if c.Resp.StatusCode != http.StatusOK {
		return
	}
	r := bufio.NewReader(c.Resp.Body)
	var ev sseEvent
	seen := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if seen {
				select {
				case c.events <- ev:
				case <-stop:
					return
				}
			}
			ev, seen = sseEvent{}, false
			continue
		}
		seen = true
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			ev.Comment = value
		case "id":
			ev.ID = value
		case "event":
			ev.Event = value
		case "data":
			ev.Data = value
		case "retry":
			ev.Retry = value
		}
	}
}

// Next returns the next event, comments and the retry field included; it
// fails the test if none comes within timeout or the stream ends first.
func (c *sseClient) Next(t *testing.T, timeout time.Duration) sseEvent {
	t.Helper()
	ev, ok := c.next(timeout)
	if !ok {
		t.Fatalf("no event within %v, or the stream ended (HTTP %s)", timeout, c.Resp.Status)
	}
	return ev
}

func (c *sseClient) next(timeout time.Duration) (sseEvent, bool) {
	select {
	case ev := <-c.events:
		return ev, true
	case <-c.done:
		return sseEvent{}, false
	case <-time.After(timeout):
		return sseEvent{}, false
	}
}

// Notification returns the next notification event (skipping comments
// and the retry field), or an "event: closed" one.
func (c *sseClient) Notification(t *testing.T, timeout time.Duration) sseEvent {
	t.Helper()
	for {
		ev := c.Next(t, timeout)
		if ev.Event != "" {
			return ev
		}
	}
}

// MustEnd fails unless the stream ends, with nothing but comments before,
// within timeout.
func (c *sseClient) MustEnd(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-c.events:
			if ev.Event != "" {
				t.Fatalf("got %+v, want the end of the stream", ev)
			}
		case <-c.done:
			return
		case <-deadline:
			t.Fatalf("the stream did not end within %v", timeout)
		}
	}
}

// MustClosed fails unless the next event is "event: closed" with reason,
// and the stream then ends.
func (c *sseClient) MustClosed(t *testing.T, timeout time.Duration, reason string) {
	t.Helper()
	ev := c.Notification(t, timeout)
	if ev.Event != "closed" || ev.Data != fmt.Sprintf(`{"reason":%q}`, reason) || ev.ID != "" {
		t.Fatalf("got %+v, want event: closed with reason %q", ev, reason)
	}
	c.MustEnd(t, 5*time.Second)
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// mustFrame decodes an event's data, the plain socket's frame.
func mustFrame(t *testing.T, ev sseEvent) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
		t.Fatalf("data of %+v: %v", ev, err)
	}
	return m
}

// wantIDs fails unless the next notification events carry ids, in order,
// each with the frame whose id it is.
func (c *sseClient) wantIDs(t *testing.T, name string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		ev := c.Notification(t, 10*time.Second)
		if ev.Event != "notification" || ev.ID != id || mustFrame(t, ev)["id"] != id {
			t.Fatalf("%s: got %+v, want notification %s", name, ev, id)
		}
	}
}

// wantNothing fails if a notification comes within d.
func (c *sseClient) wantNothing(t *testing.T, name string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev := <-c.events:
			if ev.Event != "" {
				t.Fatalf("%s: got %+v, want nothing more", name, ev)
			}
		case <-deadline:
			return
		}
	}
}

// socialScene is alice with a post that bob comments on: each comment is
// one notification of alice's.
type socialScene struct {
	p          *process
	alice, bob string
	post       string
}

func newScene(t *testing.T, p *process) *socialScene {
	s := &socialScene{p: p, alice: p.MustRegister(t, "alice"), bob: p.MustRegister(t, "bob")}
	var post struct{ ID string }
	p.MustDo(t, s.alice, `mutation{createPost(body:"hello"){id}}`, nil, "createPost", &post)
	s.post = post.ID
	return s
}

// comment has bob comment through p; it returns the notification's id.
func (s *socialScene) comment(t *testing.T, p *process, body string) string {
	t.Helper()
	p.MustDo(t, s.bob, `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`, map[string]any{"p": s.post, "b": body}, "createComment", nil)
	var c struct {
		Edges []struct{ Node struct{ ID string } }
	}
	p.MustDo(t, s.alice, `{notifications(first:1){edges{node{id}}}}`, nil, "notifications", &c)
	return c.Edges[0].Node.ID
}

// TestEventsResume opens /events with the header and with a ticket,
// resuming by Last-Event-ID, by ?after= and by both (the header wins),
// and checks the response's headers, its first field, the live events
// and the refusals.
func TestEventsResume(t *testing.T) {
	p := MustStart(t, filepath.Join(t.TempDir(), "pulse.db"), "")
	s := newScene(t, p)
	n1, n2, n3 := s.comment(t, p, "one"), s.comment(t, p, "two"), s.comment(t, p, "three")
	var d sseDialer

	byHeader := d.dial(t, p.Addr, "", http.Header{"Authorization": {"Bearer " + s.alice}, "Last-Event-Id": {n1}})
	h := byHeader.Resp.Header
	if byHeader.Resp.StatusCode != http.StatusOK || h.Get("Content-Type") != "text/event-stream" ||
		h.Get("Cache-Control") != "no-store" || h.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("status %d, headers %v", byHeader.Resp.StatusCode, h)
	}
	if ev := byHeader.Next(t, 5*time.Second); ev.Retry != "3000" {
		t.Fatalf("first field %+v, want retry: 3000", ev)
	}
	byHeader.wantIDs(t, "Last-Event-ID", n2, n3)

	byQuery := d.dial(t, p.Addr, "after="+n2+"&ticket="+p.mustTicket(s.alice), nil)
	byQuery.wantIDs(t, "?after= with a ticket", n3)

	both := d.dial(t, p.Addr, "after=0", http.Header{"Authorization": {"Bearer " + s.alice}, "Last-Event-Id": {n2}})
	both.wantIDs(t, "Last-Event-ID over ?after=", n3)

	live := d.dial(t, p.Addr, "", bearer(s.alice))
	if ev := live.Next(t, 5*time.Second); ev.Retry != "3000" {
		t.Fatalf("first field %+v", ev)
	}
	n4 := s.comment(t, p, "four")
	for _, c := range []*sseClient{byHeader, byQuery, both, live} {
		c.wantIDs(t, "live", n4)
		c.wantNothing(t, "after the live one", 300*time.Millisecond)
	}

	changes := d.dial(t, p.Addr, "changes=1&after="+n3, bearer(s.alice))
	ev := changes.Notification(t, 5*time.Second)
	if f := mustFrame(t, ev); ev.Event != "notification" || ev.ID != n4 || f["cursor"] != n4 || f["type"] != "notification" {
		t.Fatalf("?changes=1: %+v", ev)
	}
	p.MustDo(t, s.alice, `mutation{markNotificationsRead(all:true)}`, nil, "markNotificationsRead", nil)
	ev = changes.Notification(t, 5*time.Second)
	if f := mustFrame(t, ev); ev.Event != "read" || f["type"] != "read" || f["cursor"] != ev.ID || f["unread_count"] != 0.0 {
		t.Fatalf("?changes=1 after markNotificationsRead: %+v", ev)
	}

	ticket := p.mustTicket(s.alice)
	_ = d.dial(t, p.Addr, "ticket="+ticket, nil)
	for name, c := range map[string]*sseClient{
		"no credential": d.dial(t, p.Addr, "", nil),
		"a bad token":   d.dial(t, p.Addr, "", bearer("bad-token")),
		"a used ticket": d.dial(t, p.Addr, "ticket="+ticket, nil),
	} {
		wantRefused(t, name, c, http.StatusUnauthorized, "UNAUTHENTICATED")
	}
	wantRefused(t, "a bad after", d.dial(t, p.Addr, "after=x", bearer(s.alice)), http.StatusBadRequest, "BAD_USER_INPUT")
	wantRefused(t, "a bad Last-Event-ID", d.dial(t, p.Addr, "after=1", http.Header{"Authorization": {"Bearer " + s.alice}, "Last-Event-Id": {"-1"}}),
		http.StatusBadRequest, "BAD_USER_INPUT")
}

// wantRefused fails unless c's response is status with a JSON body of code.
func wantRefused(t *testing.T, name string, c *sseClient, status int, code string) {
	t.Helper()
	if c.Resp.StatusCode != status {
		t.Fatalf("%s: HTTP %s, want %d", name, c.Resp.Status, status) // an open stream's body never ends
	}
	body, _ := io.ReadAll(c.Resp.Body)
	var e struct{ Error, Code string }
	if c.Resp.StatusCode != status || c.Resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &e) != nil || e.Code != code || e.Error == "" {
		t.Fatalf("%s: %d %s, want %d with code %s", name, c.Resp.StatusCode, body, status, code)
	}
}

// TestEventsSessionEnd: logout ends the session's stream, and no other,
// with "event: closed" and "logged out"; a session's expiry ends its
// stream with "token expired".
func TestEventsSessionEnd(t *testing.T) {
	const ttl = 3 * time.Second
	p := MustStart(t, filepath.Join(t.TempDir(), "pulse.db"), "", "--token-ttl", ttl.String())
	var d sseDialer
	registered := time.Now()
	alice := p.MustRegister(t, "alice")
	var login struct{ AccessToken string }
	p.MustDo(t, "", `mutation{login(username:"alice",password:"password-alice"){accessToken}}`, nil, "login", &login)
	expiring := d.dial(t, p.Addr, "", bearer(alice))
	ending := d.dial(t, p.Addr, "ticket="+p.mustTicket(login.AccessToken), nil)
	p.MustDo(t, login.AccessToken, `mutation{logout}`, nil, "logout", nil)
	ending.MustClosed(t, time.Second, "logged out")
	expiring.MustClosed(t, ttl+5*time.Second, "token expired")
	if since := time.Since(registered); since < ttl {
		t.Fatalf("the stream ended %v after its token was issued, before its expiry (%v)", since, ttl)
	}
}

// TestEventsTooSlow: a client that stops reading while a burst of big
// notifications comes is ended as too slow (counted in the metrics); when
// it reads again it finds what was written before, then "event: closed"
// with "too slow". Resuming with Last-Event-ID then gives the rest: every
// notification once.
func TestEventsTooSlow(t *testing.T) {
	p := MustStart(t, filepath.Join(t.TempDir(), "pulse.db"), "", "--mutation-rate", "0", "--log-level", "warn")
	alice, bob := p.MustRegister(t, "alice"), p.MustRegister(t, "bob")
	p.MustDo(t, alice, `mutation{follow(username:"bob"){id}}`, nil, "follow", nil)
	slow := sseDialer{}.dial(t, p.Addr, "", bearer(alice))
	if ev := slow.Next(t, 5*time.Second); ev.Retry == "" {
		t.Fatalf("first field %+v", ev)
	}
	// Each post is a 5,000-byte notification: enough of them fill the
	// connection's buffers, then the stream's queue. The client reads
	// nothing meanwhile (its reader holds one event), so the burst must
	// end before the server's write times out (10 s).
	body := strings.Repeat("x", 5000)
	posts := 0
	for !slowCutoff(t, p) {
		if posts >= 5000 {
			t.Fatalf("not cut off after %d posts", posts)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 25 {
					if err := p.Do(bob, `mutation($b:String!){createPost(body:$b){id}}`, map[string]any{"b": body}, "createPost", nil); err != nil {
						t.Errorf("post: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		posts += 100
	}
	var got []string
	for {
		ev := slow.Notification(t, 15*time.Second)
		if ev.Event == "closed" {
			if ev.Data != `{"reason":"too slow"}` {
				t.Fatalf("closed with %s, want too slow", ev.Data)
			}
			break
		}
		got = append(got, ev.ID)
	}
	slow.MustEnd(t, 5*time.Second)
	if len(got) == 0 || len(got) == posts {
		t.Fatalf("the stream wrote %d of %d notifications before it ended", len(got), posts)
	}
	resumed := sseDialer{}.dial(t, p.Addr, "", http.Header{"Authorization": {"Bearer " + alice}, "Last-Event-Id": {got[len(got)-1]}})
	for len(got) < posts {
		got = append(got, resumed.Notification(t, 10*time.Second).ID)
	}
	resumed.wantNothing(t, "after every post", 300*time.Millisecond)
	wantEachOnce(t, got, posts)
}

// slowCutoff reports whether p counted an event stream cut off as too slow.
func slowCutoff(t *testing.T, p *process) bool {
	t.Helper()
	resp, err := http.Get("http://" + p.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.Contains(string(b), `pulse_slow_client_cutoffs_total{transport="sse"} 1`)
}

// wantEachOnce fails unless ids are n distinct increasing ids.
func wantEachOnce(t *testing.T, ids []string, n int) {
	t.Helper()
	if len(ids) != n {
		t.Fatalf("got %d notifications, want %d", len(ids), n)
	}
	prev := int64(0)
	for _, s := range ids {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= prev {
			t.Fatalf("ids %v are not increasing at %s", ids, s)
		}
		prev = id
	}
}

// TestEventsCapsOriginShutdown: streams count against the socket caps
// together with the websockets (per user and per client address: a
// stream over a cap is refused with 429, a websocket over it closed with
// 4429), a page on an origin that is not allowed is refused with 403, and
// a shutdown ends the open streams with "server shutting down".
func TestEventsCapsOriginShutdown(t *testing.T) {
	p := MustStart(t, filepath.Join(t.TempDir(), "pulse.db"), "",
		"--max-sockets-per-user", "2", "--max-sockets-per-address", "3", "--allowed-origins", "https://app.example")
	alice, bob := p.MustRegister(t, "alice"), p.MustRegister(t, "bob")
	var d sseDialer
	open := func(name, token string) *sseClient {
		t.Helper()
		c := d.dial(t, p.Addr, "", bearer(token))
		if ev := c.Next(t, 5*time.Second); ev.Retry == "" {
			t.Fatalf("%s: first field %+v (HTTP %s)", name, ev, c.Resp.Status)
		}
		return c
	}
	first := open("alice's first stream", alice)
	open("alice's second stream", alice)
	wantRefused(t, "alice's third stream, over her cap", d.dial(t, p.Addr, "", bearer(alice)), http.StatusTooManyRequests, "RATE_LIMITED")
	last := open("bob's stream, the address's third", bob)
	wantRefused(t, "bob's second stream, over the address's cap", d.dial(t, p.Addr, "", bearer(bob)), http.StatusTooManyRequests, "RATE_LIMITED")
	ws, err := p.DialPlain(bob, "")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.conn.Close()
	if _, err := ws.Next(5 * time.Second); closeCode(err) != 4429 {
		t.Fatalf("a plain socket over the address's cap, with three streams open: %v, want close 4429", err)
	}

	req, _ := http.NewRequest(http.MethodGet, "http://"+p.Addr+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+bob)
	req.Header.Set("Origin", "https://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a page on another origin: HTTP %s, want 403", resp.Status)
	}

	p.Stop()
	first.MustClosed(t, 5*time.Second, "server shutting down")
	last.MustClosed(t, 5*time.Second, "server shutting down")
}

// TestEventsAcrossRestart kills the server with SIGKILL in the middle of a
// burst of comments, restarts it on the same SQLite file, and resumes the
// stream there with Last-Event-ID: it ends with every notification the
// store holds, each once, in order.
func TestEventsAcrossRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "pulse.db")
	flags := []string{"--mutation-rate", "0", "--log-level", "warn"}
	p := MustStart(t, db, "", flags...)
	s := newScene(t, p)
	stream := sseDialer{}.dial(t, p.Addr, "after=0", bearer(s.alice))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var burst sync.WaitGroup
	for g := range 3 {
		burst.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				if p.Do(s.bob, `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`,
					map[string]any{"p": s.post, "b": fmt.Sprint("c", g, " ", i)}, "createComment", nil) != nil {
					return
				}
			}
		})
	}
	var got []string
	for len(got) < 20 {
		got = append(got, stream.Notification(t, 10*time.Second).ID)
	}
	p.Kill()
	cancel()
	burst.Wait()
	for {
		ev, ok := stream.next(5 * time.Second)
		if !ok {
			break
		}
		if ev.Event == "notification" {
			got = append(got, ev.ID)
		}
	}

	p2 := MustStart(t, db, "", flags...)
	resumed := sseDialer{}.dial(t, p2.Addr, "after=0", http.Header{"Authorization": {"Bearer " + s.alice}, "Last-Event-Id": {got[len(got)-1]}})
	last := s.comment(t, p2, "after the restart")
	for got[len(got)-1] != last {
		got = append(got, resumed.Notification(t, 10*time.Second).ID)
	}
	var stored []string
	var after *string
	for {
		var c struct {
			Edges    []struct{ Node struct{ ID string } }
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
		}
		p2.MustDo(t, s.alice, `query($a:String){notifications(first:100,after:$a){edges{node{id}} pageInfo{hasNextPage endCursor}}}`, map[string]any{"a": after}, "notifications", &c)
		for _, e := range c.Edges {
			stored = append(stored, e.Node.ID)
		}
		if !c.PageInfo.HasNextPage {
			break
		}
		after = c.PageInfo.EndCursor
	}
	slices.Reverse(stored) // the query lists the newest first
	if !slices.Equal(got, stored) {
		t.Fatalf("the stream got %d notifications, the store holds %d:\ngot    %v\nstored %v", len(got), len(stored), got, stored)
	}
}
