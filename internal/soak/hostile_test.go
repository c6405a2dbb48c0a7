//go:build hostile

package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/procstat"
)

// The hostile run's server and its bounds (issue 13).
const (
	tokenTTL       = 3 * time.Second        // --token-ttl: expiry shows within the run
	maxRSS         = 200_000_000 / 1024     // KiB of server RSS (200 MB), throughout
	maxHealthz     = 100 * time.Millisecond // a /healthz answer, throughout
	healthzEvery   = 50 * time.Millisecond
	fast           = time.Second      // a refusal takes at most this
	smallBody      = 64 << 10         // a refusal's body is under this
	requestTimeout = 10 * time.Second // the longest the tool waits for one answer
)

// hostileArgs are the server's flags: defaults but for the token lifetime,
// so that the attacks meet the limits as an attacker would.
var hostileArgs = []string{"--token-ttl", tokenTTL.String(), "--log-level", "info"}

// Accepted GraphQL error codes of a refusal; a code written *X* matches
// any code containing X.
var (
	complexityCodes = []string{"COMPLEXITY_LIMIT_EXCEEDED", "*LIMIT*"}
	validationCodes = []string{"GRAPHQL_VALIDATION_FAILED", "*LIMIT*"}
	aliasCodes      = []string{"RATE_LIMITED", "GRAPHQL_VALIDATION_FAILED", "*LIMIT*"}
)

// attack is one row of the hostile run: what it does, what the server
// should answer, and the code that does it and judges the answer.
type attack struct {
	name   string
	expect string
	run    func(h *hostile) result
}

// result is what the server answered to one attack.
type result struct {
	answer  string        // status, error code, close code and reason
	elapsed time.Duration // the attack's own request, or the whole attack
	bytes   int64         // response bytes received
	pass    bool
}

// attacks are issue 13's, in the order they run. Those that spend the
// auth or mutation limits come last but one; the login aliases come from
// an address of their own.
var attacks = []attack{
	{"nested lists, 1 copy (GET)", "COMPLEXITY_LIMIT_EXCEEDED|*LIMIT*, <1s, <64KiB", func(h *hostile) result {
		return refusal(h.get(context.Background(), nestedQuery(h.postID, 1)), complexityCodes)
	}},
	{"client gone mid-query", "0 ERROR log lines", (*hostile).disconnect},
	{"nested lists, 4 aliases (GET)", "COMPLEXITY_LIMIT_EXCEEDED|*LIMIT*, <1s, <64KiB", func(h *hostile) result {
		return refusal(h.get(context.Background(), nestedQuery(h.postID, 4)), complexityCodes)
	}},
	{"900 conflicting aliases", "GRAPHQL_VALIDATION_FAILED|*LIMIT*, <1s, <64KiB", func(h *hostile) result {
		var b strings.Builder
		fmt.Fprintf(&b, "query Conflict%d {", time.Now().UnixNano())
		for i := range 900 {
			fmt.Fprintf(&b, ` a: user(username:"u%d"){id}`, i)
		}
		b.WriteString(" }")
		return refusal(h.post(b.String(), nil, ""), validationCodes)
	}},
	{"900 x me{8 fields}", "GRAPHQL_VALIDATION_FAILED|*LIMIT*, <1s, <64KiB", func(h *hostile) result {
		// 9,904 tokens: under the parser's limit of 10,000.
		var b strings.Builder
		fmt.Fprintf(&b, "query Repeat%d {", time.Now().UnixNano())
		for range 900 {
			b.WriteString(" me{id username followerCount followingCount id username followerCount followingCount}")
		}
		b.WriteString(" }")
		return refusal(h.post(b.String(), nil, ""), validationCodes)
	}},
	{"X-Request-Id of 60 KB", "log keeps <256 B of it, reply <64KiB", (*hostile).longRequestID},
	{"token expiry on open sockets", "both: 4401 token expired, <=1s after expiry", (*hostile).expiry},
	{"logout racing connection_init", "0 sockets open, 0 createPost", (*hostile).logoutRace},
	{"token in near-miss paths", "token not in the log", (*hostile).nearMiss},
	{"chunked body over 1 MiB", "413", (*hostile).chunked},
	{`enum variable "like"`, "BAD_USER_INPUT", func(h *hostile) result {
		r := h.post(`mutation($p:ID!,$k:ReactionKind!){reactToPost(postId:$p,kind:$k){id}}`,
			map[string]any{"p": h.postID, "k": "like"}, h.login("h_enum"))
		return onlyCode(r, "BAD_USER_INPUT")
	}},
	{"post body of only U+200B", "BAD_USER_INPUT", func(h *hostile) result {
		r := h.post(`mutation($b:String!){createPost(body:$b){id}}`, map[string]any{"b": "\u200b"}, h.login("h_zwsp"))
		return onlyCode(r, "BAD_USER_INPUT")
	}},
	{"invalid UTF-8 text frame", "close 1007", (*hostile).invalidUTF8},
	{"60 KB messages x 400 (plain)", "RATE_LIMITED errors, then close 4429", (*hostile).flood},
	{"logout after the mutation limit", "logout succeeds", (*hostile).spentLogout},
	{"300 login aliases (fresh address)", "RATE_LIMITED|GRAPHQL_VALIDATION_FAILED|*LIMIT*, <1s", (*hostile).loginAliases},
}

