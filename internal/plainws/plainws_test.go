package plainws_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/fanout"
	"github.com/pulse-social/pulse/internal/plainws"
	"github.com/pulse-social/pulse/internal/social"
	"github.com/pulse-social/pulse/internal/testlog"
)

var ctx = context.Background()

// MustNotifications returns all of u's stored notifications, oldest first.
func (e *Env) MustNotifications(tb testing.TB, u User) []social.Notification {
	tb.Helper()
	var all []social.Notification
	var before int64
	for {
		page, err := e.Svc.Notifications(ctx, u.ID, social.MaxPageSize, before, false)
		if err != nil {
			tb.Fatalf("notifications: %v", err)
		}
		all = append(all, page.Items...)
		if !page.HasNextPage {
			break
		}
		before = page.Items[len(page.Items)-1].ID
	}
	slices.Reverse(all)
	return all
}

// MustPost creates a post by u.
func (e *Env) MustPost(tb testing.TB, u User, body string) social.Post {
	tb.Helper()
	p, err := e.Svc.CreatePost(ctx, u.User, body)
	if err != nil {
		tb.Fatalf("create post: %v", err)
	}
	return p
}

// MustComment comments on a post as u.
func (e *Env) MustComment(tb testing.TB, u User, postID int64, body string, parentID int64) social.Comment {
	tb.Helper()
	c, err := e.Svc.CreateComment(ctx, u.User, postID, body, parentID)
	if err != nil {
		tb.Fatalf("create comment: %v", err)
	}
	return c
}

func id(n int64) string { return strconv.FormatInt(n, 10) }

