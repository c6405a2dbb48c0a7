package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/pulse-social/pulse/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Remove()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// server is the real binary, running on 127.0.0.1 and a SQLite file.
type server struct{ *testbin.Server }

// noLimits turns off the abuse limits: the tests act faster than any
// person.
var noLimits = []string{"--auth-rate", "0", "--mutation-rate", "0", "--max-sockets-per-user", "0", "--max-sockets-per-address", "0", "--max-subscriptions-per-socket", "0"}

// MustStart starts the binary on db with args, on a free port of
// 127.0.0.1, and waits until it answers /healthz. The test's cleanup stops
// it.
func MustStart(tb testing.TB, db string, args ...string) *server {
	tb.Helper()
	return &server{testbin.Start(tb, append([]string{"--db", db, "--log-format", "text"}, args...)...)}
}

// gqlError is a GraphQL error.
type gqlError struct {
	Message    string         `json:"message"`
	Extensions map[string]any `json:"extensions"`
}

// Metrics scrapes /metrics into name{labels} -> value.
func (s *server) Metrics(tb testing.TB) map[string]float64 {
	tb.Helper()
	resp, err := testbin.HTTPClient.Get("http://" + s.Addr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// frame is a notification as a socket received it, reduced to what the
// rules decide.
type frame struct {
	ID  int64
	Key string
}

// notificationKey is what a notification says, in one string: what the
// rules decide, so that the model can predict it.
func notificationKey(action, actionID, byUser string, content, affected, affectedID *string) string {
	if strings.EqualFold(action, "FOLLOWING") {
		actionID = "*" // the follow's id: the client that follows is not told it
	}
	s := func(p *string) string {
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	return strings.Join([]string{strings.ToUpper(action), actionID, byUser, s(content), strings.ToUpper(s(affected)), s(affectedID)}, "|")
}

// plainClient is one plain socket of a user that drops and resumes with
// ?after= the last id it saw, each time on the next of addrs, and records
// every notification it received; with changes, every change of its
// user's inbox (?changes=1).
type plainClient struct {
	addrs   []string
	token   string
	changes bool
	received

	conn  *websocket.Conn // the reader's
	dials int
}

// received is what a client has received, in order, and what went wrong;
// its methods are safe for concurrent use.
type received struct {
	mu      sync.Mutex
	frames  []frame
	changes []gotChange
	lastID  int64 // of the last notification or change
	errs    []error
	resumes int
}

// addChange records a change; one whose cursor is not above the last
// one's is an error too.
func (r *received) addChange(c gotChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c.Cursor <= r.lastID {
		r.errs = append(r.errs, fmt.Errorf("cursor %d after %d: duplicate or out of order", c.Cursor, r.lastID))
	}
	r.lastID = c.Cursor
	r.changes = append(r.changes, c)
}

func (r *received) snapshotChanges() []gotChange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.changes)
}

// resumed counts a drop by the client.
func (r *received) resumed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resumes++
}

// add records a notification; one whose id is not above the last one's is
// an error too.
func (r *received) add(id int64, key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id <= r.lastID {
		r.errs = append(r.errs, fmt.Errorf("id %d after %d: duplicate or out of order", id, r.lastID))
	}
	r.lastID = id
	r.frames = append(r.frames, frame{id, key})
}

func (r *received) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

// last returns the id of the last notification received, 0 for none.
func (r *received) last() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastID
}

func (r *received) snapshot() ([]frame, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]frame(nil), r.frames...), append([]error(nil), r.errs...)
}

var dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second}

// connect opens the socket on the next address, resuming after the last
// id or cursor seen (or from after=0 the first time, so that nothing
// committed before it is missed).
func (c *plainClient) connect() error {
	u := fmt.Sprintf("ws://%s/ws/%s/?after=%d", c.addrs[c.dials%len(c.addrs)], c.token, c.last())
	c.dials++
	if c.changes {
		u += "&changes=1"
	}
	conn, _, err := dialer.Dial(u, nil)
	if err != nil {
		return err
	}
	c.conn = conn
	return nil
}