// hostileUsers are the accounts the attacks act as.
var hostileUsers = []string{"h_author", "h_enum", "h_zwsp", "h_expiry", "h_paths", "h_plain", "h_spend", "h_login",
	"h_race0", "h_race1", "h_race2", "h_race3", "h_race4"}

// TestHostile is `make hostile`: it throws issue 13's attacks at the real
// server binary, one after another, bounded in count and time, while a
// sampler polls /healthz and the process's RSS. It prints a table of what
// the server answered against what it should, then the peak RSS, the CPU
// used, the slowest /healthz, the ERROR log lines and whether a token
// reached the log; it fails if any of these misses its bound.
func TestHostile(t *testing.T) {
	start := time.Now()
	s := MustStart(t, filepath.Join(t.TempDir(), "pulse.db"), hostileArgs...)
	h := &hostile{t: t, s: s, client: newClient(nil)}
	defer h.client.CloseIdleConnections()
	h.setUp()

	ctx, stop := context.WithCancel(context.Background())
	smp := &sampler{addr: s.Addr, pid: s.PID(), client: newClient(nil), stats: make([]stats, len(attacks))}
	defer smp.client.CloseIdleConnections()
	cpu0, _ := procstat.CPUTicks(s.PID())
	var wg sync.WaitGroup
	wg.Go(func() { smp.run(ctx) })

	results := make([]result, len(attacks))
	for i, a := range attacks {
		smp.at(i)
		results[i] = a.run(h)
		time.Sleep(200 * time.Millisecond) // let the server finish what the attack left behind
	}
	stop()
	wg.Wait()
	cpu1, _ := procstat.CPUTicks(s.PID())
	logs := s.Logs.String()
	logPath := filepath.Join(os.TempDir(), "pulse-hostile.log")
	if err := os.WriteFile(logPath, []byte(logs), 0o644); err != nil {
		t.Error(err)
	}

	fmt.Printf("\nhostile run (issue 13): server flags %s\n\n", strings.Join(hostileArgs, " "))
	fmt.Printf("%-34s %-50s %8s %10s %-48s %-4s %9s %8s\n", "attack", "answer", "time", "bytes", "expected", "", "peak RSS", "healthz")
	for i, a := range attacks {
		r, st := results[i], smp.stats[i]
		fmt.Printf("%-34s %-50s %8s %10d %-48s %-4s %9s %8s\n", a.name, clip(r.answer, 50), r.elapsed.Round(time.Millisecond),
			r.bytes, a.expect, verdict(r.pass), mib(st.rss), st.healthz.Round(time.Millisecond))
		if !r.pass {
			t.Errorf("%s: answered %s; want %s", a.name, r.answer, a.expect)
		}
	}

	peak, worst, slow, polls := smp.totals()
	errorLines := strings.Count(logs, "level=ERROR")
	leaked := 0
	for _, tok := range h.tokens {
		if strings.Contains(logs, tok) {
			leaked++
		}
	}
	fmt.Printf(`
  peak RSS         %s (bound %s)  %s
  CPU              %.1f s of the server's in %v
  /healthz         slowest %v (bound %v), %d of %d polls over the bound  %s
  ERROR log lines  %d
  tokens in log    %d of %d issued  %s
  server log       %s
`, mib(peak), mib(maxRSS), verdict(peak <= maxRSS),
		float64(cpu1-cpu0)/procstat.ClockTicks, time.Since(start).Round(time.Second),
		worst.Round(time.Millisecond), maxHealthz, slow, polls, verdict(slow == 0),
		errorLines, leaked, len(h.tokens), verdict(leaked == 0), logPath)
	if peak > maxRSS {
		t.Errorf("server RSS peaked at %s, over %s", mib(peak), mib(maxRSS))
	}
	if slow > 0 {
		t.Errorf("/healthz took up to %v, over %v, %d times", worst, maxHealthz, slow)
	}
	if leaked > 0 {
		t.Errorf("%d access tokens appear in the server's log", leaked)
	}
}

