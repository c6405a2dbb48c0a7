// Package testbin builds the server binary, once per test process, and
// runs it (Server) for the tests that need it as a process of its own (the
// cluster and soak tests).
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once     sync.Once
	dir      string
	path     string
	buildErr error
)

// Pulse returns the path of the server binary, built by its first call.
func Pulse(tb testing.TB) string {
	tb.Helper()
	once.Do(func() {
		if dir, buildErr = os.MkdirTemp("", "pulse-test-"); buildErr != nil {
			return
		}
		path = filepath.Join(dir, "pulse")
		out, err := exec.Command("go", "build", "-o", path, "github.com/pulse-social/pulse/server").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return path
}

// Remove deletes what Pulse built; call it from TestMain after m.Run.
func Remove() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}
