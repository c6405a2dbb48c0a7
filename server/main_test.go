package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pulse-social/pulse/internal/testbin"
	"github.com/pulse-social/pulse/internal/testlog"
)

// TestMain removes the server binary that the cluster tests build.
func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Remove()
	os.Exit(code)
}

func TestParseConfig(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }

	c, err := parseConfig(nil, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8000" || c.DB != "" || c.Broker != "" || c.TokenTTL != 720*time.Hour || !c.Introspection || c.LogFormat != "text" {
		t.Fatalf("defaults = %+v", c)
	}

	if c.SessionSweep != time.Hour {
		t.Fatalf("default session sweep interval = %v", c.SessionSweep)
	}

	env = map[string]string{"ADDR": ":9000", "TOKEN_TTL": "1h", "SESSION_SWEEP_INTERVAL": "5m", "ALLOWED_ORIGINS": "https://a.example, https://b.example", "LOG_FORMAT": "json", "INTROSPECTION": "false"}
	c, err = parseConfig([]string{"--addr", "127.0.0.1:9001"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9001" || c.TokenTTL != time.Hour || len(c.AllowedOrigins) != 2 || c.AllowedOrigins[1] != "https://b.example" || c.LogFormat != "json" || c.Introspection || c.SessionSweep != 5*time.Minute {
		t.Fatalf("flags over env = %+v", c)
	}

	for _, bad := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--log-level", "loud"}, nil},
		{[]string{"--log-format", "xml"}, nil},
		{[]string{"--token-ttl", "-1h"}, nil},
		{[]string{"--session-sweep-interval", "0s"}, nil},
		{[]string{"extra"}, nil},
		{nil, map[string]string{"TOKEN_TTL": "soon"}},
		{nil, map[string]string{"INTROSPECTION": "maybe"}},
	} {
		env = bad.env
		if _, err := parseConfig(bad.args, getenv, io.Discard); err == nil {
			t.Errorf("parseConfig(%v, %v) accepted", bad.args, bad.env)
		}
	}

	var help bytes.Buffer
	if _, err := parseConfig([]string{"--help"}, func(string) string { return "" }, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, v := range []string{"ADDR", "DATABASE_URL", "BROKER_URL", "ALLOWED_ORIGINS", "LOG_LEVEL", "LOG_FORMAT", "TOKEN_TTL", "SESSION_SWEEP_INTERVAL", "PPROF_ADDR"} {
		if !strings.Contains(help.String(), v) {
			t.Errorf("--help does not mention %s", v)
		}
	}
}

// TestRunAndShutdown starts the program on a free port and a fresh SQLite
// file, opens a plain socket, and stops it as SIGTERM would: the socket is
// closed with 1001 and run returns nil.
func TestRunAndShutdown(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &testlog.Buffer{}
	db := filepath.Join(t.TempDir(), "sub", "pulse.db")
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", "127.0.0.1:0", "--db", db}, func(string) string { return "" }, logs)
	}()

	addrRE := regexp.MustCompile(`msg=listening addr=(\S+)`)
	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; time.Sleep(10 * time.Millisecond) {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start: %s", logs)
		}
	}
	resp, err := http.Post("http://"+addr+"/query", "application/json",
		strings.NewReader(`{"query":"mutation{register(username:\"alice\",password:\"password\"){accessToken}}"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	token := regexp.MustCompile(`"accessToken":"([^"]+)"`).FindSubmatch(body)
	if token == nil {
		t.Fatalf("register: %s", body)
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws/"+string(token[1])+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	cancel()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("socket ended with %v, want close 1001", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return")
	}
	if strings.Contains(logs.String(), string(token[1])) {
		t.Fatal("the access token appears in the logs")
	}
}

// TestSessionSweeper runs the server with short tokens and a short sweep
// interval: the session of a registration is deleted once it has expired.
func TestSessionSweeper(t *testing.T) {
	s := testbin.Start(t, "--db", filepath.Join(t.TempDir(), "pulse.db"), "--token-ttl", "1s", "--session-sweep-interval", "200ms")
	s.MustRegister(t, "alice")
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.Logs.String(), "msg=\"swept expired sessions\" deleted=1"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no sweep deleted the expired session: %s", s.Logs)
		}
	}
}