// hostile is the attacker: the server, its client and what set-up made.
type hostile struct {
	t      *testing.T
	s      *server
	client *http.Client
	postID string   // a post with 10 comments
	tokens []string // every access token issued, to look for in the log
}

// setUp registers the users and writes the post with 10 comments.
func (h *hostile) setUp() {
	for _, u := range hostileUsers {
		h.tokens = append(h.tokens, h.s.MustRegister(h.t, u))
	}
	tok := h.login("h_author")
	var p struct{ ID string }
	h.s.MustDo(h.t, tok, `mutation{createPost(body:"bait"){id}}`, nil, "createPost", &p)
	h.postID = p.ID
	for i := range 10 {
		h.s.MustDo(h.t, tok, `mutation($p:ID!,$b:String!){createComment(postId:$p,body:$b){id}}`,
			map[string]any{"p": p.ID, "b": fmt.Sprintf("comment %d", i)}, "createComment", nil)
	}
}

// login returns a fresh token of user: with a short --token-ttl, one from
// an earlier attack has expired.
func (h *hostile) login(user string) string {
	var p struct{ AccessToken string }
	h.s.MustDo(h.t, "", `mutation($u:String!,$p:String!){login(username:$u,password:$p){accessToken}}`,
		map[string]any{"u": user, "p": "password-" + user}, "login", &p)
	h.tokens = append(h.tokens, p.AccessToken)
	return p.AccessToken
}

// newClient returns an HTTP client with requestTimeout; dial, if not nil,
// opens its connections.
func newClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	return &http.Client{Timeout: requestTimeout, Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4}}
}

// nestedQuery is post(id) with comments { post { ... } } five lists deep,
// in copies aliased copies.
func nestedQuery(postID string, copies int) string {
	var b strings.Builder
	b.WriteString("query Nested {")
	for i := range copies {
		fmt.Fprintf(&b, " c%d: post(id:%q) { comments { post { comments { post { comments { post { comments { post { comments { id body } } } } } } } } } }", i, postID)
	}
	b.WriteString(" }")
	return b.String()
}

// response is an HTTP answer as far as the tool read it.
type response struct {
	status  int
	head    []byte // the first smallBody bytes of the body
	bytes   int64  // the body's length, as far as it was read
	elapsed time.Duration
	err     error // no answer, or the body was cut (timeout)
}

// get sends query as GET /query?query=..., with no Origin and no token.
func (h *hostile) get(ctx context.Context, query string) response {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.s.Addr+"/query?query="+url.QueryEscape(query), nil)
	return do(h.client, req)
}

// post sends a GraphQL POST, with token if it is not empty.
func (h *hostile) post(query string, vars map[string]any, token string) response {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, "http://"+h.s.Addr+"/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(h.client, req)
}