// read reads until the socket ends; it records what it got and checks
// that ids increase.
func (c *plainClient) read() {
	for {
		_, b, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		if c.changes {
			c.readChange(b)
			continue
		}
		var n plainNotification
		if err := json.Unmarshal(b, &n); err != nil {
			c.fail(fmt.Errorf("frame %s: %v", b, err))
			continue
		}
		if n.ID == "" {
			continue // a pong
		}
		id, _ := strconv.ParseInt(n.ID, 10, 64)
		c.add(id, n.key())
	}
}

// plainNotification is a notification as the plain socket sends it.
type plainNotification struct {
	ID            string  `json:"id"`
	Action        string  `json:"action"`
	ActionID      string  `json:"action_id"`
	ByUser        string  `json:"by_user"`
	ActionContent *string `json:"action_content"`
	Affected      *string `json:"affected"`
	AffectedID    *string `json:"affected_id"`
}

func (n plainNotification) key() string {
	return notificationKey(n.Action, n.ActionID, n.ByUser, n.ActionContent, n.Affected, n.AffectedID)
}

// run keeps the socket open until ctx ends, dropping it at random times
// (churn > 0: mean time between drops) and resuming.
func (c *plainClient) run(ctx context.Context, churn time.Duration, rnd func(time.Duration) time.Duration) {
	for ctx.Err() == nil {
		if err := c.connect(); err != nil {
			if ctx.Err() == nil {
				c.fail(fmt.Errorf("connect: %w", err))
				time.Sleep(50 * time.Millisecond)
			}
			continue
		}
		readDone := make(chan struct{})
		go func() {
			defer close(readDone)
			c.read()
		}()
		var drop <-chan time.Time
		if churn > 0 {
			drop = time.After(rnd(churn))
		}
		select {
		case <-ctx.Done():
		case <-drop:
			c.resumed()
		case <-readDone: // the server closed it (4008 too slow): resume
		}
		_ = c.conn.Close()
		<-readDone
	}
}