// checkFrame checks that frame is n's frame: every key of the API present,
// with the right value.
func checkFrame(tb testing.TB, frame map[string]any, n social.Notification) {
	tb.Helper()
	want := map[string]any{
		"id":             id(n.ID),
		"message":        n.Message,
		"action":         strings.ToLower(string(n.Action)),
		"action_id":      id(n.ActionID),
		"by_user":        n.ByUser,
		"action_content": nil,
		"affected":       nil,
		"affected_id":    nil,
		"created_at":     n.CreatedAt.UTC().Format(time.RFC3339Nano),
	}
	if n.ActionContent != "" {
		want["action_content"] = n.ActionContent
	}
	if n.Affected != "" {
		want["affected"] = strings.ToLower(string(n.Affected))
		want["affected_id"] = id(n.AffectedID)
	}
	if len(frame) != len(want) {
		tb.Fatalf("frame has keys %v, want exactly %v", keys(frame), keys(want))
	}
	for k, v := range want {
		got, ok := frame[k]
		if !ok {
			tb.Fatalf("frame %v has no key %q", frame, k)
		}
		if got != v {
			tb.Fatalf("frame[%q] = %#v, want %#v (frame %v)", k, got, v, frame)
		}
	}
	created, err := time.Parse(time.RFC3339Nano, frame["created_at"].(string))
	if err != nil || !created.Equal(n.CreatedAt) {
		tb.Fatalf("created_at %v: %v, want %v", frame["created_at"], err, n.CreatedAt)
	}
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestNotificationFrame(t *testing.T) {
	env := MustEnv(t, EnvOptions{})
	alice, bob, carol := env.MustRegister(t, "alice"), env.MustRegister(t, "Bob"), env.MustRegister(t, "carol")
	post := env.MustPost(t, alice, "hello")
	comment := env.MustComment(t, alice, post.ID, "my own comment", 0)
	c, _ := env.MustConnect(t, alice, "")

	r, err := env.Svc.React(ctx, bob.User, social.ContentComment, comment.ID, social.ReactionLaugh)
	if err != nil {
		t.Fatalf("react: %v", err)
	}
	frame := MustReadJSON(t, c)
	ns := env.MustNotifications(t, alice)
	if len(ns) != 1 {
		t.Fatalf("alice has %d notifications, want 1", len(ns))
	}
	checkFrame(t, frame, ns[0])
	// The API's example, literally.
	for k, v := range map[string]any{
		"message": "Bob reacted to your comment", "action": "reaction", "action_id": id(r.ID),
		"by_user": "Bob", "action_content": "laugh", "affected": "comment", "affected_id": id(comment.ID),
	} {
		if frame[k] != v {
			t.Fatalf("frame[%q] = %#v, want %#v", k, frame[k], v)
		}
	}

	if _, err := env.Svc.Follow(ctx, carol.User, "alice"); err != nil {
		t.Fatalf("follow: %v", err)
	}
	frame = MustReadJSON(t, c)
	ns = env.MustNotifications(t, alice)
	checkFrame(t, frame, ns[1])
	for _, k := range []string{"action_content", "affected", "affected_id"} {
		if v, ok := frame[k]; !ok || v != nil {
			t.Fatalf("following frame[%q] = %#v, want null", k, v)
		}
	}
	if frame["action"] != "following" || frame["message"] != "carol started following you" {
		t.Fatalf("following frame = %v", frame)
	}

	cm := env.MustComment(t, bob, post.ID, `quotes " and <tags> & ünïcode`, 0)
	frame = MustReadJSON(t, c)
	ns = env.MustNotifications(t, alice)
	checkFrame(t, frame, ns[2])
	if frame["action"] != "comment" || frame["affected"] != "post" || frame["affected_id"] != id(post.ID) || frame["action_id"] != id(cm.ID) {
		t.Fatalf("comment frame = %v", frame)
	}
	MustPong(t, c)
}

func TestResume(t *testing.T) {
	env := MustEnv(t, EnvOptions{})
	alice, bob := env.MustRegister(t, "alice"), env.MustRegister(t, "bob")
	post := env.MustPost(t, alice, "hello")
	for i := range 5 {
		env.MustComment(t, bob, post.ID, "comment "+id(int64(i)), 0)
	}
	stored := env.MustNotifications(t, alice)

	t.Run("After", func(t *testing.T) {
		c, backlog := env.MustConnect(t, alice, "?after="+id(stored[1].ID))
		if len(backlog) != 3 {
			t.Fatalf("backlog has %d frames, want 3", len(backlog))
		}
		for i, f := range backlog {
			checkFrame(t, f, stored[2+i])
		}
		env.MustComment(t, bob, post.ID, "live", 0)
		all := env.MustNotifications(t, alice)
		checkFrame(t, MustReadJSON(t, c), all[len(all)-1])
		MustPong(t, c)
	})
	t.Run("AfterZero", func(t *testing.T) {
		all := env.MustNotifications(t, alice)
		_, backlog := env.MustConnect(t, alice, "?after=0")
		if len(backlog) != len(all) {
			t.Fatalf("backlog has %d frames, want %d", len(backlog), len(all))
		}
		for i, f := range backlog {
			checkFrame(t, f, all[i])
		}
	})
	t.Run("AfterLatest", func(t *testing.T) {
		all := env.MustNotifications(t, alice)
		_, backlog := env.MustConnect(t, alice, "?after="+id(all[len(all)-1].ID))
		if len(backlog) != 0 {
			t.Fatalf("backlog = %v, want none", backlog)
		}
	})
	t.Run("NoAfter", func(t *testing.T) {
		c, backlog := env.MustConnect(t, alice, "")
		if len(backlog) != 0 {
			t.Fatalf("backlog = %v, want none", backlog)
		}
		env.MustComment(t, bob, post.ID, "live again", 0)
		all := env.MustNotifications(t, alice)
		checkFrame(t, MustReadJSON(t, c), all[len(all)-1])
	})
	t.Run("WithoutTrailingSlash", func(t *testing.T) {
		url := strings.TrimSuffix(env.URL(alice.Token, ""), "/") + "?after=0"
		c := MustDial(t, url)
		all := env.MustNotifications(t, alice)
		for _, n := range all {
			checkFrame(t, MustReadJSON(t, c), n)
		}
		MustPong(t, c)
	})
	t.Run("ResumeDuringLiveTraffic", func(t *testing.T) {
		// Notifications committed while the socket opens are neither lost
		// nor sent twice.
		last := env.MustNotifications(t, alice)
		after := last[len(last)-1].ID
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 20 {
				if _, err := env.Svc.CreateComment(ctx, bob.User, post.ID, "burst "+id(int64(i)), 0); err != nil {
					t.Errorf("comment: %v", err)
					return
				}
			}
		}()
		c := MustDial(t, env.URL(alice.Token, "?after="+id(after)))
		<-done
		all := env.MustNotifications(t, alice)
		var want []social.Notification
		for _, n := range all {
			if n.ID > after {
				want = append(want, n)
			}
		}
		for _, n := range want {
			checkFrame(t, MustReadJSON(t, c), n)
		}
		MustPong(t, c)
	})
}