// do sends req with c and reads the answer: the first smallBody bytes of
// the body are kept, the rest only counted.
func do(c *http.Client, req *http.Request) response {
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return response{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	head, err := io.ReadAll(io.LimitReader(resp.Body, smallBody))
	var rest int64
	if err == nil {
		rest, err = io.Copy(io.Discard, resp.Body)
	}
	return response{status: resp.StatusCode, head: head, bytes: int64(len(head)) + rest, elapsed: time.Since(start), err: err}
}

var codeRE = regexp.MustCompile(`"code":\s*"([^"]*)"`)

// codes returns the distinct GraphQL error codes in the head of the body.
func (r response) codes() []string {
	var out []string
	for _, m := range codeRE.FindAllSubmatch(r.head, -1) {
		if c := string(m[1]); !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// String is the answer as the table prints it: "422 GRAPHQL_VALIDATION_FAILED".
func (r response) String() string {
	if r.status == 0 {
		if isTimeout(r.err) {
			return fmt.Sprintf("no answer in %v", requestTimeout)
		}
		return "no answer: " + shortErr(r.err)
	}
	s := strconv.Itoa(r.status)
	if c := r.codes(); len(c) > 0 {
		s += " " + strings.Join(c, ",")
	} else if len(r.head) > 0 && r.head[0] == '{' {
		s += " data"
	}
	if isTimeout(r.err) {
		s += fmt.Sprintf(" (body cut at %v)", requestTimeout)
	} else if r.err != nil {
		s += " (body cut: " + shortErr(r.err) + ")"
	}
	return s
}

// refusal judges r as a refusal: a whole answer, every error code among
// accepted, within fast and under smallBody.
func refusal(r response, accepted []string) result {
	c := r.codes()
	ok := r.err == nil && len(c) > 0 && r.elapsed < fast && r.bytes < smallBody
	for _, code := range c {
		ok = ok && codeIn(code, accepted)
	}
	return result{answer: r.String(), elapsed: r.elapsed, bytes: r.bytes, pass: ok}
}

// onlyCode judges r as an answer whose only error code is want.
func onlyCode(r response, want string) result {
	c := r.codes()
	return result{answer: r.String(), elapsed: r.elapsed, bytes: r.bytes, pass: r.err == nil && len(c) == 1 && c[0] == want}
}

func codeIn(code string, accepted []string) bool {
	for _, a := range accepted {
		sub, wild := strings.CutPrefix(a, "*")
		if a == code || wild && strings.Contains(code, strings.TrimSuffix(sub, "*")) {
			return true
		}
	}
	return false
}

// disconnect sends the nested query and drops the connection after 300
// ms, then counts the ERROR lines the server logged meanwhile and in the
// second after.
func (h *hostile) disconnect() result {
	before := strings.Count(h.s.Logs.String(), "level=ERROR")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	r := h.get(ctx, nestedQuery(h.postID, 1))
	cancel()
	time.Sleep(time.Second)
	n := strings.Count(h.s.Logs.String(), "level=ERROR") - before
	answer := fmt.Sprintf("%d ERROR lines", n)
	if r.status != 0 {
		answer = r.String() + " before 300ms; " + answer
	}
	return result{answer: answer, elapsed: r.elapsed, bytes: r.bytes, pass: n == 0}
}

// longRequestID sends a small query with an X-Request-Id of 60 KB and
// looks for it in the log.
func (h *hostile) longRequestID() result {
	id := strings.Repeat("hostile-request-id-", 60<<10/19+1)[:60<<10]
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.s.Addr+"/query?query="+url.QueryEscape("{__typename}"), nil)
	req.Header.Set("X-Request-Id", id)
	r := do(h.client, req)
	time.Sleep(200 * time.Millisecond)
	logged := strings.Contains(h.s.Logs.String(), id[:256])
	answer := r.String() + ", id not logged"
	if logged {
		answer = r.String() + ", id logged"
	}
	return result{answer: answer, elapsed: r.elapsed, bytes: r.bytes, pass: r.status != 0 && !logged && r.bytes < smallBody}
}

// socketEnd is how a socket ended: its close code and reason, when, or
// why it did not.
type socketEnd struct {
	code   int
	reason string
	at     time.Time
}

func (e socketEnd) String() string {
	if e.code == 0 {
		return e.reason
	}
	return fmt.Sprintf("%d %s", e.code, e.reason)
}

// readUntilClose reads conn until it closes or until deadline, answering
// graphql-transport-ws pings; onFrame, if not nil, sees every frame.
func readUntilClose(conn *websocket.Conn, deadline time.Time, onFrame func([]byte)) socketEnd {
	_ = conn.SetReadDeadline(deadline)
	for {
		_, b, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return socketEnd{code: ce.Code, reason: ce.Text, at: time.Now()}
			}
			if isTimeout(err) {
				return socketEnd{reason: "still open", at: time.Now()}
			}
			return socketEnd{reason: "dropped: " + shortErr(err), at: time.Now()}
		}
		if string(b) == `{"type":"ping"}` {
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`))
		}
		if onFrame != nil {
			onFrame(b)
		}
	}
}

// dialPlain opens the plain socket of token.
func (h *hostile) dialPlain(token string) (*websocket.Conn, error) {
	conn, _, err := dialer.Dial("ws://"+h.s.Addr+"/ws/"+token+"/", nil)
	return conn, err
}

// dialGraphQL opens a graphql-transport-ws socket.
func (h *hostile) dialGraphQL() (*websocket.Conn, error) {
	d := websocket.Dialer{Subprotocols: []string{"graphql-transport-ws"}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial("ws://"+h.s.Addr+"/query", nil)
	return conn, err
}

// initSocket sends connection_init with token.
func initSocket(conn *websocket.Conn, token string) error {
	return conn.WriteJSON(map[string]any{"type": "connection_init", "payload": map[string]any{"authorization": "Bearer " + token}})
}

// awaitAck reads until connection_ack, for at most 5 s.
func awaitAck(conn *websocket.Conn) error {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m struct{ Type string }
		if err := conn.ReadJSON(&m); err != nil {
			return err
		}
		if m.Type == "connection_ack" {
			return nil
		}
	}
}

// subscribe sends a graphql-transport-ws subscribe message.
func subscribe(conn *websocket.Conn, id, query string) error {
	return conn.WriteJSON(map[string]any{"id": id, "type": "subscribe", "payload": map[string]any{"query": query}})
}

// expiry opens a plain and a GraphQL socket (with a notifications
// subscription) on a fresh token and waits for the server to close them
// once the token expires.
func (h *hostile) expiry() result {
	sent := time.Now()
	token := h.login("h_expiry")
	loginTook := time.Since(sent)
	plain, err := h.dialPlain(token)
	if err != nil {
		return result{answer: "dial plain: " + shortErr(err), elapsed: time.Since(sent)}
	}
	defer plain.Close()
	gql, err := h.dialGraphQL()
	if err != nil {
		return result{answer: "dial graphql: " + shortErr(err), elapsed: time.Since(sent)}
	}
	defer gql.Close()
	if err := errors.Join(initSocket(gql, token), awaitAck(gql), subscribe(gql, "1", "subscription{notifications{id}}")); err != nil {
		return result{answer: "subscribe: " + shortErr(err), elapsed: time.Since(sent)}
	}
	deadline := sent.Add(tokenTTL + 3*time.Second)
	var ends [2]socketEnd
	var wg sync.WaitGroup
	wg.Go(func() { ends[0] = readUntilClose(plain, deadline, nil) })
	wg.Go(func() { ends[1] = readUntilClose(gql, deadline, nil) })
	wg.Wait()
	pass := true
	var parts []string
	for i, e := range ends {
		after := e.at.Sub(sent.Add(tokenTTL))
		pass = pass && e.code == 4401 && e.reason == "token expired" && after >= 0 && after <= time.Second+loginTook
		parts = append(parts, fmt.Sprintf("%s: %s %+.1fs", []string{"plain", "gql"}[i], e, after.Seconds()))
	}
	return result{answer: strings.Join(parts, "; "), elapsed: time.Since(sent), pass: pass}
}

// raceRounds bounds the logout race: twice over the 13 offsets.
const raceRounds = 26

// logoutRace, raceRounds times, sends connection_init on a GraphQL socket
// and logs the same token out from 3 ms before to 3 ms after, then tries
// createPost on that socket.
func (h *hostile) logoutRace() result {
	start := time.Now()
	var open, posted, failed int
	for i := range raceRounds {
		token := h.login(fmt.Sprintf("h_race%d", i%5))
		conn, err := h.dialGraphQL()
		if err != nil {
			failed++
			continue
		}
		logout := make(chan error, 1)
		offset := time.Duration(i%13-6) * 500 * time.Microsecond
		go func() {
			time.Sleep(max(offset, 0))
			logout <- h.s.Do(token, "mutation{logout}", nil, "logout", nil)
		}()
		time.Sleep(max(-offset, 0))
		_ = initSocket(conn, token)
		if <-logout != nil {
			failed++
		}
		time.Sleep(200 * time.Millisecond) // time for the server to act on the logout
		ran := false
		if subscribe(conn, "1", `mutation{createPost(body:"race"){id}}`) == nil {
			end := readUntilClose(conn, time.Now().Add(500*time.Millisecond), func(b []byte) {
				ran = ran || strings.Contains(string(b), `"createPost":{"id"`)
			})
			if end.code == 0 && end.reason == "still open" {
				open++
			}
		}
		if ran {
			posted++
		}
		conn.Close()
	}
	answer := fmt.Sprintf("%d of %d open, %d createPost", open, raceRounds, posted)
	if failed > 0 {
		answer += fmt.Sprintf(", %d logouts or dials failed", failed)
	}
	return result{answer: answer, elapsed: time.Since(start), pass: open == 0 && posted == 0 && failed == 0}
}

// nearMiss requests paths that almost name the plain socket, with a token
// in them, and looks for the token in the log.
func (h *hostile) nearMiss() result {
	start := time.Now()
	token := h.login("h_paths")
	var statuses []string
	for _, p := range []string{"//ws/%s/", "/WS/%s/", "/./ws/%s/"} {
		statuses = append(statuses, rawGet(h.s.Addr, fmt.Sprintf(p, token)))
	}
	time.Sleep(200 * time.Millisecond)
	logged := strings.Contains(h.s.Logs.String(), token)
	answer := strings.Join(statuses, ", ") + "; token not logged"
	if logged {
		answer = strings.Join(statuses, ", ") + "; token logged"
	}
	return result{answer: answer, elapsed: time.Since(start), pass: !logged}
}

// rawGet sends GET path as written (no client cleans it) and returns the
// status code, or the error.
func rawGet(addr, path string) string {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return shortErr(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if f := strings.Fields(line); len(f) >= 2 {
		return f[1]
	}
	return shortErr(err)
}

// chunked posts a 1.5 MiB body with no length (chunked).
func (h *hostile) chunked() result {
	pad := strings.Repeat("x", 3<<19)
	body := io.MultiReader(strings.NewReader(`{"query":"{__typename}","variables":{"pad":"`), strings.NewReader(pad), strings.NewReader(`"}}`))
	req, _ := http.NewRequest(http.MethodPost, "http://"+h.s.Addr+"/query", body)
	req.Header.Set("Content-Type", "application/json")
	r := do(h.client, req)
	return result{answer: r.String(), elapsed: r.elapsed, bytes: r.bytes, pass: r.status == http.StatusRequestEntityTooLarge}
}

// invalidUTF8 sends a text frame that is not UTF-8 on the plain socket.
func (h *hostile) invalidUTF8() result {
	start := time.Now()
	conn, err := h.dialPlain(h.login("h_plain"))
	if err != nil {
		return result{answer: "dial: " + shortErr(err)}
	}
	defer conn.Close()
	if err := conn.WriteMessage(websocket.TextMessage, []byte{'{', 0xff, 0xfe, '}'}); err != nil {
		return result{answer: "write: " + shortErr(err)}
	}
	end := readUntilClose(conn, time.Now().Add(2*time.Second), nil)
	return result{answer: end.String(), elapsed: time.Since(start), pass: end.code == websocket.CloseInvalidFramePayloadData}
}

// floodMessages bounds the plain socket flood.
const floodMessages = 400

// flood sends floodMessages {"message": <60 KB>} frames on one plain
// socket, reading what comes back, and sees how the socket ends.
func (h *hostile) flood() result {
	start := time.Now()
	conn, err := h.dialPlain(h.login("h_plain"))
	if err != nil {
		return result{answer: "dial: " + shortErr(err)}
	}
	defer conn.Close()
	frame, _ := json.Marshal(map[string]string{"message": strings.Repeat("m", 60<<10)})
	var echoes, limited int
	var read int64
	done := make(chan socketEnd, 1)
	go func() {
		done <- readUntilClose(conn, start.Add(15*time.Second), func(b []byte) {
			read += int64(len(b))
			var m struct{ Message, Error string }
			_ = json.Unmarshal(b, &m)
			switch e := strings.ToLower(m.Error); {
			case strings.Contains(e, "rate_limited"), strings.Contains(e, "rate limit"):
				limited++
			case m.Message != "":
				echoes++
			}
		})
	}()
	sent := 0
	for ; sent < floodMessages; sent++ {
		_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if conn.WriteMessage(websocket.TextMessage, frame) != nil {
			break
		}
	}
	// The server may keep the socket open: wait a little for its verdict.
	var end socketEnd
	select {
	case end = <-done:
	case <-time.After(3 * time.Second):
		conn.Close()
		end = <-done
		end.reason = "still open"
	}
	answer := fmt.Sprintf("%d sent/%d echoed/%d limited, %s", sent, echoes, limited, end)
	return result{answer: answer, elapsed: time.Since(start), bytes: read, pass: limited > 0 && end.code == 4429}
}

// spendBound bounds the mutations spent before logout.
const spendBound = 600

// spentLogout spends a user's mutation limit and then logs out.
func (h *hostile) spentLogout() result {
	start := time.Now()
	token := h.login("h_spend")
	n := 0
	for ; n < spendBound; n++ {
		r := h.post(`mutation{markNotificationsRead(all:true)}`, nil, token)
		if slices.Contains(r.codes(), "RATE_LIMITED") || r.err != nil {
			break
		}
	}
	r := h.post(`mutation{logout}`, nil, token)
	answer := fmt.Sprintf("limited after %d; logout: %s", n, r)
	return result{answer: answer, elapsed: time.Since(start), bytes: r.bytes,
		pass: r.err == nil && len(r.codes()) == 0 && strings.Contains(string(r.head), `"logout":true`)}
}

// loginAliases sends 300 login aliases with a wrong password in one
// request, from 127.0.0.2: an address whose auth limit nothing has spent.
func (h *hostile) loginAliases() result {
	var b strings.Builder
	b.WriteString("mutation {")
	for i := range 300 {
		fmt.Fprintf(&b, ` a%d: login(username:"h_login", password:"wrong password"){accessToken}`, i)
	}
	b.WriteString(" }")
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	c := newClient(d.DialContext)
	defer c.CloseIdleConnections()
	body, _ := json.Marshal(map[string]any{"query": b.String()})
	req, _ := http.NewRequest(http.MethodPost, "http://"+h.s.Addr+"/query", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	return refusal(do(c, req), aliasCodes)
}

// sampler polls /healthz and the server's RSS every healthzEvery and
// keeps the worst of each per attack.
type sampler struct {
	addr   string
	pid    int
	client *http.Client

	mu      sync.Mutex
	current int
	stats   []stats // per attack
	slow    int     // polls over maxHealthz
	polls   int
}

// stats are the worst readings during one attack.
type stats struct {
	rss     int64 // KiB
	healthz time.Duration
}

// at says which attack runs now.
func (s *sampler) at(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = i
}

func (s *sampler) run(ctx context.Context) {
	tick := time.NewTicker(healthzEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		req, _ := http.NewRequestWithContext(hctx, http.MethodGet, "http://"+s.addr+"/healthz", nil)
		t0 := time.Now()
		resp, err := s.client.Do(req)
		took := time.Since(t0)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			took = max(took, time.Second) // no answer counts as the timeout
		}
		rss, _ := procstat.RSSKiB(s.pid)
		s.mu.Lock()
		st := &s.stats[s.current]
		st.rss, st.healthz = max(st.rss, rss), max(st.healthz, took)
		s.polls++
		if took > maxHealthz {
			s.slow++
		}
		s.mu.Unlock()
	}
}

// totals returns the peak RSS (KiB), the slowest /healthz, how many polls
// were over maxHealthz and how many there were.
func (s *sampler) totals() (rss int64, worst time.Duration, slow, polls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.stats {
		rss, worst = max(rss, st.rss), max(worst, st.healthz)
	}
	return rss, worst, s.slow, s.polls
}

// isTimeout reports whether err is a deadline or timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// mib formats KiB as MiB.
func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func shortErr(err error) string {
	if err == nil {
		return "no error"
	}
	return clip(err.Error(), 60)
}

// clip shortens s to n bytes, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