// readChange records a frame of the plain socket's change stream.
func (c *plainClient) readChange(b []byte) {
	var f struct {
		plainNotification
		Type        string   `json:"type"`
		Cursor      string   `json:"cursor"`
		IDs         []string `json:"ids"`
		UnreadCount int      `json:"unread_count"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		c.fail(fmt.Errorf("frame %s: %v", b, err))
		return
	}
	if f.Cursor == "" {
		return // a pong
	}
	g := gotChange{Cursor: mustParse(f.Cursor), Unread: f.UnreadCount}
	switch f.Type {
	case "notification":
		g.Kind, g.IDs = "ADDED", []int64{mustParse(f.ID)}
		g.Key = f.key()
		if f.ID != f.Cursor {
			c.fail(fmt.Errorf("frame %s: id and cursor differ", b))
		}
	case "removed", "read":
		g.Kind = strings.ToUpper(f.Type)
		for _, id := range f.IDs {
			g.IDs = append(g.IDs, mustParse(id))
		}
	default:
		c.fail(fmt.Errorf("frame %s: unknown type", b))
		return
	}
	c.addChange(g)
}

// mustParse returns the number in s, or -1.
func mustParse(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// graphqlClient is one graphql-transport-ws socket with one
// notifications(after:) subscription, or with changes one
// inboxChanges(after:), from "0" at first. It drops the socket at random
// and resumes after the last id or cursor seen, each time on the next of
// addrs.
type graphqlClient struct {
	addrs   []string
	token   string
	changes bool

	received

	dials int
}

// run subscribes and reads until ctx ends, dropping the socket at random
// (churn > 0: mean time between drops); if the subscription ends (too
// slow), it subscribes again after the last id seen.
func (c *graphqlClient) run(ctx context.Context, churn time.Duration, rnd func(time.Duration) time.Duration) {
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second}
	for ctx.Err() == nil {
		conn, _, err := d.Dial("ws://"+c.addrs[c.dials%len(c.addrs)]+"/query", nil)
		c.dials++
		if err != nil {
			if ctx.Err() == nil {
				c.fail(fmt.Errorf("graphql dial: %w", err))
				time.Sleep(50 * time.Millisecond)
			}
			continue
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.session(conn)
		}()
		var drop <-chan time.Time
		if churn > 0 {
			drop = time.After(rnd(churn))
		}
		select {
		case <-ctx.Done():
		case <-drop:
			c.resumed()
		case <-done:
		}
		_ = conn.Close()
		<-done
	}
}

func (c *graphqlClient) session(conn *websocket.Conn) {
	type msg struct {
		ID      string          `json:"id,omitempty"`
		Type    string          `json:"type"`
		Payload json.RawMessage `json:"payload,omitempty"`
	}
	init, _ := json.Marshal(map[string]any{"authorization": "Bearer " + c.token})
	if conn.WriteJSON(msg{Type: "connection_init", Payload: init}) != nil {
		return
	}
	var wmu sync.Mutex
	write := func(m msg) error {
		wmu.Lock()
		defer wmu.Unlock()
		return conn.WriteJSON(m)
	}
	subscribe := func(id string) error {
		after := c.last()
		query := `subscription($a:ID){notifications(after:$a){id action actionId byUser actionContent affected affectedId}}`
		if c.changes {
			query = `subscription($a:ID){inboxChanges(after:$a){cursor kind notificationIds unreadCount
				notification{id action actionId byUser actionContent affected affectedId} groups{` + groupViewFields + `}}}`
		}
		p, _ := json.Marshal(map[string]any{"query": query, "variables": map[string]any{"a": strconv.FormatInt(after, 10)}})
		return write(msg{ID: id, Type: "subscribe", Payload: p})
	}
	gen := 0
	for {
		var m msg
		if err := conn.ReadJSON(&m); err != nil {
			return
		}
		switch m.Type {
		case "connection_ack":
			gen++
			if subscribe(strconv.Itoa(gen)) != nil {
				return
			}
		case "ping":
			_ = write(msg{Type: "pong"})
		case "next":
			if c.changes {
				c.readChange(m.Payload)
				continue
			}
			var p struct {
				Data struct {
					Notifications inboxNode
				}
				Errors []gqlError
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil || len(p.Errors) > 0 {
				c.fail(fmt.Errorf("next %s: %v", m.Payload, err))
				continue
			}
			n := p.Data.Notifications
			id, _ := strconv.ParseInt(n.ID, 10, 64)
			c.add(id, n.key())
		case "error", "complete":
			// Cut off as too slow (SLOW_CONSUMER): subscribe again after
			// the last id seen.
			var errs []gqlError
			_ = json.Unmarshal(m.Payload, &errs)
			if len(errs) > 0 && errs[0].Extensions["code"] != "SLOW_CONSUMER" {
				c.fail(fmt.Errorf("subscription error: %s", m.Payload))
			}
			gen++
			if subscribe(strconv.Itoa(gen)) != nil {
				return
			}
		}
	}
}

// inboxNode is a notification as the subscriptions send it.
type inboxNode struct {
	ID, Action, ActionID, ByUser string
	ActionContent, Affected      *string
	AffectedID                   *string
}

func (n inboxNode) key() string {
	return notificationKey(n.Action, n.ActionID, n.ByUser, n.ActionContent, n.Affected, n.AffectedID)
}

// readChange records an inboxChanges result.
func (c *graphqlClient) readChange(payload []byte) {
	var p struct {
		Data struct {
			InboxChanges struct {
				Cursor, Kind    string
				NotificationIDs []string `json:"notificationIds"`
				UnreadCount     int
				Notification    *inboxNode
				Groups          []groupView
			}
		}
		Errors []gqlError
	}
	if err := json.Unmarshal(payload, &p); err != nil || len(p.Errors) > 0 {
		c.fail(fmt.Errorf("next %s: %v", payload, err))
		return
	}
	ch := p.Data.InboxChanges
	g := gotChange{Cursor: mustParse(ch.Cursor), Kind: ch.Kind, Unread: ch.UnreadCount, Groups: ch.Groups}
	if g.Groups == nil {
		g.Groups = []groupView{}
	}
	for _, id := range ch.NotificationIDs {
		g.IDs = append(g.IDs, mustParse(id))
	}
	if n := ch.Notification; n != nil {
		g.Key = n.key()
	}
	if (ch.Kind == "ADDED") != (ch.Notification != nil) {
		c.fail(fmt.Errorf("next %s: a notification with %s", payload, ch.Kind))
	}
	c.addChange(g)
}
