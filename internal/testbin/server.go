package testbin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/pulse-social/pulse/internal/testlog"
)

// Server is the server binary running as a process of its own on
// 127.0.0.1.
type Server struct {
	Addr string          // host:port
	Logs *testlog.Buffer // its standard output and error

	tb   testing.TB
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// HTTPClient is the client the tests talk to a Server with.
var HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// Start runs the binary with args on a free port of 127.0.0.1 and waits
// until it answers /healthz. The process gets no environment but PATH and
// HOME, so that the machine's settings do not configure it. The test's
// cleanup stops it.
func Start(tb testing.TB, args ...string) *Server {
	tb.Helper()
	addr := freeAddr(tb)
	args = append([]string{"--addr", addr}, args...)
	s := &Server{Addr: addr, Logs: &testlog.Buffer{}, tb: tb, cmd: exec.Command(Pulse(tb), args...), done: make(chan struct{})}
	s.cmd.Stdout = s.Logs
	s.cmd.Stderr = s.Logs
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	tb.Cleanup(s.Stop)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := HTTPClient.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-s.done:
			tb.Fatalf("the server exited: %s", s.Logs)
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the server did not start: %s", s.Logs)
		}
	}
}

// freeAddr returns a free address on 127.0.0.1.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Stop sends SIGTERM and waits for the process to exit; one that has not
// exited after 20 s is killed, and the test fails.
func (s *Server) Stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		s.tb.Errorf("the server did not stop on SIGTERM")
	}
}

// PID returns the process id, for reading its memory and CPU from /proc
// (see package procstat).
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Kill kills the process with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Do posts a GraphQL operation and decodes data[field] into v (unless v is
// nil). It returns an error for a transport failure or a GraphQL error.
func (s *Server) Do(token, query string, vars map[string]any, field string, v any) error {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.Addr+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var out struct {
		Data   map[string]json.RawMessage `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("status %d: %s", resp.StatusCode, raw)
	}
	if len(out.Errors) > 0 {
		return fmt.Errorf("%s: %s (%v)", field, out.Errors[0].Message, out.Errors[0].Extensions["code"])
	}
	if v != nil {
		return json.Unmarshal(out.Data[field], v)
	}
	return nil
}

// MustDo is Do that fails the test.
func (s *Server) MustDo(tb testing.TB, token, query string, vars map[string]any, field string, v any) {
	tb.Helper()
	if err := s.Do(token, query, vars, field, v); err != nil {
		tb.Fatalf("%s on %s: %v", query, s.Addr, err)
	}
}

// MustRegister registers a user and returns its access token.
func (s *Server) MustRegister(tb testing.TB, name string) string {
	tb.Helper()
	var p struct{ AccessToken string }
	s.MustDo(tb, "", `mutation($u:String!,$p:String!){register(username:$u,password:$p){accessToken}}`,
		map[string]any{"u": name, "p": "password-" + name}, "register", &p)
	return p.AccessToken
}