func TestBadToken(t *testing.T) {
	env := MustEnv(t, EnvOptions{})
	alice := env.MustRegister(t, "alice")
	_, revoked, err := env.Svc.Login(ctx, "alice", "password123")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if err := env.Svc.Logout(MustAuth(t, env.Svc, revoked)); err != nil {
		t.Fatalf("logout: %v", err)
	}
	base := "ws" + strings.TrimPrefix(env.Server.URL, "http")
	tests := []struct{ name, url string }{
		{"Garbage", env.URL("not-a-token", "")},
		{"GarbageWithoutSlash", base + "/ws/not-a-token"},
		{"Empty", base + "/ws//"},
		{"Revoked", env.URL(revoked, "")},
		{"RevokedWithAfter", env.URL(revoked, "?after=0")},
		{"BadTokenAndBadAfter", env.URL("nope", "?after=x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			MustClose(t, MustDial(t, tt.url), 4401, "invalid access token")
		})
	}
	t.Run("NotFound", func(t *testing.T) {
		resp, err := http.Get(env.Server.URL + "/ws/a/b/")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
	})
	t.Run("NotAWebsocket", func(t *testing.T) {
		resp, err := http.Get(env.Server.URL + "/ws/" + alice.Token + "/")
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", resp.StatusCode)
		}
	})
}

func TestBadAfter(t *testing.T) {
	env := MustEnv(t, EnvOptions{})
	alice := env.MustRegister(t, "alice")
	for _, after := range []string{"abc", "-1", "", "1.5", "+3", "0x10", "99999999999999999999"} {
		t.Run(after, func(t *testing.T) {
			MustClose(t, MustDial(t, env.URL(alice.Token, "?after="+after)), websocket.ClosePolicyViolation,
				"invalid after: want a non-negative integer")
		})
	}
}

func TestOriginRefused(t *testing.T) {
	env := MustEnv(t, EnvOptions{})
	alice := env.MustRegister(t, "alice")
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(env.URL(alice.Token, ""), http.Header{"Origin": {"https://evil.example"}})
	if err == nil {
		c.Close()
		t.Fatalf("dial from another origin succeeded")
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial: %v (response %v), want 403", err, resp)
	}
}

func TestLogout(t *testing.T) {
	env := MustEnv(t, EnvOptions{})
	alice := env.MustRegister(t, "alice")
	_, other, err := env.Svc.Login(ctx, "alice", "password123")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	first, _ := env.MustConnect(t, alice, "")
	second, _ := env.MustConnect(t, alice, "?after=0")
	kept, _ := env.MustConnect(t, User{User: alice.User, Token: other}, "")

	if err := env.Svc.Logout(MustAuth(t, env.Svc, alice.Token)); err != nil {
		t.Fatalf("logout: %v", err)
	}
	MustClose(t, first, 4401, "logged out")
	MustClose(t, second, 4401, "logged out")
	MustPong(t, kept)
	MustClose(t, MustDial(t, env.URL(alice.Token, "")), 4401, "invalid access token")
}

func TestMessage(t *testing.T) {
	forEachReader(t, testMessage)
}

func testMessage(t *testing.T, opts EnvOptions) {
	env := MustEnv(t, opts)
	alice, bob := env.MustRegister(t, "alice"), env.MustRegister(t, "bob")
	a1, _ := env.MustConnect(t, alice, "")
	a2, _ := env.MustConnect(t, alice, "?after=0")
	b, _ := env.MustConnect(t, bob, "")

	const text = `hi "there" <b>`
	MustSend(t, a1, `{"message": "hi \"there\" <b>"}`)
	for _, c := range []*websocket.Conn{a1, a2} {
		if m := MustReadJSON(t, c); len(m) != 1 || m["message"] != text {
			t.Fatalf("got %v, want {message: %q}", m, text)
		}
	}
	MustPong(t, b)
	MustPong(t, a1)
	MustPong(t, a2)
}

func TestPing(t *testing.T) {
	forEachReader(t, testPing)
}

