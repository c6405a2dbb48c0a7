package gqlws_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine outlives the tests: every
// socket's reader and writer, every operation, must end with its socket.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