func testPing(t *testing.T, opts EnvOptions) {
	env := MustEnv(t, opts)
	c, _ := env.MustConnect(t, env.MustRegister(t, "alice"), "")
	for range 3 {
		MustPong(t, c)
	}
	// A websocket ping control frame is answered with a pong control frame.
	pongs := RecordPongs(c)
	if err := c.WriteControl(websocket.PingMessage, []byte("hello"), time.Now().Add(time.Second)); err != nil {
		t.Fatalf("ping: %v", err)
	}
	MustPong(t, c) // reading processes the control frame too
	MustHavePong(t, pongs, "hello")
	// The client's close is echoed.
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "done"), time.Now().Add(time.Second)); err != nil {
		t.Fatalf("close: %v", err)
	}
	MustClose(t, c, 4000, "done")
}

func TestBadFrames(t *testing.T) {
	env := MustEnv(t, EnvOptions{})
	c, _ := env.MustConnect(t, env.MustRegister(t, "alice"), "")
	tests := []struct {
		name  string
		typ   int
		frame string
		why   string
	}{
		{"NotJSON", websocket.TextMessage, "hello", "invalid JSON"},
		{"TrailingGarbage", websocket.TextMessage, `{"type":"ping"} x`, "invalid JSON"},
		{"Empty", websocket.TextMessage, "", "invalid JSON"},
		{"Array", websocket.TextMessage, `[{"type":"ping"}]`, "expected a JSON object"},
		{"String", websocket.TextMessage, `"ping"`, "expected a JSON object"},
		{"Number", websocket.TextMessage, `42`, "expected a JSON object"},
		{"Null", websocket.TextMessage, `null`, "expected a JSON object"},
		{"EmptyObject", websocket.TextMessage, `{}`, `expected {"message": "..."} or {"type": "ping"}`},
		{"UnknownKey", websocket.TextMessage, `{"text":"hi"}`, `expected {"message": "..."} or {"type": "ping"}`},
		{"MessageNotString", websocket.TextMessage, `{"message": 5}`, `"message" must be a string`},
		{"MessageObject", websocket.TextMessage, `{"message": {"a": 1}}`, `"message" must be a string`},
		{"MessageNull", websocket.TextMessage, `{"message": null}`, `"message" must be a string`},
		{"UnknownType", websocket.TextMessage, `{"type": "pong"}`, `unknown type: the only one is "ping"`},
		{"TypeNotString", websocket.TextMessage, `{"type": 1}`, `"type" must be a string`},
		{"Binary", websocket.BinaryMessage, `{"type":"ping"}`, "binary frames are not supported: send JSON text"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := c.WriteMessage(tt.typ, []byte(tt.frame)); err != nil {
				t.Fatalf("write: %v", err)
			}
			m := MustReadJSON(t, c)
			if len(m) != 1 || m["error"] != tt.why {
				t.Fatalf("got %v, want {error: %q}", m, tt.why)
			}
			MustPong(t, c)
		})
	}
}

func TestReadLimit(t *testing.T) {
	forEachReader(t, testReadLimit)
}

func testReadLimit(t *testing.T, opts EnvOptions) {
	env := MustEnv(t, opts)
	c, _ := env.MustConnect(t, env.MustRegister(t, "alice"), "")
	// Exactly the limit is read (and is no valid frame).
	MustSend(t, c, strings.Repeat("x", plainws.ReadLimit))
	if m := MustReadJSON(t, c); m["error"] != "invalid JSON" {
		t.Fatalf("got %v, want the invalid JSON error", m)
	}
	MustSend(t, c, `{"message": "`+strings.Repeat("x", plainws.ReadLimit)+`"}`)
	MustClose(t, c, websocket.CloseMessageTooBig, "message too big")
}

// TestInvalidUTF8 checks that a text frame that is not UTF-8 closes the
// socket with 1007 (RFC 6455, section 8.1), whole or in fragments.
func TestInvalidUTF8(t *testing.T) {
	forEachReader(t, testInvalidUTF8)
}

func testInvalidUTF8(t *testing.T, opts EnvOptions) {
	env := MustEnv(t, opts)
	alice := env.MustRegister(t, "alice")
	c, _ := env.MustConnect(t, alice, "")
	MustSend(t, c, "{\"message\":\"\xff\"}")
	MustClose(t, c, websocket.CloseInvalidFramePayloadData, "invalid utf-8")

	c, _ = env.MustConnect(t, alice, "")
	if _, err := c.NetConn().Write(append(rawFrame(0x01, "{\"message\":\"\xe2"), rawFrame(0x80, "\x82\"}")...)); err != nil {
		t.Fatalf("write: %v", err)
	}
	MustClose(t, c, websocket.CloseInvalidFramePayloadData, "invalid utf-8")
}

// rawFrame encodes a frame as a client sends it, masked, with the given
// first byte (FIN, RSV and opcode) and a payload under 126 bytes.
func rawFrame(b0 byte, payload string) []byte {
	mask := []byte{1, 2, 3, 4}
	f := append([]byte{b0, 0x80 | byte(len(payload))}, mask...)
	for i := range len(payload) {
		f = append(f, payload[i]^mask[i%4])
	}
	return f
}

// TestFramesInPieces sends a fragmented message with a ping between its
// fragments, a byte at a time: the server reads frames however they come.
func TestFramesInPieces(t *testing.T) {
	forEachReader(t, testFramesInPieces)
}

// forEachReader runs test with sockets read by the poller, and by
// goroutines of their own.
func forEachReader(t *testing.T, test func(*testing.T, EnvOptions)) {
	t.Run("Poller", func(t *testing.T) { test(t, EnvOptions{}) })
	t.Run("NoPoller", func(t *testing.T) { test(t, EnvOptions{NoPoller: true}) })
}

func testFramesInPieces(t *testing.T, opts EnvOptions) {
	env := MustEnv(t, opts)
	c, _ := env.MustConnect(t, env.MustRegister(t, "alice"), "")
	pongs := RecordPongs(c)
	var data []byte
	data = append(data, rawFrame(0x01, `{"message":`)...)  // text, not final
	data = append(data, rawFrame(0x89, "between")...)      // ping
	data = append(data, rawFrame(0x80, `"in pieces"}`)...) // final continuation
	for i := range data {
		if _, err := c.NetConn().Write(data[i : i+1]); err != nil {
			t.Fatalf("write: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if m := MustReadJSON(t, c); m["message"] != "in pieces" {
		t.Fatalf("got %v, want the message echoed", m)
	}
	MustHavePong(t, pongs, "between")
	MustPong(t, c)
}

func TestProtocolError(t *testing.T) {
	forEachReader(t, testProtocolError)
}

func testProtocolError(t *testing.T, opts EnvOptions) {
	env := MustEnv(t, opts)
	c, _ := env.MustConnect(t, env.MustRegister(t, "alice"), "")
	unmasked := []byte{0x81, 2, 'h', 'i'}
	if _, err := c.NetConn().Write(unmasked); err != nil {
		t.Fatalf("write: %v", err)
	}
	MustClose(t, c, websocket.CloseProtocolError, "client frames must be masked")
}

// TestSilentClient checks that a client that answers no ping and sends
// nothing is dropped, without a close frame, after two ping intervals.
func TestSilentClient(t *testing.T) {
	forEachReader(t, testSilentClient)
}

func testSilentClient(t *testing.T, opts EnvOptions) {
	opts.Plain.PingInterval = 50 * time.Millisecond
	env := MustEnv(t, opts)
	token := env.MustRegister(t, "alice")
	// From before the handshake: the server counts from when it opens the
	// socket.
	start := time.Now()
	c, _ := env.MustConnect(t, token, "")
	// gorilla's client answers pings from within reads: never read.
	buf := make([]byte, 512)
	_ = c.NetConn().SetReadDeadline(time.Now().Add(readTimeout))
	for {
		_, err := c.NetConn().Read(buf)
		if err == nil {
			continue // pings
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("still open after %v", time.Since(start))
		}
		break
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("dropped after %v, before two ping intervals", d)
	}
}

// TestConnectionLost checks that a client whose connection ends without
// a close frame ends its socket at once, whether the socket's writer is
// idle or blocked on the client, which has stopped reading: the writer
// does not wait for its write timeout, and everything the socket held is
// released (Handler.Wait returns without a shutdown).
func TestConnectionLost(t *testing.T) {
	forEachReader(t, func(t *testing.T, opts EnvOptions) {
		t.Run("Idle", func(t *testing.T) { testConnectionLost(t, opts, false) })
		t.Run("WriterBlocked", func(t *testing.T) { testConnectionLost(t, opts, true) })
	})
}

func testConnectionLost(t *testing.T, opts EnvOptions, blocked bool) {
	var logs testlog.Buffer
	opts.Plain.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	opts.Plain.Websocket.WriteTimeout = time.Minute
	opts.Fanout.QueueSize = 1000 // not cut off as too slow
	env := MustEnv(t, opts)
	alice := env.MustRegister(t, "alice")
	c, _ := env.MustConnect(t, alice, "")
	if blocked {
		// alice stops reading: big frames fill the connection's buffers
		// (a few MiB), and the writer blocks.
		big := strings.Repeat("x", social.MessageMaxBytes)
		for range 200 {
			if err := env.Svc.SendMessage(ctx, alice.ID, big); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(100 * time.Millisecond) // for the writer to block
	}
	// A FIN without a close frame: the server's writes still block.
	if err := c.NetConn().(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatalf("close write: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := env.Handler.Wait(wctx); err != nil {
		t.Fatalf("socket still open 5 s after its connection ended: %v", err)
	}
	if out := logs.String(); !strings.Contains(out, `"code":1006,"reason":"connection lost"`) {
		t.Fatalf("closed otherwise than 1006 connection lost:\n%s", out)
	}
}

func TestShutdown(t *testing.T) {
	forEachReader(t, testShutdown)
}

func testShutdown(t *testing.T, opts EnvOptions) {
	env := MustEnv(t, opts)
	alice := env.MustRegister(t, "alice")
	c1, _ := env.MustConnect(t, alice, "")
	c2, _ := env.MustConnect(t, alice, "?after=0")
	env.Shutdown()
	MustClose(t, c1, websocket.CloseGoingAway, "server shutting down")
	MustClose(t, c2, websocket.CloseGoingAway, "server shutting down")
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := env.Handler.Wait(wctx); err != nil {
		t.Fatalf("wait: %v", err)
	}
}

func TestBrokerClosed(t *testing.T) {
	env := MustEnv(t, EnvOptions{})
	c, _ := env.MustConnect(t, env.MustRegister(t, "alice"), "")
	env.Broker.Close()
	MustClose(t, c, websocket.CloseGoingAway, "server shutting down")
}

func TestSlowClient(t *testing.T) {
	env := MustEnv(t, EnvOptions{Fanout: fanout.Config{QueueSize: 4}})
	alice, bob, carol := env.MustRegister(t, "alice"), env.MustRegister(t, "bob"), env.MustRegister(t, "carol")
	for _, u := range []User{alice, bob} {
		if _, err := env.Svc.Follow(ctx, u.User, "carol"); err != nil {
			t.Fatalf("follow: %v", err)
		}
	}
	slow, _ := env.MustConnect(t, alice, "")
	fast, _ := env.MustConnect(t, bob, "")

	// alice stops reading. Big frames fill the connection's buffers at
	// once, then her queue at the broker.
	big := strings.Repeat("x", social.MessageMaxBytes)
	for range 200 {
		if err := env.Svc.SendMessage(ctx, alice.ID, big); err != nil {
			t.Fatal(err)
		}
	}
	// bob is not slowed down by her.
	for i := range 20 {
		start := time.Now()
		p := env.MustPost(t, carol, "post "+id(int64(i)))
		m := MustReadJSON(t, fast)
		if m["action"] != "post" || m["action_id"] != id(p.ID) {
			t.Fatalf("bob got %v, want the notification of post %d", m, p.ID)
		}
		// Were bob held up by alice's blocked writer, he would wait for
		// its write timeout (10 s); half of that leaves room for a busy
		// machine.
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("bob waited %v for a notification", d)
		}
	}
	// When alice reads again, she finds what was sent before she was cut
	// off, then the close.
	MustClose(t, slow, 4008, "too slow")
	MustPong(t, fast)
}

func TestTooManyReplies(t *testing.T) {
	env := MustEnv(t, EnvOptions{Plain: plainws.Config{ReplyQueue: 2}})
	alice := env.MustRegister(t, "alice")
	c, _ := env.MustConnect(t, alice, "")
	// alice stops reading: big frames fill the connection, so the writer
	// blocks, and her pings pile up.
	big := strings.Repeat("x", social.MessageMaxBytes)
	for range 200 {
		if err := env.Svc.SendMessage(ctx, alice.ID, big); err != nil {
			t.Fatal(err)
		}
	}
	for range 50 {
		if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
			break
		}
	}
	MustClose(t, c, 4008, "too slow")
}

func TestLogs(t *testing.T) {
	var logs testlog.Buffer
	env := MustEnv(t, EnvOptions{Plain: plainws.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}})
	alice := env.MustRegister(t, "alice")
	c, _ := env.MustConnect(t, alice, "")
	MustClose(t, MustDial(t, env.URL("bad-token", "")), 4401, "invalid access token")
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatalf("close: %v", err)
	}
	MustClose(t, c, websocket.CloseNormalClosure, "bye")
	env.Shutdown()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := env.Handler.Wait(wctx); err != nil {
		t.Fatalf("wait: %v", err)
	}

	out := logs.String()
	if strings.Contains(out, alice.Token) || strings.Contains(out, "bad-token") {
		t.Fatalf("a token is in the logs:\n%s", out)
	}
	type line struct {
		Msg      string
		Path     string
		UserID   int64   `json:"user_id"`
		Code     int     `json:"code"`
		Reason   string  `json:"reason"`
		Duration float64 `json:"duration"`
	}
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v line
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("log line %s: %v", l, err)
		}
		if v.Path != "/ws/<redacted>/" {
			t.Fatalf("log line %s: path %q, want /ws/<redacted>/", l, v.Path)
		}
		lines = append(lines, v)
	}
	want := []line{
		{Msg: "plain socket open", UserID: alice.ID},
		{Msg: "plain socket closed", Code: 4401, Reason: "invalid access token"},
		{Msg: "plain socket closed", UserID: alice.ID, Code: 1000, Reason: "bye"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), out)
	}
	// The two closes may be logged in either order.
	for _, w := range want {
		i := slices.IndexFunc(lines, func(l line) bool {
			return l.Msg == w.Msg && l.UserID == w.UserID && l.Code == w.Code && l.Reason == w.Reason
		})
		if i < 0 {
			t.Fatalf("no log line like %+v in:\n%s", w, out)
		}
		if w.Msg == "plain socket closed" && lines[i].Duration <= 0 {
			t.Fatalf("log line %+v has no duration", lines[i])
		}
		lines = slices.Delete(lines, i, i+1)
	}
}

// TestLiveWhenOpen checks the promise a client without ?after= relies on:
// once the handshake returns, every notification committed from then on
// reaches the socket.
func TestLiveWhenOpen(t *testing.T) {
	env := MustEnv(t, EnvOptions{})
	alice, bob := env.MustRegister(t, "alice"), env.MustRegister(t, "bob")
	for i := range 20 {
		c := MustDial(t, env.URL(alice.Token, ""))
		if _, err := env.Svc.Follow(ctx, bob.User, "alice"); err != nil {
			t.Fatal(err)
		}
		m := MustReadJSON(t, c)
		if m["action"] != "following" || m["by_user"] != "bob" {
			t.Fatalf("round %d: got %v, want bob's follow", i, m)
		}
		if _, err := env.Svc.Unfollow(ctx, bob.User, "alice"); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
}

// TestTokenExpiry checks that an open socket closes with 4401 "token
// expired" when its token expires: not before, and soon after.
func TestTokenExpiry(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	env := MustEnv(t, EnvOptions{TokenTTL: ttl})
	// The session expires ttl after this, or later (the store keeps times
	// to the millisecond).
	registered := time.Now().Truncate(time.Millisecond)
	alice := env.MustRegister(t, "alice")
	c, _ := env.MustConnect(t, alice, "")
	MustClose(t, c, 4401, "token expired")
	closed := time.Now()
	if closed.Before(registered.Add(ttl)) {
		t.Fatalf("closed %v after registering, before the token's expiry (%v)", closed.Sub(registered), ttl)
	}
	if closed.After(registered.Add(ttl + 5*time.Second)) {
		t.Fatalf("closed %v after registering, long after the token's expiry (%v)", closed.Sub(registered), ttl)
	}
}
